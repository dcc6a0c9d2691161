//! CMS SignedData (RFC 5652): detached signatures and RFC 3161 time-stamp tokens.
//!
//! Signing is two steps, so that any key (software, HSM, remote) can sign: [`detached`] or
//! [`timestamp_token`] compose everything but the signature and return a [`PendingSignedData`]
//! whose [`PendingSignedData::signed_attributes`] the key signs (through
//! [`crate::pkix::to_be_signed`]); [`PendingSignedData::finish`] checks the signature with the
//! certificate's key and writes the `ContentInfo`.
//!
//! What is signed is always the DER `SET OF` signed attributes (RFC 5652 §5.4): ECDSA and RSA
//! keys sign its hash with the key's default digest, which is also the `SignerInfo`'s
//! `digestAlgorithm`, as OpenSSL verifies; Ed25519 keys sign the attributes themselves as the
//! message (RFC 8419 §3.2, PureEdDSA).
//!
//! Verification ([`verify_detached`], and `crate::tsp::verify_token` for tokens) checks what the
//! structure says about itself and returns the certificates; whether the signer chains to a
//! trusted root is the caller's decision.

use ::cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use ::cms::content_info::{CmsVersion, ContentInfo};
use ::cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use aws_lc_rs::digest as lc_digest;
use const_oid::db::{rfc3161, rfc5911, rfc5912};
use der::asn1::{GeneralizedTime, ObjectIdentifier, OctetString, SetOfVec, UtcTime};
use der::{Any, DateTime, Decode, Encode, EncodeValue, Sequence, Tag, Tagged};
use signet_core::{Algorithm, Digest, DigestAlgorithm};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::attr::{Attribute, Attributes};
use x509_cert::ext::pkix::name::{GeneralName, GeneralNames};
use x509_cert::serial_number::SerialNumber;

use crate::{FormatError, pkix, tsp};

/// The largest CMS structure read (a `.p7s` or a time-stamp token), certificates included.
const MAX_CMS_LEN: usize = 1024 * 1024;

/// The most certificates a signature carries or a caller passes.
const MAX_CERTS: usize = 32;

// ---------------------------------------------------------------------------------------------
// ESS (RFC 2634 §5.4, RFC 5035 §3)
// ---------------------------------------------------------------------------------------------

/// RFC 5035 §3 (the `IssuerSerial` of RFC 2634 §5.4.1):
///
/// ```text
/// IssuerSerial ::= SEQUENCE {
///     issuer                   GeneralNames,
///     serialNumber             CertificateSerialNumber }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct IssuerSerial {
    issuer: GeneralNames,
    serial_number: SerialNumber,
}

/// RFC 5035 §3:
///
/// ```text
/// ESSCertIDv2 ::=  SEQUENCE {
///     hashAlgorithm           AlgorithmIdentifier
///            DEFAULT {algorithm id-sha256},
///     certHash                 Hash,
///     issuerSerial             IssuerSerial OPTIONAL }
/// Hash ::= OCTET STRING
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertIdV2 {
    #[asn1(optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<IssuerSerial>,
}

/// RFC 5035 §3:
///
/// ```text
/// SigningCertificateV2 ::=  SEQUENCE {
///     certs        SEQUENCE OF ESSCertIDv2,
///     policies     SEQUENCE OF PolicyInformation OPTIONAL }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    policies: Option<Vec<Any>>,
}

/// RFC 2634 §5.4.1:
///
/// ```text
/// ESSCertID ::=  SEQUENCE {
///      certHash                 Hash,  -- SHA-1 hash of entire certificate
///      issuerSerial             IssuerSerial OPTIONAL }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertId {
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<IssuerSerial>,
}

/// RFC 2634 §5.4:
///
/// ```text
/// SigningCertificate ::=  SEQUENCE {
///     certs        SEQUENCE OF ESSCertID,
///     policies     SEQUENCE OF PolicyInformation OPTIONAL }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificate {
    certs: Vec<EssCertId>,
    #[asn1(optional = "true")]
    policies: Option<Vec<Any>>,
}

// ---------------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------------

/// The key that signs, with its certificate and the certificates of its issuers.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    /// The signer certificate, DER.
    pub certificate: &'a [u8],
    /// Issuer certificates (DER), to carry along for verifiers to build the chain.
    pub chain: &'a [Vec<u8>],
    pub algorithm: Algorithm,
}

/// A `SignedData` complete but for its signature.
#[derive(Debug, Clone)]
pub struct PendingSignedData {
    version: CmsVersion,
    digest_algorithm: AlgorithmIdentifierOwned,
    encap_content_info: EncapsulatedContentInfo,
    certificates: Option<CertificateSet>,
    sid: SignerIdentifier,
    signed_attrs: Attributes,
    signed_attrs_der: Vec<u8>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signer_spki: Vec<u8>,
}

