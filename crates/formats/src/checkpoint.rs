//! Signed checkpoints of the audit log: the C2SP `tlog-checkpoint` body in a C2SP `signed-note`
//! with an Ed25519 signature, the format Go's `golang.org/x/mod/sumdb/note`, Sigsum, Trillian
//! and the transparency-dev witnesses read.
//!
//! ```text
//! signet.example/audit                      <- origin
//! 4711                                      <- tree size, decimal, no leading zeros
//! 1Rmx1QuqfUoVblOBbqmc9lIUSSOIWJQ9hx1ODHfufJY=   <- root hash, base64 (RFC 4648 §4)
//!                                           <- blank line
//! — signet.example/audit <base64(key hash || Ed25519 signature)>
//! ```
//!
//! - c2sp.org/tlog-checkpoint "Note text": three non-empty lines, then optional non-empty
//!   extension lines, which are accepted when parsing and never produced.
//! - c2sp.org/signed-note "Format": the note text (ending in a newline), a blank line, then
//!   signature lines `— <key name> <base64(key hash || signature)>`; valid UTF-8 without ASCII
//!   control characters other than newline. "Signatures": signatures from unknown keys are
//!   ignored, a known key's signature must verify.
//! - c2sp.org/signed-note "Ed25519 signatures": type `0x01`, signature per RFC 8032 over the
//!   note text, key hash `SHA-256(key name || 0x0A || 0x01 || public key)[:4]`.
//! - Verifier keys in the `<name>+<hex key hash>+<base64(0x01 || public key)>` form of
//!   `golang.org/x/mod/sumdb/note` (`NewVerifier`), the form C2SP logs publish.
//!
//! Signing takes a callback, not a private key, so the server's non-exportable log key signs.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::FormatError;

/// The most bytes a note may have. c2sp.org/signed-note asks verifiers to bound the size of a
/// note; a checkpoint with a few dozen signatures is a few kilobytes.
pub const MAX_NOTE_LEN: usize = 1 << 20;

/// The most signature lines a note may have (c2sp.org/signed-note asks for at least 16; Go's
/// `note.Open` allows 100).
pub const MAX_SIGNATURES: usize = 100;

/// Signature type of Ed25519 in c2sp.org/signed-note.
const ALG_ED25519: u8 = 0x01;

/// Start of every signature line: EM DASH (U+2014), then a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Length of a raw Ed25519 signature (RFC 8032 §5.1.6).
const ED25519_SIG_LEN: usize = 64;

fn err(msg: impl Into<String>) -> FormatError {
    FormatError::Checkpoint(msg.into())
}

/// At most 60 characters of untrusted text, for an error message.
fn snippet(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Rejects ASCII control characters other than newline (c2sp.org/signed-note "Format"), which
/// also rejects CR line endings.
fn check_controls(text: &str, what: &str) -> Result<(), FormatError> {
    match text.char_indices().find(|&(_, c)| c < ' ' && c != '\n') {
        None => Ok(()),
        Some((at, '\r')) => Err(err(format!(
            "{what} has a carriage return at byte `{at}`; lines end in a bare `\\n`, so convert CRLF line endings"
        ))),
        Some((at, c)) => Err(err(format!(
            "{what} has control character `U+{:04X}` at byte `{at}`; only `\\n` is allowed",
            u32::from(c)
        ))),
    }
}

/// A checkpoint: the log's origin, its tree size and the RFC 9162 root of that tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: [u8; 32],
}

