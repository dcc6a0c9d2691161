//! X.509 v3 certificates, PKCS#10 certification requests and CRLs (RFC 5280, RFC 2986).
//!
//! Signing happens elsewhere (a key backend, possibly an HSM), so every structure is built in
//! two steps, as in RFC 5280 §4.1.1.3: build the DER "to be signed" part ([`tbs_certificate`],
//! [`csr_info`], [`tbs_crl`]), have the key sign [`crate::pkix::to_be_signed`] of it, then
//! [`assemble_certificate`] (or `assemble_csr`, `assemble_crl`) wraps the TBS, the algorithm
//! identifier and the signature.
//!
//! Reading is strict DER and bounded: a certificate is at most [`MAX_CERT_LEN`] bytes and a chain
//! at most [`MAX_CHAIN`] certificates. [`verify_issued_by`] and [`check_chain`] check names, CA
//! constraints and signatures; validity times are left to callers, which hold the clock.

use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use const_oid::AssociatedOid;
use const_oid::db::rfc5280;
use der::asn1::{AnyRef, BitStringRef, Ia5String, Ia5StringRef, ObjectIdentifier, OctetString};
use der::asn1::{PrintableStringRef, SetOfVec, Utf8StringRef};
use der::{Decode, Encode, Sequence, Tag, Tagged};
use signet_core::Algorithm;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use time::{OffsetDateTime, UtcOffset};
use x509_cert::crl::{RevokedCert, TbsCertList};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CrlDistributionPoints, CrlNumber, CrlReason,
    ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, Extensions};
use x509_cert::name::Name;
use x509_cert::request::CertReqInfo;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

use crate::FormatError;
use crate::pkix;

/// The largest certificate Signet reads, in DER bytes.
pub const MAX_CERT_LEN: usize = 64 * 1024;
/// The most certificates in a chain Signet reads (leaf first, then issuers).
pub const MAX_CHAIN: usize = 8;

/// The longest subject string accepted, in characters.
const MAX_SUBJECT_LEN: usize = 1024;
/// `ub-common-name` (RFC 5280 Appendix A.1).
const MAX_COMMON_NAME_LEN: usize = 64;
/// The longest CRL distribution point URI accepted, in bytes.
const MAX_URL_LEN: usize = 1024;
/// The most PEM input [`parse_certificates`] reads: a full chain with base64 overhead and text.
const MAX_PEM_INPUT: usize = 2 * MAX_CHAIN * MAX_CERT_LEN;
/// The longest signature accepted by the `assemble_*` functions (RSA-4096 is 512 bytes).
const MAX_SIGNATURE_LEN: usize = 16 * 1024;
/// The key identifier length: 160 bits (RFC 7093 §2, method 1).
const KEY_ID_LEN: usize = 20;

/// The kind of certificate [`tbs_certificate`] builds; fixes its extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// A self-signed root CA: basicConstraints cA (critical, no pathLen), keyUsage
    /// keyCertSign|cRLSign (critical), SKI, AKI = SKI.
    RootCa,
    /// A CA below the root that issues leaf certificates only: basicConstraints cA pathLen 0
    /// (critical), keyUsage keyCertSign|cRLSign (critical), SKI, AKI, CRL distribution point.
    IssuingCa,
    /// A code-signing leaf: basicConstraints cA FALSE (critical), keyUsage digitalSignature
    /// (critical), extKeyUsage codeSigning, SKI, AKI, CRL distribution point.
    CodeSigning,
    /// A time-stamping authority leaf: as [`Profile::CodeSigning`] but with extKeyUsage
    /// timeStamping, critical and alone (RFC 3161 §2.3).
    Timestamping,
}

impl Profile {
    fn is_ca(self) -> bool {
        matches!(self, Profile::RootCa | Profile::IssuingCa)
    }
}

/// What [`tbs_certificate`] certifies.
#[derive(Clone, Debug)]
pub struct CertParams<'a> {
    pub profile: Profile,
    /// RFC 4514 string, e.g. `CN=Release Signing,O=Example`; must contain a CN; at most 1024
    /// characters.
    pub subject: &'a str,
    /// DER SubjectPublicKeyInfo of the certified key.
    pub subject_spki: &'a [u8],
    /// The issuer certificate (DER); `None` for a self-signed certificate (issuer = subject,
    /// AKI = own SKI). [`Profile::RootCa`] must be self-signed.
    pub issuer: Option<&'a [u8]>,
    /// Algorithm of the key that will sign this TBS (the issuer's key, or the subject key when
    /// self-signed).
    pub signer: Algorithm,
    /// Positive, minimally encoded serial content octets (see [`serial_from_random`]).
    pub serial: &'a [u8],
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// CRL distribution point URI (RFC 5280 §4.2.1.13); `http`, `https` or `ldap`. Not written
    /// into root certificates, which no CRL of theirs can revoke.
    pub crl_url: Option<&'a str>,
}

/// `TBSCertificate` (RFC 5280 §4.1) as Signet writes it: always version 3 with extensions, no
/// unique identifiers.
///
/// ```text
/// TBSCertificate  ::=  SEQUENCE  {
///     version         [0]  EXPLICIT Version DEFAULT v1,
///     serialNumber         CertificateSerialNumber,
///     signature            AlgorithmIdentifier,
///     issuer               Name,
///     validity             Validity,
///     subject              Name,
///     subjectPublicKeyInfo SubjectPublicKeyInfo,
///     issuerUniqueID  [1]  IMPLICIT UniqueIdentifier OPTIONAL,
///     subjectUniqueID [2]  IMPLICIT UniqueIdentifier OPTIONAL,
///     extensions      [3]  EXPLICIT Extensions OPTIONAL }
/// ```
///
/// x509-cert's own `TbsCertificate` has private fields (only its `builder` feature constructs
/// one), so this type writes the same encoding, and the result is parsed back with x509-cert.
#[derive(Clone, Debug, Sequence)]
struct TbsCertificateV3 {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: Version,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Extensions,
}

/// The common shape of `Certificate` (RFC 5280 §4.1), `CertificateList` (§5.1) and
/// `CertificationRequest` (RFC 2986 §4.2):
///
/// ```text
/// SEQUENCE { tbs ..., signatureAlgorithm AlgorithmIdentifier, signature BIT STRING }
/// ```
///
/// The TBS is kept as the exact bytes read, since that is what the signature covers.
#[derive(Clone, Debug, Sequence)]
struct Signed<'a> {
    tbs: AnyRef<'a>,
    algorithm: AlgorithmIdentifierOwned,
    signature: BitStringRef<'a>,
}