impl PendingSignedData {
    /// The DER `SET OF` signed attributes (tag `0x31`, RFC 5652 §5.4): what the key signs,
    /// through [`crate::pkix::to_be_signed`].
    pub fn signed_attributes(&self) -> &[u8] {
        &self.signed_attrs_der
    }

    /// The `ContentInfo` (`SignedData`) DER, with `signature` over [`Self::signed_attributes`].
    ///
    /// The signature is checked with the signer certificate's key first, so a key that does not
    /// match the certificate never yields a signature file. `timestamp_token`, an RFC 3161 token
    /// (a `ContentInfo` DER), is added as the unsigned attribute `id-aa-timeStampToken`
    /// (1.2.840.113549.1.9.16.2.14, RFC 3161 Appendix A).
    pub fn finish(
        self,
        signature: &[u8],
        timestamp_token: Option<&[u8]>,
    ) -> Result<Vec<u8>, FormatError> {
        pkix::verify_signature(
            &self.signer_spki,
            &self.signature_algorithm,
            &self.signed_attrs_der,
            signature,
        )
        .map_err(|e| {
            FormatError::Cms(format!(
                "the signature over the signed attributes does not verify with the signer certificate: {e}"
            ))
        })?;
        let unsigned_attrs = match timestamp_token {
            Some(token) => {
                let token = Any::from_der(token)
                    .ok()
                    .filter(|t| t.tag() == Tag::Sequence)
                    .ok_or_else(|| {
                        FormatError::Cms(
                            "time-stamp token is not a DER ContentInfo; pass the token from `tsp::parse_response`".to_owned(),
                        )
                    })?;
                Some(attributes(vec![Attribute {
                    oid: rfc3161::ID_AA_TIME_STAMP_TOKEN,
                    values: SetOfVec::try_from(vec![token]).map_err(encode_error)?,
                }])?)
            }
            None => None,
        };
        let signer_info = SignerInfo {
            version: CmsVersion::V1,
            sid: self.sid,
            digest_alg: self.digest_algorithm.clone(),
            signed_attrs: Some(self.signed_attrs),
            signature_algorithm: self.signature_algorithm,
            signature: OctetString::new(signature).map_err(encode_error)?,
            unsigned_attrs,
        };
        let signed_data = SignedData {
            version: self.version,
            digest_algorithms: SetOfVec::try_from(vec![self.digest_algorithm])
                .map_err(encode_error)?,
            encap_content_info: self.encap_content_info,
            certificates: self.certificates,
            crls: None,
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info]).map_err(encode_error)?),
        };
        ContentInfo {
            content_type: rfc5911::ID_SIGNED_DATA,
            content: Any::encode_from(&signed_data).map_err(encode_error)?,
        }
        .to_der()
        .map_err(encode_error)
    }
}

/// A detached `SignedData` (RFC 5652 §5) over content whose digest is `content_digest`.
///
/// - version 1; `digestAlgorithms` `{digest}`; `encapContentInfo` `{id-data}` without
///   `eContent`; `certificates`: the signer certificate and `signer.chain`.
/// - one `SignerInfo` (§5.3), version 1: `sid` `IssuerAndSerialNumber`, `digestAlgorithm` the
///   content digest's, `signedAttrs` `contentType` `id-data` (§11.1), `signingTime` (§11.3:
///   UTCTime through 2049, GeneralizedTime after), `messageDigest` (§11.2), and
///   `signingCertificateV2` (RFC 5035 §3: one `ESSCertIDv2`, SHA-256 with `hashAlgorithm`
///   omitted as the DEFAULT, `issuerSerial` present); `signatureAlgorithm`
///   [`pkix::signature_algorithm`].
///
/// The content digest may be SHA-256, SHA-384 or SHA-512 for Ed25519 keys (which sign the
/// attributes as a message; RFC 8419 §3 asks for SHA-512). ECDSA and RSA keys sign the hash of
/// the attributes with their default digest, and verifiers (OpenSSL among them) hash the
/// attributes with the `digestAlgorithm`, so the content digest must be that default digest.
pub fn detached(
    content_digest: &Digest,
    signing_time: OffsetDateTime,
    signer: &Signer<'_>,
) -> Result<PendingSignedData, FormatError> {
    let alg = signer.algorithm;
    let d = content_digest.algorithm();
    let signature_algorithm = pkix::signature_algorithm(alg)?;
    if !alg.signs_digest_as_message() && d != alg.default_digest() {
        return Err(FormatError::Unsupported(format!(
            "CMS signatures by `{alg}` keys use {} for the content and the signed attributes alike, but the content digest is {d}; send the {} digest of the file",
            alg.default_digest(),
            alg.default_digest()
        )));
    }
    let parts = SignerParts::new(signer)?;
    let signed_attrs = attributes(vec![
        attribute(rfc5911::ID_CONTENT_TYPE, &rfc5911::ID_DATA)?,
        attribute(rfc5911::ID_SIGNING_TIME, &signing_time_value(signing_time)?)?,
        attribute(
            rfc5911::ID_MESSAGE_DIGEST,
            &OctetString::new(content_digest.as_bytes()).map_err(encode_error)?,
        )?,
        parts.signing_certificate_v2()?,
    ])?;
    parts.pending(
        CmsVersion::V1,
        d,
        EncapsulatedContentInfo {
            econtent_type: rfc5911::ID_DATA,
            econtent: None,
        },
        true,
        signed_attrs,
        signature_algorithm,
    )
}

