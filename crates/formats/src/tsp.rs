//! RFC 3161 time-stamp protocol: queries, TSTInfo, responses and token verification.
//!
//! - [`parse_query`] reads a `TimeStampReq` (RFC 3161 §2.4.1) strictly: DER only, SHA-2 imprints
//!   only, no extensions; a refusal carries the `PKIFailureInfo` bit to answer with.
//! - [`tst_info`] composes the `TSTInfo` (§2.4.2) that `crate::cms::timestamp_token` wraps and
//!   signs; [`response_granted`] and [`response_rejected`] build the `TimeStampResp` (§2.4.2).
//! - [`parse_response`] and [`verify_token`] are the client side: they check everything a token
//!   says about itself (signature, ESS signing certificate, EKU, imprint, nonce) and return the
//!   certificates, so that the caller decides whether the TSA chains to a root it trusts.

use std::fmt;

use const_oid::db::{rfc3161, rfc5912};
use der::asn1::{BitString, Int, ObjectIdentifier, OctetString};
use der::{
    Any, Decode, DecodeValue, Encode, EncodeValue, FixedTag, Header, Length, Reader, Sequence, Tag,
    Tagged, Writer,
};
use signet_core::{Digest, DigestAlgorithm};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::name::GeneralName;

use crate::FormatError;
use crate::cms;

/// The largest `TimeStampReq` accepted. A query carries a hash, never the data: real ones are
/// under 200 bytes.
pub const MAX_QUERY_LEN: usize = 16 * 1024;

/// The longest nonce accepted, in INTEGER content octets (RFC 3161 §2.4.1 suggests 64 bits).
const MAX_NONCE_LEN: usize = 64;

/// The longest TSA serial number, in INTEGER content octets: RFC 3161 §2.4.2 has clients
/// accommodate serials up to 160 bits, which take 21 octets with the sign octet.
const MAX_SERIAL_LEN: usize = 21;

/// The largest `TimeStampResp` or token read, certificates included.
const MAX_TOKEN_LEN: usize = 256 * 1024;

// ---------------------------------------------------------------------------------------------
// ASN.1 (RFC 3161 §2.4.1, §2.4.2; the module's default tagging is IMPLICIT, and a CHOICE such as
// GeneralName is always tagged explicitly)
// ---------------------------------------------------------------------------------------------

/// ```text
/// MessageImprint ::= SEQUENCE  {
///      hashAlgorithm                AlgorithmIdentifier,
///      hashedMessage                OCTET STRING  }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct MessageImprint {
    hash_algorithm: AlgorithmIdentifierOwned,
    hashed_message: OctetString,
}

/// RFC 3161 §2.4.1:
///
/// ```text
/// TimeStampReq ::= SEQUENCE  {
///    version                      INTEGER  { v1(1) },
///    messageImprint               MessageImprint,
///    reqPolicy             TSAPolicyId              OPTIONAL,
///    nonce                 INTEGER                  OPTIONAL,
///    certReq               BOOLEAN                  DEFAULT FALSE,
///    extensions            [0] IMPLICIT Extensions  OPTIONAL  }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct TimeStampReq {
    version: Int,
    message_imprint: MessageImprint,
    #[asn1(optional = "true")]
    req_policy: Option<ObjectIdentifier>,
    #[asn1(optional = "true")]
    nonce: Option<Int>,
    #[asn1(default = "Default::default")]
    cert_req: bool,
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    extensions: Option<Extensions>,
}

/// RFC 3161 §2.4.2:
///
/// ```text
/// Accuracy ::= SEQUENCE {
///       seconds        INTEGER              OPTIONAL,
///       millis     [0] INTEGER  (1..999)    OPTIONAL,
///       micros     [1] INTEGER  (1..999)    OPTIONAL  }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct AccuracyDer {
    #[asn1(optional = "true")]
    seconds: Option<u32>,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    millis: Option<u16>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    micros: Option<u16>,
}

/// RFC 3161 §2.4.2:
///
/// ```text
/// TSTInfo ::= SEQUENCE  {
///    version                      INTEGER  { v1(1) },
///    policy                       TSAPolicyId,
///    messageImprint               MessageImprint,
///    serialNumber                 INTEGER,
///    genTime                      GeneralizedTime,
///    accuracy                     Accuracy                 OPTIONAL,
///    ordering                     BOOLEAN             DEFAULT FALSE,
///    nonce                        INTEGER                  OPTIONAL,
///    tsa                          [0] GeneralName          OPTIONAL,
///    extensions                   [1] IMPLICIT Extensions   OPTIONAL  }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct TstInfo {
    version: Int,
    policy: ObjectIdentifier,
    message_imprint: MessageImprint,
    serial_number: Int,
    gen_time: GenTime,
    #[asn1(optional = "true")]
    accuracy: Option<AccuracyDer>,
    #[asn1(default = "Default::default")]
    ordering: bool,
    #[asn1(optional = "true")]
    nonce: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    tsa: Option<GeneralName>,
    #[asn1(
        context_specific = "1",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    extensions: Option<Extensions>,
}