fn x509_err(msg: impl Into<String>) -> FormatError {
    FormatError::X509(msg.into())
}

fn encode_error(what: &str, e: der::Error) -> FormatError {
    x509_err(format!(
        "cannot encode the {what}: {e}; check the inputs, and report a bug if they are valid"
    ))
}

fn to_der<T: Encode>(what: &str, value: &T) -> Result<Vec<u8>, FormatError> {
    value.to_der().map_err(|e| encode_error(what, e))
}

/// Shortens input quoted in an error message.
fn quote(s: &str) -> String {
    signet_core::algorithm::truncate(s, 140)
}

// ---------------------------------------------------------------------------------------------
// Serial numbers, names, times
// ---------------------------------------------------------------------------------------------

/// A serial number from 16 random bytes: positive, minimally encoded INTEGER content octets
/// whose first byte is in `0x40..=0x7f`, so the value is always 16 octets long and carries 126
/// bits of randomness (RFC 5280 §4.1.2.2: positive, at most 20 octets; CA/Browser Forum
/// Baseline Requirements §7.1: at least 64 bits of CSPRNG output).
pub fn serial_from_random(random: [u8; 16]) -> Vec<u8> {
    let mut serial = random.to_vec();
    if let Some(first) = serial.first_mut() {
        *first = (*first & 0x3f) | 0x40;
    }
    serial
}

/// Checks that `bytes` are the content octets of a positive INTEGER in minimal two's-complement
/// form (X.690 §8.3.2), at most 20 octets (RFC 5280 §4.1.2.2), and wraps them.
fn serial_number(bytes: &[u8], what: &str) -> Result<SerialNumber, FormatError> {
    let shown = hex::encode(bytes);
    let positive = match bytes {
        [] => false,
        [first, ..] if first & 0x80 != 0 => false,
        [0] => false,
        [0, second, ..] => second & 0x80 != 0,
        _ => true,
    };
    if !positive {
        return Err(x509_err(format!(
            "{what} `{shown}` is not a positive, minimally encoded integer; generate serials with serial_from_random"
        )));
    }
    if bytes.len() > 20 {
        return Err(x509_err(format!(
            "{what} `{}` is {} octets; RFC 5280 §4.1.2.2 allows at most 20",
            quote(&shown),
            bytes.len()
        )));
    }
    SerialNumber::new(bytes).map_err(|e| encode_error(what, e))
}

/// Parses an RFC 4514 subject and checks what RFC 5280 needs of it: a non-empty common name of
/// at most 64 characters (Appendix A.1), string values that are valid for their types.
fn parse_subject(subject: &str) -> Result<Name, FormatError> {
    let count = subject.chars().count();
    if count > MAX_SUBJECT_LEN {
        return Err(x509_err(format!(
            "subject is {count} characters; Signet accepts at most {MAX_SUBJECT_LEN}"
        )));
    }
    let name = Name::from_str(subject).map_err(|e| {
        x509_err(format!(
            "subject `{}` is not an RFC 4514 name ({e}); write it like `CN=Release Signing,O=Example`",
            quote(subject)
        ))
    })?;
    let mut common_name = None;
    for atav in name.iter() {
        let value = string_value(&atav.value).ok_or_else(|| {
            x509_err(format!(
                "subject `{}` has an attribute whose value is not a valid string (`{}`); use plain text values, escaped per RFC 4514 §2.4",
                quote(subject),
                pkix::oid_name(&atav.oid)
            ))
        })?;
        let attribute = pkix::oid_name(&atav.oid);
        if value.is_empty() {
            return Err(x509_err(format!(
                "subject `{}` has an empty `{attribute}` value; remove it or give it a value",
                quote(subject)
            )));
        }
        if value.trim() != value {
            return Err(x509_err(format!(
                "subject `{}` has a `{attribute}` value with leading or trailing spaces; remove the spaces around `,`, `+` and `=`",
                quote(subject)
            )));
        }
        if value.chars().any(char::is_control) {
            return Err(x509_err(format!(
                "subject `{}` has a `{attribute}` value with control characters; use printable text",
                quote(subject)
            )));
        }
        if atav.oid == const_oid::db::rfc4519::COMMON_NAME && common_name.is_none() {
            common_name = Some(value.chars().count());
        }
    }
    match common_name {
        None => Err(x509_err(format!(
            "subject `{}` has no common name; add one, e.g. `CN=Release Signing,O=Example`",
            quote(subject)
        ))),
        Some(n) if n > MAX_COMMON_NAME_LEN => Err(x509_err(format!(
            "subject common name is {n} characters; RFC 5280 allows at most {MAX_COMMON_NAME_LEN} (ub-common-name)"
        ))),
        Some(_) => Ok(name),
    }
}

/// The text of a directory string value of the types Signet writes and reads.
fn string_value(value: &der::asn1::Any) -> Option<String> {
    match value.tag() {
        Tag::Utf8String => Utf8StringRef::try_from(value).ok().map(|s| s.to_string()),
        Tag::PrintableString => PrintableStringRef::try_from(value)
            .ok()
            .map(|s| s.to_string()),
        Tag::Ia5String => Ia5StringRef::try_from(value).ok().map(|s| s.to_string()),
        _ => None,
    }
}

/// An X.509 `Time` for `t`, in whole seconds: UTCTime through 2049, GeneralizedTime from 2050
/// (RFC 5280 §4.1.2.5, §5.1.2.4).
fn x509_time(t: OffsetDateTime, what: &str) -> Result<Time, FormatError> {
    let t = t.to_offset(UtcOffset::UTC);
    let out_of_range = || {
        x509_err(format!(
            "{what} `{t}` is out of range; use a time between 1970 and 9999"
        ))
    };
    let year = u16::try_from(t.year()).map_err(|_| out_of_range())?;
    let dt = der::DateTime::new(
        year,
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )
    .map_err(|_| out_of_range())?;
    Ok(Time::from(dt))
}

fn from_x509_time(t: &Time) -> Result<OffsetDateTime, FormatError> {
    i64::try_from(t.to_unix_duration().as_secs())
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(|| {
            x509_err(format!(
                "time `{t}` is out of range; the certificate is malformed"
            ))
        })
}

/// Whole seconds, as the certificate will hold them.
fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

// ---------------------------------------------------------------------------------------------
// Extensions
// ---------------------------------------------------------------------------------------------

fn extension<T: Encode + AssociatedOid>(
    critical: bool,
    value: &T,
) -> Result<Extension, FormatError> {
    let name = pkix::oid_name(&T::OID);
    let der = to_der(&name, value)?;
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(der).map_err(|e| encode_error(&name, e))?,
    })
}