/// An RFC 3161 time-stamp token (§2.4.2) around `tst_info` (from [`tsp::tst_info`]).
///
/// `SignedData` version 3 (RFC 5652 §5.1: the content type is not `id-data`);
/// `encapContentInfo` `{id-ct-TSTInfo (1.2.840.113549.1.9.16.1.4), eContent tst_info}`;
/// `signedAttrs` `contentType`, `messageDigest` and `signingCertificateV2` (RFC 5816 §2.2.1);
/// the TSA certificate and chain are included when `include_certs` (the query's `certReq`).
///
/// The digest is the key's default digest, except for Ed25519 keys, which use SHA-512 as
/// RFC 8419 §3.1 requires.
pub fn timestamp_token(
    tst_info: &[u8],
    signer: &Signer<'_>,
    include_certs: bool,
) -> Result<PendingSignedData, FormatError> {
    let alg = signer.algorithm;
    let signature_algorithm = pkix::signature_algorithm(alg)?;
    let d = match alg {
        Algorithm::Ed25519 => DigestAlgorithm::Sha512,
        _ => alg.default_digest(),
    };
    if !Any::from_der(tst_info).is_ok_and(|a| a.tag() == Tag::Sequence) {
        return Err(FormatError::Cms(
            "TSTInfo is not a DER SEQUENCE; pass the output of `tsp::tst_info`".to_owned(),
        ));
    }
    let parts = SignerParts::new(signer)?;
    let signed_attrs = attributes(vec![
        attribute(rfc5911::ID_CONTENT_TYPE, &rfc3161::ID_CT_TST_INFO)?,
        attribute(
            rfc5911::ID_MESSAGE_DIGEST,
            &OctetString::new(hash_bytes(d, tst_info)).map_err(encode_error)?,
        )?,
        parts.signing_certificate_v2()?,
    ])?;
    parts.pending(
        CmsVersion::V3,
        d,
        EncapsulatedContentInfo {
            econtent_type: rfc3161::ID_CT_TST_INFO,
            econtent: Some(Any::new(Tag::OctetString, tst_info).map_err(encode_error)?),
        },
        include_certs,
        signed_attrs,
        signature_algorithm,
    )
}

/// The signer certificate and chain, parsed.
struct SignerParts {
    cert: Certificate,
    cert_der: Vec<u8>,
    chain: Vec<Certificate>,
}

impl SignerParts {
    fn new(signer: &Signer<'_>) -> Result<Self, FormatError> {
        if signer.chain.len() > MAX_CERTS {
            return Err(FormatError::Cms(format!(
                "the chain has {} certificates, over the limit of {MAX_CERTS}; pass only the issuers up to the root",
                signer.chain.len()
            )));
        }
        let parse = |der: &[u8], what: &str| {
            Certificate::from_der(der).map_err(|e| {
                FormatError::Cms(format!(
                    "{what} does not parse as an X.509 certificate: {e}; pass DER, not PEM"
                ))
            })
        };
        let cert = parse(signer.certificate, "signer certificate")?;
        let mut seen: Vec<&[u8]> = vec![signer.certificate];
        let mut chain = Vec::new();
        for der in signer.chain {
            if !seen.contains(&der.as_slice()) {
                seen.push(der);
                chain.push(parse(der, "chain certificate")?);
            }
        }
        Ok(SignerParts {
            cert,
            cert_der: signer.certificate.to_vec(),
            chain,
        })
    }

    /// `signingCertificateV2` (RFC 5035 §3) with one `ESSCertIDv2` for the signer: SHA-256
    /// (`hashAlgorithm` omitted, its DEFAULT) and `issuerSerial`.
    fn signing_certificate_v2(&self) -> Result<Attribute, FormatError> {
        let tbs = self.cert.tbs_certificate();
        let value = SigningCertificateV2 {
            certs: vec![EssCertIdV2 {
                hash_algorithm: None,
                cert_hash: OctetString::new(hash_bytes(DigestAlgorithm::Sha256, &self.cert_der))
                    .map_err(encode_error)?,
                issuer_serial: Some(IssuerSerial {
                    issuer: vec![GeneralName::DirectoryName(tbs.issuer().clone())],
                    serial_number: tbs.serial_number().clone(),
                }),
            }],
            policies: None,
        };
        attribute(rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2, &value)
    }