/// RFC 3161 §2.4.2 (from RFC 2510):
///
/// ```text
/// PKIStatusInfo ::= SEQUENCE {
///    status        PKIStatus,
///    statusString  PKIFreeText     OPTIONAL,
///    failInfo      PKIFailureInfo  OPTIONAL  }
/// PKIFreeText ::= SEQUENCE SIZE (1..MAX) OF UTF8String
/// PKIFailureInfo ::= BIT STRING
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct PkiStatusInfo {
    status: Int,
    #[asn1(optional = "true")]
    status_string: Option<Vec<String>>,
    #[asn1(optional = "true")]
    fail_info: Option<BitString>,
}

/// RFC 3161 §2.4.2:
///
/// ```text
/// TimeStampResp ::= SEQUENCE  {
///    status                  PKIStatusInfo,
///    timeStampToken          TimeStampToken     OPTIONAL  }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct TimeStampResp {
    status: PkiStatusInfo,
    #[asn1(optional = "true")]
    time_stamp_token: Option<Any>,
}

/// A `GeneralizedTime` kept as its text, so that fractional seconds, which RFC 3161 §2.4.2
/// allows in `genTime` and `der` does not read, survive decoding.
#[derive(Clone, Debug, Eq, PartialEq)]
struct GenTime(Vec<u8>);

impl FixedTag for GenTime {
    const TAG: Tag = Tag::GeneralizedTime;
}

impl<'a> DecodeValue<'a> for GenTime {
    type Error = der::Error;

    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        Ok(GenTime(reader.read_vec(header.length())?))
    }
}

impl EncodeValue for GenTime {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.0.len())
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(&self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/// A time-stamp query as Signet understands it (RFC 3161 §2.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeStampQuery {
    pub digest_algorithm: DigestAlgorithm,
    /// The `hashedMessage`: the digest of the data to time-stamp.
    pub imprint: Vec<u8>,
    /// `reqPolicy` as a dotted OID.
    pub policy: Option<String>,
    /// The nonce as canonical DER INTEGER content octets.
    pub nonce: Option<Vec<u8>>,
    /// `certReq`: whether the TSA certificate goes into the token.
    pub cert_req: bool,
}

/// The `PKIFailureInfo` bits a TSA answers with (RFC 3161 §2.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureInfo {
    /// Unrecognized or unsupported algorithm identifier.
    BadAlg,
    /// Transaction not permitted or supported.
    BadRequest,
    /// The data submitted has the wrong format.
    BadDataFormat,
    /// The TSA's time source is not available.
    TimeNotAvailable,
    /// The requested TSA policy is not supported by the TSA.
    UnacceptedPolicy,
    /// The requested extension is not supported by the TSA.
    UnacceptedExtension,
    /// The additional information requested could not be understood or is not available.
    AddInfoNotAvailable,
    /// The request cannot be handled due to system failure.
    SystemFailure,
}

impl FailureInfo {
    const ALL: [FailureInfo; 8] = [
        FailureInfo::BadAlg,
        FailureInfo::BadRequest,
        FailureInfo::BadDataFormat,
        FailureInfo::TimeNotAvailable,
        FailureInfo::UnacceptedPolicy,
        FailureInfo::UnacceptedExtension,
        FailureInfo::AddInfoNotAvailable,
        FailureInfo::SystemFailure,
    ];

    /// The bit number in `PKIFailureInfo`.
    pub const fn bit(self) -> u8 {
        match self {
            FailureInfo::BadAlg => 0,
            FailureInfo::BadRequest => 2,
            FailureInfo::BadDataFormat => 5,
            FailureInfo::TimeNotAvailable => 14,
            FailureInfo::UnacceptedPolicy => 15,
            FailureInfo::UnacceptedExtension => 16,
            FailureInfo::AddInfoNotAvailable => 17,
            FailureInfo::SystemFailure => 25,
        }
    }

    /// The ASN.1 name, as OpenSSL prints it.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureInfo::BadAlg => "badAlg",
            FailureInfo::BadRequest => "badRequest",
            FailureInfo::BadDataFormat => "badDataFormat",
            FailureInfo::TimeNotAvailable => "timeNotAvailable",
            FailureInfo::UnacceptedPolicy => "unacceptedPolicy",
            FailureInfo::UnacceptedExtension => "unacceptedExtension",
            FailureInfo::AddInfoNotAvailable => "addInfoNotAvailable",
            FailureInfo::SystemFailure => "systemFailure",
        }
    }

    /// The DER `BIT STRING` with only this bit set: named-bit lists drop trailing zero bits
    /// (X.690 §11.2.2).
    fn to_bit_string(self) -> Result<BitString, der::Error> {
        let bit = usize::from(self.bit());
        let mut bytes = vec![0u8; bit / 8 + 1];
        if let Some(last) = bytes.last_mut() {
            *last = 0x80 >> (bit % 8);
        }
        BitString::new(7 - (bit % 8) as u8, bytes)
    }
}