impl Checkpoint {
    /// The note text (c2sp.org/tlog-checkpoint "Note text"): origin, size and base64 root, each
    /// ending in a newline, with no extension lines. Fails if the origin is empty or would break
    /// the three-line shape.
    pub fn to_body(&self) -> Result<String, FormatError> {
        if self.origin.is_empty() {
            return Err(err(
                "checkpoint origin is empty; use the log's name, such as `signet.example/audit`",
            ));
        }
        check_controls(&self.origin, "checkpoint origin")?;
        if self.origin.contains('\n') {
            return Err(err(format!(
                "checkpoint origin `{}` spans lines; use a one-line log name",
                snippet(&self.origin.replace('\n', "\\n"))
            )));
        }
        Ok(format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        ))
    }

    /// Parses a note text as a checkpoint (c2sp.org/tlog-checkpoint "Note text"). Extension
    /// lines are checked to be non-empty and then dropped.
    pub fn parse_body(text: &str) -> Result<Checkpoint, FormatError> {
        if text.len() > MAX_NOTE_LEN {
            return Err(err(format!(
                "checkpoint body is `{}` bytes, over the limit of `{MAX_NOTE_LEN}`; this is not a checkpoint",
                text.len()
            )));
        }
        check_controls(text, "checkpoint body")?;
        let Some(lines) = text.strip_suffix('\n') else {
            return Err(err(
                "checkpoint body does not end in a newline; the text must end with `\\n`",
            ));
        };
        let mut lines = lines.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(err(
                "checkpoint origin (line 1) is empty; a checkpoint starts with the log's origin",
            ));
        }
        let size = parse_size(lines.next())?;
        let root = parse_root(lines.next())?;
        for (n, ext) in lines.enumerate() {
            if ext.is_empty() {
                return Err(err(format!(
                    "checkpoint line `{}` is empty; extension lines must not be empty",
                    n + 4
                )));
            }
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// Line 2: ASCII decimal, no leading zeros unless the tree is empty (c2sp.org/tlog-checkpoint).
fn parse_size(line: Option<&str>) -> Result<u64, FormatError> {
    let Some(line) = line else {
        return Err(err(
            "checkpoint has no tree size (line 2); a checkpoint has origin, size and root lines",
        ));
    };
    let canonical = !line.is_empty()
        && line.bytes().all(|b| b.is_ascii_digit())
        && (line == "0" || !line.starts_with('0'));
    if !canonical {
        return Err(err(format!(
            "checkpoint tree size `{}` is not a decimal number without leading zeros",
            snippet(line)
        )));
    }
    line.parse().map_err(|_| {
        err(format!(
            "checkpoint tree size `{}` does not fit in 64 bits",
            snippet(line)
        ))
    })
}

/// Line 3: the base64 of a 32-byte SHA-256 root (c2sp.org/tlog-checkpoint).
fn parse_root(line: Option<&str>) -> Result<[u8; 32], FormatError> {
    let Some(line) = line else {
        return Err(err(
            "checkpoint has no root hash (line 3); a checkpoint has origin, size and root lines",
        ));
    };
    let bytes = STANDARD.decode(line).map_err(|_| {
        err(format!(
            "checkpoint root hash `{}` is not padded standard base64",
            snippet(line)
        ))
    })?;
    let len = bytes.len();
    bytes.try_into().map_err(|_| {
        err(format!(
            "checkpoint root hash is `{len}` bytes; a SHA-256 root is 32 bytes"
        ))
    })
}

/// Whether `name` may name a key (c2sp.org/signed-note "Format"): non-empty, without Unicode
/// spaces, plus signs or control characters.
fn check_key_name(name: &str) -> Result<(), FormatError> {
    if name.is_empty() {
        return Err(err(
            "key name is empty; use the log's name, such as `signet.example/audit`",
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| c.is_whitespace() || c == '+' || c.is_control())
    {
        return Err(err(format!(
            "key name `{}` contains `{}`; key names have no spaces, `+` or control characters",
            snippet(&name.escape_debug().to_string()),
            c.escape_debug()
        )));
    }
    Ok(())
}

/// The key hash (key ID) of an Ed25519 key, c2sp.org/signed-note "Ed25519 signatures":
/// the first four bytes, big-endian, of `SHA-256(key name || 0x0A || 0x01 || public key)`.
pub fn key_hash(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(name.as_bytes());
    ctx.update(&[b'\n', ALG_ED25519]);
    ctx.update(public_key);
    let d = ctx.finish();
    d.as_ref()
        .first_chunk::<4>()
        .map_or(0, |b| u32::from_be_bytes(*b))
}

/// A key that verifies notes: a key name and an Ed25519 public key. Parsed from and printed as
/// `<name>+<8 hex digits of the key hash>+<base64(0x01 || public key)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    public_key: [u8; 32],
    key_hash: u32,
}

impl VerifierKey {
    /// The verifier key for `name` and an Ed25519 public key.
    pub fn new(name: &str, public_key: [u8; 32]) -> Result<Self, FormatError> {
        check_key_name(name)?;
        Ok(VerifierKey {
            name: name.to_owned(),
            key_hash: key_hash(name, &public_key),
            public_key,
        })
    }

    /// Parses `<name>+<hex key hash>+<base64(0x01 || public key)>`, checking that the key hash
    /// matches the name and key, as `note.NewVerifier` of `golang.org/x/mod/sumdb/note` does.
    pub fn parse(vkey: &str) -> Result<Self, FormatError> {
        let shape = || {
            err(format!(
                "verifier key `{}` is not `<name>+<key hash>+<key>`; copy the whole key the log publishes",
                snippet(vkey)
            ))
        };
        let (name, rest) = vkey.split_once('+').ok_or_else(shape)?;
        let (hash_hex, key_b64) = rest.split_once('+').ok_or_else(shape)?;
        check_key_name(name)?;
        if hash_hex.len() != 8 || !hash_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err(format!(
                "verifier key hash `{}` is not 8 hex digits; copy the whole key the log publishes",
                snippet(hash_hex)
            )));
        }
        let hash = u32::from_str_radix(hash_hex, 16).map_err(|_| shape())?;
        let key = STANDARD.decode(key_b64).map_err(|_| {
            err(format!(
                "verifier key `{}` is not padded standard base64 after the second `+`",
                snippet(vkey)
            ))
        })?;
        let Some((&alg, public_key)) = key.split_first() else {
            return Err(shape());
        };
        if alg != ALG_ED25519 {
            return Err(err(format!(
                "verifier key `{}` has signature type `0x{alg:02x}`; only Ed25519 (`0x01`) is supported",
                snippet(vkey)
            )));
        }
        let public_key: [u8; 32] = public_key.try_into().map_err(|_| {
            err(format!(
                "verifier key `{}` has a `{}`-byte public key; Ed25519 keys are 32 bytes",
                snippet(vkey),
                public_key.len()
            ))
        })?;
        let key = VerifierKey::new(name, public_key)?;
        if key.key_hash != hash {
            return Err(err(format!(
                "verifier key `{}` says key hash `{hash:08x}` but its name and key hash to `{:08x}`; the key was altered or mistyped",
                snippet(vkey),
                key.key_hash
            )));
        }
        Ok(key)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    pub fn key_hash(&self) -> u32 {
        self.key_hash
    }

    /// Verifies a raw Ed25519 signature over `msg` (RFC 8032 §5.1.7).
    fn verifies(&self, msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::ED25519, &self.public_key)
            .verify(msg, sig)
            .is_ok()
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = Vec::with_capacity(33);
        key.push(ALG_ED25519);
        key.extend_from_slice(&self.public_key);
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_hash,
            STANDARD.encode(key)
        )
    }
}