    fn pending(
        self,
        version: CmsVersion,
        digest: DigestAlgorithm,
        encap_content_info: EncapsulatedContentInfo,
        include_certs: bool,
        signed_attrs: Attributes,
        signature_algorithm: AlgorithmIdentifierOwned,
    ) -> Result<PendingSignedData, FormatError> {
        let tbs = self.cert.tbs_certificate();
        let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        });
        let signer_spki = tbs
            .subject_public_key_info()
            .to_der()
            .map_err(encode_error)?;
        let certificates = if include_certs {
            let mut all = vec![CertificateChoices::Certificate(self.cert)];
            all.extend(self.chain.into_iter().map(CertificateChoices::Certificate));
            Some(CertificateSet(
                SetOfVec::try_from(all).map_err(encode_error)?,
            ))
        } else {
            None
        };
        Ok(PendingSignedData {
            version,
            digest_algorithm: pkix::digest_algorithm(digest),
            encap_content_info,
            certificates,
            sid,
            signed_attrs_der: signed_attrs.to_der().map_err(encode_error)?,
            signed_attrs,
            signature_algorithm,
            signer_spki,
        })
    }
}

fn encode_error(e: der::Error) -> FormatError {
    FormatError::Cms(format!(
        "cannot encode the CMS structure: {e}; this is a bug in Signet, please report it"
    ))
}

fn attribute<T: EncodeValue + Tagged>(
    oid: ObjectIdentifier,
    value: &T,
) -> Result<Attribute, FormatError> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![Any::encode_from(value).map_err(encode_error)?])
            .map_err(encode_error)?,
    })
}

fn attributes(attrs: Vec<Attribute>) -> Result<Attributes, FormatError> {
    SetOfVec::try_from(attrs).map_err(encode_error)
}

/// `signingTime` (RFC 5652 §11.3): UTCTime for 1950 through 2049, GeneralizedTime otherwise;
/// whole seconds, UTC.
fn signing_time_value(t: OffsetDateTime) -> Result<Any, FormatError> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let bad = || {
        FormatError::Cms(format!(
            "signing time `{t}` cannot be encoded; use a time from 1970 to 9999"
        ))
    };
    let dt = DateTime::new(
        u16::try_from(t.year()).map_err(|_| bad())?,
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )
    .map_err(|_| bad())?;
    if t.year() < 2050 {
        Any::encode_from(&UtcTime::from_date_time(dt).map_err(|_| bad())?).map_err(encode_error)
    } else {
        Any::encode_from(&GeneralizedTime::from_date_time(dt)).map_err(encode_error)
    }
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

/// A verified detached signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCms {
    /// The certificate whose key made the signature (DER).
    pub signer_certificate: Vec<u8>,
    /// All certificates the signature carries (DER), for the caller to build the chain with.
    pub certificates: Vec<Vec<u8>>,
    pub signing_time: Option<OffsetDateTime>,
    pub digest_algorithm: DigestAlgorithm,
    /// The RFC 3161 time-stamp on the signature value, when one is attached.
    pub timestamp: Option<tsp::VerifiedTimestamp>,
}

/// The hash of the `SignerInfo`'s signature value: what an RFC 3161 time-stamp on a CMS
/// signature covers (RFC 3161 Appendix A).
pub fn signature_imprint(p7s: &[u8], alg: DigestAlgorithm) -> Result<Digest, FormatError> {
    let sd = decode_signed_data(p7s, Kind::Cms)?;
    let si = single_signer(&sd, Kind::Cms)?;
    hash(alg, si.signature.as_bytes())
}