impl fmt::Display for FailureInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a query is refused, with the failure bit to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub failure: FailureInfo,
    pub message: String,
}

impl QueryError {
    fn new(failure: FailureInfo, message: String) -> Self {
        QueryError { failure, message }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QueryError {}

/// `Accuracy` (RFC 3161 §2.4.2): how far the time may be off, either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Accuracy {
    pub seconds: u32,
    /// 0 to 999.
    pub millis: u16,
    /// 0 to 999.
    pub micros: u16,
}

/// What the TSA puts in a `TSTInfo` besides what the query gives.
#[derive(Debug, Clone, Copy)]
pub struct TstInfoParams<'a> {
    /// The TSA policy, a dotted OID.
    pub policy: &'a str,
    /// A positive INTEGER, as canonical content octets, unique per token.
    pub serial: &'a [u8],
    pub gen_time: OffsetDateTime,
    pub accuracy: Option<Accuracy>,
    pub query: &'a TimeStampQuery,
    /// The TSA certificate (DER); its subject goes into `tsa` as a `directoryName`.
    pub tsa_name: Option<&'a [u8]>,
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTimestamp {
    pub gen_time: OffsetDateTime,
    /// The token serial number, hex.
    pub serial: String,
    /// The TSA policy, a dotted OID.
    pub policy: String,
    pub digest_algorithm: DigestAlgorithm,
    pub imprint: Vec<u8>,
    pub nonce: Option<Vec<u8>>,
    /// The TSA certificate that signed the token (DER).
    pub signer_certificate: Vec<u8>,
    /// All certificates the token carries (DER), for the caller to build the chain with.
    pub certificates: Vec<Vec<u8>>,
    pub accuracy: Option<Accuracy>,
}

// ---------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------

/// Strict DER parse of a `TimeStampReq` (RFC 3161 §2.4.1).
///
/// Accepts version 1 only; SHA-256, SHA-384 or SHA-512 with absent or NULL parameters, anything
/// else being [`FailureInfo::BadAlg`]; an imprint as long as its hash; a nonce of at most 64
/// octets; no extensions ([`FailureInfo::UnacceptedExtension`]); no trailing bytes; at most
/// [`MAX_QUERY_LEN`] bytes. Anything not in canonical DER (such as `certReq` FALSE written out)
/// is [`FailureInfo::BadDataFormat`].
pub fn parse_query(der: &[u8]) -> Result<TimeStampQuery, QueryError> {
    let bad_format = |message: String| QueryError::new(FailureInfo::BadDataFormat, message);
    if der.len() > MAX_QUERY_LEN {
        return Err(bad_format(format!(
            "time-stamp query is {} bytes, over the {MAX_QUERY_LEN}-byte limit; send a DER TimeStampReq carrying the hash of the data (RFC 3161 §2.4.1)",
            der.len()
        )));
    }
    let req = TimeStampReq::from_der(der).map_err(|e| {
        bad_format(format!(
            "time-stamp query is not a DER TimeStampReq: {e}; send one as `openssl ts -query` writes it (RFC 3161 §2.4.1)"
        ))
    })?;
    if req.to_der().ok().as_deref() != Some(der) {
        return Err(bad_format(
            "time-stamp query is BER, not DER (for example `certReq` FALSE written out, or a set out of order); send it in DER (RFC 3161 §2.4.1)".to_owned(),
        ));
    }
    if req.version.as_bytes() != [1] {
        return Err(bad_format(format!(
            "time-stamp query version `{}` is not supported; send a version 1 TimeStampReq (RFC 3161 §2.4.1)",
            int_display(req.version.as_bytes())
        )));
    }
    let digest_algorithm = digest_from_id(&req.message_imprint.hash_algorithm)
        .map_err(|m| QueryError::new(FailureInfo::BadAlg, m))?;
    let imprint = req.message_imprint.hashed_message.as_bytes().to_vec();
    if imprint.len() != digest_algorithm.output_len() {
        return Err(bad_format(format!(
            "time-stamp query imprint is {} bytes but {digest_algorithm} digests are {} bytes; send the {digest_algorithm} of the data",
            imprint.len(),
            digest_algorithm.output_len()
        )));
    }
    let nonce = match &req.nonce {
        Some(n) if n.as_bytes().len() > MAX_NONCE_LEN => {
            return Err(bad_format(format!(
                "time-stamp query nonce is {} bytes, over the {MAX_NONCE_LEN}-byte limit; use a 64-bit random nonce",
                n.as_bytes().len()
            )));
        }
        Some(n) => Some(n.as_bytes().to_vec()),
        None => None,
    };
    if let Some(extensions) = &req.extensions {
        let oids: Vec<String> = extensions
            .iter()
            .map(|e| format!("`{}`", oid_name(&e.extn_id)))
            .collect();
        return Err(QueryError::new(
            FailureInfo::UnacceptedExtension,
            format!(
                "time-stamp query carries extensions {}; this TSA accepts none, send the query without extensions",
                if oids.is_empty() {
                    "(an empty list)".to_owned()
                } else {
                    oids.join(", ")
                }
            ),
        ));
    }
    Ok(TimeStampQuery {
        digest_algorithm,
        imprint,
        policy: req.req_policy.map(|p| p.to_string()),
        nonce,
        cert_req: req.cert_req,
    })
}

/// DER `TimeStampReq` for `q` (RFC 3161 §2.4.1), version 1, the hash algorithm's parameters
/// absent (RFC 5754 §2).
pub fn encode_query(q: &TimeStampQuery) -> Result<Vec<u8>, FormatError> {
    if q.imprint.len() != q.digest_algorithm.output_len() {
        return Err(FormatError::Tsp(format!(
            "imprint is {} bytes but {} digests are {} bytes; pass the {} of the data",
            q.imprint.len(),
            q.digest_algorithm,
            q.digest_algorithm.output_len(),
            q.digest_algorithm
        )));
    }
    let nonce = match &q.nonce {
        Some(n) => Some(canonical_int(n, MAX_NONCE_LEN, "nonce")?),
        None => None,
    };
    let req = TimeStampReq {
        version: one()?,
        message_imprint: message_imprint(q.digest_algorithm, &q.imprint)?,
        req_policy: q.policy.as_deref().map(parse_policy).transpose()?,
        nonce,
        cert_req: q.cert_req,
        extensions: None,
    };
    req.to_der().map_err(|e| der_error("time-stamp query", e))
}

// ---------------------------------------------------------------------------------------------
// TSA side
// ---------------------------------------------------------------------------------------------

/// DER `TSTInfo` (RFC 3161 §2.4.2): version 1, `messageImprint` and `nonce` copied from the
/// query, `genTime` in whole seconds UTC (`YYYYMMDDhhmmssZ`), `ordering` absent (FALSE),
/// `accuracy` and `tsa` when given, no extensions.
pub fn tst_info(p: &TstInfoParams<'_>) -> Result<Vec<u8>, FormatError> {
    let q = p.query;
    if q.imprint.len() != q.digest_algorithm.output_len() {
        return Err(FormatError::Tsp(format!(
            "query imprint is {} bytes but {} digests are {} bytes; parse queries with `tsp::parse_query`",
            q.imprint.len(),
            q.digest_algorithm,
            q.digest_algorithm.output_len()
        )));
    }
    let serial = canonical_int(p.serial, MAX_SERIAL_LEN, "serial number")?;
    if p.serial.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(FormatError::Tsp(format!(
            "serial number `{}` is negative; TSA serial numbers are positive integers (RFC 3161 §2.4.2), prefix a zero byte",
            hex::encode(p.serial)
        )));
    }
    let accuracy = match p.accuracy {
        Some(a) => {
            if a.millis > 999 || a.micros > 999 {
                return Err(FormatError::Tsp(format!(
                    "accuracy of {}s {}ms {}µs is out of range; millis and micros go from 0 to 999 (RFC 3161 §2.4.2)",
                    a.seconds, a.millis, a.micros
                )));
            }
            Some(AccuracyDer {
                seconds: (a.seconds != 0).then_some(a.seconds),
                millis: (a.millis != 0).then_some(a.millis),
                micros: (a.micros != 0).then_some(a.micros),
            })
        }
        None => None,
    };
    let tsa = match p.tsa_name {
        Some(cert) => {
            let cert = Certificate::from_der(cert).map_err(|e| {
                FormatError::Tsp(format!(
                    "TSA certificate does not parse: {e}; pass the DER certificate of the TSA key"
                ))
            })?;
            Some(GeneralName::DirectoryName(
                cert.tbs_certificate().subject().clone(),
            ))
        }
        None => None,
    };
    let nonce = match &q.nonce {
        Some(n) => Some(canonical_int(n, MAX_NONCE_LEN, "nonce")?),
        None => None,
    };
    let info = TstInfo {
        version: one()?,
        policy: parse_policy(p.policy)?,
        message_imprint: message_imprint(q.digest_algorithm, &q.imprint)?,
        serial_number: serial,
        gen_time: GenTime(generalized_time(p.gen_time)?.into_bytes()),
        accuracy,
        ordering: false,
        nonce,
        tsa,
        extensions: None,
    };
    info.to_der().map_err(|e| der_error("TSTInfo", e))
}

