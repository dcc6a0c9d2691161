//! Signed checkpoints: round trips, tampering, malformed notes, verifier keys, and interop with
//! the reference implementation (`golang.org/x/mod/sumdb/note`) through vectors it produced.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::digest;
use aws_lc_rs::error::Unspecified;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use signet_formats::FormatError;
use signet_formats::checkpoint::{
    Checkpoint, MAX_NOTE_LEN, SignNoteError, VerifierKey, key_hash, open_note, sign_note,
    verify_note,
};

const NAME: &str = "signet.example/audit";

struct Key {
    pair: Ed25519KeyPair,
    name: String,
}

impl Key {
    fn generate(name: &str) -> Key {
        Key {
            pair: Ed25519KeyPair::generate().unwrap(),
            name: name.to_owned(),
        }
    }

    fn public(&self) -> [u8; 32] {
        self.pair.public_key().as_ref().try_into().unwrap()
    }

    fn verifier(&self) -> VerifierKey {
        VerifierKey::new(&self.name, self.public()).unwrap()
    }

    fn sign(&self, text: &str) -> String {
        sign_note(
            text,
            &self.name,
            |msg| Ok::<_, Unspecified>(self.pair.sign(msg).as_ref().try_into().unwrap()),
            &self.public(),
        )
        .unwrap()
    }
}

fn checkpoint() -> Checkpoint {
    Checkpoint {
        origin: NAME.into(),
        size: 4711,
        root: *b"0123456789abcdef0123456789abcdef",
    }
}

fn signed() -> (Key, String) {
    let key = Key::generate(NAME);
    let note = key.sign(&checkpoint().to_body().unwrap());
    (key, note)
}

fn message(r: Result<Checkpoint, FormatError>) -> String {
    match r {
        Ok(cp) => panic!("opened, but should not have: {cp:?}"),
        Err(FormatError::Checkpoint(m)) => m,
        Err(e) => panic!("wrong error variant: {e}"),
    }
}

/// The signature line's blob (key hash || signature), decoded.
fn blob_of(note: &str) -> Vec<u8> {
    let line = note.lines().last().unwrap();
    let b64 = line.rsplit(' ').next().unwrap();
    STANDARD.decode(b64).unwrap()
}

fn with_blob(note: &str, blob: &[u8]) -> String {
    let (head, line) = note.trim_end_matches('\n').rsplit_once('\n').unwrap();
    let (prefix, _) = line.rsplit_once(' ').unwrap();
    format!("{head}\n{prefix} {}\n", STANDARD.encode(blob))
}

#[test]
fn sign_and_open_round_trip() {
    let (key, note) = signed();
    let body = checkpoint().to_body().unwrap();
    assert!(note.starts_with(&format!("{body}\n\u{2014} {NAME} ")));
    assert!(note.ends_with('\n'));
    assert_eq!(note.lines().count(), 5);
    assert_eq!(open_note(&note, &key.verifier()).unwrap(), checkpoint());
    assert_eq!(
        open_note(note.as_bytes(), &key.verifier()).unwrap(),
        checkpoint()
    );
    assert_eq!(verify_note(note.as_bytes(), &key.verifier()).unwrap(), body);
    // The blob is the key hash, then a 64-byte Ed25519 signature.
    let blob = blob_of(&note);
    assert_eq!(blob.len(), 68);
    assert_eq!(blob[..4], key.verifier().key_hash().to_be_bytes());
}