/// Verifies a detached `.p7s` (RFC 5652 §5.6) against the digest of the content.
///
/// Checks that there is one `SignerInfo`; that its `contentType` attribute is `id-data` and
/// its `messageDigest` equals `content_digest` (same algorithm as the `digestAlgorithm`); that
/// an ESS signing certificate attribute, if present, names the signer certificate; that the
/// signature over the DER signed attributes verifies with the signer certificate's key; and,
/// if an `id-aa-timeStampToken` is attached, that the token verifies over the hash of the
/// signature value (RFC 3161 Appendix A), with the token's own hash algorithm.
///
/// Whether the signer chains to a trusted root, and its key usage, is the caller's decision.
pub fn verify_detached(p7s: &[u8], content_digest: &Digest) -> Result<VerifiedCms, FormatError> {
    let kind = Kind::Cms;
    let sd = decode_signed_data(p7s, kind)?;
    let econtent_type = &sd.encap_content_info.econtent_type;
    if *econtent_type != rfc5911::ID_DATA {
        return Err(kind.err(format!(
            "CMS signature content type is `{}`, not `id-data`; this is not a detached file signature",
            pkix::oid_name(econtent_type)
        )));
    }
    if sd.encap_content_info.econtent.is_some() {
        return Err(kind.err(
            "CMS signature carries its content (attached); Signet verifies detached signatures, re-sign with `openssl cms -sign -binary` without `-nodetach`".to_owned(),
        ));
    }
    let signer = verify_signer(&sd, Content::Detached(content_digest), &[], kind)?;
    let timestamp = match signer.timestamp_token()? {
        Some(token) => Some(
            tsp::verify_token_over(&token, &signer.signature, &signer.certificates).map_err(
                |e| {
                    kind.err(format!(
                        "the time-stamp on the CMS signature is invalid: {e}"
                    ))
                },
            )?,
        ),
        None => None,
    };
    Ok(VerifiedCms {
        signer_certificate: signer.signer_certificate,
        certificates: signer.certificates,
        signing_time: signer.signing_time,
        digest_algorithm: signer.digest_algorithm,
        timestamp,
    })
}

/// Whose errors these are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A CMS signature file: [`FormatError::Cms`].
    Cms,
    /// An RFC 3161 token: [`FormatError::Tsp`].
    Token,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::Cms => "CMS signature",
            Kind::Token => "time-stamp token",
        }
    }

    fn err(self, message: String) -> FormatError {
        match self {
            Kind::Cms => FormatError::Cms(message),
            Kind::Token => FormatError::Tsp(message),
        }
    }
}

/// The content a signature is checked against.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Content<'a> {
    /// The `eContent` octets, hashed with the `SignerInfo`'s digest algorithm.
    Attached(&'a [u8]),
    /// The digest of detached content.
    Detached(&'a Digest),
}

/// What [`verify_signer`] established.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedSigner {
    pub(crate) signer_certificate: Vec<u8>,
    pub(crate) certificates: Vec<Vec<u8>>,
    pub(crate) digest_algorithm: DigestAlgorithm,
    pub(crate) signing_time: Option<OffsetDateTime>,
    pub(crate) signature: Vec<u8>,
    unsigned_attrs: Option<Attributes>,
}

impl VerifiedSigner {
    /// The one `id-aa-timeStampToken` unsigned attribute's token, DER.
    fn timestamp_token(&self) -> Result<Option<Vec<u8>>, FormatError> {
        let Some(attrs) = &self.unsigned_attrs else {
            return Ok(None);
        };
        match single_value(
            attrs,
            rfc3161::ID_AA_TIME_STAMP_TOKEN,
            "unsigned",
            Kind::Cms,
        )? {
            Some(token) => Ok(Some(token.to_der().map_err(encode_error)?)),
            None => Ok(None),
        }
    }
}

/// Reads a `ContentInfo` whose content is `SignedData` (RFC 5652 §3, §5.1), DER only.
pub(crate) fn decode_signed_data(der: &[u8], kind: Kind) -> Result<SignedData, FormatError> {
    let what = kind.what();
    if der.len() > MAX_CMS_LEN {
        return Err(kind.err(format!(
            "{what} is {} bytes, over the {MAX_CMS_LEN}-byte limit; check that this is a CMS file",
            der.len()
        )));
    }
    let ci = ContentInfo::from_der(der).map_err(|e| {
        kind.err(format!(
            "{what} is not a DER ContentInfo: {e}; pass DER (convert PEM with `openssl cms -inform PEM -outform DER`)"
        ))
    })?;
    if ci.content_type != rfc5911::ID_SIGNED_DATA {
        return Err(kind.err(format!(
            "{what} content is `{}`, not `id-signedData` (RFC 5652 §5)",
            pkix::oid_name(&ci.content_type)
        )));
    }
    ci.content.decode_as::<SignedData>().map_err(|e| {
        kind.err(format!(
            "{what} SignedData does not parse: {e}; check that this is a DER CMS SignedData (RFC 5652 §5.1)"
        ))
    })
}

/// The `eContent` octets (RFC 5652 §5.2), when the content is attached.
pub(crate) fn econtent(sd: &SignedData, kind: Kind) -> Result<Option<Vec<u8>>, FormatError> {
    match &sd.encap_content_info.econtent {
        None => Ok(None),
        Some(any) if any.tag() == Tag::OctetString => Ok(Some(any.value().to_vec())),
        Some(any) => Err(kind.err(format!(
            "{} eContent is a `{}`, not an OCTET STRING (RFC 5652 §5.2)",
            kind.what(),
            any.tag()
        ))),
    }
}

