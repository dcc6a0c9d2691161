//! End-to-end tests of certificates and time-stamping: internal CAs, issued and imported
//! certificates, CRLs, the RFC 3161 TSA, CMS signatures and key policies, each checked by an
//! independent verifier (`openssl verify|crl|req|ts|cms`, `osslsigncode verify`). Each test runs
//! its own server on its own data directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use signet_e2e::*;
use time::OffsetDateTime;

const CAS: &str = "/api/v1/cas";
const CERTS: &str = "/api/v1/certificates";
const SIGN: &str = "/api/v1/sign";
const SIGN_CMS: &str = "/api/v1/sign/cms";
const TSA_API: &str = "/api/v1/tsa";
const TSA: &str = "/tsa";
const TSQ: &str = "application/timestamp-query";
const TSR: &str = "application/timestamp-reply";

/// RFC 3161 failure texts as `openssl ts -reply -text` prints them.
const BAD_ALG: &str = "unrecognized or unsupported algorithm identifier";
const BAD_DATA_FORMAT: &str = "the data submitted has the wrong format";
const UNACCEPTED_POLICY: &str = "the requested TSA policy is not supported by the TSA";
const UNACCEPTED_EXTENSION: &str = "the requested extension is not supported by the TSA";

// ---- helpers ------------------------------------------------------------------------------

fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

fn admin(s: &Server) -> Option<&str> {
    Some(s.admin_token())
}

/// Writes `bytes` to a new uniquely named file in `dir`.
fn save(dir: &Path, prefix: &str, ext: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    write_file(dir, &unique(prefix, ext), bytes.as_ref()).unwrap()
}

/// stdout and stderr of a command, together.
fn combined(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `openssl ARGS`, which must succeed; returns stdout and stderr together.
fn ossl(dir: &Path, args: &[&str]) -> String {
    let out = openssl(dir, args).unwrap();
    let text = combined(&out);
    assert!(
        out.status.success(),
        "openssl {} failed ({}):\n{text}",
        args.join(" "),
        out.status
    );
    text
}

/// Runs `openssl ARGS`, which must fail saying `needle` (case-insensitive), so a negative check
/// cannot pass because the command line itself was wrong.
fn ossl_fails(dir: &Path, args: &[&str], needle: &str) -> String {
    let out = openssl(dir, args).unwrap();
    let text = combined(&out);
    assert!(
        !out.status.success(),
        "openssl {} succeeded but must fail:\n{text}",
        args.join(" ")
    );
    assert!(
        text.to_ascii_lowercase()
            .contains(&needle.to_ascii_lowercase()),
        "openssl {} failed without saying `{needle}`:\n{text}",
        args.join(" ")
    );
    text
}

/// A serial number as hex digits: upper case, no `0x`, colons or leading zeros.
fn norm_serial(s: &str) -> String {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    let hex: String = s
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_uppercase();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

fn rfc3339(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        v.as_str().unwrap_or_else(|| panic!("not a time: {v}")),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

/// `notBefore=Nov  3 18:15:14 2026 GMT` as OpenSSL prints it.
fn openssl_time(line: &str) -> OffsetDateTime {
    let value = line.split_once('=').map(|(_, v)| v).unwrap_or(line).trim();
    let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
    let format = time::macros::format_description!(
        "[month repr:short] [day padding:none] [hour]:[minute]:[second] [year] GMT"
    );
    time::PrimitiveDateTime::parse(&value, &format)
        .unwrap_or_else(|e| panic!("cannot parse OpenSSL time `{value}`: {e}"))
        .assume_utc()
}

/// An internal CA and its two certificates written to files.
struct Ca {
    name: String,
    info: Value,
    root: PathBuf,
    issuing: PathBuf,
}

fn create_ca(s: &Server, dir: &Path, name: &str, algorithm: Option<&str>) -> Ca {
    let mut body = json!({"name": name});
    if let Some(a) = algorithm {
        body["algorithm"] = json!(a);
    }
    let (st, info) = s.post_json(CAS, admin(s), &body).unwrap();
    assert_eq!(st, 201, "create CA `{name}`: {info}");
    let root = save(
        dir,
        &format!("{name}-root"),
        "pem",
        info["root_certificate"].as_str().unwrap(),
    );
    let issuing = save(
        dir,
        &format!("{name}-issuing"),
        "pem",
        info["issuing_certificate"].as_str().unwrap(),
    );
    Ca {
        name: name.to_owned(),
        info,
        root,
        issuing,
    }
}

/// `POST /api/v1/keys/{key}/certificates` as the admin; must answer 201.
fn issue(s: &Server, key: &str, ca: &str, subject: &str) -> Value {
    let (st, v) = s
        .post_json(
            &format!("/api/v1/keys/{key}/certificates"),
            admin(s),
            &json!({"ca": ca, "subject": subject}),
        )
        .unwrap();
    assert_eq!(st, 201, "issue for `{key}` from `{ca}`: {v}");
    v
}

/// The PEM strings of a JSON array.
fn pem_list(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

/// The leaf (first) certificate of a `CertificateInfo`, written to a file.
fn leaf_file(dir: &Path, cert: &Value) -> PathBuf {
    save(dir, "leaf", "pem", cert["chain"][0].as_str().unwrap())
}

fn same_der(a: &str, b: &str) -> bool {
    pem_der(a).unwrap() == pem_der(b).unwrap()
}

/// `openssl x509 -pubkey` of a certificate file.
fn cert_public_key(dir: &Path, cert: &Path) -> String {
    openssl_ok(dir, &["x509", "-in", p(cert), "-noout", "-pubkey"]).unwrap()
}

fn cert_serial(dir: &Path, cert: &Path) -> String {
    let out = openssl_ok(dir, &["x509", "-in", p(cert), "-noout", "-serial"]).unwrap();
    norm_serial(out.trim().trim_start_matches("serial="))
}

fn cert_extensions(dir: &Path, cert: &Path, names: &str) -> String {
    openssl_ok(dir, &["x509", "-in", p(cert), "-noout", "-ext", names]).unwrap()
}

fn set_policy(s: &Server, key: &str, require_certificate: bool, require_timestamp: bool) -> Value {
    let body =
        json!({"require_certificate": require_certificate, "require_timestamp": require_timestamp});
    let r = s
        .request(
            "PUT",
            &format!("/api/v1/keys/{key}/policy"),
            admin(s),
            Some("application/json"),
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .unwrap();
    assert_eq!(r.status, 200, "set policy of `{key}`: {}", r.text);
    let info = r.json().unwrap();
    assert_eq!(info["policy"], body, "{info}");
    info
}

fn sign_resp(s: &Server, token: Option<&str>, key: &str, digest: &str) -> Response {
    s.post_resp(SIGN, token, &json!({"key": key, "digest": digest}))
        .unwrap()
}

/// Sets up the built-in TSA from `ca`; returns its `TsaInfo`.
fn create_tsa(s: &Server, ca: &str) -> Value {
    let (st, v) = s.post_json(TSA_API, admin(s), &json!({"ca": ca})).unwrap();
    assert_eq!(st, 201, "create TSA: {v}");
    v
}

/// `POST /tsa` with a DER query, no token.
fn post_query(s: &Server, der: Vec<u8>) -> BinaryResponse {
    s.request_bytes("POST", TSA, None, Some(TSQ), Some(der))
        .unwrap()
}

/// `openssl ts -query ARGS -out FILE`; returns the file.
fn ts_query(dir: &Path, args: &[&str]) -> PathBuf {
    let out = dir.join(unique("query", "tsq"));
    let mut all = vec!["ts", "-query"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-out", p(&out)]);
    ossl(dir, &all);
    out
}

/// Posts a query file; the reply must be a granted `application/timestamp-reply` (200).
/// Returns the reply file.
fn timestamp(s: &Server, dir: &Path, query: &Path) -> PathBuf {
    let r = post_query(s, std::fs::read(query).unwrap());
    let reply = save(dir, "reply", "tsr", &r.body);
    assert_eq!(
        r.status,
        200,
        "time-stamp query refused: {}",
        reply_text(dir, &reply)
    );
    assert_eq!(r.header("content-type").as_deref(), Some(TSR));
    reply
}

/// `openssl ts -reply -in FILE -text`.
fn reply_text(dir: &Path, reply: &Path) -> String {
    ossl(dir, &["ts", "-reply", "-in", p(reply), "-text"])
}

/// A rejected reply: `application/timestamp-reply` with `status`, whose text (per OpenSSL)
/// says Rejected and `failure`.
fn expect_rejection(dir: &Path, r: &BinaryResponse, status: u16, failure: &str) -> String {
    let reply = save(dir, "rejected", "tsr", &r.body);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some(TSR),
        "status {}: {}",
        r.status,
        r.text()
    );
    let text = reply_text(dir, &reply);
    assert_eq!(r.status, status, "{text}");
    assert!(text.contains("Status: Rejected"), "{text}");
    assert!(
        text.contains(failure),
        "rejection without `{failure}`:\n{text}"
    );
    assert!(!text.contains("TST info:\nVersion"), "{text}");
    text
}

/// The value after `label` on its line of `text`, e.g. `Serial number: 0x01` → `0x01`.
fn field<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(str::trim)
}

fn ts_verify_ok(dir: &Path, args: &[&str]) {
    let mut all = vec!["ts", "-verify"];
    all.extend_from_slice(args);
    let text = ossl(dir, &all);
    assert!(text.contains("Verification: OK"), "{text}");
}

fn ts_verify_fails(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["ts", "-verify"];
    all.extend_from_slice(args);
    ossl_fails(dir, &all, "Verification: FAILED")
}

/// Granted time-stamps in the audit log.
fn timestamps_audited(s: &Server) -> Vec<Value> {
    s.audit_events("timestamp", "allowed").unwrap()
}

/// A DER TLV with a short- or long-form length.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_MD5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05];
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];

/// A hand-made `TimeStampReq` (RFC 3161 §2.4.1): `version`, a message imprint of `hash_oid`
/// (parameters NULL) over `imprint`, then `tail` (optional fields, already encoded).
fn tsq_der(version: u8, hash_oid: &[u8], imprint: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut alg = der(0x06, hash_oid);
    alg.extend(der(0x05, &[]));
    let mut mi = der(0x30, &alg);
    mi.extend(der(0x04, imprint));
    let mut body = der(0x02, &[version]);
    body.extend(der(0x30, &mi));
    body.extend_from_slice(tail);
    der(0x30, &body)
}

/// One line of `openssl asn1parse`.
#[derive(Debug)]
struct Asn1 {
    offset: usize,
    depth: usize,
    header: usize,
    len: usize,
    text: String,
}

fn asn1_number(s: &str, key: &str) -> usize {
    let rest = &s[s.find(key).unwrap_or_else(|| panic!("no `{key}` in `{s}`")) + key.len()..];
    rest.trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|e| panic!("bad `{key}` in `{s}`: {e}"))
}

/// `openssl asn1parse -inform DER` of a file, line by line.
fn asn1parse(dir: &Path, file: &Path) -> Vec<Asn1> {
    let out = openssl_ok(dir, &["asn1parse", "-inform", "DER", "-in", p(file)]).unwrap();
    out.lines()
        .filter(|l| l.contains("d="))
        .map(|l| {
            let (offset, rest) = l.split_once(':').unwrap();
            Asn1 {
                offset: offset.trim().parse().unwrap(),
                depth: asn1_number(rest, "d="),
                header: asn1_number(rest, "hl="),
                len: asn1_number(rest, " l="),
                text: rest.to_owned(),
            }
        })
        .collect()
}

/// From a CMS SignedData (DER) with one signer: the signature value and the RFC 3161 token in
/// its `id-aa-timeStampToken` unsigned attribute, found with `openssl asn1parse`.
fn cms_signature_and_token(dir: &Path, p7s: &Path) -> (Vec<u8>, Vec<u8>) {
    let bytes = std::fs::read(p7s).unwrap();
    let lines = asn1parse(dir, p7s);
    let i = lines
        .iter()
        .position(|l| l.text.contains("id-smime-aa-timeStampToken"))
        .expect("no id-smime-aa-timeStampToken attribute");
    let attr_depth = lines[i].depth - 2;
    let token = &lines[i + 2];
    assert!(
        token.text.contains("SEQUENCE") && token.depth == lines[i].depth + 1,
        "{token:?}"
    );
    let token = bytes[token.offset..token.offset + token.header + token.len].to_vec();
    let attrs = lines[..i]
        .iter()
        .rposition(|l| l.depth == attr_depth && l.text.contains("cont [ 1 ]"))
        .expect("no unsignedAttrs [1]");
    let sig = lines[..attrs]
        .iter()
        .rev()
        .find(|l| l.depth == attr_depth && l.text.contains("OCTET STRING"))
        .expect("no signature OCTET STRING before unsignedAttrs");
    let signature = bytes[sig.offset + sig.header..sig.offset + sig.header + sig.len].to_vec();
    (signature, token)
}

/// From a CMS SignedData (DER) with one signer: its signed attributes as the DER `SET OF` that
/// was signed (RFC 5652 §5.4: the `[0]` tag replaced by `SET`), the `messageDigest` attribute's
/// value and the signature value, found with `openssl asn1parse`.
fn cms_signed_attributes(dir: &Path, p7s: &Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let bytes = std::fs::read(p7s).unwrap();
    let lines = asn1parse(dir, p7s);
    let i = lines
        .iter()
        .position(|l| l.text.contains(":messageDigest"))
        .expect("no messageDigest attribute");
    let attr_depth = lines[i].depth - 2;
    let value = &lines[i + 2];
    assert!(value.text.contains("OCTET STRING"), "{value:?}");
    let message_digest =
        bytes[value.offset + value.header..value.offset + value.header + value.len].to_vec();
    let attrs = lines[..i]
        .iter()
        .rev()
        .find(|l| l.depth == attr_depth && l.text.contains("cont [ 0 ]"))
        .expect("no signedAttrs [0]");
    let end = attrs.offset + attrs.header + attrs.len;
    let mut signed = bytes[attrs.offset..end].to_vec();
    signed[0] = 0x31;
    let sig = lines
        .iter()
        .find(|l| l.offset >= end && l.depth == attr_depth && l.text.contains("OCTET STRING"))
        .expect("no signature after signedAttrs");
    let signature = bytes[sig.offset + sig.header..sig.offset + sig.header + sig.len].to_vec();
    (signed, message_digest, signature)
}

/// `openssl pkeyutl -verify -rawin` of an Ed25519 signature over a file's bytes: `true` when
/// verified, `false` on a verification failure; any other error fails the test.
fn pkeyutl_verify(dir: &Path, public_pem: &str, data: &Path, signature: &[u8]) -> bool {
    let public = save(dir, "pub", "pem", public_pem);
    let sig = save(dir, "sig", "bin", signature);
    let out = openssl(
        dir,
        &[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            p(&public),
            "-rawin",
            "-in",
            p(data),
            "-sigfile",
            p(&sig),
        ],
    )
    .unwrap();
    let text = combined(&out);
    if out.status.success() {
        assert!(text.contains("Signature Verified Successfully"), "{text}");
        true
    } else {
        assert!(text.contains("Signature Verification Failure"), "{text}");
        false
    }
}

/// `openssl cms -verify` of a detached DER signature over `content`.
fn cms_verify(dir: &Path, p7s: &Path, content: &Path, ca: &Path, purpose_any: bool) -> Output {
    let mut args = vec![
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        p(p7s),
        "-content",
        p(content),
        "-CAfile",
        p(ca),
        "-out",
        "/dev/null",
    ];
    if purpose_any {
        args.extend_from_slice(&["-purpose", "any"]);
    }
    openssl(dir, &args).unwrap()
}

fn random_artifact(dir: &Path) -> (PathBuf, Vec<u8>) {
    let size = 1000 + usize::from(random_bytes(1).unwrap()[0]) * 41;
    let data = random_bytes(size).unwrap();
    (save(dir, "artifact", "bin", &data), data)
}

/// An external CA made with OpenSSL alone: (certificate, private key).
fn external_ca(dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(unique("ext-ca", "pem"));
    let key = dir.join(unique("ext-ca", "key"));
    ossl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            p(&key),
            "-out",
            p(&cert),
            "-subj",
            &format!("/CN={cn}/O=Elsewhere"),
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    (cert, key)
}

/// The external CA signs a CSR with these X.509v3 extensions; returns the certificate file.
fn external_sign(
    dir: &Path,
    (ca_cert, ca_key): &(PathBuf, PathBuf),
    csr: &Path,
    serial: &str,
    extensions: &str,
) -> PathBuf {
    let ext = save(dir, "ext", "cnf", extensions);
    let out = dir.join(unique("ext-leaf", "pem"));
    ossl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            p(csr),
            "-CA",
            p(ca_cert),
            "-CAkey",
            p(ca_key),
            "-set_serial",
            serial,
            "-days",
            "30",
            "-extfile",
            p(&ext),
            "-out",
            p(&out),
        ],
    );
    out
}