/// `TimeStampResp` with status `granted` (0) and `token`, a `ContentInfo` DER as
/// `crate::cms::timestamp_token(..)` then `finish(..)` produce (RFC 3161 §2.4.2).
pub fn response_granted(token: &[u8]) -> Result<Vec<u8>, FormatError> {
    let token = Any::from_der(token)
        .ok()
        .filter(|t| t.tag() == Tag::Sequence)
        .ok_or_else(|| {
            FormatError::Tsp(
                "time-stamp token is not a DER ContentInfo; pass the output of `cms::timestamp_token(..).finish(..)`".to_owned(),
            )
        })?;
    let resp = TimeStampResp {
        status: PkiStatusInfo {
            status: small_int(0)?,
            status_string: None,
            fail_info: None,
        },
        time_stamp_token: Some(token),
    };
    resp.to_der()
        .map_err(|e| der_error("time-stamp response", e))
}

/// `TimeStampResp` with status `rejection` (2), `statusString` `[text]` and the `failInfo` bit
/// (RFC 3161 §2.4.2).
pub fn response_rejected(failure: FailureInfo, text: &str) -> Result<Vec<u8>, FormatError> {
    let fail_info = failure
        .to_bit_string()
        .map_err(|e| der_error("failure information", e))?;
    let resp = TimeStampResp {
        status: PkiStatusInfo {
            status: small_int(2)?,
            status_string: (!text.is_empty()).then(|| vec![text.to_owned()]),
            fail_info: Some(fail_info),
        },
        time_stamp_token: None,
    };
    resp.to_der()
        .map_err(|e| der_error("time-stamp response", e))
}