/// The subject key identifier of a public key: the leftmost 160 bits of the SHA-256 hash of the
/// subjectPublicKey BIT STRING value, without tag, length or unused-bits octet (RFC 7093 §2,
/// method 1). SHA-1 (RFC 5280 §4.2.1.2 method 1) is not used.
fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Result<Vec<u8>, FormatError> {
    let key = spki.subject_public_key.as_bytes().ok_or_else(|| {
        x509_err("subject public key BIT STRING has unused bits; pass a valid SubjectPublicKeyInfo")
    })?;
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key);
    Ok(hash.as_ref().iter().take(KEY_ID_LEN).copied().collect())
}

/// A CRL distribution point URI as an IA5String, checked for a scheme a relying party fetches
/// (RFC 5280 §4.2.1.13: HTTP or LDAP).
fn crl_distribution_points(url: &str) -> Result<CrlDistributionPoints, FormatError> {
    let bad = |why: &str| {
        x509_err(format!(
            "CRL URL `{}` {why}; use an absolute http://, https:// or ldap:// URL",
            quote(url)
        ))
    };
    if url.len() > MAX_URL_LEN {
        return Err(bad(&format!("is longer than {MAX_URL_LEN} bytes")));
    }
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("has spaces, control or non-ASCII characters"));
    }
    let lower = url.to_ascii_lowercase();
    let rest = ["http://", "https://", "ldap://"]
        .iter()
        .find_map(|scheme| lower.strip_prefix(scheme));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {}
        _ => return Err(bad("is not an absolute http, https or ldap URL")),
    }
    let uri = Ia5String::new(url).map_err(|_| bad("is not ASCII"))?;
    Ok(CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![
            GeneralName::UniformResourceIdentifier(uri),
        ])),
        reasons: None,
        crl_issuer: None,
    }]))
}

fn authority_key_identifier(key_id: &[u8]) -> Result<AuthorityKeyIdentifier, FormatError> {
    Ok(AuthorityKeyIdentifier {
        key_identifier: Some(
            OctetString::new(key_id).map_err(|e| encode_error("authority key identifier", e))?,
        ),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    })
}

/// The extensions of `profile` (see [`Profile`]).
fn profile_extensions(
    profile: Profile,
    ski: &[u8],
    aki: &[u8],
    crl_url: Option<&str>,
) -> Result<Extensions, FormatError> {
    let mut exts = Vec::with_capacity(6);
    let (basic, usage) = match profile {
        Profile::RootCa => (
            BasicConstraints {
                ca: true,
                path_len_constraint: None,
            },
            KeyUsages::KeyCertSign | KeyUsages::CRLSign,
        ),
        Profile::IssuingCa => (
            BasicConstraints {
                ca: true,
                path_len_constraint: Some(0),
            },
            KeyUsages::KeyCertSign | KeyUsages::CRLSign,
        ),
        Profile::CodeSigning | Profile::Timestamping => (
            BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
            KeyUsages::DigitalSignature.into(),
        ),
    };
    // RFC 5280 §4.2.1.9: critical in CA certificates; Signet marks it critical in leaves too,
    // so no verifier can mistake a leaf for a CA.
    exts.push(extension(true, &basic)?);
    // RFC 5280 §4.2.1.3: SHOULD be critical.
    exts.push(extension(true, &KeyUsage(usage))?);
    match profile {
        // RFC 5280 §4.2.1.12; code signing: non-critical, as public CAs issue it.
        Profile::CodeSigning => exts.push(extension(
            false,
            &ExtendedKeyUsage(vec![rfc5280::ID_KP_CODE_SIGNING]),
        )?),
        // RFC 3161 §2.3: exactly one instance of id-kp-timeStamping, and critical.
        Profile::Timestamping => exts.push(extension(
            true,
            &ExtendedKeyUsage(vec![rfc5280::ID_KP_TIME_STAMPING]),
        )?),
        Profile::RootCa | Profile::IssuingCa => {}
    }
    // RFC 5280 §4.2.1.2 and §4.2.1.1: both non-critical.
    let ski = OctetString::new(ski).map_err(|e| encode_error("subject key identifier", e))?;
    exts.push(extension(false, &SubjectKeyIdentifier(ski))?);
    exts.push(extension(false, &authority_key_identifier(aki)?)?);
    if let (Some(url), false) = (crl_url, profile == Profile::RootCa) {
        exts.push(extension(false, &crl_distribution_points(url)?)?);
    }
    Ok(exts)
}

// ---------------------------------------------------------------------------------------------
// Certificates: build
// ---------------------------------------------------------------------------------------------

/// The DER `TBSCertificate` (RFC 5280 §4.1), version 3, with the extensions of `p.profile` (see
/// [`Profile`]).
///
/// - Subject key identifier: RFC 7093 §2 method 1 (leftmost 160 bits of SHA-256 of the
///   subjectPublicKey value). Authority key identifier: the issuer's SKI, or the own SKI when
///   self-signed (RFC 5280 §4.2.1.1).
/// - Issuer: the issuer certificate's subject, byte for byte, so name chaining (RFC 5280
///   §7.1) holds. The issuer must be a CA with keyCertSign (when it has key usage) and a SKI,
///   and a CA with pathLenConstraint 0 cannot issue CA certificates.
/// - Validity: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5), whole
///   seconds; `not_after` must be after `not_before`.
/// - `signature` field: [`pkix::signature_algorithm`] of `p.signer`, whose key type must match
///   the issuer's (or, self-signed, the subject's) public key.
pub fn tbs_certificate(p: &CertParams<'_>) -> Result<Vec<u8>, FormatError> {
    let subject = parse_subject(p.subject)?;
    let spki = SubjectPublicKeyInfoOwned::from_der(p.subject_spki).map_err(|e| {
        x509_err(format!(
            "subject public key is not a DER SubjectPublicKeyInfo ({e}); pass the key's `PUBLIC KEY` DER"
        ))
    })?;
    let serial = serial_number(p.serial, "serial number")?;
    let not_before = whole_seconds(p.not_before);
    let not_after = whole_seconds(p.not_after);
    if not_after <= not_before {
        return Err(x509_err(format!(
            "certificate validity ends (`{not_after}`) before it starts (`{not_before}`); pass a not_after later than not_before"
        )));
    }
    let validity = Validity::new(
        x509_time(not_before, "not_before")?,
        x509_time(not_after, "not_after")?,
    );
    let ski = key_identifier(&spki)?;
    let (issuer, aki) = match p.issuer {
        None => {
            pkix::check_key_algorithm(p.subject_spki, p.signer)?;
            (subject.clone(), ski.clone())
        }
        Some(_) if p.profile == Profile::RootCa => {
            return Err(x509_err(
                "a root CA certificate is self-signed; pass no issuer, or use the IssuingCa profile",
            ));
        }
        Some(issuer_der) => {
            let issuer = decode_certificate(issuer_der, "issuer certificate")?;
            let info = cert_info(&issuer)?;
            check_can_issue(&info)?;
            if p.profile.is_ca() && info.path_len == Some(0) {
                return Err(x509_err(format!(
                    "issuer `{}` has pathLenConstraint 0 and cannot issue CA certificates; issue CA certificates from the root",
                    info.subject
                )));
            }
            let aki = info.subject_key_id.clone().ok_or_else(|| {
                x509_err(format!(
                    "issuer `{}` has no subject key identifier, so the authority key identifier cannot be set; re-issue the CA certificate with one",
                    info.subject
                ))
            })?;
            pkix::check_key_algorithm(&info.spki_der, p.signer)?;
            (issuer.tbs_certificate().subject().clone(), aki)
        }
    };
    let tbs = TbsCertificateV3 {
        version: Version::V3,
        serial_number: serial,
        signature: pkix::signature_algorithm(p.signer)?,
        issuer,
        validity,
        subject,
        subject_public_key_info: spki,
        extensions: profile_extensions(p.profile, &ski, &aki, p.crl_url)?,
    };
    let der = to_der("certificate", &tbs)?;
    // The result must read back as an RFC 5280 TBSCertificate.
    TbsCertificate::from_der(&der).map_err(|e| encode_error("certificate", e))?;
    Ok(der)
}