/// `POST /api/v1/keys/{key}/csr` as the admin; returns the CSR PEM.
fn csr(s: &Server, key: &str, subject: &str) -> String {
    let (st, v) = s
        .post_json(
            &format!("/api/v1/keys/{key}/csr"),
            admin(s),
            &json!({"subject": subject}),
        )
        .unwrap();
    assert_eq!(st, 200, "CSR for `{key}`: {v}");
    assert_eq!(v["key"], key, "{v}");
    assert!(v["key_version"].is_u64(), "{v}");
    let pem = v["csr"].as_str().unwrap().to_owned();
    assert!(
        pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
        "{pem}"
    );
    pem
}

const CODE_SIGNING_EXT: &str = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n";

fn certificates_of(s: &Server, key: &str) -> Vec<Value> {
    let (st, v) = s
        .get(&format!("/api/v1/keys/{key}/certificates"), admin(s))
        .unwrap();
    assert_eq!(st, 200, "{v}");
    v["certificates"].as_array().unwrap().clone()
}

/// The `Serial Number:` entries of `openssl crl -text`, each with the text of its entry.
fn crl_entries(text: &str) -> Vec<(String, String)> {
    let Some((_, revoked)) = text.split_once("Revoked Certificates:") else {
        return Vec::new();
    };
    let revoked = revoked
        .split("Signature Algorithm:")
        .next()
        .unwrap_or(revoked);
    revoked
        .split("Serial Number:")
        .skip(1)
        .map(|chunk| {
            let serial = chunk.split_whitespace().next().unwrap_or_default();
            (norm_serial(serial), chunk.to_owned())
        })
        .collect()
}

/// The CRL number of `openssl crl -text` (decimal, or `0x` hex when large).
fn crl_number(text: &str) -> u128 {
    let mut lines = text.lines();
    lines
        .find(|l| l.contains("X509v3 CRL Number"))
        .unwrap_or_else(|| panic!("CRL without a CRL number:\n{text}"));
    let value = lines.next().unwrap().trim();
    match value.strip_prefix("0x") {
        Some(hex) => u128::from_str_radix(hex, 16).unwrap(),
        None => value.parse().unwrap(),
    }
}

/// Fetches a CA's CRL without a token; checks the media type; returns (DER file, PEM file,
/// `openssl crl -text`).
fn fetch_crl(s: &Server, dir: &Path, ca: &Ca) -> (PathBuf, PathBuf, String) {
    let r = s
        .request_bytes("GET", &format!("{CAS}/{}/crl", ca.name), None, None, None)
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/pkix-crl")
    );
    let der_file = save(dir, "crl", "der", &r.body);
    let pem_file = dir.join(unique("crl", "pem"));
    ossl(
        dir,
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            p(&der_file),
            "-out",
            p(&pem_file),
        ],
    );
    // The CRL's signature verifies with the issuing CA's certificate…
    let checked = ossl(
        dir,
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            p(&der_file),
            "-CAfile",
            p(&ca.issuing),
            "-noout",
        ],
    );
    assert!(checked.contains("verify OK"), "{checked}");
    let text = ossl(
        dir,
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            p(&der_file),
            "-noout",
            "-text",
        ],
    );
    (der_file, pem_file, text)
}

fn verify_leaf(dir: &Path, ca: &Ca, leaf: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "verify",
        "-CAfile",
        p(&ca.root),
        "-untrusted",
        p(&ca.issuing),
        "-purpose",
        "any",
    ];
    args.extend_from_slice(extra);
    args.push(p(leaf));
    openssl(dir, &args).unwrap()
}

// ---- 1. CA chains ---------------------------------------------------------------------------

