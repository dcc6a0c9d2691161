//! Splitting the key-encryption key among custodians with Shamir's secret sharing (Shamir, "How
//! to share a secret", CACM 1979) over GF(2^8), as implemented by the `blahaj` crate: any
//! `threshold` of the `count` shares rebuild the secret, fewer reveal nothing about it.
//!
//! A share travels as one line of text a custodian can store or type:
//!
//! ```text
//! signet-share-v1-<set>-<threshold>-<index>-<hex share>-<check>
//! ```
//!
//! `set` is random per split, so shares of different splits (before and after a KEK rotation)
//! are told apart; `check` is the first 4 bytes of SHA-256 over the rest of the line and catches
//! typing mistakes. Neither is secret and neither reveals anything about the secret.

use std::collections::BTreeSet;
use std::convert::Infallible;

use aws_lc_rs::digest;
use blahaj::{Share, Sharks};
use signet_core::secret::SecretString;
use signet_core::{CoreError, ErrorCode};
use zeroize::Zeroizing;

const PREFIX: &str = "signet-share-v1";

/// One custodian's share, parsed and checked for typos (not yet proven to belong to the KEK).
pub struct ParsedShare {
    pub set_id: String,
    pub threshold: u8,
    pub index: u8,
    /// blahaj encoding: x, then one y byte per secret byte.
    bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ParsedShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ParsedShare(set {}, {} of threshold {}, <redacted>)",
            self.set_id, self.index, self.threshold
        )
    }
}

fn invalid(msg: impl Into<String>) -> CoreError {
    CoreError::new(ErrorCode::InvalidRequest, msg)
}

fn check_of(body: &str) -> String {
    hex::encode(&digest::digest(&digest::SHA256, body.as_bytes()).as_ref()[..4])
}

/// Random bytes drawn up front from aws-lc's DRBG, handed out to `blahaj` through the
/// `rand_core` traits (which cannot report failure). Running dry is detected afterwards.
struct Prefilled {
    buf: Zeroizing<Vec<u8>>,
    pos: usize,
    ran_dry: bool,
}

impl Prefilled {
    fn new(len: usize) -> Result<Self, CoreError> {
        let mut buf = Zeroizing::new(vec![0u8; len]);
        aws_lc_rs::rand::fill(&mut buf)
            .map_err(|_| CoreError::new(ErrorCode::Internal, "random number generator failed"))?;
        Ok(Prefilled {
            buf,
            pos: 0,
            ran_dry: false,
        })
    }
}