#[test]
fn tampering_with_any_part_is_rejected() {
    let (key, note) = signed();
    let v = key.verifier();
    let body = checkpoint().to_body().unwrap();
    let sig_part = note.strip_prefix(&body).unwrap();

    // Origin, size and root, each changed under the same signature.
    for changed in [
        Checkpoint {
            origin: "signet.example/other".into(),
            ..checkpoint()
        },
        Checkpoint {
            size: 4712,
            ..checkpoint()
        },
        Checkpoint {
            root: *b"0123456789abcdef0123456789abcdeF",
            ..checkpoint()
        },
    ] {
        let forged = format!("{}{sig_part}", changed.to_body().unwrap());
        let m = message(open_note(&forged, &v));
        assert!(m.contains("does not verify"), "{m}");
    }
    // An extension line smuggled into the signed text.
    let forged = format!("{body}extra\n{sig_part}");
    assert!(open_note(&forged, &v).is_err());

    // Every byte of the signature.
    let blob = blob_of(&note);
    for i in 4..blob.len() {
        let mut b = blob.clone();
        b[i] ^= 0x01;
        let m = message(open_note(with_blob(&note, &b), &v));
        assert!(m.contains("does not verify"), "byte {i}: {m}");
    }
    // The key hash: the signature is then from an unknown key, so there is none from ours.
    for i in 0..4 {
        let mut b = blob.clone();
        b[i] ^= 0x80;
        let m = message(open_note(with_blob(&note, &b), &v));
        assert!(m.contains("no signature by"), "{m}");
        assert!(m.contains("another key of that name"), "{m}");
    }
    // The key name on the signature line.
    let renamed = note.replace(
        &format!("\u{2014} {NAME} "),
        "\u{2014} signet.example/evil ",
    );
    let m = message(open_note(&renamed, &v));
    assert!(m.contains("no signature by"), "{m}");

    // Verifiers for another name or another key.
    let other_name = VerifierKey::new("signet.example/other", key.public()).unwrap();
    assert!(open_note(&note, &other_name).is_err());
    let other_key = Key::generate(NAME).verifier();
    assert!(open_note(&note, &other_key).is_err());
    // A truncated signature.
    assert!(open_note(with_blob(&note, &blob[..67]), &v).is_err());
    assert!(open_note(with_blob(&note, &blob[..5]), &v).is_err());
}

#[test]
fn other_signers_are_ignored() {
    let (key, note) = signed();
    let body = checkpoint().to_body().unwrap();
    let ours = note.strip_prefix(&format!("{body}\n")).unwrap();
    let witness = Key::generate("witness.example/w1");
    let theirs = witness
        .sign(&body)
        .strip_prefix(&format!("{body}\n"))
        .unwrap()
        .to_owned();
    // A signature by a key of our name but another key hash is not ours: ignored too.
    let rotated = Key::generate(NAME);
    let old = rotated
        .sign(&body)
        .strip_prefix(&format!("{body}\n"))
        .unwrap()
        .to_owned();

    for sigs in [
        format!("{ours}{theirs}"),
        format!("{theirs}{ours}"),
        format!("{theirs}{old}{ours}"),
        format!("{ours}{ours}"),
    ] {
        let both = format!("{body}\n{sigs}");
        assert_eq!(open_note(&both, &key.verifier()).unwrap(), checkpoint());
    }
    let both = format!("{body}\n{theirs}{ours}");
    assert_eq!(open_note(&both, &witness.verifier()).unwrap(), checkpoint());
    // Only other signers: rejected.
    let m = message(open_note(format!("{body}\n{theirs}"), &key.verifier()));
    assert!(m.contains("no signature by"), "{m}");
    // A bad signature by our key is fatal even next to a good one.
    let mut bad = blob_of(&note);
    bad[10] ^= 1;
    let bad_line = with_blob(&note, &bad);
    let bad_ours = bad_line.strip_prefix(&format!("{body}\n")).unwrap();
    assert!(open_note(format!("{body}\n{ours}{bad_ours}"), &key.verifier()).is_err());
    // A malformed line from anyone makes the note malformed, as in Go's note.Open.
    let m = message(open_note(
        format!("{body}\n{ours}\u{2014} witness.example/w1 !!!\n"),
        &key.verifier(),
    ));
    assert!(m.contains("not padded standard base64"), "{m}");
}

#[test]
fn malformed_notes_are_rejected() {
    let (key, note) = signed();
    let v = key.verifier();
    let body = checkpoint().to_body().unwrap();
    let sig_line = note.strip_prefix(&format!("{body}\n")).unwrap();

    let cases: Vec<(String, &str)> = vec![
        (body.clone(), "no blank line"),
        (format!("{body}\n"), "no signature lines"),
        (
            note.trim_end_matches('\n').to_owned(),
            "does not end in a newline",
        ),
        (note.replace('\u{2014}', "-"), "em dash"),
        (note.replace(&format!("{NAME} "), NAME), "is not"),
        (note.replace("\n", "\r\n"), "carriage return"),
        (format!("\u{7}{note}"), "control character `U+0007`"),
        (format!("{note}trailing\n"), "em dash"),
        (format!("{body}\n\u{2014} {NAME} AAAA\n"), "too short"),
        (
            format!("{body}\n\u{2014} {NAME} AAAAAAA=\n"),
            "no signature",
        ),
        (
            format!("{body}\n\u{2014} a+b {}\n", STANDARD.encode([0u8; 68])),
            "key name",
        ),
        (
            format!("{body}\n{}", sig_line.repeat(101)),
            "more than `100` signature lines",
        ),
    ];
    for (bad, want) in cases {
        let m = message(open_note(&bad, &v));
        assert!(m.contains(want), "{bad:?}: {m} (wanted {want:?})");
    }

    // Not UTF-8.
    let mut bytes = note.clone().into_bytes();
    bytes[3] = 0xff;
    let m = message(open_note(&bytes, &v));
    assert!(m.contains("not UTF-8"), "{m}");

    // Over the size cap, before any parsing.
    let huge = format!("{}{note}", "x".repeat(MAX_NOTE_LEN));
    let m = message(open_note(&huge, &v));
    assert!(m.contains("over the limit"), "{m}");
}