#[test]
fn ca_chains_verify_with_openssl_for_every_ca_algorithm() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    let mut serials = HashSet::new();
    let mut previous_root: Option<PathBuf> = None;
    for (algorithm, key_text) in [
        (None, "NIST CURVE: P-384"),
        (Some("ed25519"), "ED25519"),
        (Some("rsa-3072-pkcs1"), "(3072 bit)"),
    ] {
        let name = format!("ca-{}", algorithm.unwrap_or("default"));
        let ca = create_ca(&s, &dir, &name, algorithm);
        let info = &ca.info;
        assert_eq!(info["name"], name.as_str());
        assert_eq!(info["root_key"], format!("{name}-root"));
        assert_eq!(info["issuing_key"], format!("{name}-issuing"));
        assert!(
            info["crl_url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/api/v1/cas/{name}/crl")),
            "{info}"
        );
        rfc3339(&info["created_at"]);
        let (st, shown) = s.get(&format!("{CAS}/{name}"), admin(&s)).unwrap();
        assert_eq!(st, 200);
        assert_eq!(&shown, info);

        // The CA's keys are ordinary Signet keys of the CA's algorithm, for CA use only.
        for (role, cert) in [("root", &ca.root), ("issuing", &ca.issuing)] {
            let key = format!("{name}-{role}");
            let k = s.key_info(&key).unwrap();
            assert_eq!(k["usage"], "certificate_authority", "{k}");
            assert_eq!(k["algorithm"], algorithm.unwrap_or("ecdsa-p384"), "{k}");
            let (pem, _) = s.public_key(&key, 1).unwrap();
            assert!(
                same_der(&cert_public_key(&dir, cert), &pem),
                "{role} certificate does not certify key `{key}`"
            );
            let text = ossl(&dir, &["x509", "-in", p(cert), "-noout", "-text"]);
            assert!(text.contains(key_text), "{role} of {name}: {text}");
            let ext = cert_extensions(&dir, cert, "basicConstraints,keyUsage");
            assert!(ext.contains("CA:TRUE"), "{role}: {ext}");
            assert!(ext.contains("Certificate Sign"), "{role}: {ext}");
            assert!(ext.contains("CRL Sign"), "{role}: {ext}");
            assert!(serials.insert(cert_serial(&dir, cert)), "serial reused");
        }
        let verified = ossl(&dir, &["verify", "-CAfile", p(&ca.root), p(&ca.issuing)]);
        assert!(verified.contains(": OK"), "{verified}");

        // A P-256 signing key certified by the CA.
        let key = format!("release-{}", algorithm.unwrap_or("default"));
        s.create_key(&key, "ecdsa-p256").unwrap();
        let cert = issue(&s, &key, &name, "CN=Release,O=Example");
        assert_eq!(cert["key"], key.as_str(), "{cert}");
        assert_eq!(cert["key_version"], 1, "{cert}");
        assert_eq!(cert["kind"], "code_signing", "{cert}");
        assert_eq!(cert["status"], "valid", "{cert}");
        assert_eq!(cert["ca"], name.as_str(), "{cert}");
        assert!(cert["id"].as_str().is_some_and(|i| !i.is_empty()), "{cert}");
        let subject = cert["subject"].as_str().unwrap();
        assert!(
            subject.contains("CN=Release") && subject.contains("O=Example"),
            "{cert}"
        );
        assert_ne!(cert["issuer"], cert["subject"], "{cert}");
        let chain = pem_list(&cert["chain"]);
        assert_eq!(chain.len(), 3, "{cert}");
        assert!(same_der(
            &chain[1],
            info["issuing_certificate"].as_str().unwrap()
        ));
        assert!(same_der(
            &chain[2],
            info["root_certificate"].as_str().unwrap()
        ));
        let leaf = leaf_file(&dir, &cert);

        let out = verify_leaf(&dir, &ca, &leaf, &[]);
        let text = combined(&out);
        assert!(out.status.success() && text.contains(": OK"), "{text}");
        // Without the issuing certificate, or against another CA's root, it does not verify.
        ossl_fails(
            &dir,
            &["verify", "-CAfile", p(&ca.root), p(&leaf)],
            "unable to get local issuer certificate",
        );
        if let Some(other) = &previous_root {
            ossl_fails(
                &dir,
                &[
                    "verify",
                    "-CAfile",
                    p(other),
                    "-untrusted",
                    p(&ca.issuing),
                    p(&leaf),
                ],
                "error",
            );
        }

        let ext = cert_extensions(
            &dir,
            &leaf,
            "extendedKeyUsage,keyUsage,basicConstraints,crlDistributionPoints",
        );
        assert!(ext.contains("Code Signing"), "{ext}");
        assert!(!ext.contains("Server Authentication"), "{ext}");
        assert!(ext.contains("X509v3 Key Usage: critical"), "{ext}");
        assert!(ext.contains("Digital Signature"), "{ext}");
        assert!(!ext.contains("Certificate Sign"), "{ext}");
        assert!(ext.contains("CA:FALSE"), "{ext}");
        assert!(ext.contains(info["crl_url"].as_str().unwrap()), "{ext}");
        let subj = openssl_ok(&dir, &["x509", "-in", p(&leaf), "-noout", "-subject"]).unwrap();
        assert!(
            subj.contains("CN = Release") && subj.contains("O = Example"),
            "{subj}"
        );

        // The certificate certifies exactly the key's public key.
        let (pem, _) = s.public_key(&key, 1).unwrap();
        assert!(same_der(&cert_public_key(&dir, &leaf), &pem));

        // Serial: what the API says, never reused.
        let serial = cert_serial(&dir, &leaf);
        assert_eq!(norm_serial(cert["serial"].as_str().unwrap()), serial);
        assert!(serials.insert(serial), "serial reused");

        // Validity: at most 460 days, and the API agrees with the certificate.
        let (nb, na) = (rfc3339(&cert["not_before"]), rfc3339(&cert["not_after"]));
        assert!(na - nb <= time::Duration::days(460), "{cert}");
        assert!(na - nb > time::Duration::days(459), "{cert}");
        assert!(nb <= OffsetDateTime::now_utc(), "{cert}");
        let dates = openssl_ok(&dir, &["x509", "-in", p(&leaf), "-noout", "-dates"]).unwrap();
        let mut lines = dates.lines();
        assert_eq!(openssl_time(lines.next().unwrap()), nb, "{dates}");
        assert_eq!(openssl_time(lines.next().unwrap()), na, "{dates}");

        // Read back.
        let (st, got) = s
            .get(
                &format!("{CERTS}/{}", cert["id"].as_str().unwrap()),
                admin(&s),
            )
            .unwrap();
        assert_eq!(st, 200);
        assert_eq!(got, cert);
        assert_eq!(certificates_of(&s, &key), vec![cert.clone()]);
        previous_root = Some(ca.root.clone());
    }

    // A shorter validity on request; longer than 460 days, or none, refused.
    s.create_key("short", "ed25519").unwrap();
    let (st, short) = s
        .post_json(
            "/api/v1/keys/short/certificates",
            admin(&s),
            &json!({"ca": "ca-default", "subject": "CN=Short", "validity_days": 30}),
        )
        .unwrap();
    assert_eq!(st, 201, "{short}");
    assert_eq!(
        rfc3339(&short["not_after"]) - rfc3339(&short["not_before"]),
        time::Duration::days(30)
    );
    for days in [461, 0] {
        let r = s
            .post_resp(
                "/api/v1/keys/short/certificates",
                admin(&s),
                &json!({"ca": "ca-default", "subject": "CN=Short", "validity_days": days}),
            )
            .unwrap();
        r.expect_problem(400, "invalid_request")
            .unwrap_or_else(|e| panic!("validity_days {days}: {e:#}"));
    }
    assert_eq!(certificates_of(&s, "short").len(), 1);

    // Refusals.
    let r = s
        .post_resp(CAS, admin(&s), &json!({"name": "ca-default"}))
        .unwrap();
    r.expect_problem(409, "conflict").unwrap();
    let r = s
        .post_resp(
            CAS,
            admin(&s),
            &json!({"name": "pq", "algorithm": "ml-dsa-65"}),
        )
        .unwrap();
    r.expect_problem(400, "unsupported_algorithm").unwrap();
    let names = s.key_names().unwrap();
    assert!(
        !names.iter().any(|n| n.starts_with("pq")),
        "a refused CA left keys behind: {names:?}"
    );
    s.get_resp(&format!("{CAS}/nope"), admin(&s))
        .unwrap()
        .expect_problem(404, "ca_not_found")
        .unwrap();
    s.post_resp(
        "/api/v1/keys/short/certificates",
        admin(&s),
        &json!({"ca": "nope", "subject": "CN=Short"}),
    )
    .unwrap()
    .expect_problem(404, "ca_not_found")
    .unwrap();
    s.post_resp(
        "/api/v1/keys/ca-default-issuing/certificates",
        admin(&s),
        &json!({"ca": "ca-default", "subject": "CN=Sneaky"}),
    )
    .unwrap()
    .expect_problem(409, "wrong_key_usage")
    .unwrap();

    let (st, list) = s.get(CAS, admin(&s)).unwrap();
    assert_eq!(st, 200);
    let mut listed: Vec<&str> = list["cas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, ["ca-default", "ca-ed25519", "ca-rsa-3072-pkcs1"]);
    assert_eq!(s.audit_events("ca_create", "allowed").unwrap().len(), 3);
    assert_eq!(
        s.audit_events("certificate_issue", "allowed")
            .unwrap()
            .len(),
        3 * 2 + 4,
        "each CA's two certificates and the four leaves"
    );
}

// ---- 2. Revocation and CRLs -----------------------------------------------------------------

#[test]
fn revoked_certificates_are_on_a_signed_crl_that_openssl_enforces() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    let ca = create_ca(&s, &dir, "rel", None);
    let other = create_ca(&s, &dir, "other", None);
    for k in ["a", "b", "c"] {
        s.create_key(k, "ecdsa-p256").unwrap();
    }
    let cert_a = issue(&s, "a", "rel", "CN=A");
    let cert_b = issue(&s, "b", "rel", "CN=B");
    let cert_c = issue(&s, "c", "rel", "CN=C");
    let (leaf_a, leaf_b) = (leaf_file(&dir, &cert_a), leaf_file(&dir, &cert_b));
    let serial_a = norm_serial(cert_a["serial"].as_str().unwrap());
    let serial_b = norm_serial(cert_b["serial"].as_str().unwrap());

    // Before any revocation: an empty, signed CRL the leaves pass.
    let (crl0, crl0_pem, text0) = fetch_crl(&s, &dir, &ca);
    assert!(crl_entries(&text0).is_empty(), "{text0}");
    let n0 = crl_number(&text0);
    let issuer = openssl_ok(&dir, &["x509", "-in", p(&ca.issuing), "-noout", "-subject"])
        .unwrap()
        .trim()
        .trim_start_matches("subject=")
        .to_owned();
    assert!(text0.contains(&format!("Issuer: {issuer}")), "{text0}");
    // …and not with the root's or another CA's.
    for wrong in [&ca.root, &other.issuing] {
        let out = openssl(
            &dir,
            &[
                "crl",
                "-inform",
                "DER",
                "-in",
                p(&crl0),
                "-CAfile",
                p(wrong),
                "-noout",
            ],
        )
        .unwrap();
        let text = combined(&out);
        assert!(
            !out.status.success() || !text.contains("verify OK"),
            "CRL verified with {}: {text}",
            wrong.display()
        );
    }
    let out = verify_leaf(
        &dir,
        &ca,
        &leaf_a,
        &["-crl_check", "-CRLfile", p(&crl0_pem)],
    );
    assert!(out.status.success(), "{}", combined(&out));

    // Revoke A for key compromise.
    let id_a = cert_a["id"].as_str().unwrap();
    let (st, revoked) = s
        .post_json(
            &format!("{CERTS}/{id_a}/revoke"),
            admin(&s),
            &json!({"reason": "key_compromise"}),
        )
        .unwrap();
    assert_eq!(st, 200, "{revoked}");
    assert_eq!(revoked["status"], "revoked", "{revoked}");
    assert_eq!(revoked["revocation_reason"], "key_compromise", "{revoked}");
    assert_eq!(revoked["id"], id_a);
    rfc3339(&revoked["revoked_at"]);
    let (_, got) = s.get(&format!("{CERTS}/{id_a}"), admin(&s)).unwrap();
    assert_eq!(got["status"], "revoked", "{got}");
    s.post_resp(
        &format!("{CERTS}/{id_a}/revoke"),
        admin(&s),
        &json!({"reason": "superseded"}),
    )
    .unwrap()
    .expect_problem(409, "conflict")
    .unwrap();
    let (_, got) = s.get(&format!("{CERTS}/{id_a}"), admin(&s)).unwrap();
    assert_eq!(got["revocation_reason"], "key_compromise", "{got}");

    let (_, crl1_pem, text1) = fetch_crl(&s, &dir, &ca);
    let entries = crl_entries(&text1);
    assert_eq!(entries.len(), 1, "{text1}");
    assert_eq!(entries[0].0, serial_a, "{text1}");
    assert!(entries[0].1.contains("Key Compromise"), "{text1}");
    let n1 = crl_number(&text1);
    assert!(n1 > n0, "CRL number {n1} after {n0}");

    // OpenSSL refuses the revoked leaf and still accepts the other.
    let out = verify_leaf(
        &dir,
        &ca,
        &leaf_a,
        &["-crl_check", "-CRLfile", p(&crl1_pem)],
    );
    let text = combined(&out);
    assert!(
        !out.status.success() && text.contains("certificate revoked"),
        "{text}"
    );
    let out = verify_leaf(
        &dir,
        &ca,
        &leaf_b,
        &["-crl_check", "-CRLfile", p(&crl1_pem)],
    );
    assert!(out.status.success(), "{}", combined(&out));

    // Another revocation (no reason given): a newer CRL lists both.
    let id_b = cert_b["id"].as_str().unwrap();
    let (st, revoked_b) = s
        .post_json(&format!("{CERTS}/{id_b}/revoke"), admin(&s), &json!({}))
        .unwrap();
    assert_eq!(st, 200, "{revoked_b}");
    assert_eq!(revoked_b["status"], "revoked");
    let (_, crl2_pem, text2) = fetch_crl(&s, &dir, &ca);
    let serials: HashSet<String> = crl_entries(&text2).into_iter().map(|e| e.0).collect();
    assert_eq!(
        serials,
        HashSet::from([serial_a.clone(), serial_b.clone()]),
        "{text2}"
    );
    let n2 = crl_number(&text2);
    assert!(n2 > n1, "CRL number {n2} after {n1}");
    let out = verify_leaf(
        &dir,
        &ca,
        &leaf_b,
        &["-crl_check", "-CRLfile", p(&crl2_pem)],
    );
    assert!(
        combined(&out).contains("certificate revoked"),
        "{}",
        combined(&out)
    );
    // The other CA's CRL lists none of them.
    let (_, _, other_text) = fetch_crl(&s, &dir, &other);
    assert!(crl_entries(&other_text).is_empty(), "{other_text}");

    // Bad requests change nothing.
    let id_c = cert_c["id"].as_str().unwrap();
    let r = s
        .post_resp(
            &format!("{CERTS}/{id_c}/revoke"),
            admin(&s),
            &json!({"reason": "bored"}),
        )
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with(PROBLEM_JSON)
    );
    let (_, got) = s.get(&format!("{CERTS}/{id_c}"), admin(&s)).unwrap();
    assert_eq!(got["status"], "valid", "{got}");
    s.post_resp(
        &format!("{CERTS}/{}/revoke", "00".repeat(16)),
        admin(&s),
        &json!({}),
    )
    .unwrap()
    .expect_problem(404, "certificate_not_found")
    .unwrap();
    s.get_resp(&format!("{CAS}/nope/crl"), None)
        .unwrap()
        .expect_problem(404, "ca_not_found")
        .unwrap();

    assert_eq!(
        s.audit_events("certificate_revoke", "allowed")
            .unwrap()
            .len(),
        2
    );
    assert!(!s.audit_events("crl_issue", "allowed").unwrap().is_empty());
}