/// Checks that a certificate may issue others: a CA (basicConstraints cA, RFC 5280 §4.2.1.9)
/// whose key usage, when present, includes keyCertSign (§4.2.1.3).
fn check_can_issue(issuer: &CertInfo) -> Result<(), FormatError> {
    if !issuer.is_ca {
        return Err(x509_err(format!(
            "issuer `{}` is not a CA certificate (basicConstraints cA is not set); issue from a root or issuing CA certificate",
            issuer.subject
        )));
    }
    if issuer.key_usage_cert_sign == Some(false) {
        return Err(x509_err(format!(
            "issuer `{}` lacks the keyCertSign key usage; issue from a CA certificate that allows certificate signing",
            issuer.subject
        )));
    }
    Ok(())
}

fn check_signature_len(signature: &[u8]) -> Result<BitStringRef<'_>, FormatError> {
    if signature.is_empty() || signature.len() > MAX_SIGNATURE_LEN {
        return Err(x509_err(format!(
            "signature is {} bytes; pass the signature the key returned over to_be_signed",
            signature.len()
        )));
    }
    BitStringRef::from_bytes(signature).map_err(|e| encode_error("signature", e))
}

/// `SEQUENCE { tbs, signatureAlgorithm, signature }` for `signer`.
fn assemble(
    what: &str,
    tbs_der: &[u8],
    signer: Algorithm,
    signature: &[u8],
) -> Result<Vec<u8>, FormatError> {
    let tbs = AnyRef::from_der(tbs_der).map_err(|e| {
        x509_err(format!(
            "{what} is not one DER value ({e}); pass the bytes the tbs function returned"
        ))
    })?;
    let signed = Signed {
        tbs,
        algorithm: pkix::signature_algorithm(signer)?,
        signature: check_signature_len(signature)?,
    };
    to_der(what, &signed)
}

/// The DER `Certificate` (RFC 5280 §4.1): `tbs_der` from [`tbs_certificate`], the
/// signatureAlgorithm of `signer` (which must equal the TBS `signature` field, §4.1.1.2) and the
/// signature as a BIT STRING. The signature itself is not verified here (use
/// [`verify_issued_by`]).
pub fn assemble_certificate(
    tbs_der: &[u8],
    signer: Algorithm,
    signature: &[u8],
) -> Result<Vec<u8>, FormatError> {
    let tbs = TbsCertificate::from_der(tbs_der).map_err(|e| {
        x509_err(format!(
            "TBSCertificate does not parse ({e}); pass the bytes tbs_certificate returned"
        ))
    })?;
    if *tbs.signature() != pkix::signature_algorithm(signer)? {
        return Err(x509_err(format!(
            "TBSCertificate was built for a different signature algorithm than `{signer}`; build it with the same signer"
        )));
    }
    let der = assemble("certificate", tbs_der, signer, signature)?;
    decode_certificate(&der, "certificate")?;
    Ok(der)
}

// ---------------------------------------------------------------------------------------------
// Certificates: read
// ---------------------------------------------------------------------------------------------

/// What Signet reads from a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// RFC 4514 string.
    pub subject: String,
    /// RFC 4514 string.
    pub issuer: String,
    /// Lowercase hex of the serialNumber INTEGER content octets.
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// DER SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// basicConstraints pathLenConstraint.
    pub path_len: Option<u8>,
    /// keyUsage digitalSignature; `None` when the certificate has no key usage extension.
    pub key_usage_digital_signature: Option<bool>,
    /// keyUsage keyCertSign; `None` when the certificate has no key usage extension.
    pub key_usage_cert_sign: Option<bool>,
    /// extKeyUsage contains id-kp-codeSigning.
    pub eku_code_signing: bool,
    /// extKeyUsage contains id-kp-timeStamping.
    pub eku_time_stamping: bool,
    /// extKeyUsage contains id-kp-timeStamping and the extension is critical (RFC 3161 §2.3).
    pub eku_time_stamping_critical: bool,
    /// The certificate has an extKeyUsage extension.
    pub eku_present: bool,
    pub subject_key_id: Option<Vec<u8>>,
    /// authorityKeyIdentifier keyIdentifier.
    pub authority_key_id: Option<Vec<u8>>,
    /// Subject and issuer are the same name (RFC 5280 §6.1: "self-issued").
    pub self_issued: bool,
}

/// Extensions Signet understands; a certificate with any other extension marked critical is
/// refused by [`verify_issued_by`] and [`check_chain`] (RFC 5280 §4.2: "A certificate-using
/// system MUST reject the certificate if it encounters a critical extension it does not
/// recognize").
const KNOWN_EXTENSIONS: [ObjectIdentifier; 7] = [
    rfc5280::ID_CE_BASIC_CONSTRAINTS,
    rfc5280::ID_CE_KEY_USAGE,
    rfc5280::ID_CE_EXT_KEY_USAGE,
    rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
    rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
    rfc5280::ID_CE_SUBJECT_ALT_NAME,
    rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS,
];