fn single_signer(sd: &SignedData, kind: Kind) -> Result<&SignerInfo, FormatError> {
    match sd.signer_infos.0.as_slice() {
        [si] => Ok(si),
        other => Err(kind.err(format!(
            "{} has {} signers; Signet verifies exactly one",
            kind.what(),
            other.len()
        ))),
    }
}

/// The value of the attribute `oid`, which must occur at most once and with one value
/// (RFC 5652 §5.3, §11).
fn single_value<'a>(
    attrs: &'a Attributes,
    oid: ObjectIdentifier,
    which: &str,
    kind: Kind,
) -> Result<Option<&'a Any>, FormatError> {
    let mut found = attrs.iter().filter(|a| a.oid == oid);
    let Some(attr) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(kind.err(format!(
            "{} has the {which} attribute `{}` twice; RFC 5652 §11 allows one",
            kind.what(),
            pkix::oid_name(&oid)
        )));
    }
    match attr.values.as_slice() {
        [value] => Ok(Some(value)),
        values => Err(kind.err(format!(
            "{} {which} attribute `{}` has {} values; it must have exactly one (RFC 5652 §11)",
            kind.what(),
            pkix::oid_name(&oid),
            values.len()
        ))),
    }
}

fn attr_decode<'a, T>(value: &'a Any, oid: ObjectIdentifier, kind: Kind) -> Result<T, FormatError>
where
    T: der::DecodeValue<'a, Error = der::Error> + der::FixedTag + 'a,
{
    value.decode_as::<T>().map_err(|e| {
        kind.err(format!(
            "{} attribute `{}` does not parse: {e}",
            kind.what(),
            pkix::oid_name(&oid)
        ))
    })
}