// ---- 3. CSR and import ----------------------------------------------------------------------

#[test]
fn csr_signed_by_an_external_ca_imports_and_mismatches_are_refused() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    s.create_key("ext", "ecdsa-p256").unwrap();
    s.create_key("other", "ecdsa-p256").unwrap();
    let (_, signer) = s.create_token("ci", "signer", None).unwrap();

    // The CSR is signed by the key and names it.
    let csr_pem = csr(&s, "ext", "CN=External Release,O=Example");
    let csr_file = save(&dir, "ext", "csr", &csr_pem);
    let text = ossl(&dir, &["req", "-in", p(&csr_file), "-verify", "-noout"]);
    assert!(text.contains("verify OK"), "{text}");
    let subj = ossl(&dir, &["req", "-in", p(&csr_file), "-noout", "-subject"]);
    assert!(subj.contains("CN = External Release"), "{subj}");
    let pubkey = openssl_ok(&dir, &["req", "-in", p(&csr_file), "-noout", "-pubkey"]).unwrap();
    assert!(same_der(&pubkey, &s.public_key("ext", 1).unwrap().0));
    // A flipped signature bit makes OpenSSL refuse it (so the check above means something).
    let mut bad = pem_der(&csr_pem).unwrap();
    *bad.last_mut().unwrap() ^= 0x01;
    let bad_file = save(&dir, "bad", "csr.der", &bad);
    let out = openssl(
        &dir,
        &[
            "req",
            "-inform",
            "DER",
            "-in",
            p(&bad_file),
            "-verify",
            "-noout",
        ],
    )
    .unwrap();
    assert!(!combined(&out).contains("verify OK"), "{}", combined(&out));

    // An external CA (OpenSSL only) certifies it.
    let ext_ca = external_ca(&dir, "External Root");
    let leaf = external_sign(&dir, &ext_ca, &csr_file, "0x1001", CODE_SIGNING_EXT);
    let leaf_pem = std::fs::read_to_string(&leaf).unwrap();
    let ca_pem = std::fs::read_to_string(&ext_ca.0).unwrap();
    let chain = format!("{leaf_pem}{ca_pem}");

    // A certificate for another key's CSR, one without codeSigning, garbage: 422, not stored.
    let other_csr = save(&dir, "other", "csr", csr(&s, "other", "CN=Other"));
    let other_leaf = external_sign(&dir, &ext_ca, &other_csr, "0x1002", CODE_SIGNING_EXT);
    let other_chain = format!("{}{ca_pem}", std::fs::read_to_string(&other_leaf).unwrap());
    let tls_leaf = external_sign(
        &dir,
        &ext_ca,
        &csr_file,
        "0x1003",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    );
    let tls_chain = format!("{}{ca_pem}", std::fs::read_to_string(&tls_leaf).unwrap());
    let import = "/api/v1/keys/ext/certificates/import";
    for (what, body) in [
        ("another key's certificate", other_chain.as_str()),
        ("a TLS server certificate", tls_chain.as_str()),
    ] {
        s.post_resp(import, admin(&s), &json!({"chain": body}))
            .unwrap()
            .expect_problem(422, "certificate_mismatch")
            .unwrap_or_else(|e| panic!("{what}: {e:#}"));
    }
    for garbage in [
        "not a certificate".to_owned(),
        String::new(),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_owned(),
    ] {
        let r = s
            .post_resp(import, admin(&s), &json!({"chain": garbage}))
            .unwrap();
        assert_eq!(r.status, 422, "garbage {garbage:?}: {}", r.text);
        assert!(
            r.header("content-type")
                .unwrap_or_default()
                .starts_with(PROBLEM_JSON),
            "{}",
            r.text
        );
    }
    // Not for a signer.
    s.post_resp(import, Some(&signer), &json!({"chain": chain}))
        .unwrap()
        .expect_problem(403, "policy_denied")
        .unwrap();
    s.post_resp(
        "/api/v1/keys/ext/csr",
        Some(&signer),
        &json!({"subject": "CN=Mine"}),
    )
    .unwrap()
    .expect_problem(403, "policy_denied")
    .unwrap();
    assert!(certificates_of(&s, "ext").is_empty());
    assert!(certificates_of(&s, "other").is_empty());

    // The real chain imports.
    let (st, cert) = s
        .post_json(import, admin(&s), &json!({"chain": chain}))
        .unwrap();
    assert_eq!(st, 201, "{cert}");
    assert_eq!(cert["kind"], "imported", "{cert}");
    assert_eq!(cert["key"], "ext", "{cert}");
    assert_eq!(cert["key_version"], 1, "{cert}");
    assert_eq!(cert["status"], "valid", "{cert}");
    assert!(cert["ca"].is_null(), "{cert}");
    assert_eq!(norm_serial(cert["serial"].as_str().unwrap()), "1001");
    assert!(
        cert["issuer"].as_str().unwrap().contains("External Root"),
        "{cert}"
    );
    let got_chain = pem_list(&cert["chain"]);
    assert_eq!(got_chain.len(), 2, "{cert}");
    assert!(same_der(&got_chain[0], &leaf_pem));
    assert!(same_der(&got_chain[1], &ca_pem));
    assert_eq!(certificates_of(&s, "ext"), vec![cert.clone()]);

    // Signatures now carry it, and a CMS signature verifies against the external root.
    let (file, data) = random_artifact(&dir);
    let digest = digest_hex("sha256", &data).unwrap();
    let signed = s.sign("ext", "sha256", &digest).unwrap();
    let sent = pem_list(&signed["certificate_chain"]);
    assert_eq!(sent.len(), 2, "{signed}");
    assert!(same_der(&sent[0], &leaf_pem));
    let (st, cms) = s
        .post_json(
            SIGN_CMS,
            admin(&s),
            &json!({"key": "ext", "digest": digest}),
        )
        .unwrap();
    assert_eq!(st, 200, "{cms}");
    let p7s = save(
        &dir,
        "ext",
        "p7s",
        b64decode(cms["cms"].as_str().unwrap()).unwrap(),
    );
    let out = cms_verify(&dir, &p7s, &file, &ext_ca.0, true);
    assert!(out.status.success(), "{}", combined(&out));

    assert_eq!(s.audit_events("csr_create", "allowed").unwrap().len(), 2);
    assert_eq!(
        s.audit_events("certificate_import", "allowed")
            .unwrap()
            .len(),
        1
    );
}

// ---- 4. The TSA -----------------------------------------------------------------------------