impl rand_core::TryRng for Prefilled {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        match self.buf.get(self.pos..self.pos + dst.len()) {
            Some(src) => {
                dst.copy_from_slice(src);
                self.pos += dst.len();
            }
            None => {
                // Never expected: the buffer is sized for the worst case. The split is refused.
                self.ran_dry = true;
                dst.fill(0);
            }
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for Prefilled {}

/// Splits `secret` into `count` shares, any `threshold` of which rebuild it.
pub fn split(secret: &[u8], threshold: u8, count: u8) -> Result<Vec<SecretString>, CoreError> {
    if threshold == 0 || count == 0 || threshold > count {
        return Err(invalid(format!(
            "cannot split into {count} shares with threshold {threshold}; use 1 <= threshold <= shares <= 255"
        )));
    }
    if secret.is_empty() {
        return Err(invalid("nothing to split"));
    }
    let set_id = {
        let mut b = [0u8; 4];
        aws_lc_rs::rand::fill(&mut b)
            .map_err(|_| CoreError::new(ErrorCode::Internal, "random number generator failed"))?;
        hex::encode(b)
    };
    // Each coefficient is one sampled byte; a sample never takes more than 8 bytes here.
    let mut rng = Prefilled::new(8 * secret.len() * usize::from(threshold) + 64)?;
    let shares: Vec<Share> = Sharks(threshold)
        .dealer_rng(secret, &mut rng)
        .take(usize::from(count))
        .collect();
    if rng.ran_dry || shares.len() != usize::from(count) {
        return Err(CoreError::new(
            ErrorCode::Internal,
            "splitting the key-encryption key failed",
        ));
    }
    Ok(shares
        .iter()
        .map(|share| {
            let raw = Zeroizing::new(Vec::from(share));
            let index = raw.first().copied().unwrap_or_default();
            let body = Zeroizing::new(format!(
                "{PREFIX}-{set_id}-{threshold}-{index}-{}",
                hex::encode(&raw[..])
            ));
            let check = check_of(&body);
            SecretString::new(format!("{}-{check}", body.as_str()))
        })
        .collect())
}

/// Parses one share line, rejecting typos (bad check) and malformed input.
pub fn parse(text: &str) -> Result<ParsedShare, CoreError> {
    let text = text.trim();
    let hint = "paste the whole `signet-share-v1-…` line exactly as it was handed out";
    let rest = text
        .strip_prefix(PREFIX)
        .and_then(|r| r.strip_prefix('-'))
        .ok_or_else(|| invalid(format!("this is not a Signet key share; {hint}")))?;
    let parts: Vec<&str> = rest.split('-').collect();
    let [set_id, threshold, index, share_hex, check] = parts[..] else {
        return Err(invalid(format!("the share has the wrong shape; {hint}")));
    };
    let body = &text[..text.len() - check.len() - 1];
    if check_of(body) != check.to_ascii_lowercase() {
        return Err(invalid(format!(
            "share check `{check}` does not match (a typing mistake?); {hint}"
        )));
    }
    let threshold: u8 = threshold
        .parse()
        .map_err(|_| invalid(format!("bad threshold in the share; {hint}")))?;
    let index: u8 = index
        .parse()
        .map_err(|_| invalid(format!("bad index in the share; {hint}")))?;
    let bytes = Zeroizing::new(
        hex::decode(share_hex).map_err(|_| invalid(format!("the share is not hex; {hint}")))?,
    );
    if bytes.first() != Some(&index) || bytes.len() < 2 || threshold == 0 || index == 0 {
        return Err(invalid(format!("the share is inconsistent; {hint}")));
    }
    Ok(ParsedShare {
        set_id: set_id.to_owned(),
        threshold,
        index,
        bytes,
    })
}

/// Rebuilds the secret from at least `threshold` distinct shares of one split.
pub fn combine<'a>(
    shares: impl IntoIterator<Item = &'a ParsedShare>,
) -> Result<Zeroizing<Vec<u8>>, CoreError> {
    let shares: Vec<&ParsedShare> = shares.into_iter().collect();
    let first = *shares
        .first()
        .ok_or_else(|| invalid("no shares were given"))?;
    let mut seen = BTreeSet::new();
    for s in &shares {
        if s.set_id != first.set_id || s.threshold != first.threshold {
            return Err(invalid(format!(
                "share set `{}` does not match set `{}`; every share must come from the same split",
                s.set_id, first.set_id
            )));
        }
        if !seen.insert(s.index) {
            return Err(invalid(format!(
                "share {} was given twice; each custodian submits a different share",
                s.index
            )));
        }
    }
    if shares.len() < usize::from(first.threshold) {
        return Err(invalid(format!(
            "{} of {} shares; more custodians must submit theirs",
            shares.len(),
            first.threshold
        )));
    }
    let parsed = shares
        .iter()
        .map(|s| Share::try_from(&s.bytes[..]).map_err(|_| invalid("a share does not parse")))
        .collect::<Result<Vec<_>, _>>()?;
    let secret = Sharks(first.threshold)
        .recover(&parsed)
        .map_err(|e| invalid(format!("the shares do not combine: {e}")))?;
    Ok(Zeroizing::new(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(lines: &[SecretString]) -> Result<Vec<ParsedShare>, CoreError> {
        lines.iter().map(|l| parse(l.expose())).collect()
    }

    #[test]
    fn any_threshold_subset_rebuilds_the_secret() -> Result<(), CoreError> {
        let secret = [7u8; 32];
        let lines = split(&secret, 3, 5)?;
        assert_eq!(lines.len(), 5);
        let shares = parse_all(&lines)?;
        for (a, b, c) in [(0, 1, 2), (0, 2, 4), (1, 3, 4), (4, 3, 0)] {
            let subset = [a, b, c]
                .iter()
                .map(|&i| parse(lines[i].expose()))
                .collect::<Result<Vec<_>, _>>()?;
            assert_eq!(combine(&subset)?.as_slice(), &secret);
        }
        // Fewer than the threshold is refused, not guessed.
        assert!(combine(&shares[..2]).is_err());
        Ok(())
    }

    #[test]
    fn two_shares_reveal_nothing_that_matches() -> Result<(), CoreError> {
        // With threshold 3, interpolating 2 shares as if the threshold were 2 gives a value
        // unrelated to the secret.
        let secret = [42u8; 32];
        let lines = split(&secret, 3, 3)?;
        let shares = parse_all(&lines)?;
        let raw: Vec<Share> = shares[..2]
            .iter()
            .map(|s| Share::try_from(&s.bytes[..]))
            .collect::<Result<_, _>>()
            .map_err(|_| invalid("parse"))?;
        let guess = Sharks(2).recover(&raw).map_err(invalid)?;
        assert_ne!(guess.as_slice(), &secret);
        Ok(())
    }

    #[test]
    fn splits_are_random() -> Result<(), CoreError> {
        let a = split(&[1u8; 32], 2, 3)?;
        let b = split(&[1u8; 32], 2, 3)?;
        assert_ne!(a[0].expose(), b[0].expose());
        Ok(())
    }

    #[test]
    fn typos_duplicates_and_mixed_sets_are_refused() -> Result<(), CoreError> {
        let lines = split(&[9u8; 32], 2, 3)?;
        let line = lines[0].expose();
        // Change one hex digit of the share body.
        let pos = line.len() - 12;
        let mut typo = line.to_owned();
        let flipped = if &typo[pos..=pos] == "a" { "b" } else { "a" };
        typo.replace_range(pos..=pos, flipped);
        assert!(parse(&typo).is_err(), "check must catch a typo");
        assert!(parse("hello").is_err());
        assert!(parse("signet-share-v1-00-2-1-zz-00000000").is_err());

        let s0 = parse(line)?;
        let again = parse(line)?;
        assert!(combine(&[s0, again]).is_err(), "duplicate share");

        let other = split(&[9u8; 32], 2, 3)?;
        let mixed = [parse(lines[0].expose())?, parse(other[1].expose())?];
        assert!(combine(&mixed).is_err(), "shares of two splits");
        Ok(())
    }

    #[test]
    fn parameters_are_checked() {
        assert!(split(&[1u8; 32], 0, 3).is_err());
        assert!(split(&[1u8; 32], 4, 3).is_err());
        assert!(split(&[], 1, 1).is_err());
        assert!(split(&[1u8; 32], 1, 1).is_ok());
    }
}