// ---------------------------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------------------------

/// Reads a `TimeStampResp` (RFC 3161 §2.4.2) and returns the token (a `ContentInfo`, DER).
///
/// The status must be `granted` (0) or `grantedWithMods` (1), and a token present; any other
/// status is an error naming it, the TSA's text and its failure bits.
pub fn parse_response(der: &[u8]) -> Result<Vec<u8>, FormatError> {
    if der.len() > MAX_TOKEN_LEN {
        return Err(FormatError::Tsp(format!(
            "time-stamp response is {} bytes, over the {MAX_TOKEN_LEN}-byte limit; check the TSA URL",
            der.len()
        )));
    }
    let resp = TimeStampResp::from_der(der).map_err(|e| {
        FormatError::Tsp(format!(
            "time-stamp response is not a DER TimeStampResp: {e}; check that the URL is an RFC 3161 TSA"
        ))
    })?;
    let status = resp.status.status.as_bytes();
    if status == [0] || status == [1] {
        let token = resp.time_stamp_token.ok_or_else(|| {
            FormatError::Tsp(
                "time-stamp response grants the request but carries no token; report this to the TSA operator".to_owned(),
            )
        })?;
        return token.to_der().map_err(|e| der_error("time-stamp token", e));
    }
    let name = match status {
        [2] => "rejection",
        [3] => "waiting",
        [4] => "revocationWarning",
        [5] => "revocationNotification",
        _ => "unknown",
    };
    let text = resp
        .status
        .status_string
        .map(|t| {
            format!(
                " with text `{}`",
                signet_core::algorithm::truncate(&t.join(" "), 200)
            )
        })
        .unwrap_or_default();
    let failures = resp
        .status
        .fail_info
        .as_ref()
        .map(failure_names)
        .filter(|f| !f.is_empty())
        .map(|f| format!(" and failure `{}`", f.join(", ")))
        .unwrap_or_default();
    Err(FormatError::Tsp(format!(
        "TSA answered `{name}` ({}){text}{failures}; check the hash algorithm and policy the TSA accepts",
        int_display(status)
    )))
}