#[test]
fn tsa_tokens_verify_with_openssl_ts() {
    let mut s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    let (file, data) = random_artifact(&dir);

    // Not set up yet: the API says so, the endpoint rejects in RFC 3161 terms.
    s.get_resp(TSA_API, admin(&s))
        .unwrap()
        .expect_problem(503, "tsa_not_configured")
        .unwrap();
    let q = ts_query(&dir, &["-data", p(&file), "-sha256", "-cert"]);
    let r = post_query(&s, std::fs::read(&q).unwrap());
    expect_rejection(&dir, &r, 503, "Status: Rejected");

    let ca = create_ca(&s, &dir, "ts", None);
    let other = create_ca(&s, &dir, "elsewhere", None);
    let tsa = create_tsa(&s, "ts");
    assert_eq!(tsa["key"], "tsa", "{tsa}");
    let policy = tsa["policy"].as_str().unwrap().to_owned();
    assert!(
        policy.split('.').count() >= 2
            && policy
                .split('.')
                .all(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit())),
        "{tsa}"
    );
    assert!(tsa["url"].as_str().unwrap().ends_with("/tsa"), "{tsa}");
    let chain = pem_list(&tsa["chain"]);
    assert_eq!(chain.len(), 3, "{tsa}");
    assert!(same_der(
        &chain[1],
        ca.info["issuing_certificate"].as_str().unwrap()
    ));
    assert!(same_der(
        &chain[2],
        ca.info["root_certificate"].as_str().unwrap()
    ));
    let (st, shown) = s.get(TSA_API, admin(&s)).unwrap();
    assert_eq!(st, 200);
    assert_eq!(shown, tsa);
    s.post_resp(TSA_API, admin(&s), &json!({"ca": "ts"}))
        .unwrap()
        .expect_problem(409, "conflict")
        .unwrap();
    assert_eq!(s.key_info("tsa").unwrap()["usage"], "timestamping");

    // The TSA certificate: critical timeStamping EKU, chains to the root.
    let tsa_cert = save(&dir, "tsa", "pem", &chain[0]);
    let ext = cert_extensions(&dir, &tsa_cert, "extendedKeyUsage,basicConstraints");
    assert!(
        ext.contains("X509v3 Extended Key Usage: critical") && ext.contains("Time Stamping"),
        "{ext}"
    );
    assert!(!ext.contains("Code Signing"), "{ext}");
    let v = ossl(
        &dir,
        &[
            "verify",
            "-purpose",
            "timestampsign",
            "-CAfile",
            p(&ca.root),
            "-untrusted",
            p(&ca.issuing),
            p(&tsa_cert),
        ],
    );
    assert!(v.contains(": OK"), "{v}");
    let tsa_and_issuing = save(
        &dir,
        "tsa-chain",
        "pem",
        format!("{}{}", chain[0], chain[1]),
    );

    let mut serials = HashSet::new();
    let mut imprints = Vec::new();
    let (other_file, _) = random_artifact(&dir);
    for alg in ["sha256", "sha384", "sha512"] {
        let flag = format!("-{alg}");
        let q = ts_query(&dir, &["-data", p(&file), &flag, "-cert"]);
        let reply = timestamp(&s, &dir, &q);
        imprints.push(digest_hex(alg, &data).unwrap());
        let trust = ["-CAfile", p(&ca.root), "-untrusted", p(&ca.issuing)];
        ts_verify_ok(
            &dir,
            &[&["-queryfile", p(&q), "-in", p(&reply)][..], &trust].concat(),
        );
        ts_verify_ok(
            &dir,
            &[&["-data", p(&file), "-in", p(&reply)][..], &trust].concat(),
        );
        // Not for other data, another query's nonce, or another CA.
        let q_other = ts_query(&dir, &["-data", p(&other_file), &flag]);
        ts_verify_fails(
            &dir,
            &[&["-queryfile", p(&q_other), "-in", p(&reply)][..], &trust].concat(),
        );
        ts_verify_fails(
            &dir,
            &[&["-data", p(&other_file), "-in", p(&reply)][..], &trust].concat(),
        );
        let q_again = ts_query(&dir, &["-data", p(&file), &flag, "-cert"]);
        ts_verify_fails(
            &dir,
            &[&["-queryfile", p(&q_again), "-in", p(&reply)][..], &trust].concat(),
        );
        ts_verify_fails(
            &dir,
            &[
                "-data",
                p(&file),
                "-in",
                p(&reply),
                "-CAfile",
                p(&other.root),
                "-untrusted",
                p(&other.issuing),
            ],
        );

        let text = reply_text(&dir, &reply);
        assert!(text.contains("Status: Granted."), "{text}");
        assert_eq!(field(&text, "Policy OID:"), Some(policy.as_str()), "{text}");
        assert_eq!(field(&text, "Hash Algorithm:"), Some(alg), "{text}");
        let query_text = ossl(&dir, &["ts", "-query", "-in", p(&q), "-text"]);
        let nonce = field(&query_text, "Nonce:").unwrap();
        assert_eq!(field(&text, "Nonce:"), Some(nonce), "{text}");
        let serial = field(&text, "Serial number:").unwrap().to_owned();
        assert!(serials.insert(serial), "time-stamp serial reused:\n{text}");
    }

    // certReq false: the token carries no certificate, so the TSA's must be supplied.
    let q = ts_query(&dir, &["-data", p(&file), "-sha256"]);
    let reply = timestamp(&s, &dir, &q);
    imprints.push(digest_hex("sha256", &data).unwrap());
    ts_verify_ok(
        &dir,
        &[
            "-queryfile",
            p(&q),
            "-in",
            p(&reply),
            "-CAfile",
            p(&ca.root),
            "-untrusted",
            p(&tsa_and_issuing),
        ],
    );
    ts_verify_fails(
        &dir,
        &[
            "-queryfile",
            p(&q),
            "-in",
            p(&reply),
            "-CAfile",
            p(&ca.root),
            "-untrusted",
            p(&ca.issuing),
        ],
    );
    serials.insert(
        field(&reply_text(&dir, &reply), "Serial number:")
            .unwrap()
            .to_owned(),
    );

    // No nonce; this TSA's policy asked for explicitly: granted. Another policy: rejected.
    for args in [
        vec!["-data", p(&file), "-sha256", "-cert", "-no_nonce"],
        vec!["-data", p(&file), "-sha256", "-cert", "-tspolicy", &policy],
    ] {
        let q = ts_query(&dir, &args);
        let reply = timestamp(&s, &dir, &q);
        imprints.push(digest_hex("sha256", &data).unwrap());
        ts_verify_ok(
            &dir,
            &[
                "-queryfile",
                p(&q),
                "-in",
                p(&reply),
                "-CAfile",
                p(&ca.root),
                "-untrusted",
                p(&ca.issuing),
            ],
        );
        assert!(
            serials.insert(
                field(&reply_text(&dir, &reply), "Serial number:")
                    .unwrap()
                    .to_owned()
            )
        );
    }
    let q = ts_query(
        &dir,
        &[
            "-data",
            p(&file),
            "-sha256",
            "-cert",
            "-tspolicy",
            "1.2.3.4.5",
        ],
    );
    let r = post_query(&s, std::fs::read(&q).unwrap());
    expect_rejection(&dir, &r, 400, UNACCEPTED_POLICY);

    // Serial numbers stay unique across a restart.
    s.restart().unwrap();
    for _ in 0..3 {
        let q = ts_query(&dir, &["-data", p(&file), "-sha256", "-cert"]);
        let reply = timestamp(&s, &dir, &q);
        imprints.push(digest_hex("sha256", &data).unwrap());
        ts_verify_ok(
            &dir,
            &[
                "-queryfile",
                p(&q),
                "-in",
                p(&reply),
                "-CAfile",
                p(&ca.root),
                "-untrusted",
                p(&ca.issuing),
            ],
        );
        let text = reply_text(&dir, &reply);
        let serial = field(&text, "Serial number:").unwrap().to_owned();
        assert!(
            serials.insert(serial),
            "serial reused after restart:\n{text}"
        );
    }

    // Every token granted is one audit entry of the TSA key over the query's imprint.
    let audited = timestamps_audited(&s);
    assert_eq!(audited.len(), imprints.len(), "{audited:#?}");
    for (e, imprint) in audited.iter().zip(&imprints) {
        assert_eq!(e["key"]["name"], "tsa", "{e}");
        assert_eq!(e["digest"]["value"], imprint.as_str(), "{e}");
    }
}

// ---- 5. The TSA and bad input ---------------------------------------------------------------

#[test]
fn tsa_rejects_bad_queries_without_granting() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    let (file, _) = random_artifact(&dir);
    create_ca(&s, &dir, "ts", None);
    create_tsa(&s, "ts");
    let good = std::fs::read(ts_query(&dir, &["-data", p(&file), "-sha256", "-cert"])).unwrap();

    // Not a time-stamp query by its media type, or too large: problem documents.
    for ct in [
        Some("application/octet-stream"),
        Some("application/json"),
        None,
    ] {
        s.request("POST", TSA, None, ct, Some(good.clone()))
            .unwrap()
            .expect_problem(415, "unsupported_media_type")
            .unwrap_or_else(|e| panic!("content type {ct:?}: {e:#}"));
    }
    s.request(
        "POST",
        TSA,
        None,
        Some(TSQ),
        Some(random_bytes(17 * 1024).unwrap()),
    )
    .unwrap()
    .expect_problem(413, "payload_too_large")
    .unwrap();

    // Malformed queries: rejections in RFC 3161 terms.
    let digest32 = random_bytes(32).unwrap();
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 5);
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[0, 0]);
    let extension = der(
        0xa0,
        &der(
            0x30,
            &[0x06, 0x03, 0x2a, 0x03, 0x04, 0x04, 0x02, 0x05, 0x00],
        ),
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("random bytes", random_bytes(200).unwrap(), BAD_DATA_FORMAT),
        ("truncated", truncated, BAD_DATA_FORMAT),
        ("empty", Vec::new(), BAD_DATA_FORMAT),
        ("trailing bytes", trailing, BAD_DATA_FORMAT),
        (
            "imprint shorter than its hash",
            tsq_der(1, OID_SHA256, &digest32[..20], &[]),
            BAD_DATA_FORMAT,
        ),
        (
            "version 2",
            tsq_der(2, OID_SHA256, &digest32, &[]),
            BAD_DATA_FORMAT,
        ),
        (
            "certReq FALSE written out (BER)",
            tsq_der(1, OID_SHA256, &digest32, &[0x01, 0x01, 0x00]),
            BAD_DATA_FORMAT,
        ),
        ("SHA-1", tsq_der(1, OID_SHA1, &digest32[..20], &[]), BAD_ALG),
        (
            "hand-made MD5",
            tsq_der(1, OID_MD5, &digest32[..16], &[]),
            BAD_ALG,
        ),
        (
            "an extension",
            tsq_der(1, OID_SHA256, &digest32, &extension),
            UNACCEPTED_EXTENSION,
        ),
    ];
    // The hand-made query without its defects is accepted, so the cases test only the defect.
    let r = post_query(&s, tsq_der(1, OID_SHA256, &digest32, &[]));
    assert_eq!(r.status, 200, "{}", r.text());
    let granted = timestamps_audited(&s).len();
    assert_eq!(granted, 1);

    for (what, body, failure) in cases {
        let r = post_query(&s, body);
        let text = expect_rejection(&dir, &r, 400, failure);
        assert!(!text.contains("Status: Granted"), "{what}: {text}");
    }
    // MD5 as OpenSSL writes it.
    let md5 = ts_query(&dir, &["-data", p(&file), "-md5", "-cert"]);
    let r = post_query(&s, std::fs::read(&md5).unwrap());
    expect_rejection(&dir, &r, 400, BAD_ALG);

    assert_eq!(
        timestamps_audited(&s).len(),
        granted,
        "a rejected query was audited as granted"
    );
}

// ---- 6. osslsigncode --------------------------------------------------------------------------

/// The smallest PE32 image `osslsigncode` accepts: DOS header, PE header, one `.text` section
/// holding `ret`.
fn tiny_pe() -> Vec<u8> {
    fn put(b: &mut [u8], at: usize, v: &[u8]) {
        b[at..at + v.len()].copy_from_slice(v);
    }
    let mut b = vec![0u8; 0x400];
    put(&mut b, 0, b"MZ");
    put(&mut b, 0x3c, &0x40u32.to_le_bytes());
    put(&mut b, 0x40, b"PE\0\0");
    // COFF header: i386, one section, optional header of 0xE0 bytes, executable 32-bit.
    let coff = 0x44;
    put(&mut b, coff, &0x14cu16.to_le_bytes());
    put(&mut b, coff + 2, &1u16.to_le_bytes());
    put(&mut b, coff + 16, &0xe0u16.to_le_bytes());
    put(&mut b, coff + 18, &0x0102u16.to_le_bytes());
    // Optional header (PE32).
    let o = 0x58;
    let u32s: [(usize, u32); 14] = [
        (4, 0x200),      // SizeOfCode
        (16, 0x1000),    // AddressOfEntryPoint
        (20, 0x1000),    // BaseOfCode
        (24, 0x1000),    // BaseOfData
        (28, 0x40_0000), // ImageBase
        (32, 0x1000),    // SectionAlignment
        (36, 0x200),     // FileAlignment
        (56, 0x2000),    // SizeOfImage
        (60, 0x200),     // SizeOfHeaders
        (72, 0x10_0000), // SizeOfStackReserve
        (76, 0x1000),    // SizeOfStackCommit
        (80, 0x10_0000), // SizeOfHeapReserve
        (84, 0x1000),    // SizeOfHeapCommit
        (92, 16),        // NumberOfRvaAndSizes
    ];
    put(&mut b, o, &0x10bu16.to_le_bytes());
    for (at, v) in u32s {
        put(&mut b, o + at, &v.to_le_bytes());
    }
    put(&mut b, o + 40, &4u16.to_le_bytes()); // MajorOperatingSystemVersion
    put(&mut b, o + 48, &4u16.to_le_bytes()); // MajorSubsystemVersion
    put(&mut b, o + 68, &3u16.to_le_bytes()); // Subsystem: console
    // Section header.
    let sh = o + 0xe0;
    put(&mut b, sh, b".text\0\0\0");
    put(&mut b, sh + 8, &1u32.to_le_bytes()); // VirtualSize
    put(&mut b, sh + 12, &0x1000u32.to_le_bytes()); // VirtualAddress
    put(&mut b, sh + 16, &0x200u32.to_le_bytes()); // SizeOfRawData
    put(&mut b, sh + 20, &0x200u32.to_le_bytes()); // PointerToRawData
    put(&mut b, sh + 36, &0x6000_0020u32.to_le_bytes()); // code, execute, read
    b[0x200] = 0xc3;
    b
}

