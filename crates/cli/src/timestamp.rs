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
    /// true, and the answer checked with [`tsp::parse_response`], [`tsp::verify_token`] and,
    /// with roots, [`Anchors::check`] at the token's time. A TSA that fails (unreachable, an
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
pub fn trust(v: &VerifiedTimestamp, anchors: Option<&Anchors>) -> Result<(String, Option<String>)> {
    let subject = x509::parse_certificate(&v.signer_certificate)?.subject;
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
        let certs = x509::parse_certificates(&bytes).with_context(|| {
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
}
