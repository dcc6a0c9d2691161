//! RFC 3161 time-stamps on the client side: asking TSAs with failover ([`Timestamper`]), and
//! deciding whether a verified token's TSA (or a CMS signer) chains to roots the user trusts
//! ([`Anchors`]).
//!
//! What a token says about itself (status, imprint, nonce, signature, the TSA's critical
//! `timeStamping` EKU) is checked by `signet_formats::tsp`; which TSA to believe is decided here,
//! with the user's roots (`--tsa-ca`), at the token's own time.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use signet_client::{Client, TsaClient};
use signet_core::Digest;
use signet_formats::tsp::{self, TimeStampQuery, VerifiedTimestamp};
use signet_formats::x509::{self, CertInfo};
use time::OffsetDateTime;

/// The longest chain searched from a certificate up to a root.
const MAX_CHAIN_DEPTH: usize = 8;

/// Where a time-stamp query goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tsa {
    /// An external RFC 3161 TSA (`--tsa URL` or the config's `tsa_urls`).
    Url(String),
    /// The Signet server's built-in TSA (`POST /tsa`).
    Server,
}

impl fmt::Display for Tsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tsa::Url(u) => f.write_str(u),
            Tsa::Server => f.write_str("the Signet server's TSA"),
        }
    }
}

/// The TSAs to ask, in order: `--tsa` flags, else the config's `tsa_urls`, else the server.
pub fn tsas(flags: &[String], config: Option<&[String]>) -> Vec<Tsa> {
    let urls = if flags.is_empty() {
        config.unwrap_or_default()
    } else {
        flags
    };
    if urls.is_empty() {
        vec![Tsa::Server]
    } else {
        urls.iter().map(|u| Tsa::Url(u.clone())).collect()
    }
}

/// Sends a DER query to a TSA and returns its DER response.
pub trait Transport {
    fn post(&self, tsa: &Tsa, query: Vec<u8>) -> impl Future<Output = Result<Vec<u8>>>;
}

/// The real transport: external TSAs over their own HTTP client, the server's through the API
/// client.
pub struct Http<'a> {
    pub server: &'a Client,
    pub external: TsaClient,
}

impl Transport for Http<'_> {
    async fn post(&self, tsa: &Tsa, query: Vec<u8>) -> Result<Vec<u8>> {
        Ok(match tsa {
            Tsa::Url(url) => self.external.query(url, &query).await?,
            Tsa::Server => self.server.timestamp_query(&query).await?,
        })
    }
}

/// A token that verified, and who made it.
#[derive(Debug, Clone)]
pub struct Stamped {
    /// The DER token (a CMS `ContentInfo`).
    pub token: Vec<u8>,
    pub verified: VerifiedTimestamp,
    /// The TSA certificate's subject.
    pub tsa_subject: String,
    /// Which TSA answered.
    pub source: Tsa,
    /// The root the TSA chains to, when roots were given.
    pub root: Option<String>,
}

/// Asks TSAs in order until one answers with a token that verifies.
pub struct Timestamper<T> {
    tsas: Vec<Tsa>,
    anchors: Option<Anchors>,
    transport: T,
    /// TSAs that failed earlier in this run: asked only after the others.
    failed: Vec<bool>,
    /// Print failover warnings on standard error.
    pub verbose: bool,
}

impl<T: Transport> Timestamper<T> {
    pub fn new(tsas: Vec<Tsa>, anchors: Option<Anchors>, transport: T) -> Self {
        let failed = vec![false; tsas.len()];
        Timestamper {
            tsas,
            anchors,
            transport,
            failed,
            verbose: true,
        }
    }