fn osslsigncode(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("osslsigncode");
    cmd.args(args).current_dir(dir);
    match run_with_timeout(&mut cmd, Duration::from_secs(60)) {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run osslsigncode ({e:#}); install it (Debian: `apt-get install osslsigncode`; scripts/test does)"
        ),
    }
}

#[test]
fn osslsigncode_timestamps_authenticode_with_signet_tsa() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    let ca = create_ca(&s, &dir, "ts", None);
    create_tsa(&s, "ts");

    // Keys never leave Signet, so the Authenticode signer is a throwaway OpenSSL key; the
    // time-stamp is Signet's.
    let key = dir.join("throwaway.key");
    let cert = dir.join("throwaway.pem");
    ossl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            p(&key),
            "-out",
            p(&cert),
            "-subj",
            "/CN=Throwaway Publisher",
            "-days",
            "2",
            "-addext",
            "extendedKeyUsage=codeSigning",
        ],
    );
    let exe = save(&dir, "tiny", "exe", tiny_pe());
    let signed = dir.join("tiny-signed.exe");
    let before = timestamps_audited(&s).len();
    let ts_url = s.url(TSA);
    let out = osslsigncode(
        &dir,
        &[
            "sign",
            "-certs",
            p(&cert),
            "-key",
            p(&key),
            "-h",
            "sha256",
            "-ts",
            &ts_url,
            "-HTTPS-CAfile",
            p(s.ca_cert()),
            "-in",
            p(&exe),
            "-out",
            p(&signed),
        ],
    );
    assert!(
        out.status.success(),
        "osslsigncode sign -ts {ts_url} failed:\n{}",
        combined(&out)
    );
    assert_eq!(timestamps_audited(&s).len(), before + 1);

    let out = osslsigncode(
        &dir,
        &[
            "verify",
            "-CAfile",
            p(&cert),
            "-TSA-CAfile",
            p(&ca.root),
            "-in",
            p(&signed),
        ],
    );
    let text = combined(&out);
    assert!(out.status.success(), "osslsigncode verify failed:\n{text}");
    assert!(
        text.contains("Timestamp Server Signature verification: ok"),
        "{text}"
    );
    assert!(text.contains("Signature verification: ok"), "{text}");
    assert!(!text.contains("Timestamp is not available"), "{text}");

    // Against another TSA root, the time-stamp does not verify (osslsigncode 2.9 still exits 0:
    // it then judges the signature without the time-stamp).
    let out = osslsigncode(
        &dir,
        &[
            "verify",
            "-CAfile",
            p(&cert),
            "-TSA-CAfile",
            p(&cert),
            "-in",
            p(&signed),
        ],
    );
    let text = combined(&out);
    assert!(
        text.contains("Timestamp Server Signature verification: failed"),
        "{text}"
    );
}

// ---- 7. CMS -----------------------------------------------------------------------------------

#[test]
fn cms_signatures_verify_with_openssl_cms() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    let ca = create_ca(&s, &dir, "rel", None);
    create_tsa(&s, "rel");

    // No certificate, no CMS signature.
    s.create_key("bare", "ecdsa-p256").unwrap();
    let digest = digest_hex("sha256", b"x").unwrap();
    s.post_resp(
        SIGN_CMS,
        admin(&s),
        &json!({"key": "bare", "digest": digest}),
    )
    .unwrap()
    .expect_problem(409, "certificate_required")
    .unwrap();

    for (algorithm, digest_algorithm) in [
        ("ecdsa-p256", "sha256"),
        ("ecdsa-p384", "sha384"),
        ("ed25519", "sha512"),
        ("rsa-3072-pkcs1", "sha256"),
        ("rsa-3072-pss", "sha256"),
    ] {
        let key = format!("cms-{algorithm}");
        s.create_key(&key, algorithm).unwrap();
        let cert = issue(&s, &key, "rel", &format!("CN={key},O=Example"));
        let (file, data) = random_artifact(&dir);
        let digest = digest_hex(digest_algorithm, &data).unwrap();
        for stamped in [false, true] {
            let (st, v) = s
                .post_json(
                    SIGN_CMS,
                    admin(&s),
                    &json!({
                        "key": key, "digest": digest, "digest_algorithm": digest_algorithm,
                        "artifact_name": "artifact.bin", "timestamp": stamped,
                    }),
                )
                .unwrap();
            assert_eq!(st, 200, "{algorithm}: {v}");
            assert_eq!(v["key"], key.as_str());
            assert_eq!(v["key_version"], 1);
            assert!(v["audit_index"].is_u64(), "{v}");
            assert_eq!(v["certificate_chain"], cert["chain"], "{v}");
            let p7s = save(
                &dir,
                &key,
                "p7s",
                b64decode(v["cms"].as_str().unwrap()).unwrap(),
            );

            // The signed attributes carry the artifact's digest and the signature covers them.
            let (attrs, message_digest, signature) = cms_signed_attributes(&dir, &p7s);
            assert_eq!(hex::encode(&message_digest), digest, "{algorithm}");
            if algorithm == "ed25519" {
                // OpenSSL 3.0's `cms` cannot verify Ed25519 (RFC 8419) signers ("invalid
                // digest"), so check the chain and the signature over the attributes apart.
                let leaf = save(&dir, "cms-leaf", "pem", cert["chain"][0].as_str().unwrap());
                let out = verify_leaf(&dir, &ca, &leaf, &[]);
                assert!(out.status.success(), "{}", combined(&out));
                let attrs_file = save(&dir, "signed-attrs", "der", &attrs);
                let public = cert_public_key(&dir, &leaf);
                assert!(
                    pkeyutl_verify(&dir, &public, &attrs_file, &signature),
                    "{algorithm}: signature over the signed attributes does not verify"
                );
                let mut bad_attrs = attrs.clone();
                let last = bad_attrs.len() - 1;
                bad_attrs[last] ^= 1;
                let bad_file = save(&dir, "signed-attrs-bad", "der", &bad_attrs);
                assert!(!pkeyutl_verify(&dir, &public, &bad_file, &signature));
            } else {
                let out = cms_verify(&dir, &p7s, &file, &ca.root, true);
                let text = combined(&out);
                assert!(
                    out.status.success() && text.contains("Verification successful"),
                    "{algorithm} (timestamp {stamped}): {text}"
                );
                // A changed artifact fails.
                let mut bad = data.clone();
                bad[data.len() / 2] ^= 1;
                let tampered = save(&dir, "tampered", "bin", &bad);
                let out = cms_verify(&dir, &p7s, &tampered, &ca.root, true);
                let text = combined(&out);
                assert!(
                    !out.status.success() && text.contains("Verification failure"),
                    "{algorithm}: tampered content verified: {text}"
                );
            }

            let printed = ossl(
                &dir,
                &["cms", "-cmsout", "-print", "-inform", "DER", "-in", p(&p7s)],
            );
            assert_eq!(
                printed.contains("id-smime-aa-timeStampToken"),
                stamped,
                "{algorithm} (timestamp {stamped}): {printed}"
            );
            if stamped {
                // The token is over the SHA-256 of the signature value (RFC 3161 Appendix A).
                let (signature, token) = cms_signature_and_token(&dir, &p7s);
                let token_file = save(&dir, "cms-token", "der", &token);
                let imprint = digest_hex("sha256", &signature).unwrap();
                ts_verify_ok(
                    &dir,
                    &[
                        "-digest",
                        &imprint,
                        "-in",
                        p(&token_file),
                        "-token_in",
                        "-CAfile",
                        p(&ca.root),
                        "-untrusted",
                        p(&ca.issuing),
                    ],
                );
                let wrong = digest_hex("sha256", &data).unwrap();
                ts_verify_fails(
                    &dir,
                    &[
                        "-digest",
                        &wrong,
                        "-in",
                        p(&token_file),
                        "-token_in",
                        "-CAfile",
                        p(&ca.root),
                        "-untrusted",
                        p(&ca.issuing),
                    ],
                );
            }
        }
    }

    // OpenSSL's default purpose (S/MIME signing) and a code-signing-only certificate.
    let (file, data) = random_artifact(&dir);
    let digest = digest_hex("sha256", &data).unwrap();
    let (_, v) = s
        .post_json(
            SIGN_CMS,
            admin(&s),
            &json!({"key": "cms-ecdsa-p256", "digest": digest}),
        )
        .unwrap();
    let p7s = save(
        &dir,
        "default-purpose",
        "p7s",
        b64decode(v["cms"].as_str().unwrap()).unwrap(),
    );
    let out = cms_verify(&dir, &p7s, &file, &ca.root, false);
    let text = combined(&out);
    assert!(
        !out.status.success() && text.contains("unsuitable certificate purpose"),
        "expected OpenSSL's default purpose (smimesign) to refuse the codeSigning-only leaf, so verifiers need `-purpose any`: {text}"
    );

    let cms_events = s.audit_events("sign", "allowed").unwrap();
    assert!(
        cms_events.len() >= 11,
        "CMS signatures not audited as signatures: {}",
        cms_events.len()
    );
}

// ---- 8. Key policy ----------------------------------------------------------------------------

