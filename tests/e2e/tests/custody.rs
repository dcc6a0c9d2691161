//! End-to-end tests of key custody (issue 5: sealing the key-encryption key, hardening): the
//! real `signetd` and `signet` binaries, the Shamir shares `signetd init` hands out, and the
//! private keys recovered *independently of Signet's code* (Python's `cryptography`, Shamir
//! recombination written here) to prove that none of their bytes is stored or logged anywhere.
//!
//! Each test runs its own server on its own data directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde_json::Value;
use sha2::Digest as _;
use signet_e2e::*;

const SIGN: &str = "/api/v1/sign";
const KEYS: &str = "/api/v1/keys";
const STATUS: &str = "/api/v1/status";
const READYZ: &str = "/readyz";
const SEAL_STATUS: &str = "/api/v1/operator/seal-status";
const UNSEAL: &str = "/api/v1/operator/unseal";
const SEAL: &str = "/api/v1/operator/seal";
const ROTATE_KEK: &str = "/api/v1/operator/rotate-kek";
/// The start of the dev-mode warning (`signet_server::serve::DEV_MODE_WARNING`).
const DEV_WARNING: &str = "dev mode: the key-encryption key is a local file";
const SHARE_PREFIX: &str = "signet-share-v1-";

// ---- servers ----------------------------------------------------------------------------------

/// A production-custody server (`threshold` of `shares`), sealed, logging at debug level so the
/// secret scans see as much log as possible.
fn shamir_server(threshold: u8, shares: u8) -> Server {
    let s = Server::start_with(ServeOptions {
        shamir: Some((threshold, shares)),
        env: vec![("SIGNET_LOG".into(), "debug".into())],
        ..ServeOptions::default()
    })
    .unwrap();
    assert_eq!(
        s.shares().len(),
        usize::from(shares),
        "init printed the wrong number of shares: {:?}",
        s.shares()
    );
    s
}

fn admin(s: &Server) -> Option<&str> {
    Some(s.admin_token())
}

fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// `signetd serve` on a data directory made by hand (the harness serves only its own). Dropping
/// it sends SIGTERM (then SIGKILL).
struct Spawned {
    child: Option<Child>,
    url: String,
    client: reqwest::blocking::Client,
    ca: PathBuf,
    log: PathBuf,
}