fn decode_certificate(der: &[u8], what: &str) -> Result<Certificate, FormatError> {
    if der.len() > MAX_CERT_LEN {
        return Err(x509_err(format!(
            "{what} is {} bytes; Signet reads certificates up to {MAX_CERT_LEN} bytes",
            der.len()
        )));
    }
    Certificate::from_der(der).map_err(|e| {
        x509_err(format!(
            "{what} is not a DER X.509 certificate ({e}); pass a DER certificate or a PEM `CERTIFICATE` block"
        ))
    })
}

fn extension_error(oid: &ObjectIdentifier, e: impl std::fmt::Display) -> FormatError {
    x509_err(format!(
        "certificate extension `{}` is malformed ({e}); the certificate cannot be used",
        pkix::oid_name(oid)
    ))
}

fn cert_info(cert: &Certificate) -> Result<CertInfo, FormatError> {
    let tbs = cert.tbs_certificate();
    let exts = tbs.extensions().map(|e| e.as_slice()).unwrap_or_default();
    // RFC 5280 §4.2: "A certificate MUST NOT include more than one instance of a particular
    // extension."
    for (i, e) in exts.iter().enumerate() {
        if exts.iter().skip(i + 1).any(|o| o.extn_id == e.extn_id) {
            return Err(x509_err(format!(
                "certificate has two `{}` extensions; RFC 5280 §4.2 allows one",
                pkix::oid_name(&e.extn_id)
            )));
        }
    }
    let find = |oid: ObjectIdentifier| exts.iter().find(|e| e.extn_id == oid);

    let basic = match find(rfc5280::ID_CE_BASIC_CONSTRAINTS) {
        Some(e) => Some(
            BasicConstraints::from_der(e.extn_value.as_bytes())
                .map_err(|err| extension_error(&e.extn_id, err))?,
        ),
        None => None,
    };
    let key_usage = match find(rfc5280::ID_CE_KEY_USAGE) {
        Some(e) => Some(
            KeyUsage::from_der(e.extn_value.as_bytes())
                .map_err(|err| extension_error(&e.extn_id, err))?,
        ),
        None => None,
    };
    let eku = match find(rfc5280::ID_CE_EXT_KEY_USAGE) {
        Some(e) => Some((
            e.critical,
            ExtendedKeyUsage::from_der(e.extn_value.as_bytes())
                .map_err(|err| extension_error(&e.extn_id, err))?,
        )),
        None => None,
    };
    let ski = match find(rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER) {
        Some(e) => Some(
            SubjectKeyIdentifier::from_der(e.extn_value.as_bytes())
                .map_err(|err| extension_error(&e.extn_id, err))?
                .0
                .as_bytes()
                .to_vec(),
        ),
        None => None,
    };
    let aki = match find(rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER) {
        Some(e) => AuthorityKeyIdentifier::from_der(e.extn_value.as_bytes())
            .map_err(|err| extension_error(&e.extn_id, err))?
            .key_identifier
            .map(|k| k.as_bytes().to_vec()),
        None => None,
    };
    let has_eku = |oid: ObjectIdentifier| eku.as_ref().is_some_and(|(_, u)| u.0.contains(&oid));
    let time_stamping = has_eku(rfc5280::ID_KP_TIME_STAMPING);
    let validity = tbs.validity();
    Ok(CertInfo {
        subject: tbs.subject().to_string(),
        issuer: tbs.issuer().to_string(),
        serial: hex::encode(tbs.serial_number().as_bytes()),
        not_before: from_x509_time(&validity.not_before)?,
        not_after: from_x509_time(&validity.not_after)?,
        spki_der: to_der("public key", tbs.subject_public_key_info())?,
        is_ca: basic.as_ref().is_some_and(|b| b.ca),
        path_len: basic.as_ref().and_then(|b| b.path_len_constraint),
        key_usage_digital_signature: key_usage.map(|k| k.digital_signature()),
        key_usage_cert_sign: key_usage.map(|k| k.key_cert_sign()),
        eku_code_signing: has_eku(rfc5280::ID_KP_CODE_SIGNING),
        eku_time_stamping: time_stamping,
        eku_time_stamping_critical: time_stamping && eku.as_ref().is_some_and(|(c, _)| *c),
        eku_present: eku.is_some(),
        subject_key_id: ski,
        authority_key_id: aki,
        self_issued: tbs.subject() == tbs.issuer(),
    })
}

/// Reads a DER certificate (strict DER, at most [`MAX_CERT_LEN`] bytes).
pub fn parse_certificate(der: &[u8]) -> Result<CertInfo, FormatError> {
    cert_info(&decode_certificate(der, "certificate")?)
}

/// Refuses a certificate with a critical extension Signet does not process (RFC 5280 §4.2).
fn check_critical_extensions(cert: &Certificate, subject: &str) -> Result<(), FormatError> {
    let exts = cert
        .tbs_certificate()
        .extensions()
        .map(|e| e.as_slice())
        .unwrap_or_default();
    match exts
        .iter()
        .find(|e| e.critical && !KNOWN_EXTENSIONS.contains(&e.extn_id))
    {
        Some(e) => Err(x509_err(format!(
            "certificate `{subject}` has a critical `{}` extension that Signet does not process; use a certificate without it",
            pkix::oid_name(&e.extn_id)
        ))),
        None => Ok(()),
    }
}

/// Verifies the signature of `cert` (its exact TBS bytes) with the public key `spki_der`, and
/// that the outer signatureAlgorithm equals the TBS `signature` field (RFC 5280 §4.1.1.2).
fn verify_certificate_signature(
    cert_der: &[u8],
    cert: &Certificate,
    spki_der: &[u8],
) -> Result<(), FormatError> {
    let signed = Signed::from_der(cert_der).map_err(|e| {
        x509_err(format!(
            "certificate does not parse ({e}); pass a DER certificate"
        ))
    })?;
    if signed.algorithm != *cert.tbs_certificate().signature() {
        return Err(x509_err(
            "certificate signatureAlgorithm differs from the signature field of its TBSCertificate (RFC 5280 §4.1.1.2); the certificate was tampered with",
        ));
    }
    let signature = signed.signature.as_bytes().ok_or_else(|| {
        x509_err("certificate signature BIT STRING has unused bits; the certificate is malformed")
    })?;
    let tbs = to_der("certificate", &signed.tbs)?;
    pkix::verify_signature(spki_der, &signed.algorithm, &tbs, signature)
}

/// Prefixes an error with the certificate it is about, keeping its variant.
fn about(cert: &str, e: FormatError) -> FormatError {
    match e {
        FormatError::Unsupported(m) => {
            FormatError::Unsupported(format!("certificate `{cert}`: {m}"))
        }
        FormatError::X509(m) => x509_err(format!("certificate `{cert}`: {m}")),
        other => other,
    }
}