#[test]
fn key_policy_requires_certificate_and_timestamp() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    let ca = create_ca(&s, &dir, "rel", None);
    s.create_key("k", "ecdsa-p256").unwrap();
    let info = s.key_info("k").unwrap();
    assert_eq!(info["usage"], "signing", "{info}");
    assert_eq!(
        info["policy"],
        json!({"require_certificate": false, "require_timestamp": false})
    );

    let (file, data) = random_artifact(&dir);
    let digest = digest_hex("sha256", &data).unwrap();
    // Without a certificate: plain signatures, no chain.
    let plain = s.sign("k", "sha256", &digest).unwrap();
    assert!(
        plain["certificate_chain"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{plain}"
    );
    assert!(plain["timestamp"].is_null(), "{plain}");

    set_policy(&s, "k", true, false);
    let signs_before = s.audit_events("sign", "allowed").unwrap().len();
    sign_resp(&s, admin(&s), "k", &digest)
        .expect_problem(409, "certificate_required")
        .unwrap();
    assert_eq!(
        s.audit_events("sign", "allowed").unwrap().len(),
        signs_before
    );

    let cert = issue(&s, "k", "rel", "CN=K");
    let r = sign_resp(&s, admin(&s), "k", &digest);
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json().unwrap();
    let chain = pem_list(&v["certificate_chain"]);
    assert_eq!(chain.len(), 3, "{v}");
    assert_eq!(v["certificate_chain"], cert["chain"]);
    assert!(v["timestamp"].is_null(), "{v}");
    // The signature verifies with the certificate's public key.
    let leaf = save(&dir, "k-leaf", "pem", &chain[0]);
    let sig = b64decode(v["signature"].as_str().unwrap()).unwrap();
    assert!(
        openssl_verify(
            &dir,
            VerifyMode::Dgst,
            "sha256",
            &cert_public_key(&dir, &leaf),
            &file,
            &sig
        )
        .unwrap()
    );

    let id = cert["id"].as_str().unwrap();
    let (st, _) = s
        .post_json(&format!("{CERTS}/{id}/revoke"), admin(&s), &json!({}))
        .unwrap();
    assert_eq!(st, 200);
    sign_resp(&s, admin(&s), "k", &digest)
        .expect_problem(409, "certificate_required")
        .unwrap();

    // A time-stamp required but no TSA: no signature comes back.
    set_policy(&s, "k", false, true);
    sign_resp(&s, admin(&s), "k", &digest)
        .expect_problem(503, "tsa_not_configured")
        .unwrap();

    create_tsa(&s, "rel");
    let r = sign_resp(&s, admin(&s), "k", &digest);
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json().unwrap();
    assert!(
        v["certificate_chain"].as_array().is_none_or(Vec::is_empty),
        "a revoked certificate was sent: {v}"
    );
    let sig = b64decode(v["signature"].as_str().unwrap()).unwrap();
    let token = b64decode(v["timestamp"].as_str().expect("no timestamp")).unwrap();
    let token_file = save(&dir, "sign-token", "der", &token);
    let trust = ["-CAfile", p(&ca.root), "-untrusted", p(&ca.issuing)];
    let imprint = digest_hex("sha256", &sig).unwrap();
    ts_verify_ok(
        &dir,
        &[
            &["-digest", &imprint, "-in", p(&token_file), "-token_in"][..],
            &trust,
        ]
        .concat(),
    );
    ts_verify_fails(
        &dir,
        &[
            &["-digest", &digest, "-in", p(&token_file), "-token_in"][..],
            &trust,
        ]
        .concat(),
    );
    let text = ossl(
        &dir,
        &["ts", "-reply", "-in", p(&token_file), "-token_in", "-text"],
    );
    assert!(text.contains("Hash Algorithm: sha256"), "{text}");

    // Batches get one token per signature.
    let d2 = digest_hex("sha256", b"second").unwrap();
    let (st, batch) = s
        .post_json(
            "/api/v1/sign/batch",
            admin(&s),
            &json!({"key": "k", "items": [{"digest": digest}, {"digest": d2}]}),
        )
        .unwrap();
    assert_eq!(st, 200, "{batch}");
    for item in batch["signatures"].as_array().unwrap() {
        let sig = b64decode(item["signature"].as_str().unwrap()).unwrap();
        let token = b64decode(item["timestamp"].as_str().expect("no timestamp")).unwrap();
        let token_file = save(&dir, "batch-token", "der", &token);
        let imprint = digest_hex("sha256", &sig).unwrap();
        ts_verify_ok(
            &dir,
            &[
                &["-digest", &imprint, "-in", p(&token_file), "-token_in"][..],
                &trust,
            ]
            .concat(),
        );
    }
    assert_eq!(timestamps_audited(&s).len(), 3);

    // Policy changes are admin-only and audited.
    let (_, signer) = s.create_token("ci", "signer", None).unwrap();
    s.request(
        "PUT",
        "/api/v1/keys/k/policy",
        Some(&signer),
        Some("application/json"),
        Some(br#"{"require_certificate":false,"require_timestamp":false}"#.to_vec()),
    )
    .unwrap()
    .expect_problem(403, "policy_denied")
    .unwrap();
    assert_eq!(
        s.key_info("k").unwrap()["policy"],
        json!({"require_certificate": false, "require_timestamp": true})
    );
    assert_eq!(
        s.audit_events("key_policy_set", "allowed").unwrap().len(),
        2
    );
}

// ---- 9. Key usage -----------------------------------------------------------------------------

#[test]
fn ca_and_tsa_keys_never_sign_client_digests() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    create_ca(&s, &dir, "rel", None);
    create_tsa(&s, "rel");
    let keys = ["rel-root", "rel-issuing", "tsa"];
    for key in keys {
        let info = s.key_info(key).unwrap();
        let alg = info["default_digest_algorithm"].as_str().unwrap();
        let d = &digest_hex(alg, b"anything").unwrap();
        sign_resp(&s, admin(&s), key, d)
            .expect_problem(409, "wrong_key_usage")
            .unwrap_or_else(|e| panic!("/sign with `{key}`: {e:#}"));
        s.post_resp(
            "/api/v1/sign/batch",
            admin(&s),
            &json!({"key": key, "items": [{"digest": d}]}),
        )
        .unwrap()
        .expect_problem(409, "wrong_key_usage")
        .unwrap_or_else(|e| panic!("/sign/batch with `{key}`: {e:#}"));
        s.post_resp(SIGN_CMS, admin(&s), &json!({"key": key, "digest": d}))
            .unwrap()
            .expect_problem(409, "wrong_key_usage")
            .unwrap_or_else(|e| panic!("/sign/cms with `{key}`: {e:#}"));
    }
    let denied = s.audit_events("sign", "denied").unwrap();
    for key in keys {
        assert!(
            denied
                .iter()
                .any(|e| e["key"]["name"] == key && e["outcome"]["code"] == "wrong_key_usage"),
            "no denied sign of `{key}` audited: {denied:#?}"
        );
    }
    assert!(s.audit_events("sign", "allowed").unwrap().is_empty());
}

// ---- 10. Authorization ------------------------------------------------------------------------

#[test]
fn only_admins_administer_certificates_and_crl_and_tsa_are_public() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    let ca = create_ca(&s, &dir, "rel", None);
    s.create_key("k", "ecdsa-p256").unwrap();
    let cert = issue(&s, "k", "rel", "CN=K");
    let id = cert["id"].as_str().unwrap().to_owned();
    let (_, signer) = s.create_token("ci", "signer", None).unwrap();

    let administrative: Vec<(&str, String, Value)> = vec![
        ("POST", CAS.into(), json!({"name": "mine"})),
        (
            "POST",
            "/api/v1/keys/k/certificates".into(),
            json!({"ca": "rel", "subject": "CN=Mine"}),
        ),
        ("POST", format!("{CERTS}/{id}/revoke"), json!({})),
        (
            "POST",
            "/api/v1/keys/k/csr".into(),
            json!({"subject": "CN=Mine"}),
        ),
        (
            "POST",
            "/api/v1/keys/k/certificates/import".into(),
            json!({"chain": cert["chain"][0]}),
        ),
        ("POST", TSA_API.into(), json!({"ca": "rel"})),
        (
            "PUT",
            "/api/v1/keys/k/policy".into(),
            json!({"require_certificate": true, "require_timestamp": false}),
        ),
    ];
    for (method, path, body) in &administrative {
        let bytes = serde_json::to_vec(body).unwrap();
        s.request(
            method,
            path,
            Some(&signer),
            Some("application/json"),
            Some(bytes.clone()),
        )
        .unwrap()
        .expect_problem(403, "policy_denied")
        .unwrap_or_else(|e| panic!("signer {method} {path}: {e:#}"));
        s.request(method, path, None, Some("application/json"), Some(bytes))
            .unwrap()
            .expect_problem(401, "unauthenticated")
            .unwrap_or_else(|e| panic!("anonymous {method} {path}: {e:#}"));
    }
    // Nothing changed.
    assert_eq!(
        s.get(CAS, admin(&s)).unwrap().1["cas"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(certificates_of(&s, "k"), vec![cert.clone()]);
    s.get_resp(TSA_API, admin(&s))
        .unwrap()
        .expect_problem(503, "tsa_not_configured")
        .unwrap();
    assert_eq!(
        s.key_info("k").unwrap()["policy"],
        json!({"require_certificate": false, "require_timestamp": false})
    );

    // Reading is for any token, never for none.
    for path in [
        CERTS.to_owned(),
        format!("{CERTS}/{id}"),
        "/api/v1/keys/k/certificates".to_owned(),
        CAS.to_owned(),
        format!("{CAS}/rel"),
    ] {
        let (st, v) = s.get(&path, Some(&signer)).unwrap();
        assert_eq!(st, 200, "signer GET {path}: {v}");
        s.get_resp(&path, None)
            .unwrap()
            .expect_problem(401, "unauthenticated")
            .unwrap_or_else(|e| panic!("anonymous GET {path}: {e:#}"));
    }
    // The list holds the CA's own certificates too.
    let (_, list) = s.get(CERTS, Some(&signer)).unwrap();
    let listed = list["certificates"].as_array().unwrap();
    assert!(listed.contains(&cert), "{list}");
    let kinds: HashSet<&str> = listed.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        HashSet::from(["code_signing", "root_ca", "issuing_ca"]),
        "{list}"
    );

    // Relying parties need no token: the CRL and the TSA.
    fetch_crl(&s, &dir, &ca);
    create_tsa(&s, "rel");
    let (st, v) = s.get(TSA_API, Some(&signer)).unwrap();
    assert_eq!(st, 200, "{v}");
    s.get_resp(TSA_API, None)
        .unwrap()
        .expect_problem(401, "unauthenticated")
        .unwrap();
    let (file, _) = random_artifact(&dir);
    let q = ts_query(&dir, &["-data", p(&file), "-sha256", "-cert"]);
    let reply = timestamp(&s, &dir, &q);
    ts_verify_ok(
        &dir,
        &[
            "-queryfile",
            p(&q),
            "-in",
            p(&reply),
            "-CAfile",
            p(&ca.root),
            "-untrusted",
            p(&ca.issuing),
        ],
    );
    // A token sent to the TSA must be a valid one.
    let r = s
        .request_bytes(
            "POST",
            TSA,
            Some("signet_nope_nope"),
            Some(TSQ),
            Some(std::fs::read(&q).unwrap()),
        )
        .unwrap();
    assert_eq!(r.status, 401, "{}", r.text());

    let denied = s
        .audit()
        .unwrap()
        .into_iter()
        .map(|r| r["event"].clone())
        .filter(|e| e["outcome"]["result"] == "denied" && e["actor"]["name"] == "ci")
        .count();
    assert!(
        denied >= administrative.len(),
        "signer's refused attempts not audited: {denied}"
    );
}

// ---- 11. Where relying parties find the CRL and the TSA ---------------------------------------

/// The `URI:` of a certificate's CRL distribution point.
fn crl_distribution_point(dir: &Path, cert: &Path) -> String {
    let ext = cert_extensions(dir, cert, "crlDistributionPoints");
    ext.lines()
        .find_map(|l| l.trim().strip_prefix("URI:"))
        .unwrap_or_else(|| panic!("no CRL distribution point URI:\n{ext}"))
        .to_owned()
}

#[test]
fn default_public_url_reaches_the_running_server() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    let ca = create_ca(&s, &dir, "rel", None);
    s.create_key("k", "ecdsa-p256").unwrap();
    let cert = issue(&s, "k", "rel", "CN=K");
    let leaf = leaf_file(&dir, &cert);
    let tsa = create_tsa(&s, "rel");

    // A relying party following the certificate's CRL distribution point gets the CRL…
    let cdp = crl_distribution_point(&dir, &leaf);
    assert_eq!(cdp, ca.info["crl_url"].as_str().unwrap());
    let r = s.client().get(&cdp).send();
    let ok = r.as_ref().is_ok_and(|r| r.status().as_u16() == 200);
    assert!(
        ok,
        "the CRL distribution point `{cdp}` of an issued certificate does not reach this server \
         (listening at {}): {r:?}",
        s.base_url()
    );
    // …and a time-stamp client sent to the TSA URL gets a time-stamp.
    let url = tsa["url"].as_str().unwrap().to_owned();
    let (file, _) = random_artifact(&dir);
    let q = ts_query(&dir, &["-data", p(&file), "-sha256", "-cert"]);
    let r = s
        .client()
        .post(&url)
        .header("content-type", TSQ)
        .body(std::fs::read(&q).unwrap())
        .send();
    assert!(
        r.as_ref().is_ok_and(|r| r.status().as_u16() == 200),
        "the TSA URL `{url}` does not reach this server (listening at {}): {r:?}",
        s.base_url()
    );
}