    /// Time-stamps `imprint` (the hash of what is time-stamped): a fresh 8-byte nonce, `certReq`
    /// true, and the answer checked with [`tsp::parse_response`], [`tsp::verify_token`], the TSA
    /// certificate's validity at the token's time and, with roots, [`Anchors::check`]. A TSA that fails (unreachable, an
    /// error status, a response that does not verify) hands over to the next; a TSA that
    /// failed once is asked last for the rest of the run.
    pub async fn stamp(&mut self, imprint: &Digest) -> Result<Stamped> {
        let order: Vec<usize> = (0..self.tsas.len())
            .filter(|i| !self.failed.get(*i).copied().unwrap_or(true))
            .chain((0..self.tsas.len()).filter(|i| self.failed.get(*i).copied().unwrap_or(true)))
            .collect();
        let mut failures = Vec::new();
        for (n, i) in order.iter().enumerate() {
            let Some(tsa) = self.tsas.get(*i).cloned() else {
                continue;
            };
            match self.ask(&tsa, imprint).await {
                Ok(s) => return Ok(s),
                Err(e) => {
                    if let Some(f) = self.failed.get_mut(*i) {
                        *f = true;
                    }
                    let why = format!("{e:#}");
                    if self.verbose
                        && let Some(next) = order.get(n + 1).and_then(|j| self.tsas.get(*j))
                    {
                        eprintln!("warning: TSA `{tsa}` failed: {why}; trying `{next}`");
                    }
                    failures.push(format!("`{tsa}`: {why}"));
                }
            }
        }
        bail!(
            "cannot time-stamp: no TSA answered with a valid time-stamp ({}); check the --tsa URLs (or `tsa_urls` in the config), or sign without --timestamp",
            failures.join("; ")
        )
    }

    async fn ask(&self, tsa: &Tsa, imprint: &Digest) -> Result<Stamped> {
        let nonce = nonce()?;
        let query = tsp::encode_query(&TimeStampQuery {
            digest_algorithm: imprint.algorithm(),
            imprint: imprint.as_bytes().to_vec(),
            policy: None,
            nonce: Some(nonce.to_vec()),
            cert_req: true,
        })?;
        let response = self.transport.post(tsa, query).await?;
        let token = tsp::parse_response(&response)?;
        check_token(
            token,
            imprint,
            Some(&nonce),
            self.anchors.as_ref(),
            tsa.clone(),
        )
    }
}

/// Verifies `token` over `imprint` (and `nonce`), then its TSA against `anchors`.
pub fn check_token(
    token: Vec<u8>,
    imprint: &Digest,
    nonce: Option<&[u8]>,
    anchors: Option<&Anchors>,
    source: Tsa,
) -> Result<Stamped> {
    let extra = anchors.map(|a| a.certs.as_slice()).unwrap_or_default();
    let verified = tsp::verify_token(&token, imprint, nonce, extra)?;
    let (tsa_subject, root) = trust(&verified, anchors)?;
    Ok(Stamped {
        token,
        verified,
        tsa_subject,
        source,
        root,
    })
}

/// The TSA's subject and, with `anchors`, the root its certificate chains to at `gen_time`.
/// The TSA certificate must have been valid at `gen_time` in any case.
pub fn trust(v: &VerifiedTimestamp, anchors: Option<&Anchors>) -> Result<(String, Option<String>)> {
    let signer = x509::parse_certificate(&v.signer_certificate)?;
    valid_at(&signer, v.gen_time, "TSA certificate")?;
    let subject = signer.subject;
    let root = match anchors {
        Some(a) => Some(
            a.check(
                &v.signer_certificate,
                &v.certificates,
                v.gen_time,
                "TSA certificate",
            )?
            .subject,
        ),
        None => None,
    };
    Ok((subject, root))
}

/// A random 8-byte nonce, as canonical DER INTEGER content octets: positive, and no leading
/// zero octet (the TSA echoes it re-encoded, and a non-canonical nonce would not compare).
fn nonce() -> Result<[u8; 8]> {
    let mut n = [0u8; 8];
    aws_lc_rs::rand::fill(&mut n).map_err(|_| anyhow!("cannot draw a random nonce"))?;
    n[0] &= 0x7f;
    if n[0] == 0 {
        n[0] = 1;
    }
    Ok(n)
}

/// Root certificates the user trusts (`--tsa-ca FILE`, `--ca FILE`).
#[derive(Debug, Clone)]
pub struct Anchors {
    pub certs: Vec<Vec<u8>>,
    pub source: PathBuf,
}