#[test]
fn malformed_bodies_are_rejected_even_when_signed() {
    let key = Key::generate(NAME);
    let root = STANDARD.encode([7u8; 32]);
    let short_root = STANDARD.encode([7u8; 31]);
    let cases = [
        (format!("{NAME}\n01\n{root}\n"), "leading zeros"),
        (format!("{NAME}\n-1\n{root}\n"), "not a decimal"),
        (format!("{NAME}\n1 \n{root}\n"), "not a decimal"),
        (format!("{NAME}\n\n{root}\n"), "not a decimal"),
        (format!("{NAME}\n18446744073709551616\n{root}\n"), "64 bits"),
        (format!("{NAME}\n5\n{short_root}\n"), "`31` bytes"),
        (
            format!("{NAME}\n5\n{}\n", root.trim_end_matches('=')),
            "base64",
        ),
        (format!("{NAME}\n5\n"), "no root hash"),
        (format!("{NAME}\n"), "no tree size"),
        (format!("\n5\n{root}\n"), "origin (line 1) is empty"),
    ];
    for (body, want) in cases {
        let note = key.sign(&body);
        let m = message(open_note(&note, &key.verifier()));
        assert!(m.contains(want), "{body:?}: {m} (wanted {want:?})");
    }
    // An empty extension line: the note text then ends in a blank line.
    let m = message(Checkpoint::parse_body(&format!("{NAME}\n5\n{root}\n\n")));
    assert!(m.contains("extension lines must not be empty"), "{m}");
    // Bodies that are not note texts at all.
    assert!(Checkpoint::parse_body(&format!("{NAME}\n5\n{root}")).is_err());
    assert!(Checkpoint::parse_body(&format!("{NAME}\r\n5\r\n{root}\r\n")).is_err());
}

#[test]
fn extension_lines_are_accepted_and_dropped() {
    let key = Key::generate(NAME);
    let mut body = checkpoint().to_body().unwrap();
    body.push_str("timestamp 1700000000\nanother extension\n");
    let note = key.sign(&body);
    assert_eq!(open_note(&note, &key.verifier()).unwrap(), checkpoint());
}

#[test]
fn empty_tree_and_largest_size() {
    let key = Key::generate(NAME);
    for size in [0, 1, u64::MAX] {
        let cp = Checkpoint {
            size,
            ..checkpoint()
        };
        let note = key.sign(&cp.to_body().unwrap());
        assert_eq!(open_note(&note, &key.verifier()).unwrap(), cp);
    }
}

#[test]
fn bodies_that_cannot_be_produced_are_refused() {
    for origin in ["", "two\nlines", "cr\rhere"] {
        let cp = Checkpoint {
            origin: origin.into(),
            ..checkpoint()
        };
        assert!(cp.to_body().is_err(), "{origin:?}");
    }
}

#[test]
fn sign_note_refuses_bad_input_and_mismatched_keys() {
    let key = Key::generate(NAME);
    let body = checkpoint().to_body().unwrap();
    let good = |msg: &[u8]| Ok::<_, Unspecified>(key.pair.sign(msg).as_ref().try_into().unwrap());

    // The callback's error comes back as the signer's.
    let r = sign_note(&body, NAME, |_| Err(Unspecified), &key.public());
    assert!(matches!(r, Err(SignNoteError::Signer(Unspecified))));
    // A key name the format cannot carry, and a text that is not a note text.
    for name in ["", "has space", "has+plus"] {
        let r = sign_note(&body, name, good, &key.public());
        assert!(matches!(r, Err(SignNoteError::Note(_))), "{name:?}");
    }
    for text in ["no newline", "cr\r\n", ""] {
        let r = sign_note(text, NAME, good, &key.public());
        assert!(matches!(r, Err(SignNoteError::Note(_))), "{text:?}");
    }
    // A signer holding another key than the public key says.
    let other = Key::generate(NAME);
    let r = sign_note(&body, NAME, good, &other.public());
    match r {
        Err(SignNoteError::Note(FormatError::Checkpoint(m))) => {
            assert!(m.contains("signer holds a different key"), "{m}")
        }
        other => panic!("expected a mismatch error, got {other:?}"),
    }
}