/// Checks that `issuer_der` issued `cert_der` (RFC 5280 §6.1.3, one step):
///
/// - `cert`'s issuer name equals the issuer's subject (binary comparison of the DER names);
/// - the issuer is a CA (basicConstraints cA) and, when it has key usage, keyCertSign is set;
/// - when both are present, `cert`'s authority key identifier equals the issuer's subject key
///   identifier;
/// - neither has a critical extension Signet does not process;
/// - `cert`'s signature verifies with the issuer's public key over the TBSCertificate DER
///   ([`pkix::verify_signature`]).
///
/// Validity times are not checked: callers check them with their clock.
pub fn verify_issued_by(cert_der: &[u8], issuer_der: &[u8]) -> Result<(), FormatError> {
    let cert = decode_certificate(cert_der, "certificate")?;
    let issuer = decode_certificate(issuer_der, "issuer certificate")?;
    let info = cert_info(&cert)?;
    let issuer_info = cert_info(&issuer)?;
    check_critical_extensions(&cert, &info.subject)?;
    check_critical_extensions(&issuer, &issuer_info.subject)?;
    if cert.tbs_certificate().issuer() != issuer.tbs_certificate().subject() {
        return Err(x509_err(format!(
            "certificate `{}` was issued by `{}`, not by `{}`; order the chain leaf first, each certificate followed by its issuer",
            info.subject, info.issuer, issuer_info.subject
        )));
    }
    check_can_issue(&issuer_info)?;
    if let (Some(aki), Some(ski)) = (&info.authority_key_id, &issuer_info.subject_key_id)
        && aki != ski
    {
        return Err(x509_err(format!(
            "certificate `{}` names authority key `{}` but issuer `{}` has key `{}`; this is a different certificate of the same name, pass the one that issued it",
            info.subject,
            hex::encode(aki),
            issuer_info.subject,
            hex::encode(ski)
        )));
    }
    verify_certificate_signature(cert_der, &cert, &issuer_info.spki_der)
        .map_err(|e| about(&info.subject, e))
}

/// The import check for a key's certificate chain, `chain` leaf first (at most [`MAX_CHAIN`]):
///
/// - the leaf certifies `key_spki` (DER bytes equal);
/// - each certificate is issued by the next ([`verify_issued_by`]), and no CA's
///   pathLenConstraint is exceeded (RFC 5280 §6.1.4 (l), (m));
/// - if the last certificate is self-issued, its self-signature verifies. If it is not, the
///   chain ends below a trust anchor the caller must supply.
///
/// Validity times, key usage and extended key usage of the leaf are left to the caller (all in
/// the returned [`CertInfo`] of the leaf).
pub fn check_chain(key_spki: &[u8], chain: &[Vec<u8>]) -> Result<CertInfo, FormatError> {
    if chain.is_empty() {
        return Err(x509_err(
            "certificate chain is empty; pass the key's certificate first, then its issuers",
        ));
    }
    if chain.len() > MAX_CHAIN {
        return Err(x509_err(format!(
            "certificate chain has {} certificates; Signet accepts at most {MAX_CHAIN} (leaf first, then issuers)",
            chain.len()
        )));
    }
    let mut infos = Vec::with_capacity(chain.len());
    for (i, der) in chain.iter().enumerate() {
        let what = format!("certificate {} of {}", i + 1, chain.len());
        let cert = decode_certificate(der, &what)?;
        infos.push(cert_info(&cert)?);
    }
    let Some(leaf) = infos.first() else {
        return Err(x509_err(
            "certificate chain is empty; pass the key's certificate first",
        ));
    };
    if leaf.spki_der != key_spki {
        return Err(x509_err(format!(
            "the first certificate (`{}`) certifies a different public key than this key; put the key's own certificate first",
            leaf.subject
        )));
    }
    for pair in chain.windows(2) {
        if let [cert, issuer] = pair {
            verify_issued_by(cert, issuer)?;
        }
    }
    // RFC 5280 §6.1.4 (l), (m): a CA's pathLenConstraint bounds the number of non-self-issued
    // intermediate CA certificates below it.
    for (k, ca) in infos.iter().enumerate().skip(1) {
        let Some(limit) = ca.path_len else { continue };
        let below = infos
            .iter()
            .take(k)
            .skip(1)
            .filter(|c| !c.self_issued)
            .count();
        if below > usize::from(limit) {
            return Err(x509_err(format!(
                "CA `{}` allows {limit} intermediate CA certificates below it, but the chain has {below}; issue from a CA whose path length allows it",
                ca.subject
            )));
        }
    }
    if let (Some(last_der), Some(last)) = (chain.last(), infos.last())
        && last.self_issued
    {
        let cert = decode_certificate(last_der, "last certificate")?;
        check_critical_extensions(&cert, &last.subject)?;
        verify_certificate_signature(last_der, &cert, &last.spki_der)
            .map_err(|e| about(&last.subject, e))?;
    }
    Ok(leaf.clone())
}

// ---------------------------------------------------------------------------------------------
// PEM
// ---------------------------------------------------------------------------------------------