impl Anchors {
    /// Reads PEM certificates (or one DER certificate) from `path`.
    pub fn load(path: &Path, flag: &str) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the {flag} file `{}`", path.display()))?;
        let certs = parse_roots(&bytes).with_context(|| {
            format!(
                "cannot use the {flag} file `{}`; pass PEM root certificates",
                path.display()
            )
        })?;
        Ok(Anchors {
            certs,
            source: path.to_path_buf(),
        })
    }

    /// Checks that `leaf` chains to one of these roots through certificates of `pool`, each
    /// step with [`x509::verify_issued_by`], and that every certificate on the way (the root
    /// included) was valid at `at`. A certificate that is itself one of the roots is trusted as
    /// is (pinned). Returns the root.
    pub fn check(
        &self,
        leaf: &[u8],
        pool: &[Vec<u8>],
        at: OffsetDateTime,
        what: &str,
    ) -> Result<CertInfo> {
        let leaf_info = x509::parse_certificate(leaf)?;
        let mut current = leaf.to_vec();
        let mut info = leaf_info.clone();
        let mut path: Vec<Vec<u8>> = vec![current.clone()];
        for _ in 0..MAX_CHAIN_DEPTH {
            valid_at(&info, at, what)?;
            if self.certs.contains(&current) {
                return Ok(info);
            }
            let mut root_error = None;
            for root in &self.certs {
                match x509::verify_issued_by(&current, root) {
                    Ok(()) => {
                        let root_info = x509::parse_certificate(root)?;
                        valid_at(&root_info, at, "root certificate")?;
                        return Ok(root_info);
                    }
                    Err(e) => {
                        // Report why a root of the right name did not issue it.
                        if x509::parse_certificate(root).is_ok_and(|r| r.subject == info.issuer) {
                            root_error = Some(e);
                        }
                    }
                }
            }
            let next = pool
                .iter()
                .filter(|c| !path.contains(c))
                .find(|c| x509::verify_issued_by(&current, c).is_ok());
            match next {
                Some(c) => {
                    current = c.clone();
                    info = x509::parse_certificate(&current)?;
                    path.push(current.clone());
                }
                None => {
                    let why = root_error.map_or_else(
                        || {
                            format!(
                                "no certificate there or in the signature issued `{}`",
                                info.subject
                            )
                        },
                        |e| e.to_string(),
                    );
                    bail!(
                        "the {what} `{}` does not chain to a root in `{}`: {why}; pass the root of `{}`",
                        leaf_info.subject,
                        self.source.display(),
                        info.issuer
                    );
                }
            }
        }
        bail!(
            "the {what} `{}` does not chain to a root in `{}` within {MAX_CHAIN_DEPTH} certificates",
            leaf_info.subject,
            self.source.display()
        )
    }
}

/// The most roots read from one file (a system bundle has a few hundred).
const MAX_ROOTS: usize = 2000;

/// Certificates of a roots file: PEM blocks, each read on its own (so that a bundle of many
/// roots is not taken for an over-long chain), or one DER certificate.
fn parse_roots(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let mut certs = Vec::new();
    let mut rest = bytes;
    while let Some(start) = find(rest, BEGIN) {
        let block = rest.get(start..).unwrap_or_default();
        let Some(end) = find(block, END).map(|e| e + END.len()) else {
            break;
        };
        if certs.len() == MAX_ROOTS {
            bail!("more than {MAX_ROOTS} certificates; pass only the roots you trust");
        }
        certs.extend(x509::parse_certificates(
            block.get(..end).unwrap_or_default(),
        )?);
        rest = block.get(end..).unwrap_or_default();
    }
    if certs.is_empty() {
        // DER, or an error that says what is wrong.
        certs = x509::parse_certificates(bytes)?;
    }
    Ok(certs)
}

fn valid_at(c: &CertInfo, at: OffsetDateTime, what: &str) -> Result<()> {
    if at < c.not_before || at > c.not_after {
        bail!(
            "the {what} `{}` was not valid at {} (valid from {} to {})",
            c.subject,
            rfc3339(at),
            rfc3339(c.not_before),
            rfc3339(c.not_after)
        );
    }
    Ok(())
}