impl FromStr for VerifierKey {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VerifierKey::parse(s)
    }
}

/// Why [`sign_note`] produced no note.
#[derive(Debug, thiserror::Error)]
pub enum SignNoteError<E> {
    /// The text or key name cannot make a valid note, or the signature does not verify.
    #[error(transparent)]
    Note(#[from] FormatError),
    /// The signing callback failed.
    #[error("the log key could not sign the checkpoint: {0}")]
    Signer(#[source] E),
}

/// Signs `text` (a note text such as [`Checkpoint::to_body`]) as `key_name` and returns the
/// signed note: the text, a blank line and one signature line (c2sp.org/signed-note).
///
/// `sign` receives the exact bytes to sign (the note text) and returns a raw Ed25519 signature
/// (RFC 8032) made with the private key of `public_key`. The signature is verified with
/// `public_key` before the note is returned, so a mismatched key never yields a note that
/// clients reject.
pub fn sign_note<E>(
    text: &str,
    key_name: &str,
    sign: impl FnOnce(&[u8]) -> Result<[u8; 64], E>,
    public_key: &[u8; 32],
) -> Result<String, SignNoteError<E>> {
    let key = VerifierKey::new(key_name, *public_key)?;
    if text.len() > MAX_NOTE_LEN / 2 {
        return Err(err(format!(
            "note text is `{}` bytes, over the limit of `{}`; sign a checkpoint, not a document",
            text.len(),
            MAX_NOTE_LEN / 2
        ))
        .into());
    }
    if !text.ends_with('\n') {
        return Err(err("note text does not end in a newline; end it with `\\n`").into());
    }
    check_controls(text, "note text")?;
    let sig = sign(text.as_bytes()).map_err(SignNoteError::Signer)?;
    if !key.verifies(text.as_bytes(), &sig) {
        return Err(err(format!(
            "the signature made for `{}+{:08x}` does not verify with its public key; the signer holds a different key",
            key.name, key.key_hash
        ))
        .into());
    }
    let mut blob = Vec::with_capacity(4 + ED25519_SIG_LEN);
    blob.extend_from_slice(&key.key_hash.to_be_bytes());
    blob.extend_from_slice(&sig);
    Ok(format!(
        "{text}\n{SIG_PREFIX}{} {}\n",
        key.name,
        STANDARD.encode(blob)
    ))
}

/// Verifies a signed note (c2sp.org/signed-note) against `verifier` and returns its text.
///
/// Every signature line must be well formed. Lines from other keys (another name or key hash)
/// are ignored; every line from `verifier` must verify, and at least one must be present.
pub fn verify_note<'a>(note: &'a [u8], verifier: &VerifierKey) -> Result<&'a str, FormatError> {
    if note.len() > MAX_NOTE_LEN {
        return Err(err(format!(
            "note is `{}` bytes, over the limit of `{MAX_NOTE_LEN}`; this is not a checkpoint",
            note.len()
        )));
    }
    let note = std::str::from_utf8(note).map_err(|e| {
        err(format!(
            "note is not UTF-8 (bad byte at offset `{}`); notes are UTF-8 text",
            e.valid_up_to()
        ))
    })?;
    check_controls(note, "note")?;
    let Some(split) = note.rfind("\n\n") else {
        return Err(err(
            "note has no blank line before its signatures; a signed note is text, a blank line, then signature lines",
        ));
    };
    let (Some(text), Some(sigs)) = (note.get(..=split), note.get(split + 2..)) else {
        return Err(err("note has no signature lines after its blank line"));
    };
    if sigs.is_empty() {
        return Err(err(
            "note has no signature lines after its blank line; fetch the signed checkpoint, not its body",
        ));
    }
    let Some(sigs) = sigs.strip_suffix('\n') else {
        return Err(err(
            "note's last signature line does not end in a newline; the note was truncated",
        ));
    };