const PEM_BEGIN_CERT: &[u8] = b"-----BEGIN CERTIFICATE-----";
const PEM_END_CERT: &[u8] = b"-----END CERTIFICATE-----";

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads certificates: one or more PEM `CERTIFICATE` blocks (RFC 7468 §5; text outside the
/// blocks is ignored, as `openssl x509 -text` and bundle files have it), or one DER certificate.
/// Each certificate must parse; at most [`MAX_CHAIN`] are read.
pub fn parse_certificates(input: &[u8]) -> Result<Vec<Vec<u8>>, FormatError> {
    if input.len() > MAX_PEM_INPUT {
        return Err(x509_err(format!(
            "certificate input is {} bytes; Signet reads at most {MAX_PEM_INPUT}",
            input.len()
        )));
    }
    // A DER certificate starts with a SEQUENCE tag; PEM text never does.
    if input.first() == Some(&0x30) {
        decode_certificate(input, "certificate")?;
        return Ok(vec![input.to_vec()]);
    }
    let mut certs = Vec::new();
    let mut rest = input;
    while let Some(start) = find(rest, PEM_BEGIN_CERT) {
        let body_start = start + PEM_BEGIN_CERT.len();
        let body = rest.get(body_start..).unwrap_or_default();
        let end = find(body, PEM_END_CERT).ok_or_else(|| {
            x509_err(format!(
                "PEM `CERTIFICATE` block {} has no `-----END CERTIFICATE-----` line; pass complete PEM blocks",
                certs.len() + 1
            ))
        })?;
        if certs.len() == MAX_CHAIN {
            return Err(x509_err(format!(
                "input has more than {MAX_CHAIN} certificates; pass the chain only (leaf first, then issuers)"
            )));
        }
        let what = format!("PEM certificate {}", certs.len() + 1);
        let der = pem_body(body.get(..end).unwrap_or_default(), &what)?;
        decode_certificate(&der, &what)?;
        certs.push(der);
        rest = body.get(end + PEM_END_CERT.len()..).unwrap_or_default();
    }
    if certs.is_empty() {
        return Err(x509_err(
            "no certificate found; pass PEM `-----BEGIN CERTIFICATE-----` blocks or one DER certificate",
        ));
    }
    Ok(certs)
}

/// Decodes the base64 between the encapsulation boundaries, ignoring whitespace (RFC 7468 §3
/// allows whitespace and line breaks anywhere in the lax reading).
fn pem_body(body: &[u8], what: &str) -> Result<Vec<u8>, FormatError> {
    let b64: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    BASE64.decode(&b64).map_err(|e| {
        x509_err(format!(
            "{what} is not valid base64 ({e}); pass the PEM as written by openssl"
        ))
    })
}

/// PEM with 64-character lines and LF line endings (RFC 7468 §2).
fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = BASE64.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let mut line = String::with_capacity(65);
    for c in b64.chars() {
        line.push(c);
        if line.len() == 64 {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
    }
    if !line.is_empty() {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// A DER certificate as a PEM `CERTIFICATE` block (RFC 7468 §5).
pub fn certificate_pem(der: &[u8]) -> String {
    pem_encode("CERTIFICATE", der)
}

// ---------------------------------------------------------------------------------------------
// PKCS#10
// ---------------------------------------------------------------------------------------------

/// The DER `CertificationRequestInfo` (RFC 2986 §4.1): version 0, `subject` (RFC 4514, with a
/// CN), the key's SubjectPublicKeyInfo and an empty `attributes [0]` set.
///
/// ```text
/// CertificationRequestInfo ::= SEQUENCE {
///      version       INTEGER { v1(0) } (v1,...),
///      subject       Name,
///      subjectPKInfo SubjectPublicKeyInfo{{ PKInfoAlgorithms }},
///      attributes    [0] Attributes{{ CRIAttributes }} }
/// ```
pub fn csr_info(subject: &str, spki_der: &[u8]) -> Result<Vec<u8>, FormatError> {
    let subject = parse_subject(subject)?;
    let public_key = SubjectPublicKeyInfoOwned::from_der(spki_der).map_err(|e| {
        x509_err(format!(
            "public key is not a DER SubjectPublicKeyInfo ({e}); pass the key's `PUBLIC KEY` DER"
        ))
    })?;
    let info = CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject,
        public_key,
        attributes: SetOfVec::new(),
    };
    to_der("certification request", &info)
}

/// The DER `CertificationRequest` (RFC 2986 §4.2) from [`csr_info`] output and the signature of
/// the subject key (`signer`) over it.
pub fn assemble_csr(
    info_der: &[u8],
    signer: Algorithm,
    signature: &[u8],
) -> Result<Vec<u8>, FormatError> {
    let info = CertReqInfo::from_der(info_der).map_err(|e| {
        x509_err(format!(
            "CertificationRequestInfo does not parse ({e}); pass the bytes csr_info returned"
        ))
    })?;
    let spki = to_der("public key", &info.public_key)?;
    pkix::check_key_algorithm(&spki, signer)?;
    let der = assemble("certification request", info_der, signer, signature)?;
    x509_cert::request::CertReq::from_der(&der)
        .map_err(|e| encode_error("certification request", e))?;
    Ok(der)
}

/// A DER CSR as a PEM `CERTIFICATE REQUEST` block (RFC 7468 §7).
pub fn csr_pem(der: &[u8]) -> String {
    pem_encode("CERTIFICATE REQUEST", der)
}

// ---------------------------------------------------------------------------------------------
// CRLs
// ---------------------------------------------------------------------------------------------

/// One entry of a CRL.
#[derive(Clone, Debug)]
pub struct Revoked<'a> {
    /// The revoked certificate's serial, hex of the INTEGER content octets (as in
    /// [`CertInfo::serial`]).
    pub serial_hex: &'a str,
    pub revoked_at: OffsetDateTime,
    /// CRLReason (RFC 5280 §5.3.1); 0 (unspecified) writes no reasonCode extension.
    pub reason_code: u8,
}

fn crl_reason(code: u8) -> Result<Option<CrlReason>, FormatError> {
    Ok(Some(match code {
        0 => return Ok(None),
        1 => CrlReason::KeyCompromise,
        2 => CrlReason::CaCompromise,
        3 => CrlReason::AffiliationChanged,
        4 => CrlReason::Superseded,
        5 => CrlReason::CessationOfOperation,
        6 => CrlReason::CertificateHold,
        8 => CrlReason::RemoveFromCRL,
        9 => CrlReason::PrivilegeWithdrawn,
        10 => CrlReason::AaCompromise,
        _ => {
            return Err(x509_err(format!(
                "CRL reason code `{code}` does not exist; use 0 to 6 or 8 to 10 (RFC 5280 §5.3.1)"
            )));
        }
    }))
}

/// The DER `TBSCertList` of a version 2 CRL (RFC 5280 §5.1) issued by the CA certificate
/// `ca_cert_der`:
///
/// - issuer = the CA's subject; `signature` = [`pkix::signature_algorithm`] of `signer`;
/// - thisUpdate and nextUpdate (§5.1.2.4, §5.1.2.5: UTCTime through 2049), nextUpdate later;
/// - revokedCertificates, omitted when empty (§5.1.2.6), each with a reasonCode entry extension
///   (§5.3.1) unless the reason is unspecified;
/// - CRL extensions: authorityKeyIdentifier = the CA's SKI (§5.2.1) and cRLNumber (§5.2.3).
///
/// The CA must be a CA certificate with cRLSign when it has key usage, and have a SKI.
pub fn tbs_crl(
    ca_cert_der: &[u8],
    signer: Algorithm,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    crl_number: u64,
    revoked: &[Revoked<'_>],
) -> Result<Vec<u8>, FormatError> {
    let ca = decode_certificate(ca_cert_der, "CA certificate")?;
    let info = cert_info(&ca)?;
    if !info.is_ca {
        return Err(x509_err(format!(
            "`{}` is not a CA certificate; issue CRLs with the CA that issued the certificates",
            info.subject
        )));
    }
    let crl_sign = ca
        .tbs_certificate()
        .get_extension::<KeyUsage>()
        .map_err(|e| extension_error(&rfc5280::ID_CE_KEY_USAGE, e))?
        .map(|(_, ku)| ku.crl_sign());
    if crl_sign == Some(false) {
        return Err(x509_err(format!(
            "CA `{}` lacks the cRLSign key usage; issue CRLs with a CA certificate that allows CRL signing",
            info.subject
        )));
    }
    let ski = info.subject_key_id.as_deref().ok_or_else(|| {
        x509_err(format!(
            "CA `{}` has no subject key identifier, so the CRL's authority key identifier cannot be set; re-issue the CA certificate with one",
            info.subject
        ))
    })?;
    pkix::check_key_algorithm(&info.spki_der, signer)?;
    let this_update = whole_seconds(this_update);
    let next_update = whole_seconds(next_update);
    if next_update <= this_update {
        return Err(x509_err(format!(
            "CRL nextUpdate (`{next_update}`) is not after thisUpdate (`{this_update}`); pass a later next_update"
        )));
    }
    let mut entries: Vec<RevokedCert> = Vec::with_capacity(revoked.len());
    for r in revoked {
        let bytes = hex::decode(r.serial_hex).map_err(|_| {
            x509_err(format!(
                "revoked serial `{}` is not hexadecimal; pass the serial as CertInfo::serial shows it",
                quote(r.serial_hex)
            ))
        })?;
        let serial_number = serial_number(&bytes, "revoked serial")?;
        if entries.iter().any(|e| e.serial_number == serial_number) {
            return Err(x509_err(format!(
                "serial `{}` is listed twice; list each revoked certificate once",
                quote(r.serial_hex)
            )));
        }
        let crl_entry_extensions = match crl_reason(r.reason_code)? {
            Some(reason) => Some(vec![extension(false, &reason)?]),
            None => None,
        };
        entries.push(RevokedCert {
            serial_number,
            revocation_date: x509_time(whole_seconds(r.revoked_at), "revocation time")?,
            crl_entry_extensions,
        });
    }
    let number = CrlNumber::try_from(crl_number).map_err(|e| encode_error("CRL number", e))?;
    let tbs = TbsCertList {
        version: Version::V2,
        signature: pkix::signature_algorithm(signer)?,
        issuer: ca.tbs_certificate().subject().clone(),
        this_update: x509_time(this_update, "this_update")?,
        next_update: Some(x509_time(next_update, "next_update")?),
        revoked_certificates: if entries.is_empty() {
            None
        } else {
            Some(entries)
        },
        crl_extensions: Some(vec![
            extension(false, &authority_key_identifier(ski)?)?,
            // §5.2.3: non-critical.
            extension(false, &number)?,
        ]),
    };
    to_der("CRL", &tbs)
}

/// The DER `CertificateList` (RFC 5280 §5.1) from [`tbs_crl`] output and the CA key's signature.
pub fn assemble_crl(
    tbs_der: &[u8],
    signer: Algorithm,
    signature: &[u8],
) -> Result<Vec<u8>, FormatError> {
    let tbs: TbsCertList = TbsCertList::from_der(tbs_der).map_err(|e| {
        x509_err(format!(
            "TBSCertList does not parse ({e}); pass the bytes tbs_crl returned"
        ))
    })?;
    if tbs.signature != pkix::signature_algorithm(signer)? {
        return Err(x509_err(format!(
            "TBSCertList was built for a different signature algorithm than `{signer}`; build it with the same signer"
        )));
    }
    let der = assemble("CRL", tbs_der, signer, signature)?;
    x509_cert::crl::CertificateList::<x509_cert::certificate::Rfc5280>::from_der(&der)
        .map_err(|e| encode_error("CRL", e))?;
    Ok(der)
}

/// A DER CRL as a PEM `X509 CRL` block (RFC 7468 §6).
pub fn crl_pem(der: &[u8]) -> String {
    pem_encode("X509 CRL", der)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn serials_are_positive_and_sixteen_octets() {
        for first in [0x00, 0x3f, 0x40, 0x80, 0xff] {
            let mut r = [0xa5; 16];
            r[0] = first;
            let s = serial_from_random(r);
            assert_eq!(s.len(), 16);
            assert!((0x40..=0x7f).contains(&s[0]));
            assert!(serial_number(&s, "serial").is_ok());
        }
        assert!(serial_number(&[], "serial").is_err());
        assert!(serial_number(&[0], "serial").is_err());
        assert!(serial_number(&[0x80], "serial").is_err());
        assert!(serial_number(&[0, 0x7f], "serial").is_err());
        assert!(serial_number(&[0, 0x80], "serial").is_ok());
        assert!(serial_number(&[1; 21], "serial").is_err());
    }

    #[test]
    fn subjects_need_a_common_name() {
        assert!(parse_subject("CN=Release Signing,O=Example").is_ok());
        for bad in [
            "",
            "O=Example",
            "CN=",
            "garbage",
            "CN=a,=b",
            "C=ÄÖ,CN=x",
            "CN=a, O=b",
            "CN=a ,O=b",
            "CN=\\00x",
            "CN=a\u{7}",
        ] {
            assert!(parse_subject(bad).is_err(), "{bad}");
        }
        let long = format!("CN={}", "a".repeat(65));
        assert!(parse_subject(&long).is_err());
        let huge = format!("CN=a,O={}", "b".repeat(2000));
        assert!(parse_subject(&huge).is_err());
    }

    #[test]
    fn times_switch_to_generalized_in_2050() {
        let t = |y| {
            time::Date::from_calendar_date(y, time::Month::January, 1)
                .unwrap()
                .midnight()
                .assume_utc()
        };
        assert!(matches!(x509_time(t(2049), "t").unwrap(), Time::UtcTime(_)));
        assert!(matches!(
            x509_time(t(2050), "t").unwrap(),
            Time::GeneralTime(_)
        ));
        assert!(x509_time(t(1969), "t").is_err());
    }

    #[test]
    fn pem_lines_are_64_characters() {
        let pem = pem_encode("X", &[7u8; 100]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN X-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last().copied(), Some("-----END X-----"));
        assert_eq!(
            pem_body(pem.split("-----").nth(2).unwrap().as_bytes(), "x").unwrap(),
            vec![7u8; 100]
        );
    }

    #[test]
    fn crl_urls_are_checked() {
        assert!(crl_distribution_points("http://ca.example/issuing.crl").is_ok());
        for bad in [
            "ftp://x/y",
            "http://",
            "http:///x",
            "http://a b",
            "http://é",
            "crl",
        ] {
            assert!(crl_distribution_points(bad).is_err(), "{bad}");
        }
    }
}