#[test]
fn public_url_setting_names_the_crl_and_tsa() {
    let public = "https://signet.example.test:8443";
    let s = Server::start_with(ServeOptions {
        env: vec![("SIGNET_PUBLIC_URL".into(), public.into())],
        ..ServeOptions::default()
    })
    .unwrap();
    let dir = s.scratch().unwrap();
    let ca = create_ca(&s, &dir, "rel", None);
    let crl_url = format!("{public}/api/v1/cas/rel/crl");
    assert_eq!(ca.info["crl_url"], crl_url.as_str());
    s.create_key("k", "ecdsa-p256").unwrap();
    let cert = issue(&s, "k", "rel", "CN=K");
    assert_eq!(
        crl_distribution_point(&dir, &leaf_file(&dir, &cert)),
        crl_url
    );
    let tsa = create_tsa(&s, "rel");
    assert_eq!(tsa["url"], format!("{public}/tsa"));
}

// ---- 12. The CLI ------------------------------------------------------------------------------

#[test]
fn cli_creates_cas_issues_revokes_and_fetches_crls() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    let out_dir = dir.join("ca-out");
    s.signet(["ca", "create", "rel", "--out-dir", p(&out_dir)])
        .unwrap()
        .ok()
        .unwrap();
    let (root, issuing) = (
        out_dir.join("rel-root.pem"),
        out_dir.join("rel-issuing.pem"),
    );
    let (_, shown) = s.get(&format!("{CAS}/rel"), admin(&s)).unwrap();
    assert!(same_der(
        &std::fs::read_to_string(&root).unwrap(),
        shown["root_certificate"].as_str().unwrap()
    ));
    assert!(same_der(
        &std::fs::read_to_string(&issuing).unwrap(),
        shown["issuing_certificate"].as_str().unwrap()
    ));
    let listed = s.signet(["ca", "list", "--json"]).unwrap();
    listed.ok().unwrap();
    assert!(
        listed.stdout.contains("\"rel-issuing\""),
        "{}",
        listed.stdout
    );
    let ca = Ca {
        name: "rel".into(),
        info: shown,
        root,
        issuing,
    };

    s.create_key("k", "ecdsa-p256").unwrap();
    let chain_file = dir.join("k.crt.pem");
    s.signet([
        "cert",
        "issue",
        "k",
        "--ca-name",
        "rel",
        "--subject",
        "CN=CLI,O=Example",
        "-o",
        p(&chain_file),
    ])
    .unwrap()
    .ok()
    .unwrap();
    let blocks = pem_blocks(&std::fs::read_to_string(&chain_file).unwrap());
    assert_eq!(blocks.len(), 3, "{blocks:?}");
    let leaf = save(&dir, "cli-leaf", "pem", &blocks[0]);
    let out = verify_leaf(&dir, &ca, &leaf, &[]);
    assert!(out.status.success(), "{}", combined(&out));

    let (_, signer) = s.create_token("ci", "signer", None).unwrap();
    s.signet_as(
        &signer,
        [
            "cert",
            "issue",
            "k",
            "--ca-name",
            "rel",
            "--subject",
            "CN=Mine",
            "-o",
            p(&dir.join("mine.pem")),
        ],
    )
    .unwrap()
    .fails_with(1, "policy_denied")
    .unwrap();

    let list = s.signet(["cert", "list", "k", "--json"]).unwrap();
    list.ok().unwrap();
    let list = list.json().unwrap();
    let certs = list["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 1, "{list}");
    let id = certs[0]["id"].as_str().unwrap();
    let serial = norm_serial(certs[0]["serial"].as_str().unwrap());
    assert_eq!(serial, cert_serial(&dir, &leaf));
    s.signet(["cert", "revoke", id, "--reason", "key_compromise"])
        .unwrap()
        .ok()
        .unwrap();

    let crl = dir.join("rel.crl");
    s.signet(["ca", "crl", "rel", "-o", p(&crl)])
        .unwrap()
        .ok()
        .unwrap();
    let checked = ossl(
        &dir,
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            p(&crl),
            "-CAfile",
            p(&ca.issuing),
            "-noout",
            "-text",
        ],
    );
    assert!(checked.contains("verify OK"), "{checked}");
    let entries = crl_entries(&checked);
    assert_eq!(entries.len(), 1, "{checked}");
    assert_eq!(entries[0].0, serial);
    assert!(entries[0].1.contains("Key Compromise"), "{checked}");
    let pem = s.signet(["ca", "crl", "rel", "--pem"]).unwrap();
    pem.ok().unwrap();
    assert!(
        pem.stdout.starts_with("-----BEGIN X509 CRL-----"),
        "{}",
        pem.stdout
    );
    let crl_pem = save(&dir, "cli-crl", "pem", &pem.stdout);
    let out = verify_leaf(&dir, &ca, &leaf, &["-crl_check", "-CRLfile", p(&crl_pem)]);
    assert!(
        combined(&out).contains("certificate revoked"),
        "{}",
        combined(&out)
    );

    s.signet(["tsa", "create", "--ca-name", "rel"])
        .unwrap()
        .ok()
        .unwrap();
    let tsa_chain = dir.join("tsa-chain.pem");
    s.signet(["tsa", "show", "-o", p(&tsa_chain)])
        .unwrap()
        .ok()
        .unwrap();
    let blocks = pem_blocks(&std::fs::read_to_string(&tsa_chain).unwrap());
    assert_eq!(blocks.len(), 3, "{blocks:?}");
    let tsa_cert = save(&dir, "cli-tsa", "pem", &blocks[0]);
    let ext = cert_extensions(&dir, &tsa_cert, "extendedKeyUsage");
    assert!(ext.contains("Time Stamping"), "{ext}");
}

#[test]
fn cli_cms_and_timestamped_signatures_verify() {
    // Plain HTTP on loopback, as RFC 3161 clients usually reach a TSA.
    let s = Server::start_with(ServeOptions {
        insecure_http: true,
        ..ServeOptions::default()
    })
    .unwrap();
    let dir = s.scratch().unwrap();
    let ca = create_ca(&s, &dir, "rel", None);
    let other = create_ca(&s, &dir, "other", None);
    create_tsa(&s, "rel");
    s.create_key("k", "ecdsa-p256").unwrap();
    issue(&s, "k", "rel", "CN=CLI,O=Example");
    let (file, data) = random_artifact(&dir);
    let mut bad = data.clone();
    bad[0] ^= 1;
    let tampered = save(&dir, "tampered", "bin", &bad);

    // CMS, without and with a time-stamp.
    s.signet(["sign", "--key", "k", "--format", "cms", p(&file)])
        .unwrap()
        .ok()
        .unwrap();
    let p7s = PathBuf::from(format!("{}.p7s", file.display()));
    let out = cms_verify(&dir, &p7s, &file, &ca.root, true);
    assert!(out.status.success(), "{}", combined(&out));
    let v = s
        .signet(["verify", "--cms", p(&p7s), p(&file), "--ca", p(&ca.root)])
        .unwrap();
    v.ok().unwrap();
    assert!(v.stdout.contains("CN=rel Root CA"), "{}", v.stdout);
    s.signet(["verify", "--cms", p(&p7s), p(&file), "--ca", p(&other.root)])
        .unwrap()
        .fails_with(1, "does not chain")
        .unwrap();
    s.signet(["verify", "--cms", p(&p7s), p(&tampered)])
        .unwrap()
        .fails_with(1, "verification failed")
        .unwrap();

    let signed = s
        .signet([
            "sign",
            "--key",
            "k",
            "--format",
            "cms",
            "--timestamp",
            "--json",
            p(&file),
        ])
        .unwrap();
    signed.ok().unwrap();
    let signed = signed.json().unwrap();
    assert!(signed[0]["timestamp"]["serial"].is_string(), "{signed}");
    let printed = ossl(
        &dir,
        &["cms", "-cmsout", "-print", "-inform", "DER", "-in", p(&p7s)],
    );
    assert!(printed.contains("id-smime-aa-timeStampToken"), "{printed}");
    let out = cms_verify(&dir, &p7s, &file, &ca.root, true);
    assert!(out.status.success(), "{}", combined(&out));
    let v = s
        .signet([
            "verify",
            "--cms",
            p(&p7s),
            p(&file),
            "--ca",
            p(&ca.root),
            "--tsa-ca",
            p(&ca.root),
            "--json",
        ])
        .unwrap();
    v.ok().unwrap();
    let v = v.json().unwrap();
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(
        v["timestamp"]["serial"], signed[0]["timestamp"]["serial"],
        "{v}"
    );

    // Raw signatures time-stamped by a TSA the client names, failing over past a dead one.
    let dead = format!("http://127.0.0.1:{}/tsa", closed_port().unwrap());
    let tsa_url = s.url(TSA);
    let out = s
        .signet([
            "sign",
            "--key",
            "k",
            p(&file),
            "--timestamp",
            "--tsa",
            &dead,
            "--tsa",
            &tsa_url,
            "--tsa-ca",
            p(&ca.root),
        ])
        .unwrap();
    out.ok().unwrap();
    assert!(out.stderr.contains(&dead), "{}", out.stderr);
    let bundle: Value =
        serde_json::from_slice(&std::fs::read(format!("{}.signet.json", file.display())).unwrap())
            .unwrap();
    let sig = std::fs::read(format!("{}.sig", file.display())).unwrap();
    let token = b64decode(
        bundle["timestamp"]
            .as_str()
            .unwrap_or_else(|| panic!("no timestamp in the bundle: {bundle}")),
    )
    .unwrap();
    let token_file = save(&dir, "bundle-token", "der", &token);
    ts_verify_ok(
        &dir,
        &[
            "-digest",
            &digest_hex("sha256", &sig).unwrap(),
            "-in",
            p(&token_file),
            "-token_in",
            "-CAfile",
            p(&ca.root),
            "-untrusted",
            p(&ca.issuing),
        ],
    );
    let v = s
        .signet(["verify", "--key", "k", p(&file), "--tsa-ca", p(&ca.root)])
        .unwrap();
    v.ok().unwrap();
    assert!(v.stdout.contains("time-stamped"), "{}", v.stdout);
    s.signet(["verify", "--key", "k", p(&file), "--tsa-ca", p(&other.root)])
        .unwrap()
        .fails_with(1, "time-stamp")
        .unwrap();
    // A TSA outside the trusted roots is refused at signing time too.
    s.signet([
        "sign",
        "--key",
        "k",
        p(&file),
        "--timestamp",
        "--tsa",
        &tsa_url,
        "--tsa-ca",
        p(&other.root),
    ])
    .unwrap()
    .fails_with(1, "does not chain")
    .unwrap();

    // Key policy through the CLI.
    let policy = s
        .signet([
            "key",
            "policy",
            "k",
            "--require-certificate",
            "true",
            "--json",
        ])
        .unwrap();
    policy.ok().unwrap();
    let policy = policy.json().unwrap();
    assert_eq!(
        policy["policy"],
        json!({"require_certificate": true, "require_timestamp": false}),
        "{policy}"
    );
}