impl Spawned {
    fn start(data_dir: &Path, log: &Path, extra: &[&str]) -> Result<Spawned> {
        let ca = data_dir.join("tls/cert.pem");
        let client = client_trusting(&std::fs::read(&ca)?)?;
        let mut cmd = signetd()?;
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(File::create(log)?));
        let mut child = cmd.spawn().context("cannot start signetd serve")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut sp = Spawned {
            child: Some(child),
            url: String::new(),
            client,
            ca,
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while sp.url.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.trim().strip_prefix("signetd listening on ") {
                        sp.url = url.trim_end_matches('/').to_owned();
                    }
                }
                Err(_) => bail!(
                    "signetd never announced its address\n--- log ---\n{}",
                    sp.logs()
                ),
            }
        }
        for _ in 0..200 {
            if sp
                .client
                .get(format!("{}/healthz", sp.url))
                .send()
                .is_ok_and(|r| r.status().as_u16() == 200)
            {
                return Ok(sp);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("signetd never became healthy\n--- log ---\n{}", sp.logs())
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn get(&self, path: &str) -> Result<(u16, Value)> {
        let r = self.client.get(format!("{}{path}", self.url)).send()?;
        let status = r.status().as_u16();
        Ok((
            status,
            serde_json::from_str(&r.text()?).unwrap_or(Value::Null),
        ))
    }

    /// `signet ARGS` against this server (no token), with `stdin` when given.
    fn signet(&self, config_home: &Path, args: &[&str], stdin: Option<&[u8]>) -> CliOutput {
        let mut cmd = signet(config_home).unwrap();
        cmd.env("SIGNET_URL", &self.url)
            .env("SIGNET_CA", &self.ca)
            .args(args);
        run_cli(&mut cmd, stdin).unwrap()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = send_signal(child.id(), "TERM");
            if !matches!(
                wait_timeout(&mut child, Duration::from_secs(15)),
                Ok(Some(_))
            ) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

// ---- shares -----------------------------------------------------------------------------------

/// The fields of a `signet-share-v1-<set>-<threshold>-<index>-<hex>-<check>` line.
#[derive(Debug, Clone)]
struct ShareParts {
    set: String,
    threshold: u8,
    index: u8,
    /// The hex share body (the secret part).
    body: String,
}

fn parts(share: &str) -> ShareParts {
    let rest = share
        .trim()
        .strip_prefix(SHARE_PREFIX)
        .unwrap_or_else(|| panic!("not a share line: {share}"));
    let f: Vec<&str> = rest.split('-').collect();
    assert_eq!(f.len(), 5, "a share has 5 fields after the prefix: {share}");
    ShareParts {
        set: f[0].to_owned(),
        threshold: f[1].parse().unwrap(),
        index: f[2].parse().unwrap(),
        body: f[3].to_owned(),
    }
}

/// A share line built by hand with a valid typo check (the check is a plain, unkeyed SHA-256
/// prefix, so anyone can make one).
fn forge_share(set: &str, threshold: u8, index: u8, body_hex: &str) -> String {
    let body = format!("{SHARE_PREFIX}{set}-{threshold}-{index}-{body_hex}");
    let check = hex::encode(&sha2::Sha256::digest(body.as_bytes())[..4]);
    format!("{body}-{check}")
}

/// `share` with one hex digit of its body changed: a custodian's typo.
fn typo(share: &str) -> String {
    let body = parts(share).body;
    let pos = share.find(&body).unwrap() + body.len() / 2;
    let mut bytes = share.as_bytes().to_vec();
    bytes[pos] = if bytes[pos] == b'0' { b'1' } else { b'0' };
    let out = String::from_utf8(bytes).unwrap();
    assert_ne!(out, share);
    out
}

fn seal_status(s: &Server) -> Value {
    let (status, v) = s.get(SEAL_STATUS, None).unwrap();
    assert_eq!(status, 200, "seal-status: {v}");
    v
}

fn progress(s: &Server) -> u64 {
    let v = seal_status(s);
    v["progress"]
        .as_u64()
        .unwrap_or_else(|| panic!("no progress: {v}"))
}

/// `POST /api/v1/operator/unseal` with no token.
fn submit(s: &Server, share: &str) -> Response {
    s.post_resp(UNSEAL, None, &json!({ "share": share }))
        .unwrap()
}

/// Submits shares that must each be accepted; only the last one unseals.
fn unseal_with(s: &Server, shares: &[&str]) {
    for (i, share) in shares.iter().enumerate() {
        let r = submit(s, share);
        assert_eq!(
            r.status,
            200,
            "share {} of {}: {}",
            i + 1,
            shares.len(),
            r.text
        );
        let v = r.json().unwrap();
        let last = i + 1 == shares.len();
        assert_eq!(
            v["sealed"],
            !last,
            "after share {} of {}: {v}",
            i + 1,
            shares.len()
        );
        if !last {
            assert_eq!(v["progress"], i + 1, "after share {}: {v}", i + 1);
        }
    }
    let (_, st) = s.get(STATUS, None).unwrap();
    assert_eq!(st["sealed"], false, "status after unsealing: {st}");
    let r = s.get_resp(READYZ, None).unwrap();
    assert_eq!(r.status, 200, "/readyz after unsealing: {}", r.text);
}

/// Submits shares that belong to another split (another server's, or this one's before a KEK
/// rotation): the server must never unseal, must refuse them with 400 `invalid_request` (at
/// once, or when it combines them) and must end with no progress.
fn assert_shares_never_unseal(s: &Server, shares: &[&str], what: &str) {
    let mut refused = 0;
    for (i, share) in shares.iter().enumerate() {
        let r = submit(s, share);
        match r.status {
            200 => {
                let v = r.json().unwrap();
                assert_eq!(v["sealed"], true, "{what}: share {} unsealed: {v}", i + 1);
            }
            400 => {
                r.expect_problem(400, "invalid_request")
                    .unwrap_or_else(|e| panic!("{what}: share {}: {e:#}", i + 1));
                let detail = r.json().unwrap()["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                assert!(
                    detail.contains("split") || detail.contains("server"),
                    "{what}: the refusal does not say the share belongs elsewhere: {}",
                    r.text
                );
                refused += 1;
            }
            other => panic!("{what}: share {}: unexpected {other}: {}", i + 1, r.text),
        }
    }
    assert!(refused >= 1, "{what}: no share was refused");
    let v = seal_status(s);
    assert_eq!(v["sealed"], true, "{what}: {v}");
    assert_eq!(v["progress"], 0, "{what}: progress was not reset: {v}");
}

// ---- signing ----------------------------------------------------------------------------------

fn digest_for(algorithm: &str) -> &'static str {
    if algorithm == "ecdsa-p384" {
        "sha384"
    } else {
        "sha256"
    }
}

/// Signs a fresh random file with `key`, checks the signature with OpenSSL (classical
/// algorithms), and returns the public key PEM of the version that signed.
fn sign_and_verify(s: &Server, dir: &Path, key: &str, algorithm: &str) -> String {
    let data = random_bytes(700).unwrap();
    let file = write_file(dir, &unique("artifact", "bin"), &data).unwrap();
    let dalg = digest_for(algorithm);
    let digest = digest_hex(dalg, &data).unwrap();
    let resp = s
        .sign(key, dalg, &digest)
        .unwrap_or_else(|e| panic!("signing with `{key}`: {e:#}"));
    let version = resp["key_version"].as_u64().unwrap();
    let pem = s.public_key(key, version).unwrap().0;
    if let Ok(mode) = VerifyMode::for_algorithm(algorithm) {
        let sig = b64decode(resp["signature"].as_str().unwrap()).unwrap();
        assert!(
            openssl_verify(dir, mode, dalg, &pem, &file, &sig).unwrap(),
            "OpenSSL rejects the signature of `{key}` ({algorithm})"
        );
    }
    pem
}

fn sign_body(key: &str) -> Value {
    json!({"key": key, "digest_algorithm": "sha256", "digest": "ab".repeat(32)})
}

/// Everything that needs the KEK is refused with 503 `sealed`; what does not still works.
fn assert_sealed(s: &Server, key: &str, when: &str) {
    let (_, st) = s.get(STATUS, None).unwrap();
    assert_eq!(st["sealed"], true, "{when}: /api/v1/status: {st}");
    assert_eq!(seal_status(s)["sealed"], true, "{when}");
    s.post_resp(SIGN, admin(s), &sign_body(key))
        .unwrap()
        .expect_problem(503, "sealed")
        .unwrap_or_else(|e| panic!("{when}: sign: {e:#}"));
    s.post_resp(
        KEYS,
        admin(s),
        &json!({"name": "made-while-sealed", "algorithm": "ed25519"}),
    )
    .unwrap()
    .expect_problem(503, "sealed")
    .unwrap_or_else(|e| panic!("{when}: key creation: {e:#}"));
    s.get_resp(READYZ, None)
        .unwrap()
        .expect_problem(503, "sealed")
        .unwrap_or_else(|e| panic!("{when}: /readyz: {e:#}"));
    assert!(
        !s.key_names()
            .unwrap()
            .contains(&"made-while-sealed".to_owned()),
        "{when}: a key was created while sealed"
    );
}

fn audit_events_of(s: &Server, action: &str) -> Vec<Value> {
    s.audit()
        .unwrap()
        .into_iter()
        .map(|r| r["event"].clone())
        .filter(|e| e["action"] == action)
        .collect()
}

// ---- independent key recovery (Python `cryptography`) ------------------------------------------

/// Reads every software key version from the database, opens its sealed handle with AES-256-GCM
/// under the KEK (given, or recombined from Shamir shares over GF(2^8) / 0x11d) and extracts the
/// private key's secret parts. Written against the documented formats only: no Signet code.
const RECOVER_PY: &str = r#"
import json, pathlib, sqlite3, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def tlv(buf, pos):
    tag, n = buf[pos], buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    if pos + n > len(buf):
        raise ValueError("DER runs past its buffer")
    return tag, pos, pos + n

def children(buf, start, end):
    out = []
    while start < end:
        tag, s, e = tlv(buf, start)
        out.append((tag, buf[s:e]))
        start = e
    return out

def private_octets(pkcs8):
    tag, s, e = tlv(pkcs8, 0)
    kids = children(pkcs8, s, e)
    if tag != 0x30 or len(kids) < 3 or kids[1][0] != 0x30 or kids[2][0] != 0x04:
        raise ValueError("not a PKCS#8 PrivateKeyInfo")
    return kids[2][1]

def gf_mul(a, b):
    r = 0
    while b:
        if b & 1:
            r ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11D
        b >>= 1
    return r

def gf_inv(a):
    r = 1
    for _ in range(254):
        r = gf_mul(r, a)
    return r

def combine(lines):
    points = []
    for line in lines:
        raw = bytes.fromhex(line.strip().split("-")[6])
        points.append((raw[0], raw[1:]))
    xs = [x for x, _ in points]
    if len(set(xs)) != len(xs):
        raise ValueError("duplicate share index")
    secret = bytearray(len(points[0][1]))
    for i, (xi, yi) in enumerate(points):
        basis = 1
        for j, xj in enumerate(xs):
            if j != i:
                basis = gf_mul(basis, gf_mul(xj, gf_inv(xi ^ xj)))
        for k in range(len(secret)):
            secret[k] ^= gf_mul(yi[k], basis)
    return bytes(secret)

def spki_of(key):
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

def secrets_of(algorithm, pkcs8, public_key):
    priv = private_octets(pkcs8)
    out = {}
    try:
        key = serialization.load_der_private_key(pkcs8, password=None)
    except Exception:
        key = None
    matches = key is not None and spki_of(key) == public_key
    if algorithm == "ed25519":
        out["seed"] = key.private_bytes_raw()
    elif algorithm.startswith("ecdsa-"):
        size = (key.curve.key_size + 7) // 8
        out["private scalar"] = key.private_numbers().private_value.to_bytes(size, "big")
    elif algorithm.startswith("rsa-"):
        n = key.private_numbers()
        for name in ("d", "p", "q", "dmp1", "dmq1", "iqmp"):
            v = getattr(n, name)
            out[name] = v.to_bytes((v.bit_length() + 7) // 8, "big")
    elif algorithm.startswith("ml-dsa-"):
        # RFC 9881: seed [0] IMPLICIT OCTET STRING | expandedKey OCTET STRING | both SEQUENCE.
        tag, s, e = tlv(priv, 0)
        seed = expanded = None
        if tag == 0x80:
            seed = priv[s:e]
        elif tag == 0x04:
            expanded = priv[s:e]
        elif tag == 0x30:
            for _, v in children(priv, s, e):
                if len(v) == 32 and seed is None:
                    seed = v
                else:
                    expanded = v
        if seed is not None:
            out["seed"] = seed
        if expanded is not None:
            # rho (public) || K || tr (hash of the public key) || s1 || s2 || t0
            out["K"] = expanded[32:64]
            out["s1 s2 t0"] = expanded[128:]
    elif algorithm.startswith("slh-dsa-"):
        # FIPS 205: SK.seed || SK.prf || PK.seed || PK.root, n bytes each.
        n = len(priv) // 4
        out["SK.seed"] = priv[:n]
        out["SK.prf"] = priv[n:2 * n]
        matches = len(priv) == 4 * n and public_key.endswith(priv[2 * n:])
    else:
        raise ValueError("unknown algorithm " + algorithm)
    return out, matches

req = json.load(sys.stdin)
kek = bytes.fromhex(req["kek"]) if req.get("kek") else combine(req["shares"])
uri = pathlib.Path(req["db"]).resolve().as_uri() + "?mode=ro"
db = sqlite3.connect(uri, uri=True)
rows = db.execute(
    "SELECT k.name, k.id, v.version, k.algorithm, k.backend, v.public_key, v.handle "
    "FROM key_versions v JOIN keys k ON k.id = v.key_id ORDER BY k.name, v.version").fetchall()
db.close()
keys = []
for name, key_id, version, algorithm, backend, public_key, handle in rows:
    if backend != "software":
        continue
    handle = bytes(handle)
    if handle[0] != 1:
        raise ValueError(f"{name} v{version}: unknown sealed format {handle[0]}")
    aad = f"signet software key v1|{key_id}|{version}|{algorithm}".encode()
    pkcs8 = AESGCM(kek).decrypt(handle[1:13], handle[13:], aad)
    secrets, matches = secrets_of(algorithm, pkcs8, bytes(public_key))
    keys.append({
        "name": name, "version": version, "algorithm": algorithm, "handle": handle.hex(),
        "pkcs8": pkcs8.hex(), "public_matches": matches,
        "secrets": [[k, v.hex()] for k, v in secrets.items()],
    })
json.dump({"kek": kek.hex(), "keys": keys}, sys.stdout)
"#;

#[derive(Debug)]
struct RecoveredKey {
    name: String,
    version: u64,
    algorithm: String,
    handle: Vec<u8>,
    pkcs8: Vec<u8>,
    public_matches: bool,
    secrets: Vec<(String, Vec<u8>)>,
}

#[derive(Debug)]
struct Recovered {
    kek: Vec<u8>,
    keys: Vec<RecoveredKey>,
}

impl Recovered {
    fn key(&self, name: &str) -> &RecoveredKey {
        self.keys
            .iter()
            .find(|k| k.name == name)
            .unwrap_or_else(|| panic!("no recovered key `{name}`"))
    }
}

enum KekSource<'a> {
    Bytes(&'a [u8]),
    Shares(&'a [&'a str]),
}

fn require_python_cryptography() {
    let out = Command::new("python3")
        .args(["-c", "import cryptography.hazmat.primitives.ciphers.aead"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        other => panic!(
            "this test recovers keys with Python's `cryptography` package, which is missing ({other:?}); install it: `pip install cryptography` or `apt-get install -y python3-cryptography`"
        ),
    }
}

/// Recovers every software key of a stopped server's database.
fn recover_keys(db: &Path, kek: KekSource<'_>) -> Recovered {
    require_python_cryptography();
    let req = match kek {
        KekSource::Bytes(b) => json!({"db": p(db), "kek": hex::encode(b)}),
        KekSource::Shares(s) => json!({"db": p(db), "shares": s}),
    };
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(RECOVER_PY);
    let out = run_with_input(
        &mut cmd,
        Some(&serde_json::to_vec(&req).unwrap()),
        Duration::from_secs(120),
    )
    .unwrap();
    assert!(
        out.status.success(),
        "independent key recovery failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let unhex = |v: &Value| hex::decode(v.as_str().unwrap()).unwrap();
    Recovered {
        kek: unhex(&v["kek"]),
        keys: v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| RecoveredKey {
                name: k["name"].as_str().unwrap().to_owned(),
                version: k["version"].as_u64().unwrap(),
                algorithm: k["algorithm"].as_str().unwrap().to_owned(),
                handle: unhex(&k["handle"]),
                pkcs8: unhex(&k["pkcs8"]),
                public_matches: k["public_matches"].as_bool().unwrap(),
                secrets: k["secrets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|pair| (pair[0].as_str().unwrap().to_owned(), unhex(&pair[1])))
                    .collect(),
            })
            .collect(),
    }
}

// ---- the secret scanner -----------------------------------------------------------------------

struct Needle {
    label: String,
    bytes: Vec<u8>,
}

/// Looks for many byte strings at once: a bitmap of 3-byte prefixes filters the positions, so
/// megabytes of database and log are scanned for thousands of needles quickly even unoptimized.
#[derive(Default)]
struct Scanner {
    needles: Vec<Needle>,
    bitmap: Vec<u64>,
    buckets: HashMap<u32, Vec<usize>>,
}

fn prefix3(b: &[u8]) -> u32 {
    (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2])
}

/// Base64 encodings of `secret` as it would appear inside a longer encoded stream, for each of
/// the three alignments: only whole 3-byte groups, no padding.
fn base64_forms(secret: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for shift in 0..3 {
        let rest = &secret[shift.min(secret.len())..];
        let whole = &rest[..rest.len() / 3 * 3];
        out.push((
            format!("base64+{shift}"),
            base64::engine::general_purpose::STANDARD_NO_PAD
                .encode(whole)
                .into_bytes(),
        ));
        out.push((
            format!("base64url+{shift}"),
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(whole)
                .into_bytes(),
        ));
    }
    out
}

impl Scanner {
    fn add(&mut self, label: String, bytes: Vec<u8>) {
        assert!(
            bytes.len() >= 12,
            "needle `{label}` is too short to scan for"
        );
        self.needles.push(Needle { label, bytes });
    }

    /// `bytes` as raw bytes, lower/upper-case hex and base64 (standard and URL-safe, every
    /// alignment).
    fn add_encoded(&mut self, label: &str, bytes: &[u8]) {
        self.add(format!("{label} (raw)"), bytes.to_vec());
        self.add(format!("{label} (hex)"), hex::encode(bytes).into_bytes());
        self.add(
            format!("{label} (HEX)"),
            hex::encode_upper(bytes).into_bytes(),
        );
        for (form, enc) in base64_forms(bytes) {
            self.add(format!("{label} ({form})"), enc);
        }
    }

    /// A secret in every encoding; one of 64 bytes or more also as each aligned 32-byte chunk,
    /// so a partial copy of 63 bytes or more is found too. Only for bytes that are secret
    /// throughout: a PKCS#8 document also holds public parts (modulus, public point, ASN.1
    /// headers every key of the algorithm shares), so it goes in whole ([`Self::add_encoded`]).
    fn add_secret(&mut self, label: &str, secret: &[u8]) {
        self.add_encoded(label, secret);
        if secret.len() >= 64 {
            for (i, chunk) in secret.chunks_exact(32).enumerate() {
                self.add_encoded(
                    &format!("{label} [bytes {}..{}]", i * 32, i * 32 + 32),
                    chunk,
                );
            }
        }
    }

    /// A text secret (a share line) as it is.
    fn add_text(&mut self, label: &str, text: &str) {
        self.add(format!("{label} (text)"), text.as_bytes().to_vec());
    }

    /// Every private key's PKCS#8 and secret parts.
    fn add_keys(&mut self, rec: &Recovered) {
        for k in &rec.keys {
            let who = format!("key `{}` v{} ({})", k.name, k.version, k.algorithm);
            self.add_encoded(&format!("{who} PKCS#8"), &k.pkcs8);
            for (part, bytes) in &k.secrets {
                self.add_secret(&format!("{who} {part}"), bytes);
            }
        }
    }

    /// Shares: the whole line, its hex body (either case) and the share bytes in any encoding.
    fn add_shares(&mut self, label: &str, shares: &[String]) {
        for (i, share) in shares.iter().enumerate() {
            let who = format!("{label} share {}", i + 1);
            self.add_text(&format!("{who} line"), share);
            let body = parts(share).body;
            self.add_secret(&format!("{who} body"), &hex::decode(&body).unwrap());
        }
    }

    fn build(mut self) -> Scanner {
        self.bitmap = vec![0u64; (1 << 24) / 64];
        for (i, n) in self.needles.iter().enumerate() {
            let k = prefix3(&n.bytes);
            self.bitmap[(k >> 6) as usize] |= 1 << (k & 63);
            self.buckets.entry(k).or_default().push(i);
        }
        self
    }

    fn find_in(&self, hay: &[u8], found: &mut BTreeSet<String>) {
        if hay.len() < 3 {
            return;
        }
        for i in 0..hay.len() - 2 {
            let k = prefix3(&hay[i..]);
            if self.bitmap[(k >> 6) as usize] & (1 << (k & 63)) == 0 {
                continue;
            }
            for &n in &self.buckets[&k] {
                if hay[i..].starts_with(&self.needles[n].bytes) {
                    found.insert(self.needles[n].label.clone());
                }
            }
        }
    }

    /// Labels of every needle in `hay`, also with whitespace removed (PEM and wrapped lines).
    fn find(&self, hay: &[u8]) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        self.find_in(hay, &mut found);
        let squeezed: Vec<u8> = hay
            .iter()
            .copied()
            .filter(|b| !b" \t\r\n".contains(b))
            .collect();
        if squeezed.len() != hay.len() {
            self.find_in(&squeezed, &mut found);
        }
        found
    }
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let ty = entry.file_type().unwrap();
            if ty.is_dir() {
                stack.push(entry.path());
            } else if ty.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// Scans every file under the data directory and `extra_dirs`, the server's logs and `texts`
/// (API responses); returns `(where, what)` for every needle found.
fn scan_server(
    s: &Server,
    scanner: &Scanner,
    extra_dirs: &[&Path],
    texts: &[(String, String)],
) -> Vec<(String, String)> {
    let mut findings = Vec::new();
    let mut files = s.data_files().unwrap();
    assert!(
        files.iter().any(|f| f.ends_with("signet.db")),
        "the scan does not see the database: {files:?}"
    );
    for d in extra_dirs {
        files.extend(files_under(d));
    }
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for label in scanner.find(&bytes) {
            findings.push((f.display().to_string(), label));
        }
    }
    let logs = s.logs().unwrap();
    assert!(logs.len() > 200, "no server log was captured: {logs:?}");
    for label in scanner.find(logs.as_bytes()) {
        findings.push(("the server log".to_owned(), label));
    }
    for (name, text) in texts {
        for label in scanner.find(text.as_bytes()) {
            findings.push((name.clone(), label));
        }
    }
    findings
}

fn describe(findings: &[(String, String)]) -> String {
    findings
        .iter()
        .map(|(w, l)| format!("  {l} in {w}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The scanner must find planted copies of the secrets, in the shapes a careless
/// implementation would leak them, and nothing in random data: a scan that finds nothing then
/// means something.
fn scanner_self_check(scanner: &Scanner, rec: &Recovered, dir: &Path) {
    let secret = |name: &str, part: &str| -> Vec<u8> {
        rec.key(name)
            .secrets
            .iter()
            .find(|(p, _)| p == part)
            .unwrap_or_else(|| panic!("`{name}` has no `{part}`"))
            .1
            .clone()
    };
    let noise = |n: usize| random_bytes(n).unwrap();
    let rsa = rec
        .keys
        .iter()
        .find(|k| k.algorithm.starts_with("rsa-"))
        .expect("the self-check needs an RSA key");
    let ed = rec
        .keys
        .iter()
        .find(|k| k.algorithm == "ed25519" && !k.name.starts_with("signet-"))
        .expect("the self-check needs an Ed25519 key");
    let rsa_p = secret(&rsa.name, "p");
    let pem_body = base64::engine::general_purpose::STANDARD.encode(&rsa.pkcs8);
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        pem_body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let seed = secret(&ed.name, "seed");
    let mut odd_b64 = b"x".to_vec();
    odd_b64.extend_from_slice(&seed);
    odd_b64.extend_from_slice(b"tail");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "raw Ed25519 seed amid binary noise",
            [noise(3001), seed.clone(), noise(999)].concat(),
            "seed (raw)",
        ),
        (
            "raw PKCS#8 DER",
            [noise(10), rsa.pkcs8.clone(), noise(10)].concat(),
            "PKCS#8 (raw)",
        ),
        (
            "upper-case hex of an RSA prime in a log line",
            format!("DEBUG p={} done\n", hex::encode_upper(&rsa_p)).into_bytes(),
            " p (HEX)",
        ),
        (
            "a PEM private key (wrapped base64)",
            pem.into_bytes(),
            "PKCS#8 (base64+0)",
        ),
        (
            "URL-safe base64 of a seed at an odd offset",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(&odd_b64)
                .into_bytes(),
            "seed (base64url+2)",
        ),
        (
            "an 80-byte slice of an RSA prime",
            [noise(5), rsa_p[10..90].to_vec(), noise(5)].concat(),
            "p [bytes 32..64] (raw)",
        ),
    ];
    for (what, bytes, expect) in cases {
        let path = write_file(dir, &unique("planted", "bin"), &bytes).unwrap();
        let found = scanner.find(&std::fs::read(&path).unwrap());
        assert!(
            found.iter().any(|l| l.contains(expect)),
            "scanner self-check: {what} was not found as `…{expect}`; found {found:?}"
        );
    }
    let clean = noise(1 << 20);
    assert!(
        scanner.find(&clean).is_empty(),
        "scanner self-check: random data matched {:?}",
        scanner.find(&clean)
    );
}

// ---- 1. sealed start --------------------------------------------------------------------------

#[test]
fn shamir_server_starts_sealed_and_refuses_key_work() {
    let s = shamir_server(2, 3);
    let set = parts(&s.shares()[0]).set;
    for (i, share) in s.shares().iter().enumerate() {
        let pt = parts(share);
        assert_eq!(
            (pt.set.as_str(), pt.threshold, usize::from(pt.index)),
            (set.as_str(), 2, i + 1),
            "share {}: {share}",
            i + 1
        );
        // The typo check is what the format says it is, so the forged shares below are valid.
        assert_eq!(
            &forge_share(&pt.set, pt.threshold, pt.index, &pt.body),
            share
        );
    }

    let (status, st) = s.get(STATUS, None).unwrap();
    assert_eq!(status, 200);
    assert_eq!(st["sealed"], true, "{st}");
    assert_eq!(st["kek_source"], "shamir", "{st}");
    let warnings = st["warnings"].as_array().unwrap();
    assert!(
        !warnings
            .iter()
            .any(|w| w.as_str().unwrap_or_default().contains(DEV_WARNING)),
        "a production server warns about dev mode: {st}"
    );
    assert_eq!(
        seal_status(&s),
        json!({"sealed": true, "mode": "shamir", "threshold": 2, "shares": 3, "progress": 0, "share_set": set}),
    );

    assert_sealed(&s, "no-such-key", "fresh server");
    // Reading does not need the KEK; authentication still applies.
    let (status, v) = s.get(KEYS, admin(&s)).unwrap();
    assert_eq!(status, 200, "listing keys while sealed: {v}");
    assert!(v["keys"].is_array(), "{v}");
    assert_eq!(s.get_resp("/healthz", None).unwrap().status, 200);
    // The CLI shows the same state.
    let out = s.signet(["operator", "status"]).unwrap();
    out.ok().unwrap();
    assert!(
        out.stdout.contains("sealed (custody: shamir)")
            && out.stdout.contains("2 of 3")
            && out.stdout.contains("progress: 0 of 2"),
        "{}",
        out.stdout
    );
}

/// BUG (server, `SigningService::authenticate`): while sealed, a request with no token, a
/// malformed or an unknown one gets 503 `sealed` instead of 401 `unauthenticated`. The failed
/// authentication is appended to the audit log before answering, a sealed log cannot append, and
/// that error replaces the 401. `api/auth.rs` states the invariant "no header, a malformed one or
/// an unknown token all fail the same way (401)"; here a client with a wrong token is told to
/// wait for the custodians rather than to fix its token.
#[test]
fn bad_tokens_get_401_while_sealed() {
    let s = shamir_server(2, 3);
    let unknown = format!("signet_{}_{}", "0".repeat(16), "ab".repeat(32));
    let mut wrong = Vec::new();
    for (what, token) in [
        ("no token", None),
        ("a malformed token", Some("nonsense")),
        ("an unknown token", Some(unknown.as_str())),
    ] {
        for (method, path) in [("GET", KEYS), ("POST", SIGN), ("POST", SEAL)] {
            let body = (method == "POST").then(|| serde_json::to_vec(&sign_body("k")).unwrap());
            let ct = body.as_ref().map(|_| "application/json");
            let r = s.request(method, path, token, ct, body).unwrap();
            if let Err(e) = r.expect_problem(401, "unauthenticated") {
                wrong.push(format!("{method} {path} with {what}: {e:#}"));
            }
        }
    }
    // Control: a valid token is served while sealed.
    assert_eq!(s.get(KEYS, admin(&s)).unwrap().0, 200);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---- 2. the unseal ceremony -------------------------------------------------------------------

#[test]
fn unseal_ceremony_checks_every_share_and_audits_without_share_text() {
    let s = shamir_server(2, 3);
    let shares = s.shares().to_vec();
    let (one, two, three) = (&shares[0], &shares[1], &shares[2]);
    let set = parts(one).set;
    let mut responses: Vec<(String, String)> = Vec::new();
    let mut record = |what: &str, r: &Response| responses.push((what.to_owned(), r.text.clone()));

    // Bad shares change nothing: 400 and no progress.
    let random_body = format!("09{}", hex::encode(random_bytes(32).unwrap()));
    let bad: Vec<(&str, Value)> = vec![
        ("a typo", json!({"share": typo(one)})),
        ("garbage", json!({"share": "correct horse battery staple"})),
        ("empty", json!({"share": ""})),
        ("the prefix alone", json!({"share": SHARE_PREFIX})),
        ("truncated", json!({"share": &one[..one.len() - 5]})),
        ("an extra field", json!({"share": format!("{one}-00")})),
        (
            "non-hex body with a valid check",
            json!({"share": forge_share(&set, 2, 1, "zz11")}),
        ),
        (
            "index 0 with a valid check",
            json!({"share": forge_share(&set, 2, 0, &format!("00{}", "11".repeat(32)))}),
        ),
        (
            "index not matching the body",
            json!({"share": forge_share(&set, 2, 5, &random_body)}),
        ),
        (
            "threshold 0",
            json!({"share": forge_share(&set, 0, 9, &random_body)}),
        ),
        ("a huge line", json!({"share": "7".repeat(200_000)})),
        ("a number", json!({"share": 12345})),
        ("no share field", json!({"shares": one})),
    ];
    for (what, body) in &bad {
        let r = s.post_resp(UNSEAL, None, body).unwrap();
        record(what, &r);
        assert_eq!(r.status, 400, "{what}: {}", r.text);
        assert!(
            r.header("content-type")
                .unwrap_or_default()
                .starts_with(PROBLEM_JSON),
            "{what}: {}",
            r.text
        );
        assert_eq!(progress(&s), 0, "{what} changed the progress");
    }
    // The share-format errors are `invalid_request` with advice, never an echo of the share.
    let mistyped = typo(one);
    let r = submit(&s, &mistyped);
    r.expect_problem(400, "invalid_request").unwrap();
    assert!(r.text.contains("typing mistake"), "{}", r.text);
    assert!(
        !r.text.contains(&parts(&mistyped).body),
        "the error echoes the share: {}",
        r.text
    );
    record("typo", &r);

    // Share 1 counts; share 1 again is a conflict; a typo of share 2 changes nothing.
    let r = submit(&s, one);
    record("share 1", &r);
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json().unwrap();
    assert_eq!(
        (v["sealed"].clone(), v["progress"].clone()),
        (json!(true), json!(1)),
        "{v}"
    );
    let r = submit(&s, one);
    record("share 1 again", &r);
    r.expect_problem(409, "conflict").unwrap();
    let r = submit(&s, &format!("  {one}\n"));
    record("share 1 again, padded", &r);
    r.expect_problem(409, "conflict").unwrap();
    let r = submit(&s, &typo(two));
    record("typo of share 2", &r);
    r.expect_problem(400, "invalid_request").unwrap();
    assert_eq!(progress(&s), 1, "a typo changed the progress");
    assert_sealed(&s, "no-such-key", "one share of two");

    // Share 2 unseals.
    let r = submit(&s, two);
    record("share 2", &r);
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json().unwrap();
    assert_eq!(v["sealed"], false, "{v}");
    let r = submit(&s, three);
    record("share 3 after unsealing", &r);
    r.expect_problem(409, "conflict").unwrap();
    let r = s.get_resp(READYZ, None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text);

    let dir = s.scratch().unwrap();
    s.create_key("after-unseal", "ecdsa-p256").unwrap();
    sign_and_verify(&s, &dir, "after-unseal", "ecdsa-p256");

    // The audit log: one `unseal_share` per accepted share (index, never text), then `unseal`.
    let share_events = audit_events_of(&s, "unseal_share");
    let indexes: Vec<u64> = share_events
        .iter()
        .map(|e| e["custody"]["share_index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [1, 2], "unseal_share events: {share_events:?}");
    for (i, e) in share_events.iter().enumerate() {
        assert_eq!(e["outcome"]["result"], "allowed", "{e}");
        assert_eq!(e["custody"]["mode"], "shamir", "{e}");
        assert_eq!(e["custody"]["share_set"], set.as_str(), "{e}");
        assert_eq!(e["custody"]["threshold"], 2, "{e}");
        assert_eq!(e["custody"]["progress"], i + 1, "{e}");
    }
    let unseals = audit_events_of(&s, "unseal");
    assert_eq!(unseals.len(), 1, "{unseals:?}");
    assert_eq!(unseals[0]["custody"]["share_set"], set.as_str());
    let records = s.audit().unwrap();
    let pos = |action: &str| {
        records
            .iter()
            .position(|r| r["event"]["action"] == action)
            .unwrap()
    };
    assert!(
        pos("unseal_share") < pos("unseal") && pos("unseal") < pos("key_create"),
        "audit order: share submissions, then unseal, then key work"
    );

    // No share text anywhere: data dir, logs, audit export, API responses.
    let mut scanner = Scanner::default();
    scanner.add_shares("this server's", &shares);
    let scanner = scanner.build();
    // Positive control: the scanner finds a share where one is.
    assert!(
        !scanner.find(format!("x{two}y").as_bytes()).is_empty(),
        "the scanner cannot find a share"
    );
    responses.push(("the audit export".into(), s.audit_raw().unwrap()));
    responses.push((
        "seal-status".into(),
        serde_json::to_string(&seal_status(&s)).unwrap(),
    ));
    let findings = scan_server(&s, &scanner, &[], &responses);
    assert!(
        findings.is_empty(),
        "share text found:\n{}",
        describe(&findings)
    );
}

// ---- 3. shares of another server --------------------------------------------------------------

#[test]
fn shares_of_another_server_do_not_unseal_this_one() {
    let s = shamir_server(2, 3);
    let other_dir = tempfile::Builder::new()
        .prefix("signet-e2e-other-")
        .tempdir()
        .unwrap();
    let other = init_data_dir_with(
        &other_dir.path().join("data"),
        &["--shares", "3", "--threshold", "2"],
    )
    .unwrap();
    assert_eq!(other.shares.len(), 3, "{}", other.raw);
    assert_ne!(parts(&other.shares[0]).set, parts(&s.shares()[0]).set);

    // Two of the other server's shares: a valid split, just not this server's KEK.
    assert_shares_never_unseal(
        &s,
        &[&other.shares[0], &other.shares[1]],
        "the other server's shares",
    );
    assert_sealed(&s, "no-such-key", "after the other server's shares");

    // Mixed with one of ours: refused, and our share still counts.
    let r = submit(&s, &s.shares()[0]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(progress(&s), 1);
    let r = submit(&s, &other.shares[1]);
    r.expect_problem(400, "invalid_request").unwrap();
    assert_eq!(
        progress(&s),
        1,
        "a foreign share after ours changed the progress"
    );

    // Our own shares still unseal afterwards.
    let r = submit(&s, &s.shares()[2]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json().unwrap()["sealed"], false, "{}", r.text);
    assert!(
        audit_events_of(&s, "unseal_share")
            .iter()
            .all(|e| e["custody"]["share_set"] == parts(&s.shares()[0]).set.as_str()),
        "a foreign share was audited as part of the unseal"
    );
}

/// BUG (server, `Custody::submit_share`): a share whose split id is not this server's current
/// split (`seal.toml`, shown by seal-status) is accepted as the *first* share, and its
/// self-declared threshold becomes the ceremony's threshold. Since `/unseal` needs no token,
/// anyone who can reach the server can then block the custodians until a restart:
///
/// - a share of another split first → every custodian share is refused with 400 ("this share is
///   from split A but the shares submitted so far are from B");
/// - a forged share of *this* split with threshold 255 first → custodian shares are accepted but
///   the threshold is never reached, so the server never unseals.
///
/// Expected: such shares are refused at once (400, progress unchanged) and the custodians'
/// shares then unseal the server.
#[test]
fn a_share_of_another_split_or_threshold_cannot_block_the_ceremony() {
    let mut s = shamir_server(2, 3);
    let ours = s.shares().to_vec();
    let set = parts(&ours[0]).set;
    let other_dir = tempfile::Builder::new()
        .prefix("signet-e2e-other-")
        .tempdir()
        .unwrap();
    let other = init_data_dir_with(
        &other_dir.path().join("data"),
        &["--shares", "3", "--threshold", "2"],
    )
    .unwrap();
    let forged = forge_share(
        &set,
        255,
        9,
        &format!("09{}", hex::encode(random_bytes(32).unwrap())),
    );
    let mut failures = Vec::new();
    for (what, attack) in [
        ("a share of another server", other.shares[0].clone()),
        ("a forged share of this split with threshold 255", forged),
    ] {
        s.restart().unwrap();
        let r = submit(&s, &attack);
        let refused_at_once = r.status == 400 && progress(&s) == 0;
        let mut last = String::new();
        for share in [&ours[0], &ours[1]] {
            let r = submit(&s, share);
            last = format!("{} {}", r.status, r.text);
        }
        let unsealed = seal_status(&s)["sealed"] == false;
        if !refused_at_once || !unsealed {
            failures.push(format!(
                "after {what}: refused at once: {refused_at_once} ({} {}); custodians' shares unsealed: {unsealed} (last answer: {last})",
                r.status, r.text
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---- 4. restart --------------------------------------------------------------------------------

#[test]
fn restart_seals_again_and_the_cli_unseals_with_the_same_keys() {
    let mut s = shamir_server(2, 3);
    let shares = s.shares().to_vec();
    unseal_with(&s, &[&shares[0], &shares[2]]);
    let dir = s.scratch().unwrap();
    s.create_key("kept", "ed25519").unwrap();
    let pem = sign_and_verify(&s, &dir, "kept", "ed25519");

    // Progress does not survive a restart either.
    s.restart().unwrap();
    assert_sealed(&s, "kept", "after a restart");
    let r = submit(&s, &shares[1]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(progress(&s), 1);
    s.restart().unwrap();
    assert_eq!(progress(&s), 0, "unseal progress survived a restart");

    // The CLI: one custodian from a file (as `init --share-dir` writes them), one on stdin.
    let share_file = dir.join("custodian-2.txt");
    std::fs::write(&share_file, format!("{}\n", shares[1])).unwrap();
    let mut cmd = s.signet_command(None).unwrap();
    cmd.args(["operator", "unseal", "--share-file", p(&share_file)]);
    let out = run_cli(&mut cmd, None).unwrap();
    out.ok().unwrap();
    assert!(
        out.stdout.contains("progress: 1 of 2")
            && out.stdout.contains("waiting for more custodians"),
        "{}",
        out.stdout
    );
    let out = s.signet(["operator", "status", "--json"]).unwrap();
    out.ok().unwrap();
    let v = out.json().unwrap();
    assert_eq!(
        (v["sealed"].clone(), v["progress"].clone()),
        (json!(true), json!(1)),
        "{v}"
    );
    // A typo on stdin: a clear error, exit 1, nothing changes.
    let mut cmd = s.signet_command(None).unwrap();
    cmd.args(["operator", "unseal"]);
    let out = run_cli(&mut cmd, Some(format!("{}\n", typo(&shares[0])).as_bytes())).unwrap();
    out.fails_with(1, "typing mistake").unwrap();
    let mut cmd = s.signet_command(None).unwrap();
    cmd.args(["operator", "unseal"]);
    run_cli(&mut cmd, Some(b"\n"))
        .unwrap()
        .fails_with(1, "no share given")
        .unwrap();
    assert_eq!(progress(&s), 1);
    let mut cmd = s.signet_command(None).unwrap();
    cmd.args(["operator", "unseal"]);
    let out = run_cli(&mut cmd, Some(format!("{}\n", shares[0]).as_bytes())).unwrap();
    out.ok().unwrap();
    assert!(
        out.stdout.contains("the server is unsealed"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains(&parts(&shares[0]).body)
            && !out.stderr.contains(&parts(&shares[0]).body),
        "the CLI echoed the share"
    );

    // The key made before the restarts signs with the same public key.
    assert_eq!(sign_and_verify(&s, &dir, "kept", "ed25519"), pem);
    assert_eq!(s.key_names().unwrap(), ["kept"]);

    // A crash (SIGKILL) also comes back sealed.
    s.kill9().unwrap();
    s.start_serving().unwrap();
    assert_sealed(&s, "kept", "after SIGKILL");
    unseal_with(&s, &[&shares[2], &shares[1]]);
    assert_eq!(sign_and_verify(&s, &dir, "kept", "ed25519"), pem);
}

// ---- 5. emergency seal -------------------------------------------------------------------------

#[test]
fn admin_seals_in_an_emergency_and_custodians_unseal_again() {
    let s = shamir_server(2, 3);
    let shares = s.shares().to_vec();
    unseal_with(&s, &[&shares[0], &shares[1]]);
    let dir = s.scratch().unwrap();
    s.create_key("es", "ecdsa-p256").unwrap();
    let pem = sign_and_verify(&s, &dir, "es", "ecdsa-p256");
    let (_, signer) = s.create_token("ci", "signer", None).unwrap();

    // Neither a signer nor an anonymous caller can seal.
    s.post_resp(SEAL, Some(&signer), &json!({}))
        .unwrap()
        .expect_problem(403, "policy_denied")
        .unwrap();
    s.post_resp(SEAL, None, &json!({}))
        .unwrap()
        .expect_problem(401, "unauthenticated")
        .unwrap();
    let out = s.signet_as(&signer, ["operator", "seal"]).unwrap();
    assert_eq!(out.code(), Some(1), "a signer sealed with the CLI: {out:?}");
    assert_eq!(seal_status(&s)["sealed"], false);
    s.sign_as(&signer, "es", "sha256", &"cd".repeat(32))
        .unwrap();

    // The admin seals with the CLI.
    let out = s.signet(["operator", "seal"]).unwrap();
    out.ok().unwrap();
    assert!(
        out.stdout.contains("sealed (custody: shamir)"),
        "{}",
        out.stdout
    );
    assert_sealed(&s, "es", "after an emergency seal");
    s.post_resp(SIGN, Some(&signer), &sign_body("es"))
        .unwrap()
        .expect_problem(503, "sealed")
        .unwrap();
    // Sealing a sealed server is harmless.
    let (status, v) = s.post_json(SEAL, admin(&s), &json!({})).unwrap();
    assert_eq!((status, v["sealed"].clone()), (200, json!(true)), "{v}");

    // Custodians unseal; signing resumes with the same key.
    unseal_with(&s, &[&shares[2], &shares[0]]);
    assert_eq!(sign_and_verify(&s, &dir, "es", "ecdsa-p256"), pem);
    s.sign_as(&signer, "es", "sha256", &"ef".repeat(32))
        .unwrap();

    // The audit log: the seal by the admin, between the two ceremonies.
    // (The signer's refused attempts are audited as `denied`; see the denial test.)
    let seals: Vec<_> = audit_events_of(&s, "seal")
        .into_iter()
        .filter(|e| e["outcome"]["result"] != "denied")
        .collect();
    assert_eq!(seals.len(), 1, "{seals:?}");
    assert_eq!(seals[0]["outcome"]["result"], "allowed", "{}", seals[0]);
    assert_eq!(seals[0]["actor"]["role"], "admin", "{}", seals[0]);
    assert_eq!(seals[0]["custody"]["mode"], "shamir", "{}", seals[0]);
    let actions: Vec<String> = s
        .audit()
        .unwrap()
        .iter()
        .filter(|r| r["event"]["outcome"]["result"] != "denied")
        .map(|r| r["event"]["action"].as_str().unwrap().to_owned())
        .filter(|a| ["unseal_share", "unseal", "seal"].contains(&a.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            "unseal_share",
            "unseal_share",
            "unseal",
            "seal",
            "unseal_share",
            "unseal_share",
            "unseal"
        ],
        "custody events out of order"
    );
}

/// BUG (server, `SigningService::authorize_operator`): its doc says "denials are audited", and
/// every other administrative endpoint audits a signer's denied attempt (`key_create`,
/// `token_create`, … with `policy_denied`), but a denied `seal` or `rotate-kek` leaves no audit
/// entry: `Custody::seal`/`rotate` return the policy error before anything is recorded.
#[test]
fn denied_seal_and_kek_rotation_are_audited() {
    let s = shamir_server(2, 3);
    unseal_with(&s, &[&s.shares()[0], &s.shares()[1]]);
    let (_, signer) = s.create_token("ci-signer", "signer", None).unwrap();
    s.post_resp(SEAL, Some(&signer), &json!({}))
        .unwrap()
        .expect_problem(403, "policy_denied")
        .unwrap();
    s.post_resp(ROTATE_KEK, Some(&signer), &json!({}))
        .unwrap()
        .expect_problem(403, "policy_denied")
        .unwrap();
    let events = s.audit().unwrap();
    let denied: Vec<&Value> = events
        .iter()
        .map(|r| &r["event"])
        .filter(|e| e["outcome"]["result"] == "denied" && e["actor"]["name"] == "ci-signer")
        .collect();
    let missing: Vec<&str> = ["seal", "kek_rotate"]
        .into_iter()
        .filter(|a| !denied.iter().any(|e| e["action"] == *a))
        .collect();
    assert!(
        missing.is_empty(),
        "no denied {missing:?} by the signer in the audit log; denied events: {denied:?}"
    );
}

// ---- 6. KEK rotation ---------------------------------------------------------------------------

#[test]
fn kek_rotation_rewraps_every_key_and_replaces_the_shares() {
    let mut s = shamir_server(2, 3);
    let old = s.shares().to_vec();
    let old_set = parts(&old[0]).set;
    unseal_with(&s, &[&old[0], &old[1]]);
    let dir = s.scratch().unwrap();
    let keys = [("rk-ed", "ed25519"), ("rk-p384", "ecdsa-p384")];
    for (name, alg) in keys {
        s.create_key(name, alg).unwrap();
        sign_and_verify(&s, &dir, name, alg);
    }
    s.key_action("rk-ed", "rotate").unwrap();
    let versions = [("rk-ed", 1), ("rk-ed", 2), ("rk-p384", 1)];
    let pems: Vec<String> = versions
        .iter()
        .map(|(k, v)| s.public_key(k, *v).unwrap().0)
        .collect();
    let (_, signer) = s.create_token("ci", "signer", None).unwrap();

    // Refusals change nothing.
    let unchanged = |s: &Server, what: &str| {
        let v = seal_status(s);
        assert_eq!(
            (
                v["share_set"].as_str(),
                v["threshold"].clone(),
                v["shares"].clone()
            ),
            (Some(old_set.as_str()), json!(2), json!(3)),
            "{what} changed the split: {v}"
        );
    };
    s.post_resp(ROTATE_KEK, Some(&signer), &json!({}))
        .unwrap()
        .expect_problem(403, "policy_denied")
        .unwrap();
    unchanged(&s, "a signer's rotation");
    s.post_resp(ROTATE_KEK, None, &json!({}))
        .unwrap()
        .expect_problem(401, "unauthenticated")
        .unwrap();
    for (what, body) in [
        (
            "threshold above shares",
            json!({"shares": 2, "threshold": 3}),
        ),
        ("zero shares", json!({"shares": 0, "threshold": 0})),
        ("shares without threshold", json!({"shares": 4})),
        ("threshold without shares", json!({"threshold": 2})),
        ("300 shares", json!({"shares": 300, "threshold": 2})),
    ] {
        let r = s.post_resp(ROTATE_KEK, admin(&s), &body).unwrap();
        assert_eq!(r.status, 400, "{what}: {}", r.text);
        unchanged(&s, what);
    }
    let out = s
        .signet(["operator", "rotate-kek", "--shares", "4"])
        .unwrap();
    assert_eq!(
        out.code(),
        Some(2),
        "clap must want --threshold too: {out:?}"
    );
    unchanged(&s, "the CLI without --threshold");
    // Nothing was rotated; the impossible splits were attempted, so they are audited as failed.
    let kek_rotations: Vec<_> = audit_events_of(&s, "kek_rotate")
        .into_iter()
        .filter(|e| e["outcome"]["result"] != "denied")
        .collect();
    assert!(
        kek_rotations.iter().all(
            |e| e["outcome"]["result"] == "failed" && e["outcome"]["code"] == "invalid_request"
        ),
        "{kek_rotations:?}"
    );
    assert_eq!(
        kek_rotations.len(),
        2,
        "the two impossible splits (3 of 2, 0 of 0) are audited: {kek_rotations:?}"
    );

    // Rotate with the CLI to a 3-of-4 split.
    let out = s
        .signet([
            "operator",
            "rotate-kek",
            "--shares",
            "4",
            "--threshold",
            "3",
        ])
        .unwrap();
    out.ok().unwrap();
    let new: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
    assert_eq!(
        new.len(),
        4,
        "stdout must be exactly the 4 new shares: {}",
        out.stdout
    );
    let new_set = parts(&new[0]).set;
    assert_ne!(new_set, old_set, "the new split has the old id");
    for (i, share) in new.iter().enumerate() {
        let pt = parts(share);
        assert_eq!(
            (pt.set.as_str(), pt.threshold, usize::from(pt.index)),
            (new_set.as_str(), 3, i + 1),
            "{share}"
        );
    }
    let rewrapped: u64 = out
        .stderr
        .split_whitespace()
        .skip_while(|w| *w != "re-sealed")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `re-sealed N` in: {}", out.stderr));
    // Every key version, plus the audit log's own key.
    let at_least = u64::try_from(versions.len() + 1).unwrap();
    assert!(
        rewrapped >= at_least,
        "rewrapped {rewrapped}, but there are {} key versions plus the audit log key",
        versions.len()
    );
    let v = seal_status(&s);
    assert_eq!(
        v,
        json!({"sealed": false, "mode": "shamir", "threshold": 3, "shares": 4, "progress": 0, "share_set": new_set})
    );
    let rotations: Vec<Value> = audit_events_of(&s, "kek_rotate")
        .into_iter()
        .filter(|e| e["outcome"]["result"] == "allowed")
        .collect();
    assert_eq!(rotations.len(), 1, "{rotations:?}");
    assert_eq!(rotations[0]["custody"]["rewrapped"], rewrapped);
    assert_eq!(rotations[0]["custody"]["share_set"], new_set.as_str());

    // Signing goes on without a restart, with the same public keys.
    for (name, alg) in keys {
        let pem = sign_and_verify(&s, &dir, name, alg);
        let want = if name == "rk-ed" { &pems[1] } else { &pems[2] };
        assert_eq!(&pem, want, "`{name}` changed its public key");
    }
    s.sign_as(&signer, "rk-p384", "sha384", &"12".repeat(48))
        .unwrap();

    // Every key version (and the log key) was counted.
    s.stop().unwrap();
    let rows = sqlite_exec(&s.db_path(), "SELECT count(*) FROM key_versions;").unwrap();
    assert_eq!(
        rows.trim(),
        rewrapped.to_string(),
        "rewrapped vs key_versions rows"
    );
    s.start_serving().unwrap();
    assert_sealed(&s, "rk-ed", "after rotation and restart");

    // The old shares no longer unseal; any 3 of the 4 new ones do.
    assert_shares_never_unseal(&s, &[&old[0], &old[1]], "the old shares");
    unseal_with(&s, &[&new[3], &new[1], &new[0]]);
    for (i, (name, version)) in versions.iter().enumerate() {
        assert_eq!(
            s.public_key(name, *version).unwrap().0,
            pems[i],
            "`{name}` v{version} changed its public key"
        );
    }
    for (name, alg) in keys {
        sign_and_verify(&s, &dir, name, alg);
    }

    // No rotation while sealed, and a refused rotation keeps the current shares working.
    let (status, v) = s.post_json(SEAL, admin(&s), &json!({})).unwrap();
    assert_eq!((status, v["sealed"].clone()), (200, json!(true)), "{v}");
    s.post_resp(ROTATE_KEK, admin(&s), &json!({}))
        .unwrap()
        .expect_problem(503, "sealed")
        .unwrap();
    s.post_resp(ROTATE_KEK, admin(&s), &json!({"shares": 5, "threshold": 2}))
        .unwrap()
        .expect_problem(503, "sealed")
        .unwrap();
    assert_eq!(seal_status(&s)["share_set"], new_set.as_str());
    unseal_with(&s, &[&new[2], &new[0], &new[3]]);
    sign_and_verify(&s, &dir, "rk-ed", "ed25519");

    // No share, old or new, was written or logged.
    let mut scanner = Scanner::default();
    scanner.add_shares("old", &old);
    scanner.add_shares("new", &new);
    let scanner = scanner.build();
    let findings = scan_server(
        &s,
        &scanner,
        &[],
        &[("the audit export".into(), s.audit_raw().unwrap())],
    );
    assert!(
        findings.is_empty(),
        "share text found:\n{}",
        describe(&findings)
    );
}

// ---- 7. dev mode and init's custody options ----------------------------------------------------

#[test]
fn dev_mode_needs_dev_to_serve_and_says_so() {
    let root = tempfile::Builder::new()
        .prefix("signet-e2e-dev-")
        .tempdir()
        .unwrap();
    let data = root.path().join("data");
    let init = init_data_dir(&data).unwrap();
    let v: Value = serde_json::from_str(&init.raw).unwrap();
    assert_eq!(v["custody"], "dev-key-file", "{v}");
    assert!(
        v.get("shares").is_none() && v.get("threshold").is_none(),
        "{v}"
    );
    assert!(
        init.stderr.contains(DEV_WARNING),
        "init does not warn: {}",
        init.stderr
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("kek.dev"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "kek.dev mode");

    // Without --dev: refused, with a message naming the flag.
    let mut cmd = signetd().unwrap();
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", "127.0.0.1:0"]);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(30)).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve without --dev ran: {stderr}");
    assert!(
        stderr.contains("--dev"),
        "the refusal does not mention --dev: {stderr}"
    );

    // With --dev: serves unsealed and warns loudly.
    let sp = Spawned::start(&data, &root.path().join("serve.log"), &["--dev"]).unwrap();
    let (status, st) = sp.get(STATUS).unwrap();
    assert_eq!(status, 200);
    assert_eq!(st["kek_source"], "dev-key-file", "{st}");
    assert_eq!(st["sealed"], false, "{st}");
    assert!(
        st["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap_or_default().starts_with(DEV_WARNING)),
        "no dev-mode warning in status: {st}"
    );
    let (_, ss) = sp.get(SEAL_STATUS).unwrap();
    assert_eq!(
        ss,
        json!({"sealed": false, "mode": "dev-key-file", "progress": 0})
    );
    assert!(
        sp.logs().contains(DEV_WARNING),
        "serve does not warn in its log"
    );
    let r = sp
        .client
        .post(format!("{}{UNSEAL}", sp.url))
        .header("content-type", "application/json")
        .body(r#"{"share": "anything"}"#)
        .send()
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        409,
        "a share for a dev server: {:?}",
        r.text()
    );
    drop(sp);

    // Flags that cannot go together, and splits that cannot exist.
    let cases: [(&[&str], i32, &str); 5] = [
        (&["--dev", "--shares", "3"], 2, "cannot be used with"),
        (&["--dev", "--threshold", "2"], 2, "cannot be used with"),
        (&["--shares", "2", "--threshold", "3"], 1, "threshold"),
        (&["--shares", "0", "--threshold", "0"], 1, "threshold"),
        (&["--shares", "256", "--threshold", "2"], 2, "256"),
    ];
    for (i, (args, code, needle)) in cases.iter().enumerate() {
        let dir = root.path().join(format!("refused-{i}"));
        let mut cmd = signetd().unwrap();
        cmd.arg("init")
            .arg("--data-dir")
            .arg(&dir)
            .args(["--listen", "127.0.0.1:0", "--json"])
            .args(*args);
        let out = run_with_timeout(&mut cmd, Duration::from_secs(60)).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "init {args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "init {args:?}: stderr lacks `{needle}`: {stderr}"
        );
        assert!(
            !dir.join("signetd.toml").exists(),
            "init {args:?} was refused but left a config"
        );
    }
}

#[test]
fn init_share_dir_writes_private_share_files_that_unseal() {
    let root = tempfile::Builder::new()
        .prefix("signet-e2e-sharedir-")
        .tempdir()
        .unwrap();
    let data = root.path().join("data");
    let share_dir = root.path().join("shares");
    let init = init_data_dir_with(
        &data,
        &[
            "--shares",
            "4",
            "--threshold",
            "2",
            "--share-dir",
            p(&share_dir),
        ],
    )
    .unwrap();
    let v: Value = serde_json::from_str(&init.raw).unwrap();
    assert_eq!(
        (v["custody"].clone(), v["threshold"].clone()),
        (json!("shamir"), json!(2)),
        "{v}"
    );
    assert!(
        v.get("shares").is_none(),
        "shares printed despite --share-dir: {v}"
    );
    let files: Vec<PathBuf> = v["share_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| PathBuf::from(f.as_str().unwrap()))
        .collect();
    assert_eq!(files.len(), 4, "{v}");
    assert_eq!(files_under(&share_dir).len(), 4);
    use std::os::unix::fs::PermissionsExt;
    let mut lines = Vec::new();
    for f in &files {
        let mode = std::fs::metadata(f).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{} mode {mode:o}", f.display());
        let text = std::fs::read_to_string(f).unwrap();
        assert_eq!(text.lines().count(), 1, "{}", f.display());
        parts(&text);
        assert!(
            !init.raw.contains(&parts(&text).body),
            "init printed a share body"
        );
        assert!(
            !init.stderr.contains(&parts(&text).body),
            "init logged a share body"
        );
        lines.push(text.trim().to_owned());
    }

    let sp = Spawned::start(&data, &root.path().join("serve.log"), &[]).unwrap();
    let (_, ss) = sp.get(SEAL_STATUS).unwrap();
    assert_eq!(ss["sealed"], true, "{ss}");
    assert_eq!(ss["share_set"], parts(&lines[0]).set.as_str(), "{ss}");
    let home = root.path().join("xdg");
    std::fs::create_dir_all(&home).unwrap();
    let out = sp.signet(
        &home,
        &["operator", "unseal", "--share-file", p(&files[3])],
        None,
    );
    out.ok().unwrap();
    assert!(out.stdout.contains("progress: 1 of 2"), "{}", out.stdout);
    let out = sp.signet(
        &home,
        &["operator", "unseal", "--share-file", p(&files[1])],
        None,
    );
    out.ok().unwrap();
    assert!(
        out.stdout.contains("the server is unsealed"),
        "{}",
        out.stdout
    );
    let out = sp.signet(&home, &["--json", "operator", "status"], None);
    out.ok().unwrap();
    assert_eq!(out.json().unwrap()["sealed"], false, "{}", out.stdout);
    let r = sp.signet(
        &home,
        &[
            "operator",
            "unseal",
            "--share-file",
            p(&root.path().join("nope")),
        ],
        None,
    );
    r.fails_with(1, "cannot read the share file").unwrap();
    let log = sp.logs();
    for l in &lines {
        assert!(
            !log.contains(&parts(l).body),
            "the server logged a share body"
        );
    }
}

// ---- 8. no private key bytes anywhere -----------------------------------------------------------

/// The issue's requirement: a test scans every file in the data directory (and the server's
/// log) for any private key's bytes and finds none. Dev custody, so the test can read the KEK
/// and recover every private key itself.
#[test]
fn no_private_key_bytes_anywhere_in_the_data_dir_or_logs() {
    let tmp = tempfile::Builder::new()
        .prefix("signet-e2e-tmpdir-")
        .tempdir()
        .unwrap();
    let mut s = Server::start_with(ServeOptions {
        env: vec![
            ("SIGNET_LOG".into(), "debug".into()),
            ("TMPDIR".into(), p(tmp.path()).to_owned()),
        ],
        ..ServeOptions::default()
    })
    .unwrap();
    let dir = s.scratch().unwrap();
    let keys = [
        ("nk-ed", "ed25519"),
        ("nk-p256", "ecdsa-p256"),
        ("nk-p384", "ecdsa-p384"),
        ("nk-rsa", "rsa-3072-pss"),
        ("nk-mldsa", "ml-dsa-44"),
        ("nk-slh", "slh-dsa-sha2-128f"),
    ];
    for (name, alg) in keys {
        s.create_key(name, alg).unwrap();
        sign_and_verify(&s, &dir, name, alg);
    }
    s.key_action("nk-ed", "rotate").unwrap();
    // A dev-mode KEK rotation replaces the key file: the old KEK must be gone as well.
    let old_kek = std::fs::read(s.data_dir().join("kek.dev")).unwrap();
    s.post_resp(ROTATE_KEK, admin(&s), &json!({"shares": 3, "threshold": 2}))
        .unwrap()
        .expect_problem(400, "invalid_request")
        .unwrap();
    let (status, v) = s.post_json(ROTATE_KEK, admin(&s), &json!({})).unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["shares"], json!([]), "dev mode has no shares: {v}");
    // Six keys, a second version of one, and the audit log key.
    assert_eq!(v["rewrapped"], keys.len() + 2, "{v}");
    assert_ne!(
        std::fs::read(s.data_dir().join("kek.dev")).unwrap(),
        old_kek,
        "kek.dev was not replaced"
    );
    for (name, alg) in keys {
        sign_and_verify(&s, &dir, name, alg);
    }
    // Keys are opened again from their sealed handles after a restart.
    s.restart().unwrap();
    let mut responses: Vec<(String, String)> = Vec::new();
    for (name, alg) in keys {
        sign_and_verify(&s, &dir, name, alg);
        let r = s.get_resp(&format!("{KEYS}/{name}"), admin(&s)).unwrap();
        responses.push((format!("GET {KEYS}/{name}"), r.text));
    }
    for path in [KEYS, STATUS, "/api/v1/audit?limit=10000", "/metrics"] {
        let r = s.get_resp(path, admin(&s)).unwrap();
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        responses.push((format!("GET {path}"), r.text));
    }
    let status = s.stop().unwrap();
    assert!(status.success(), "{status}");

    // Recover every private key without Signet's code.
    let kek = std::fs::read(s.data_dir().join("kek.dev")).unwrap();
    assert_eq!(kek.len(), 32, "the dev KEK is not 32 bytes");
    let rec = recover_keys(&s.db_path(), KekSource::Bytes(&kek));
    assert_eq!(rec.kek, kek);
    let mut names: Vec<(String, u64, String)> = rec
        .keys
        .iter()
        .map(|k| (k.name.clone(), k.version, k.algorithm.clone()))
        .collect();
    names.sort();
    let mut want: Vec<(String, u64, String)> = keys
        .iter()
        .map(|(n, a)| ((*n).to_owned(), 1, (*a).to_owned()))
        .collect();
    want.push(("nk-ed".into(), 2, "ed25519".into()));
    let log_keys: Vec<_> = names
        .iter()
        .filter(|(n, ..)| n.starts_with("signet-"))
        .cloned()
        .collect();
    assert_eq!(
        log_keys.len(),
        1,
        "one internal key (the audit log's): {names:?}"
    );
    want.extend(log_keys);
    want.sort();
    assert_eq!(names, want, "recovered key versions");
    for k in &rec.keys {
        assert!(
            k.public_matches,
            "`{}` v{}: the recovered private key does not match the stored public key",
            k.name, k.version
        );
        assert!(!k.secrets.is_empty(), "`{}`: no secret parts", k.name);
    }

    let mut scanner = Scanner::default();
    scanner.add_keys(&rec);
    scanner.add_secret("the dev KEK", &kek);
    scanner.add_secret("the old dev KEK", &old_kek);
    let scanner = scanner.build();
    scanner_self_check(&scanner, &rec, &dir);
    let leftovers: Vec<PathBuf> = s
        .data_files()
        .unwrap()
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "next" || e == "tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "rotation left files behind: {leftovers:?}"
    );

    // Positive controls on the real files: the KEK is in kek.dev, each sealed handle in the
    // database — the scan reads what is there.
    let kek_found = scanner.find(&std::fs::read(s.data_dir().join("kek.dev")).unwrap());
    assert!(kek_found.contains("the dev KEK (raw)"), "{kek_found:?}");
    let mut handles = Scanner::default();
    for k in &rec.keys {
        handles.add(format!("`{}` v{}", k.name, k.version), k.handle.clone());
    }
    let handles = handles.build();
    let mut stored = BTreeSet::new();
    for f in s.data_files().unwrap() {
        stored.extend(handles.find(&std::fs::read(&f).unwrap()));
    }
    assert_eq!(
        stored.len(),
        rec.keys.len(),
        "sealed handles found in the data dir: {stored:?}"
    );

    let allowed = |(place, label): &(String, String)| {
        place.ends_with("/kek.dev") && label.starts_with("the dev KEK")
    };
    let check = |s: &Server, when: &str, texts: &[(String, String)]| {
        let findings: Vec<_> = scan_server(s, &scanner, &[tmp.path()], texts)
            .into_iter()
            .filter(|f| !allowed(f))
            .collect();
        assert!(
            findings.is_empty(),
            "{when}: key material found:\n{}",
            describe(&findings)
        );
    };
    check(&s, "stopped", &responses);

    // Again while running (WAL and shared-memory files present), with fresh responses.
    s.start_serving().unwrap();
    let mut live = Vec::new();
    for (name, alg) in keys {
        sign_and_verify(&s, &dir, name, alg);
    }
    let r = s.get_resp("/api/v1/audit?limit=10000", admin(&s)).unwrap();
    live.push(("GET /api/v1/audit".to_owned(), r.text));
    check(&s, "running", &live);
    s.stop().unwrap();
    check(&s, "stopped again", &live);
}

/// In production custody the KEK exists only as shares: recombined here (independently of
/// Signet), it opens every sealed key, and neither it nor any key is stored or logged.
#[test]
fn shamir_kek_exists_only_as_shares() {
    let mut s = shamir_server(2, 3);
    let shares = s.shares().to_vec();
    unseal_with(&s, &[&shares[0], &shares[1]]);
    let dir = s.scratch().unwrap();
    for (name, alg) in [("sk-ed", "ed25519"), ("sk-rsa", "rsa-3072-pkcs1")] {
        s.create_key(name, alg).unwrap();
        sign_and_verify(&s, &dir, name, alg);
    }
    s.stop().unwrap();

    let rec = recover_keys(&s.db_path(), KekSource::Shares(&[&shares[0], &shares[2]]));
    let again = recover_keys(&s.db_path(), KekSource::Shares(&[&shares[2], &shares[1]]));
    assert_eq!(rec.kek, again.kek, "two share pairs give different KEKs");
    assert_eq!(rec.keys.len(), 3, "two keys and the audit log key");
    assert!(rec.keys.iter().all(|k| k.public_matches), "{rec:?}");
    assert!(
        !s.data_files()
            .unwrap()
            .iter()
            .any(|f| f.ends_with("kek.dev")),
        "a production data dir has a KEK file"
    );

    let mut scanner = Scanner::default();
    scanner.add_keys(&rec);
    scanner.add_secret("the KEK", &rec.kek);
    scanner.add_shares("this server's", &shares);
    let scanner = scanner.build();
    scanner_self_check(&scanner, &rec, &dir);
    let findings = scan_server(&s, &scanner, &[], &[]);
    assert!(
        findings.is_empty(),
        "secret found:\n{}",
        describe(&findings)
    );
}

// ---- 9. hardening ------------------------------------------------------------------------------

#[test]
fn the_running_server_cannot_dump_core_and_locks_memory_when_it_says_so() {
    let s = Server::start().unwrap();
    let (_, st) = s.get(STATUS, None).unwrap();
    assert_eq!(st["core_dumps_disabled"], true, "{st}");
    let pid = s.pid().unwrap();

    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core: Vec<&str> = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max core file size"))
        .unwrap_or_else(|| panic!("no core limit in:\n{limits}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        &core[..2],
        ["0", "0"],
        "soft and hard core size limits:\n{limits}"
    );

    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let vm_lck: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmLck in:\n{status}"));
    let warnings: Vec<&str> = st["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if st["memory_locked"] == true {
        assert!(
            vm_lck > 0,
            "status says memory is locked but VmLck is {vm_lck} kB"
        );
        assert!(
            !warnings.iter().any(|w| w.contains("not locked")),
            "{warnings:?}"
        );
    } else {
        assert!(
            warnings.iter().any(|w| w.contains("memory is not locked")),
            "memory is not locked and status does not warn: {st}"
        );
    }
    // The same holds on a sealed production server.
    let p = shamir_server(2, 2);
    let (_, pst) = p.get(STATUS, None).unwrap();
    assert_eq!(pst["core_dumps_disabled"], true, "{pst}");
    assert_eq!(pst["memory_locked"], st["memory_locked"], "{pst}");
}