/// Verifies the one `SignerInfo` of `sd` (RFC 5652 §5.6) over `content`: attributes, signer
/// certificate (from `sd` or `extra_certs`), ESS binding and signature. For tokens
/// ([`Kind::Token`]) the ESS signing certificate attribute is required (RFC 3161 §2.4.2,
/// RFC 5816 §2.2.1).
pub(crate) fn verify_signer(
    sd: &SignedData,
    content: Content<'_>,
    extra_certs: &[Vec<u8>],
    kind: Kind,
) -> Result<VerifiedSigner, FormatError> {
    let what = kind.what();
    let si = single_signer(sd, kind)?;
    let SignerIdentifier::IssuerAndSerialNumber(isn) = &si.sid else {
        return Err(FormatError::Unsupported(format!(
            "{what} names its signer by subject key identifier; Signet finds signers by issuer and serial number, re-sign without `-keyid`"
        )));
    };
    // Versions (RFC 5652 §5.1, §5.3): a SignerInfo naming its signer by issuer and serial
    // number is version 1, and SignedData is version 3 when the content is not id-data.
    if si.version != CmsVersion::V1 {
        return Err(kind.err(format!(
            "{what} SignerInfo is version {} but names its signer by issuer and serial number, which RFC 5652 §5.3 makes version 1",
            si.version as u8
        )));
    }
    let min_version = if sd.encap_content_info.econtent_type == rfc5911::ID_DATA {
        CmsVersion::V1
    } else {
        CmsVersion::V3
    };
    if sd.version < min_version || sd.version == CmsVersion::V2 {
        return Err(kind.err(format!(
            "{what} SignedData version {} does not fit its content (RFC 5652 §5.1 requires version {})",
            sd.version as u8, min_version as u8
        )));
    }
    let digest_algorithm = pkix::digest_algorithm_from(&si.digest_alg)?;
    if !sd.digest_algorithms.iter().any(|a| {
        a.oid == si.digest_alg.oid && pkix::digest_algorithm_from(a).ok() == Some(digest_algorithm)
    }) {
        return Err(kind.err(format!(
            "{what} does not list its signer's digest algorithm `{digest_algorithm}` in digestAlgorithms (RFC 5652 §5.1)"
        )));
    }
    let attrs = si.signed_attrs.as_ref().filter(|a| !a.is_empty()).ok_or_else(|| {
        kind.err(format!(
            "{what} has no signed attributes; Signet requires them (RFC 5652 §5.3), re-sign without `-noattr`"
        ))
    })?;

    // contentType (RFC 5652 §11.1): present, and the eContentType.
    let ct_value =
        single_value(attrs, rfc5911::ID_CONTENT_TYPE, "signed", kind)?.ok_or_else(|| {
            kind.err(format!(
                "{what} has no content-type attribute; RFC 5652 §11.1 requires one"
            ))
        })?;
    let content_type: ObjectIdentifier = attr_decode(ct_value, rfc5911::ID_CONTENT_TYPE, kind)?;
    if content_type != sd.encap_content_info.econtent_type {
        return Err(kind.err(format!(
            "{what} content-type attribute `{}` differs from the content type `{}`; RFC 5652 §11.1 requires them equal",
            pkix::oid_name(&content_type),
            pkix::oid_name(&sd.encap_content_info.econtent_type)
        )));
    }

    // messageDigest (RFC 5652 §11.2).
    let md_value =
        single_value(attrs, rfc5911::ID_MESSAGE_DIGEST, "signed", kind)?.ok_or_else(|| {
            kind.err(format!(
                "{what} has no message-digest attribute; RFC 5652 §11.2 requires one"
            ))
        })?;
    let message_digest: OctetString = attr_decode(md_value, rfc5911::ID_MESSAGE_DIGEST, kind)?;
    match content {
        Content::Attached(bytes) => {
            if message_digest.as_bytes() != hash_bytes(digest_algorithm, bytes) {
                return Err(kind.err(format!(
                    "{what} message digest does not match its content; the content was changed after signing"
                )));
            }
        }
        Content::Detached(d) => {
            if d.algorithm() != digest_algorithm {
                return Err(kind.err(format!(
                    "{what} digests the content with {digest_algorithm} but a {} digest was given; pass the {digest_algorithm} digest of the file",
                    d.algorithm()
                )));
            }
            if message_digest.as_bytes() != d.as_bytes() {
                return Err(kind.err(format!(
                    "{what} is for content with {digest_algorithm} `{}`, not `{}`; the file changed or the signature is for another file",
                    hex::encode(message_digest.as_bytes()),
                    hex::encode(d.as_bytes())
                )));
            }
        }
    }

    // signingTime (RFC 5652 §11.3), optional.
    let signing_time = match single_value(attrs, rfc5911::ID_SIGNING_TIME, "signed", kind)? {
        Some(v) => {
            let t = x509_cert::time::Time::from_der(&v.to_der().map_err(encode_error)?)
                .map_err(|e| kind.err(format!("{what} signing time does not parse: {e}")))?;
            let secs = i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
            Some(
                OffsetDateTime::from_unix_timestamp(secs)
                    .map_err(|_| kind.err(format!("{what} signing time is out of range")))?,
            )
        }
        None => None,
    };

    // The signer certificate, by IssuerAndSerialNumber (RFC 5652 §5.3, §10.2.4).
    let certificates = carried_certificates(sd, kind)?;
    if extra_certs.len() > MAX_CERTS {
        return Err(kind.err(format!(
            "{} extra certificates passed, over the limit of {MAX_CERTS}",
            extra_certs.len()
        )));
    }
    let issuer_der = isn.issuer.to_der().map_err(encode_error)?;
    let mut signer_cert = None;
    for der in certificates.iter().chain(extra_certs) {
        let Ok(cert) = Certificate::from_der(der) else {
            continue;
        };
        let tbs = cert.tbs_certificate();
        if tbs.serial_number().as_bytes() == isn.serial_number.as_bytes()
            && tbs.issuer().to_der().ok().as_deref() == Some(issuer_der.as_slice())
        {
            signer_cert = Some((cert, der.clone()));
            break;
        }
    }
    let (cert, cert_der) = signer_cert.ok_or_else(|| {
        kind.err(format!(
            "{what} signer certificate (issuer `{}`, serial `{}`) is neither in the {what} nor among the certificates given; pass the signer certificate",
            isn.issuer,
            hex::encode(isn.serial_number.as_bytes())
        ))
    })?;

    // ESS signing certificate (RFC 5035 §3, RFC 2634 §5.4): binds the signer certificate.
    let v2 = single_value(
        attrs,
        rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2,
        "signed",
        kind,
    )?;
    let v1 = single_value(attrs, rfc5911::ID_AA_SIGNING_CERTIFICATE, "signed", kind)?;
    if let Some(v) = v2 {
        let sc: SigningCertificateV2 =
            attr_decode(v, rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2, kind)?;
        let id = sc.certs.first().ok_or_else(|| {
            kind.err(format!(
                "{what} signing certificate attribute lists no certificate"
            ))
        })?;
        let d = match &id.hash_algorithm {
            Some(h) => pkix::digest_algorithm_from(h)?,
            None => DigestAlgorithm::Sha256,
        };
        check_ess(
            &cert,
            id.cert_hash.as_bytes(),
            &hash_bytes(d, &cert_der),
            id.issuer_serial.as_ref(),
            kind,
        )?;
    }
    if let Some(v) = v1 {
        let sc: SigningCertificate = attr_decode(v, rfc5911::ID_AA_SIGNING_CERTIFICATE, kind)?;
        let id = sc.certs.first().ok_or_else(|| {
            kind.err(format!(
                "{what} signing certificate attribute lists no certificate"
            ))
        })?;
        // RFC 2634 §5.4.1 fixes SHA-1 here; it identifies the certificate, the signature
        // does not rest on it.
        let sha1 = lc_digest::digest(&lc_digest::SHA1_FOR_LEGACY_USE_ONLY, &cert_der);
        check_ess(
            &cert,
            id.cert_hash.as_bytes(),
            sha1.as_ref(),
            id.issuer_serial.as_ref(),
            kind,
        )?;
    }
    if v1.is_none() && v2.is_none() && kind == Kind::Token {
        return Err(kind.err(
            "time-stamp token has no ESS signing certificate attribute; RFC 3161 §2.4.2 and RFC 5816 require one, so the TSA certificate is not bound".to_owned(),
        ));
    }

    // The signature over the DER SET OF signed attributes (RFC 5652 §5.4).
    let attrs_der = attrs.to_der().map_err(encode_error)?;
    let spki_der = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(encode_error)?;
    let sig_alg = signature_algorithm_for(&si.signature_algorithm, digest_algorithm);
    pkix::verify_signature(&spki_der, &sig_alg, &attrs_der, si.signature.as_bytes())
        .map_err(|e| kind.err(format!("{what} does not verify: {e}")))?;

    Ok(VerifiedSigner {
        signer_certificate: cert_der,
        certificates,
        digest_algorithm,
        signing_time,
        signature: si.signature.as_bytes().to_vec(),
        unsigned_attrs: si.unsigned_attrs.clone(),
    })
}