#[test]
fn verifier_keys_round_trip_and_reject_manglings() {
    let key = Key::generate(NAME);
    let v = key.verifier();
    let s = v.to_string();
    assert_eq!(VerifierKey::parse(&s).unwrap(), v);
    assert_eq!(s.parse::<VerifierKey>().unwrap(), v);
    let mut parts = s.splitn(3, '+');
    assert_eq!(parts.next(), Some(NAME));
    assert_eq!(parts.next(), Some(format!("{:08x}", v.key_hash()).as_str()));
    let key_b64 = parts.next().unwrap();
    let raw = STANDARD.decode(key_b64).unwrap();
    assert_eq!(raw[0], 0x01);
    assert_eq!(raw[1..], key.public());
    // Upper-case hex is accepted, as Go's strconv.ParseUint does; output is lower case.
    let upper = format!("{NAME}+{:08X}+{key_b64}", v.key_hash());
    assert_eq!(VerifierKey::parse(&upper).unwrap(), v);

    // Like Go's TestNewVerifier: no proper substring and no single-byte change parses.
    let b = s.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if (i, j) != (0, b.len()) {
                let sub = std::str::from_utf8(&b[i..j]).unwrap();
                assert!(VerifierKey::parse(sub).is_err(), "{sub:?}");
            }
        }
    }
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m[i] += 1;
        let changed = String::from_utf8(m).unwrap();
        assert!(VerifierKey::parse(&changed).is_err(), "{changed:?}");
    }

    // Names the spec forbids.
    for name in ["", "a b", "a+b", "tab\there", "nbsp\u{a0}here"] {
        assert!(VerifierKey::new(name, key.public()).is_err(), "{name:?}");
    }
    // Another algorithm, and a key of the wrong length (with matching hashes, so only the
    // type and length are wrong).
    let mut ecdsa = vec![0x02];
    ecdsa.extend_from_slice(&key.public());
    let h = hash_by_hand(NAME, &ecdsa);
    let m = message(
        VerifierKey::parse(&format!("{NAME}+{h:08x}+{}", STANDARD.encode(&ecdsa)))
            .map(|_| checkpoint()),
    );
    assert!(m.contains("signature type `0x02`"), "{m}");
    let mut long = vec![0x01];
    long.extend_from_slice(&[9u8; 33]);
    let h = hash_by_hand(NAME, &long);
    let m = message(
        VerifierKey::parse(&format!("{NAME}+{h:08x}+{}", STANDARD.encode(&long)))
            .map(|_| checkpoint()),
    );
    assert!(m.contains("`33`-byte public key"), "{m}");
    let m =
        message(VerifierKey::parse(&format!("{NAME}+00000000+{key_b64}")).map(|_| checkpoint()));
    assert!(m.contains("says key hash `00000000`"), "{m}");
}

/// The key hash from the formula of c2sp.org/signed-note, computed here and not by the module:
/// `SHA-256(key name || 0x0A || type || public key)[:4]`, big-endian. `typed_key` is
/// `type || public key`.
fn hash_by_hand(name: &str, typed_key: &[u8]) -> u32 {
    let mut input = name.as_bytes().to_vec();
    input.push(0x0a);
    input.extend_from_slice(typed_key);
    let d = digest::digest(&digest::SHA256, &input);
    u32::from_be_bytes(d.as_ref()[..4].try_into().unwrap())
}

#[test]
fn key_hash_matches_the_spec_formula() {
    for name in [NAME, "a", "ünïcødé/log"] {
        let key = Key::generate(name);
        let mut typed = vec![0x01];
        typed.extend_from_slice(&key.public());
        let expected = hash_by_hand(name, &typed);
        assert_eq!(key_hash(name, &key.public()), expected);
        assert_eq!(key.verifier().key_hash(), expected);
    }
    // A fixed vector: the all-zero key named "signet".
    let mut typed = vec![0x01];
    typed.extend_from_slice(&[0u8; 32]);
    assert_eq!(
        key_hash("signet", &[0u8; 32]),
        hash_by_hand("signet", &typed)
    );
}

// ---- interop: vectors produced by the reference implementation ----
//
// Go is not installed here and golang.org/x/mod cannot be fetched, so the reference is checked
// through its own published test vectors (golang.org/x/mod/sumdb/note, note_test.go) and a
// checkpoint served by sum.golang.org, whose production log signs with that package.