    let mut verified = 0usize;
    let mut same_name_hashes = Vec::new();
    for (n, line) in sigs.split('\n').enumerate() {
        if n >= MAX_SIGNATURES {
            return Err(err(format!(
                "note has more than `{MAX_SIGNATURES}` signature lines; this is not a checkpoint"
            )));
        }
        let sig_line = line.strip_prefix(SIG_PREFIX).ok_or_else(|| {
            err(format!(
                "signature line `{}` does not start with an em dash (U+2014) and a space",
                snippet(line)
            ))
        })?;
        let (name, b64) = sig_line.split_once(' ').ok_or_else(|| {
            err(format!(
                "signature line `{}` is not `— <key name> <signature>`",
                snippet(line)
            ))
        })?;
        check_key_name(name)?;
        let blob = STANDARD.decode(b64).map_err(|_| {
            err(format!(
                "signature of `{}` is not padded standard base64",
                snippet(name)
            ))
        })?;
        let (Some(hash), Some(sig)) = (blob.first_chunk::<4>(), blob.get(4..)) else {
            return Err(err(format!(
                "signature of `{}` is `{}` bytes, too short to hold a key hash and a signature",
                snippet(name),
                blob.len()
            )));
        };
        if sig.is_empty() {
            return Err(err(format!(
                "signature of `{}` has a key hash but no signature",
                snippet(name)
            )));
        }
        let hash = u32::from_be_bytes(*hash);
        if name != verifier.name {
            continue;
        }
        if hash != verifier.key_hash {
            same_name_hashes.push(hash);
            continue;
        }
        if sig.len() != ED25519_SIG_LEN || !verifier.verifies(text.as_bytes(), sig) {
            return Err(err(format!(
                "signature by `{}+{:08x}` does not verify over the note; the note was altered, do not trust it",
                verifier.name, verifier.key_hash
            )));
        }
        verified += 1;
    }
    if verified == 0 {
        let hint = match same_name_hashes.first() {
            Some(other) => format!(
                "it is signed by `{}+{other:08x}`, another key of that name; get the log's current verifier key",
                verifier.name
            ),
            None => "check that the note comes from this log".to_owned(),
        };
        return Err(err(format!(
            "note has no signature by `{}+{:08x}`; {hint}",
            verifier.name, verifier.key_hash
        )));
    }
    Ok(text)
}

/// Verifies a signed checkpoint against `verifier` (see [`verify_note`]) and parses its body
/// (see [`Checkpoint::parse_body`]). Accepts the note as bytes or text.
pub fn open_note(
    note: impl AsRef<[u8]>,
    verifier: &VerifierKey,
) -> Result<Checkpoint, FormatError> {
    Checkpoint::parse_body(verify_note(note.as_ref(), verifier)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_three_lines() -> Result<(), FormatError> {
        let cp = Checkpoint {
            origin: "signet.example/audit".into(),
            size: 0,
            root: [0; 32],
        };
        let body = cp.to_body()?;
        assert_eq!(
            body,
            "signet.example/audit\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
        );
        assert_eq!(Checkpoint::parse_body(&body)?, cp);
        Ok(())
    }

    #[test]
    fn sizes_are_canonical_decimal() {
        for bad in [
            "",
            "01",
            "+1",
            "-1",
            " 1",
            "1 ",
            "0x1",
            "18446744073709551616",
            "1e3",
        ] {
            assert!(parse_size(Some(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(parse_size(Some("0")).ok(), Some(0));
        assert_eq!(
            parse_size(Some("18446744073709551615")).ok(),
            Some(u64::MAX)
        );
    }

    #[test]
    fn key_names_follow_the_spec() {
        for bad in [
            "",
            "a b",
            "a+b",
            "a\tb",
            "a\u{a0}b",
            "a\u{2003}b",
            "a\u{7}b",
        ] {
            assert!(check_key_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_key_name("signet.example/audit").is_ok());
        assert!(check_key_name("ünïcødé").is_ok());
    }

    #[test]
    fn snippets_are_short() {
        let long = "x".repeat(500);
        assert_eq!(snippet(&long).chars().count(), 61);
        assert_eq!(snippet("short"), "short");
    }
}