/// The certificates a `SignedData` carries, DER (other certificate formats are skipped).
fn carried_certificates(sd: &SignedData, kind: Kind) -> Result<Vec<Vec<u8>>, FormatError> {
    let Some(set) = &sd.certificates else {
        return Ok(Vec::new());
    };
    if set.0.len() > MAX_CERTS {
        return Err(kind.err(format!(
            "{} carries {} certificates, over the limit of {MAX_CERTS}",
            kind.what(),
            set.0.len()
        )));
    }
    set.0
        .iter()
        .filter_map(|c| match c {
            CertificateChoices::Certificate(c) => Some(c.to_der().map_err(encode_error)),
            CertificateChoices::Other(_) => None,
        })
        .collect()
}

/// An ESS certificate identifier must match the signer certificate: hash, and issuer and
/// serial when present (RFC 5035 §4, RFC 2634 §5.4).
fn check_ess(
    cert: &Certificate,
    listed_hash: &[u8],
    actual_hash: &[u8],
    issuer_serial: Option<&IssuerSerial>,
    kind: Kind,
) -> Result<(), FormatError> {
    let what = kind.what();
    if listed_hash != actual_hash {
        return Err(kind.err(format!(
            "{what} signing certificate attribute names another certificate than the signer's (hash `{}`); the certificate was substituted",
            hex::encode(listed_hash)
        )));
    }
    if let Some(is) = issuer_serial {
        let tbs = cert.tbs_certificate();
        let issuer_matches = is
            .issuer
            .iter()
            .any(|n| matches!(n, GeneralName::DirectoryName(name) if name == tbs.issuer()));
        if !issuer_matches || is.serial_number.as_bytes() != tbs.serial_number().as_bytes() {
            return Err(kind.err(format!(
                "{what} signing certificate attribute names issuer and serial `{}` other than the signer certificate's; the certificate was substituted",
                hex::encode(is.serial_number.as_bytes())
            )));
        }
    }
    Ok(())
}

/// CMS allows `rsaEncryption` as the signature algorithm, the hash then being the
/// `digestAlgorithm` (RFC 3370 §3.2); this names the combined algorithm for
/// [`pkix::verify_signature`].
fn signature_algorithm_for(
    id: &AlgorithmIdentifierOwned,
    digest: DigestAlgorithm,
) -> AlgorithmIdentifierOwned {
    if id.oid != rfc5912::RSA_ENCRYPTION {
        return id.clone();
    }
    AlgorithmIdentifierOwned {
        oid: match digest {
            DigestAlgorithm::Sha256 => rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            DigestAlgorithm::Sha384 => rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
            DigestAlgorithm::Sha512 => rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
        },
        parameters: id.parameters.clone(),
    }
}

fn lc_algorithm(d: DigestAlgorithm) -> &'static lc_digest::Algorithm {
    match d {
        DigestAlgorithm::Sha256 => &lc_digest::SHA256,
        DigestAlgorithm::Sha384 => &lc_digest::SHA384,
        DigestAlgorithm::Sha512 => &lc_digest::SHA512,
    }
}

pub(crate) fn hash_bytes(d: DigestAlgorithm, data: &[u8]) -> Vec<u8> {
    lc_digest::digest(lc_algorithm(d), data).as_ref().to_vec()
}

pub(crate) fn hash(d: DigestAlgorithm, data: &[u8]) -> Result<Digest, FormatError> {
    Digest::new(d, hash_bytes(d, data)).map_err(|e| FormatError::Cms(e.message))
}