const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                       then you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

#[test]
fn go_reference_verifier_keys_parse() {
    let peter = VerifierKey::parse(PETER_VKEY).unwrap();
    assert_eq!(peter.name(), "PeterNeumann");
    assert_eq!(peter.key_hash(), 0xc74f20a3);
    assert_eq!(key_hash("PeterNeumann", peter.public_key()), 0xc74f20a3);
    assert_eq!(peter.to_string(), PETER_VKEY);
    let enoch = VerifierKey::parse(ENOCH_VKEY).unwrap();
    assert_eq!(enoch.key_hash(), 0xaf0cfe78);
    assert_eq!(enoch.to_string(), ENOCH_VKEY);
    // Go's own rejected manglings: wrong key length and unknown algorithm, hashes adjusted.
    assert!(
        VerifierKey::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
        .is_err()
    );
    assert!(
        VerifierKey::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .is_err()
    );
}

#[test]
fn go_reference_notes_verify() {
    let peter = VerifierKey::parse(PETER_VKEY).unwrap();
    let enoch = VerifierKey::parse(ENOCH_VKEY).unwrap();
    let note = format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    assert_eq!(verify_note(note.as_bytes(), &peter).unwrap(), GO_TEXT);
    assert_eq!(verify_note(note.as_bytes(), &enoch).unwrap(), GO_TEXT);
    // Go's "invalid signature" probe: four characters spliced into the signature.
    let spliced = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert!(verify_note(format!("{GO_TEXT}\n{spliced}").as_bytes(), &peter).is_err());
    // The text is not a checkpoint, so open_note verifies and then refuses the body.
    let m = message(open_note(&note, &peter));
    assert!(m.contains("tree size"), "{m}");
}

#[test]
fn signing_reproduces_the_go_reference_byte_for_byte() {
    // The signer key is `PRIVATE+KEY+<name>+<hash>+base64(0x01 || 32-byte seed)`; the base64
    // may itself contain `+`.
    let seed_b64 = PETER_SKEY.splitn(5, '+').nth(4).unwrap();
    let typed_seed = STANDARD.decode(seed_b64).unwrap();
    assert_eq!(typed_seed[0], 0x01);
    let pair = Ed25519KeyPair::from_seed_unchecked(&typed_seed[1..]).unwrap();
    let public: [u8; 32] = pair.public_key().as_ref().try_into().unwrap();
    let note = sign_note(
        GO_TEXT,
        "PeterNeumann",
        |msg| Ok::<_, Unspecified>(pair.sign(msg).as_ref().try_into().unwrap()),
        &public,
    )
    .unwrap();
    // Go's TestSign expects exactly this output (Ed25519 is deterministic).
    assert_eq!(note, format!("{GO_TEXT}\n{PETER_SIG}"));
    assert_eq!(
        VerifierKey::new("PeterNeumann", public)
            .unwrap()
            .to_string(),
        PETER_VKEY
    );
}

#[test]
fn a_real_sum_golang_org_checkpoint_opens() {
    // The key Go's toolchain trusts for sum.golang.org (note the `+` inside the base64), and a
    // checkpoint it served (recorded in sigsum-go's design notes).
    let vkey = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
    let note = "go.sum database tree\n49189689\nftjbAOzaupaIvaPo/G+Dk63nxOZ2s1OPOKIaPtXs7S4=\n\n\
                \u{2014} sum.golang.org Az3grlKZssqRoMNPpZfKt0TphbbcF+pzXqElURJKRNFKfaUAgqeI5k2AORH0QAhg/ebRwyIqD/OqP4oLtLnNumvOBAM=\n";
    let v = VerifierKey::parse(vkey).unwrap();
    assert_eq!(v.to_string(), vkey);
    let cp = open_note(note, &v).unwrap();
    assert_eq!(cp.origin, "go.sum database tree");
    assert_eq!(cp.size, 49189689);
    assert_eq!(
        STANDARD.encode(cp.root),
        "ftjbAOzaupaIvaPo/G+Dk63nxOZ2s1OPOKIaPtXs7S4="
    );
    assert!(open_note(note.replace("49189689", "49189690"), &v).is_err());
}

#[test]
fn error_messages_follow_the_project_style() {
    let (key, note) = signed();
    let other = Key::generate(NAME).verifier();
    let e = open_note(&note, &other).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "invalid checkpoint: note has no signature by `{NAME}+{:08x}`; it is signed by `{NAME}+{:08x}`",
            other.key_hash(),
            key.verifier().key_hash()
        )),
        "{e}"
    );
}