/// RFC 3339, falling back to the default rendering.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// A time-stamp as `--json` output shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TimestampJson {
    /// The TSA's time (RFC 3339): when the signature is known to have existed.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The TSA certificate's subject (RFC 4514).
    pub tsa: String,
    /// The token's serial number, hex.
    pub serial: String,
    /// The TSA policy, a dotted OID.
    pub policy: String,
    /// The root the TSA chains to (with `--tsa-ca`), RFC 4514.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Where the token came from when it was just made: the TSA URL, or `server`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl TimestampJson {
    pub fn of(v: &VerifiedTimestamp, tsa: String, root: Option<String>) -> Self {
        TimestampJson {
            time: v.gen_time,
            tsa,
            serial: v.serial.clone(),
            policy: v.policy.clone(),
            root,
            source: None,
        }
    }

    pub fn of_stamped(s: &Stamped) -> Self {
        let mut j = TimestampJson::of(&s.verified, s.tsa_subject.clone(), s.root.clone());
        j.source = Some(match &s.source {
            Tsa::Url(u) => u.clone(),
            Tsa::Server => "server".to_owned(),
        });
        j
    }

    /// `time-stamped 2026-11-23T10:00:00Z by CN=…`, and the root when checked.
    pub fn line(&self) -> String {
        let mut s = format!("time-stamped {} by {}", rfc3339(self.time), self.tsa);
        if let Some(r) = &self.root {
            s.push_str(&format!(" (chains to {r})"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    #[test]
    fn tsa_order_is_flags_then_config_then_server() {
        let flags = vec!["http://a".to_owned(), "http://b".to_owned()];
        let config = vec!["http://c".to_owned()];
        assert_eq!(
            tsas(&flags, Some(&config)),
            vec![Tsa::Url("http://a".into()), Tsa::Url("http://b".into())]
        );
        assert_eq!(tsas(&[], Some(&config)), vec![Tsa::Url("http://c".into())]);
        assert_eq!(tsas(&[], Some(&[])), vec![Tsa::Server]);
        assert_eq!(tsas(&[], None), vec![Tsa::Server]);
    }

    #[test]
    fn roots_files_may_hold_many_certificates() -> Result<()> {
        // Not certificates: the error is the parser's, naming the block.
        let bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(parse_roots(bad.as_bytes()).is_err());
        assert!(parse_roots(b"nothing here").is_err());
        Ok(())
    }

    #[test]
    fn nonces_are_canonical_positive_integers() -> Result<()> {
        for _ in 0..200 {
            let n = nonce()?;
            assert!(n[0] >= 1 && n[0] <= 0x7f, "{n:?}");
        }
        assert_ne!(nonce()?, nonce()?);
        Ok(())
    }

    /// Records which TSAs were asked, and fails every one with `why`.
    struct Failing {
        asked: RefCell<Vec<Tsa>>,
    }

    impl Transport for &Failing {
        async fn post(&self, tsa: &Tsa, query: Vec<u8>) -> Result<Vec<u8>> {
            // The query is a DER TimeStampReq that asks for certificates and carries a nonce.
            let q = tsp::parse_query(&query).map_err(|e| anyhow!("{}", e.message))?;
            assert!(q.cert_req);
            assert_eq!(q.nonce.as_ref().map(Vec::len), Some(8));
            self.asked.borrow_mut().push(tsa.clone());
            match tsa {
                Tsa::Url(u) if u.contains("garbage") => Ok(b"<html>not a TSA</html>".to_vec()),
                _ => bail!("connection refused"),
            }
        }
    }

    fn imprint() -> Result<Digest> {
        Ok(Digest::new(
            signet_core::DigestAlgorithm::Sha256,
            vec![7; 32],
        )?)
    }

    #[tokio::test]
    async fn every_failed_tsa_is_named_with_its_reason() -> Result<()> {
        let t = Failing {
            asked: RefCell::new(Vec::new()),
        };
        let list = vec![
            Tsa::Url("http://down.example".into()),
            Tsa::Url("http://garbage.example".into()),
        ];
        let mut stamper = Timestamper::new(list.clone(), None, &t);
        stamper.verbose = false;
        let err = stamper
            .stamp(&imprint()?)
            .await
            .err()
            .map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(
            err.contains("`http://down.example`: connection refused"),
            "{err}"
        );
        assert!(err.contains("`http://garbage.example`: "), "{err}");
        assert!(err.contains("not a DER TimeStampResp"), "{err}");
        assert_eq!(*t.asked.borrow(), list);
        Ok(())
    }

    #[tokio::test]
    async fn failed_tsas_are_asked_last_for_the_rest_of_the_run() -> Result<()> {
        let t = Failing {
            asked: RefCell::new(Vec::new()),
        };
        let a = Tsa::Url("http://a.example".into());
        let b = Tsa::Url("http://b.example".into());
        let mut stamper = Timestamper::new(vec![a.clone(), b.clone()], None, &t);
        stamper.verbose = false;
        assert!(stamper.stamp(&imprint()?).await.is_err());
        assert!(stamper.stamp(&imprint()?).await.is_err());
        assert_eq!(*t.asked.borrow(), vec![a.clone(), b.clone(), a, b]);
        Ok(())
    }

    /// A CA and a TSA with ECDSA P-256 keys, and a TSA that answers queries in-process.
    mod tsa_fixture {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
        use signet_core::Algorithm;
        use signet_formats::x509::{CertParams, Profile};
        use signet_formats::{cms, tsp, x509};
        use time::{Duration, OffsetDateTime};

        use super::super::*;

        pub struct Ca {
            pub key: EcdsaKeyPair,
            pub cert: Vec<u8>,
        }

        fn key() -> Result<EcdsaKeyPair> {
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
                .map_err(|_| anyhow!("cannot generate a key"))
        }

        fn spki(k: &EcdsaKeyPair) -> Result<Vec<u8>> {
            Ok(k.public_key()
                .as_der()
                .map_err(|_| anyhow!("cannot encode the public key"))?
                .as_ref()
                .to_vec())
        }

        /// ECDSA P-256 with SHA-256 over `msg`: what `pkix::to_be_signed` asks of the key.
        pub fn sign(k: &EcdsaKeyPair, msg: &[u8]) -> Result<Vec<u8>> {
            Ok(k.sign(&SystemRandom::new(), msg)
                .map_err(|_| anyhow!("cannot sign"))?
                .as_ref()
                .to_vec())
        }

        fn certificate(
            profile: Profile,
            subject: &str,
            subject_key: &EcdsaKeyPair,
            issuer: Option<&Ca>,
            valid: (OffsetDateTime, OffsetDateTime),
        ) -> Result<Vec<u8>> {
            let mut random = [0u8; 16];
            aws_lc_rs::rand::fill(&mut random).map_err(|_| anyhow!("no randomness"))?;
            let serial = x509::serial_from_random(random);
            let subject_spki = spki(subject_key)?;
            let tbs = x509::tbs_certificate(&CertParams {
                profile,
                subject,
                subject_spki: &subject_spki,
                issuer: issuer.map(|i| i.cert.as_slice()),
                signer: Algorithm::EcdsaP256,
                serial: &serial,
                not_before: valid.0,
                not_after: valid.1,
                crl_url: None,
            })?;
            let signing_key = issuer.map_or(subject_key, |i| &i.key);
            let sig = sign(signing_key, &tbs)?;
            Ok(x509::assemble_certificate(
                &tbs,
                Algorithm::EcdsaP256,
                &sig,
            )?)
        }

        fn now() -> OffsetDateTime {
            OffsetDateTime::now_utc()
        }

        pub fn root(name: &str) -> Result<Ca> {
            let key = key()?;
            let cert = certificate(
                Profile::RootCa,
                &format!("CN={name}"),
                &key,
                None,
                (now() - Duration::days(1), now() + Duration::days(365)),
            )?;
            Ok(Ca { key, cert })
        }

        /// A TSA certified by `ca`, valid from `from` to `to` days from now.
        pub fn tsa(ca: &Ca, from: i64, to: i64) -> Result<Ca> {
            let key = key()?;
            let cert = certificate(
                Profile::Timestamping,
                "CN=Test TSA",
                &key,
                Some(ca),
                (now() + Duration::days(from), now() + Duration::days(to)),
            )?;
            Ok(Ca { key, cert })
        }

        /// Answers `query` as a TSA would; `other_nonce` answers another query's nonce.
        pub fn answer(tsa: &Ca, ca: &Ca, query: &[u8], other_nonce: bool) -> Result<Vec<u8>> {
            let mut q = tsp::parse_query(query).map_err(|e| anyhow!("{}", e.message))?;
            if other_nonce {
                q.nonce = Some(vec![0x01, 0x02, 0x03]);
            }
            let info = tsp::tst_info(&tsp::TstInfoParams {
                policy: "1.3.6.1.4.1.0.3161.1",
                serial: &[0x01, 0x02],
                gen_time: now(),
                accuracy: None,
                query: &q,
                tsa_name: Some(&tsa.cert),
            })?;
            let chain = vec![ca.cert.clone()];
            let pending = cms::timestamp_token(
                &info,
                &cms::Signer {
                    certificate: &tsa.cert,
                    chain: &chain,
                    algorithm: Algorithm::EcdsaP256,
                },
                q.cert_req,
            )?;
            let sig = sign(&tsa.key, pending.signed_attributes())?;
            let token = pending.finish(&sig, None)?;
            Ok(tsp::response_granted(&token)?)
        }
    }

    /// A transport whose TSAs are in-process: `good` answers correctly, `replay` answers with
    /// another nonce, anything else is unreachable.
    struct Fake {
        tsa: tsa_fixture::Ca,
        ca: tsa_fixture::Ca,
        asked: RefCell<Vec<Tsa>>,
    }

    impl Transport for &Fake {
        async fn post(&self, tsa: &Tsa, query: Vec<u8>) -> Result<Vec<u8>> {
            self.asked.borrow_mut().push(tsa.clone());
            match tsa {
                Tsa::Url(u) if u.contains("good") => {
                    tsa_fixture::answer(&self.tsa, &self.ca, &query, false)
                }
                Tsa::Url(u) if u.contains("replay") => {
                    tsa_fixture::answer(&self.tsa, &self.ca, &query, true)
                }
                _ => bail!("connection refused"),
            }
        }
    }

    fn fake(from: i64, to: i64) -> Result<Fake> {
        let ca = tsa_fixture::root("Test Root")?;
        let tsa = tsa_fixture::tsa(&ca, from, to)?;
        Ok(Fake {
            tsa,
            ca,
            asked: RefCell::new(Vec::new()),
        })
    }

    fn anchors(certs: Vec<Vec<u8>>) -> Anchors {
        Anchors {
            certs,
            source: PathBuf::from("roots.pem"),
        }
    }

    #[tokio::test]
    async fn fails_over_to_a_tsa_whose_token_verifies() -> Result<()> {
        let f = fake(-1, 30)?;
        let list = vec![
            Tsa::Url("http://down.example".into()),
            Tsa::Url("http://replay.example".into()),
            Tsa::Url("http://good.example".into()),
        ];
        let roots = anchors(vec![f.ca.cert.clone()]);
        let mut stamper = Timestamper::new(list.clone(), Some(roots), &f);
        stamper.verbose = false;
        let s = stamper.stamp(&imprint()?).await?;
        assert_eq!(s.source, Tsa::Url("http://good.example".into()));
        assert_eq!(s.tsa_subject, "CN=Test TSA");
        assert_eq!(s.root.as_deref(), Some("CN=Test Root"));
        assert_eq!(s.verified.imprint, vec![7; 32]);
        assert_eq!(*f.asked.borrow(), list);

        // Next time the TSA that answered is asked first.
        f.asked.borrow_mut().clear();
        stamper.stamp(&imprint()?).await?;
        assert_eq!(
            *f.asked.borrow(),
            vec![Tsa::Url("http://good.example".into())]
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_replayed_nonce_is_refused() -> Result<()> {
        let f = fake(-1, 30)?;
        let mut stamper =
            Timestamper::new(vec![Tsa::Url("http://replay.example".into())], None, &f);
        stamper.verbose = false;
        let err = stamper
            .stamp(&imprint()?)
            .await
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("nonce")),
            "{err:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_tsa_outside_the_roots_is_refused() -> Result<()> {
        let f = fake(-1, 30)?;
        let other = tsa_fixture::root("Other Root")?;
        let mut stamper = Timestamper::new(
            vec![Tsa::Url("http://good.example".into())],
            Some(anchors(vec![other.cert])),
            &f,
        );
        stamper.verbose = false;
        let err = stamper
            .stamp(&imprint()?)
            .await
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("does not chain to a root in `roots.pem`")),
            "{err:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_tsa_certificate_not_valid_at_the_time_stamp_is_refused() -> Result<()> {
        // Valid only from tomorrow on.
        let f = fake(1, 30)?;
        let mut stamper = Timestamper::new(
            vec![Tsa::Url("http://good.example".into())],
            Some(anchors(vec![f.ca.cert.clone()])),
            &f,
        );
        stamper.verbose = false;
        let err = stamper
            .stamp(&imprint()?)
            .await
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("was not valid at")),
            "{err:?}"
        );
        // Without roots too: a TSA signing outside its certificate's validity is not believed.
        let mut unanchored =
            Timestamper::new(vec![Tsa::Url("http://good.example".into())], None, &f);
        unanchored.verbose = false;
        assert!(unanchored.stamp(&imprint()?).await.is_err());
        Ok(())
    }

    #[tokio::test]
    async fn a_token_for_other_data_is_refused() -> Result<()> {
        let f = fake(-1, 30)?;
        let query = tsp::encode_query(&TimeStampQuery {
            digest_algorithm: signet_core::DigestAlgorithm::Sha256,
            imprint: vec![9; 32],
            policy: None,
            nonce: None,
            cert_req: true,
        })?;
        let token = tsp::parse_response(&tsa_fixture::answer(&f.tsa, &f.ca, &query, false)?)?;
        assert!(check_token(token.clone(), &imprint()?, None, None, Tsa::Server).is_err());
        let ok = check_token(
            token,
            &Digest::new(signet_core::DigestAlgorithm::Sha256, vec![9; 32])?,
            None,
            Some(&anchors(vec![f.ca.cert.clone()])),
            Tsa::Server,
        )?;
        assert_eq!(ok.root.as_deref(), Some("CN=Test Root"));
        Ok(())
    }

    #[test]
    fn pinned_certificates_are_trusted_as_is() -> Result<()> {
        let f = fake(-1, 30)?;
        let pinned = anchors(vec![f.tsa.cert.clone()]);
        let r = pinned.check(
            &f.tsa.cert,
            &[],
            OffsetDateTime::now_utc(),
            "TSA certificate",
        )?;
        assert_eq!(r.subject, "CN=Test TSA");
        // Through the chain carried along.
        let roots = anchors(vec![f.ca.cert.clone()]);
        assert!(
            roots
                .check(
                    &f.tsa.cert,
                    &[],
                    OffsetDateTime::now_utc(),
                    "TSA certificate"
                )
                .is_ok()
        );
        Ok(())
    }

    #[test]
    fn roots_files_read_many_pem_blocks() -> Result<()> {
        let mut pem = String::new();
        for i in 0..12 {
            pem.push_str(&x509::certificate_pem(
                &tsa_fixture::root(&format!("R{i}"))?.cert,
            ));
            pem.push_str("# a comment between blocks\n");
        }
        assert_eq!(parse_roots(pem.as_bytes())?.len(), 12);
        let one = tsa_fixture::root("DER")?.cert;
        assert_eq!(parse_roots(&one)?, vec![one]);
        Ok(())
    }
}