/// What the token's imprint must be.
#[derive(Clone, Copy)]
enum Expected<'a> {
    /// Exactly this digest.
    Digest(&'a Digest),
    /// The hash of these bytes, with the token's own hash algorithm (RFC 3161 Appendix A).
    HashOf(&'a [u8]),
}

/// Verifies a time-stamp token: a `ContentInfo` `SignedData` whose `eContentType` is
/// `id-ct-TSTInfo` (RFC 3161 §2.4.2).
///
/// Checks that there is exactly one `SignerInfo`; its signed attributes `contentType` is
/// `id-ct-TSTInfo` and `messageDigest` the hash of `eContent` with the `SignerInfo`'s
/// `digestAlgorithm` (RFC 5652 §5.4, §11.1, §11.2); an ESS `signingCertificateV2` (RFC 5035) or
/// `signingCertificate` (RFC 2634 §5.4) names the signer certificate, found by
/// `IssuerAndSerialNumber` in the token or in `extra_certs`; the signature over the DER
/// `SET OF` signed attributes verifies with that certificate's key; the certificate has the
/// extended key usage `timeStamping`, marked critical (RFC 3161 §2.3); the imprint equals
/// `imprint` (algorithm and bytes); the nonce equals `nonce` when one is given.
///
/// Whether the TSA certificate chains to a trusted root, and whether it was valid at
/// `gen_time`, is the caller's decision: the certificates are returned for it.
pub fn verify_token(
    token: &[u8],
    imprint: &Digest,
    nonce: Option<&[u8]>,
    extra_certs: &[Vec<u8>],
) -> Result<VerifiedTimestamp, FormatError> {
    verify(token, Expected::Digest(imprint), nonce, extra_certs)
}

/// [`verify_token`] for a token over a CMS signature value (RFC 3161 Appendix A): the imprint
/// must be the hash of `signature` with the token's hash algorithm.
pub(crate) fn verify_token_over(
    token: &[u8],
    signature: &[u8],
    extra_certs: &[Vec<u8>],
) -> Result<VerifiedTimestamp, FormatError> {
    verify(token, Expected::HashOf(signature), None, extra_certs)
}

fn verify(
    token: &[u8],
    expected: Expected<'_>,
    nonce: Option<&[u8]>,
    extra_certs: &[Vec<u8>],
) -> Result<VerifiedTimestamp, FormatError> {
    let err = |m: String| FormatError::Tsp(m);
    if token.len() > MAX_TOKEN_LEN {
        return Err(err(format!(
            "time-stamp token is {} bytes, over the {MAX_TOKEN_LEN}-byte limit; check that this is an RFC 3161 token",
            token.len()
        )));
    }
    let sd = cms::decode_signed_data(token, cms::Kind::Token)?;
    let econtent_type = &sd.encap_content_info.econtent_type;
    if *econtent_type != rfc3161::ID_CT_TST_INFO {
        return Err(err(format!(
            "time-stamp token content type is `{}`, not `id-ct-TSTInfo`; check that this is an RFC 3161 token",
            oid_name(econtent_type)
        )));
    }
    let content = cms::econtent(&sd, cms::Kind::Token)?.ok_or_else(|| {
        err("time-stamp token has no TSTInfo (detached content); check that this is an RFC 3161 token".to_owned())
    })?;
    let signer = cms::verify_signer(
        &sd,
        cms::Content::Attached(&content),
        extra_certs,
        cms::Kind::Token,
    )?;
    let cert = crate::x509::parse_certificate(&signer.signer_certificate)?;
    if !cert.eku_time_stamping {
        return Err(err(format!(
            "time-stamp token signer `{}` lacks the extended key usage `timeStamping`; a TSA certificate must have it (RFC 3161 §2.3)",
            cert.subject
        )));
    }
    if !cert.eku_time_stamping_critical {
        return Err(err(format!(
            "time-stamp token signer `{}` has extended key usage `timeStamping` but not marked critical; RFC 3161 §2.3 requires the extension to be critical",
            cert.subject
        )));
    }

    let info = TstInfo::from_der(&content).map_err(|e| {
        err(format!(
            "time-stamp token TSTInfo does not parse: {e}; check that this is an RFC 3161 token"
        ))
    })?;
    if info.version.as_bytes() != [1] {
        return Err(err(format!(
            "TSTInfo version `{}` is not supported; only version 1 exists (RFC 3161 §2.4.2)",
            int_display(info.version.as_bytes())
        )));
    }
    if let Some(ext) = info
        .extensions
        .as_ref()
        .and_then(|e| e.iter().find(|e| e.critical))
    {
        return Err(err(format!(
            "TSTInfo has critical extension `{}`, which Signet does not know; the token cannot be trusted",
            oid_name(&ext.extn_id)
        )));
    }
    let digest_algorithm = digest_from_id(&info.message_imprint.hash_algorithm).map_err(err)?;
    let imprint = info.message_imprint.hashed_message.as_bytes().to_vec();
    let expected = match expected {
        Expected::Digest(d) => d.clone(),
        Expected::HashOf(data) => cms::hash(digest_algorithm, data)?,
    };
    if expected.algorithm() != digest_algorithm {
        return Err(err(format!(
            "time-stamp token imprint is a {digest_algorithm} digest, but a {} digest was expected; the token is for other data",
            expected.algorithm()
        )));
    }
    if imprint != expected.as_bytes() {
        return Err(err(format!(
            "time-stamp token imprint `{}` does not match `{}`; the token is for other data",
            hex::encode(&imprint),
            hex::encode(expected.as_bytes())
        )));
    }
    let token_nonce = info.nonce.as_ref().map(|n| n.as_bytes().to_vec());
    if let Some(want) = nonce {
        match &token_nonce {
            Some(got) if got.as_slice() == want => {}
            Some(got) => {
                return Err(err(format!(
                    "time-stamp token nonce `{}` is not the query's `{}`; the response answers another query (replay?)",
                    hex::encode(got),
                    hex::encode(want)
                )));
            }
            None => {
                return Err(err(format!(
                    "time-stamp token has no nonce but the query sent `{}`; the response answers another query (replay?)",
                    hex::encode(want)
                )));
            }
        }
    }
    let accuracy = match &info.accuracy {
        Some(a) => {
            let millis = a.millis.unwrap_or(0);
            let micros = a.micros.unwrap_or(0);
            if millis > 999 || micros > 999 {
                return Err(err(format!(
                    "TSTInfo accuracy of {millis}ms {micros}µs is out of range; millis and micros go from 1 to 999 (RFC 3161 §2.4.2)"
                )));
            }
            Some(Accuracy {
                seconds: a.seconds.unwrap_or(0),
                millis,
                micros,
            })
        }
        None => None,
    };
    Ok(VerifiedTimestamp {
        gen_time: parse_generalized_time(&info.gen_time.0).map_err(err)?,
        serial: hex::encode(info.serial_number.as_bytes()),
        policy: info.policy.to_string(),
        digest_algorithm,
        imprint,
        nonce: token_nonce,
        signer_certificate: signer.signer_certificate,
        certificates: signer.certificates,
        accuracy,
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn der_error(what: &str, e: der::Error) -> FormatError {
    FormatError::Tsp(format!(
        "cannot encode the {what}: {e}; this is a bug in Signet, please report it"
    ))
}

/// INTEGER 1.
fn one() -> Result<Int, FormatError> {
    small_int(1)
}

/// A small non-negative INTEGER (below 0x80: one content octet).
fn small_int(v: u8) -> Result<Int, FormatError> {
    Int::new(&[v & 0x7f]).map_err(|e| der_error("INTEGER", e))
}

/// Checks INTEGER content octets for DER (X.690 §8.3.2) and a size bound.
fn canonical_int(bytes: &[u8], max: usize, what: &str) -> Result<Int, FormatError> {
    let canonical = match bytes {
        [] => false,
        [0x00, b, ..] => *b >= 0x80,
        [0xff, b, ..] => *b < 0x80,
        _ => true,
    };
    if !canonical || bytes.len() > max {
        return Err(FormatError::Tsp(format!(
            "{what} `{}` is not a DER INTEGER of at most {max} bytes; strip redundant leading 0x00/0xff bytes and prefix 0x00 when the top bit is set",
            hex::encode(bytes)
        )));
    }
    Int::new(bytes).map_err(|e| der_error(what, e))
}

/// A readable rendering of INTEGER content octets: decimal when it fits, hex otherwise.
fn int_display(bytes: &[u8]) -> String {
    if bytes.is_empty() || bytes.len() > 8 {
        return format!("0x{}", hex::encode(bytes));
    }
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut value: i64 = if negative { -1 } else { 0 };
    for b in bytes {
        value = (value << 8) | i64::from(*b);
    }
    value.to_string()
}

fn oid_name(oid: &ObjectIdentifier) -> String {
    match const_oid::db::DB.by_oid(oid) {
        Some(name) => format!("{name} ({oid})"),
        None => oid.to_string(),
    }
}

fn parse_policy(policy: &str) -> Result<ObjectIdentifier, FormatError> {
    ObjectIdentifier::new(policy).map_err(|_| {
        FormatError::Tsp(format!(
            "TSA policy `{}` is not a dotted OID; use the form `1.3.6.1.4.1.99999.1`",
            signet_core::algorithm::truncate(policy, 80)
        ))
    })
}

fn digest_oid(d: DigestAlgorithm) -> ObjectIdentifier {
    match d {
        DigestAlgorithm::Sha256 => rfc5912::ID_SHA_256,
        DigestAlgorithm::Sha384 => rfc5912::ID_SHA_384,
        DigestAlgorithm::Sha512 => rfc5912::ID_SHA_512,
    }
}

fn message_imprint(d: DigestAlgorithm, imprint: &[u8]) -> Result<MessageImprint, FormatError> {
    Ok(MessageImprint {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: digest_oid(d),
            parameters: None,
        },
        hashed_message: OctetString::new(imprint).map_err(|e| der_error("imprint", e))?,
    })
}

/// The SHA-2 hash named by `id`, whose parameters must be absent or NULL (RFC 5754 §2).
fn digest_from_id(id: &AlgorithmIdentifierOwned) -> Result<DigestAlgorithm, String> {
    let d = DigestAlgorithm::ALL
        .into_iter()
        .find(|d| digest_oid(*d) == id.oid)
        .ok_or_else(|| {
            format!(
                "hash algorithm `{}` is not accepted; use sha256, sha384 or sha512",
                oid_name(&id.oid)
            )
        })?;
    match &id.parameters {
        None => Ok(d),
        Some(p) if p.tag() == Tag::Null && p.value().is_empty() => Ok(d),
        Some(_) => Err(format!(
            "hash algorithm `{d}` has parameters; SHA-2 parameters must be absent or NULL (RFC 5754 §2)"
        )),
    }
}

/// The names of the bits set in a `PKIFailureInfo`.
fn failure_names(bits: &BitString) -> Vec<String> {
    let bytes = bits.raw_bytes();
    let is_set = |bit: usize| {
        bytes
            .get(bit / 8)
            .is_some_and(|b| b & (0x80 >> (bit % 8)) != 0)
    };
    let mut names: Vec<String> = FailureInfo::ALL
        .iter()
        .filter(|f| is_set(usize::from(f.bit())))
        .map(|f| f.as_str().to_owned())
        .collect();
    let known: Vec<usize> = FailureInfo::ALL
        .iter()
        .map(|f| usize::from(f.bit()))
        .collect();
    for bit in 0..bytes.len().saturating_mul(8).min(64) {
        if is_set(bit) && !known.contains(&bit) {
            names.push(format!("bit {bit}"));
        }
    }
    names
}

/// `YYYYMMDDhhmmssZ` for `t` in UTC, whole seconds (RFC 3161 §2.4.2, RFC 5280 §4.1.2.5.2).
pub(crate) fn generalized_time(t: OffsetDateTime) -> Result<String, FormatError> {
    let t = t.to_offset(time::UtcOffset::UTC);
    if !(0..=9999).contains(&t.year()) {
        return Err(FormatError::Tsp(format!(
            "time `{t}` is outside the years 0000 to 9999 that GeneralizedTime can hold; check the clock"
        )));
    }
    Ok(format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

/// Reads the DER `GeneralizedTime` of RFC 3161 §2.4.2: `YYYYMMDDhhmmss[.s...]Z`, a fraction
/// without trailing zeros, always UTC.
fn parse_generalized_time(text: &[u8]) -> Result<OffsetDateTime, String> {
    let bad = || {
        format!(
            "TSTInfo genTime `{}` is not a DER GeneralizedTime; expect `YYYYMMDDhhmmss[.fff]Z` (RFC 3161 §2.4.2)",
            signet_core::algorithm::truncate(&String::from_utf8_lossy(text), 40)
        )
    };
    let (main, rest) = text.split_at_checked(14).ok_or_else(bad)?;
    if !main.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<u32, String> {
        main.get(r)
            .ok_or_else(bad)?
            .iter()
            .try_fold(0u32, |acc, d| {
                Some(acc * 10 + u32::from(d.checked_sub(b'0')?))
            })
            .ok_or_else(bad)
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(8..10)?, num(10..12)?, num(12..14)?);
    let nanos = match rest {
        [b'Z'] => 0,
        [b'.', frac @ .., b'Z'] => {
            let valid = !frac.is_empty()
                && frac.len() <= 9
                && frac.iter().all(u8::is_ascii_digit)
                && frac.last() != Some(&b'0');
            if !valid {
                return Err(bad());
            }
            let mut n = 0u32;
            for i in 0..9 {
                n = n * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'));
            }
            n
        }
        _ => return Err(bad()),
    };
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(bad)?;
    let date = time::Date::from_calendar_date(
        i32::try_from(year).map_err(|_| bad())?,
        month,
        u8::try_from(day).map_err(|_| bad())?,
    )
    .map_err(|_| bad())?;
    let clock = time::Time::from_hms_nano(
        u8::try_from(hour).map_err(|_| bad())?,
        u8::try_from(minute).map_err(|_| bad())?,
        u8::try_from(second).map_err(|_| bad())?,
        nanos,
    )
    .map_err(|_| bad())?;
    Ok(time::PrimitiveDateTime::new(date, clock).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_bits_are_der_named_bits() {
        for f in FailureInfo::ALL {
            let bits = f.to_bit_string().ok();
            let names = bits.as_ref().map(failure_names);
            assert_eq!(names, Some(vec![f.as_str().to_owned()]), "{f}");
        }
        // badAlg is bit 0: one octet, seven unused bits (X.690 §11.2.2).
        let der = FailureInfo::BadAlg
            .to_bit_string()
            .ok()
            .and_then(|b| b.to_der().ok());
        assert_eq!(der, Some(vec![0x03, 0x02, 0x07, 0x80]));
    }

    #[test]
    fn generalized_time_reads_fractions() {
        let t = parse_generalized_time(b"20240229235959.123Z").ok();
        assert_eq!(t.map(|t| (t.day(), t.millisecond())), Some((29, 123)));
        for bad in [
            &b"20240229235959.120Z"[..],
            b"20240229235959.Z",
            b"20240229235959",
            b"2024022923595Z",
            b"20240230000000Z",
            b"20240229235959+0100",
            b"-0240229235959Z",
        ] {
            assert!(parse_generalized_time(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn int_display_is_signed() {
        assert_eq!(int_display(&[2]), "2");
        assert_eq!(int_display(&[0xff]), "-1");
        assert_eq!(int_display(&[0x01, 0x00]), "256");
        assert_eq!(int_display(&[1; 9]), "0x010101010101010101");
    }
}
