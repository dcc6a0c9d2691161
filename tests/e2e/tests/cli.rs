//! End-to-end tests of the `signet` CLI: the real binary against a real `signetd` over HTTPS,
//! with signatures checked by OpenSSL using the commands the documentation gives. Each test runs
//! its own server; every `signet` run gets an empty `XDG_CONFIG_HOME` (never the user's) and no
//! inherited `SIGNET_*` variables.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use signet_e2e::*;

// ---- helpers ------------------------------------------------------------------------------

fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// The digest algorithm the CLI uses by default for a key algorithm.
fn default_digest(algorithm: &str) -> &'static str {
    if algorithm == "ecdsa-p384" {
        "sha384"
    } else {
        "sha256"
    }
}

fn create_key(s: &Server, name: &str, algorithm: &str) {
    let out = s
        .signet(["key", "create", name, "--algorithm", algorithm])
        .unwrap();
    out.ok().unwrap();
}

/// `signet key public NAME [--version N]`.
fn public_pem(s: &Server, name: &str, version: Option<u32>) -> String {
    let mut args = vec!["key".to_owned(), "public".to_owned(), name.to_owned()];
    if let Some(v) = version {
        args.push("--version".into());
        args.push(v.to_string());
    }
    let out = s.signet(&args).unwrap();
    out.ok().unwrap();
    assert!(
        out.stdout.starts_with("-----BEGIN PUBLIC KEY-----"),
        "{}",
        out.stdout
    );
    out.stdout.clone()
}

/// `signet key public` written to a file in `dir`.
fn public_pem_file(s: &Server, dir: &Path, name: &str, version: Option<u32>) -> PathBuf {
    let pem = public_pem(s, name, version);
    write_file(dir, &unique(&format!("{name}-pub"), "pem"), pem.as_bytes()).unwrap()
}

/// A random file of a few KiB named `name` in `dir`.
fn artifact(dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    let size = 2000 + usize::from(random_bytes(1).unwrap()[0]) * 31;
    let data = random_bytes(size).unwrap();
    (write_file(dir, name, &data).unwrap(), data)
}

/// `FILE.sig` and `FILE.signet.json` next to `file` or in `dir`.
fn outputs(file: &Path, dir: Option<&Path>) -> (PathBuf, PathBuf) {
    let name = file.file_name().unwrap().to_str().unwrap();
    let base = dir.unwrap_or_else(|| file.parent().unwrap());
    (
        base.join(format!("{name}.sig")),
        base.join(format!("{name}.signet.json")),
    )
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("`{}` is not JSON: {e}", path.display()))
}

/// `sha256sum FILE` (or `sha384sum`), the hex digest only.
fn coreutils_digest(digest_algorithm: &str, file: &Path) -> String {
    let out = Command::new(format!("{digest_algorithm}sum"))
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{digest_algorithm}sum failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Checks every field of a bundle the CLI wrote.
fn check_bundle(
    bundle: &Value,
    key: &str,
    version: u64,
    algorithm: &str,
    file: &Path,
    sig_bytes: &[u8],
    fingerprint: &str,
) {
    let d = default_digest(algorithm);
    assert_eq!(bundle["format"], "signet-bundle/v1", "{bundle}");
    assert_eq!(bundle["key"], key, "{bundle}");
    assert_eq!(bundle["key_version"], version, "{bundle}");
    assert_eq!(bundle["algorithm"], algorithm, "{bundle}");
    assert_eq!(bundle["digest"]["algorithm"], d, "{bundle}");
    assert_eq!(
        bundle["digest"]["value"],
        coreutils_digest(d, file).as_str(),
        "bundle digest is not the {d}sum of the file"
    );
    let sig = b64decode(bundle["signature"].as_str().unwrap()).unwrap();
    assert_eq!(sig, sig_bytes, "bundle signature differs from FILE.sig");
    assert_eq!(bundle["public_key_fingerprint"], fingerprint, "{bundle}");
    let signed_at = bundle["signed_at"].as_str().unwrap();
    time::OffsetDateTime::parse(signed_at, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("signed_at `{signed_at}` is not RFC 3339: {e}"));
    assert_eq!(
        bundle["artifact"]["name"],
        file.file_name().unwrap().to_str().unwrap(),
        "{bundle}"
    );
    assert_eq!(bundle["artifact"]["kind"], "file", "{bundle}");
    assert!(bundle["audit_index"].is_u64(), "{bundle}");
}

/// Verifies `sig` over `file` with the OpenSSL commands from the documentation. `Ok(false)` only
/// on a reported verification failure; any other OpenSSL error panics, so a negative check cannot
/// pass because the command itself was wrong.
fn openssl_verifies(dir: &Path, algorithm: &str, pem: &Path, file: &Path, sig: &Path) -> bool {
    let d = format!("-{}", default_digest(algorithm));
    let out = if algorithm == "ed25519" {
        let digest = dir.join(unique("digest", "bin"));
        openssl_ok(dir, &["dgst", &d, "-binary", "-out", p(&digest), p(file)]).unwrap();
        openssl(
            dir,
            &[
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                p(pem),
                "-rawin",
                "-in",
                p(&digest),
                "-sigfile",
                p(sig),
            ],
        )
        .unwrap()
    } else {
        let mut args = vec!["dgst", &d, "-verify", p(pem)];
        if algorithm.ends_with("-pss") {
            args.extend(["-sigopt", "rsa_padding_mode:pss"]);
        }
        args.extend(["-signature", p(sig), p(file)]);
        openssl(dir, &args).unwrap()
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .to_ascii_lowercase();
    if out.status.success() {
        assert!(
            text.contains("verified ok") || text.contains("signature verified successfully"),
            "openssl exited 0 without saying the signature verified: {text}"
        );
        true
    } else {
        assert!(
            text.contains("verification failure"),
            "openssl could not check the signature: {text}"
        );
        false
    }
}

/// The same bytes with one changed, as a new file named `name` in `dir`.
fn tampered(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let mut bad = data.to_vec();
    let i = bad.len() / 2;
    bad[i] ^= 0x01;
    write_file(dir, name, &bad).unwrap()
}

fn token_id_of(token: &str) -> String {
    token
        .strip_prefix("signet_")
        .and_then(|r| r.split_once('_'))
        .map(|(id, _)| id.to_owned())
        .unwrap()
}

fn sign_events(s: &Server, key: &str) -> Vec<Value> {
    let out = s.signet(["audit", "list", "--key", key, "--json"]).unwrap();
    out.ok().unwrap();
    out.json().unwrap()["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event"].clone())
        .filter(|e| e["action"] == "sign")
        .collect()
}

// ---- 1. login -------------------------------------------------------------------------------

#[test]
fn login_saves_a_private_config_that_later_commands_use() {
    use std::os::unix::fs::PermissionsExt;

    let s = Server::start().unwrap();
    let home = s.config_home().unwrap();
    let config = home.join("signet").join("config.toml");

    let mut login = signet(&home).unwrap();
    login.args([
        "login",
        "--url",
        s.base_url(),
        "--ca",
        p(s.ca_cert()),
        "--token-stdin",
    ]);
    let input = format!("{}\n", s.admin_token());
    let out = run_cli(&mut login, Some(input.as_bytes())).unwrap();
    out.ok().unwrap();
    assert!(out.stdout.contains("saved"), "{}", out.stdout);
    assert!(
        !out.stdout.contains(s.admin_token()) && !out.stderr.contains(s.admin_token()),
        "login echoed the token"
    );

    let meta = std::fs::metadata(&config).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "config mode");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains(s.base_url()), "{text}");
    assert!(text.contains(s.admin_token()), "token not saved: {text}");
    let ca = s.ca_cert().canonicalize().unwrap();
    assert!(text.contains(p(&ca)), "{text}");
    assert!(
        !home.join("signet").join("config.toml.tmp").exists(),
        "temporary file left behind"
    );

    // No environment at all: the saved settings are enough.
    let mut create = signet(&home).unwrap();
    create.args(["key", "create", "from-login", "--algorithm", "ed25519"]);
    run_cli(&mut create, None).unwrap().ok().unwrap();
    let mut list = signet(&home).unwrap();
    list.args(["key", "list", "--json"]);
    let out = run_cli(&mut list, None).unwrap();
    out.ok().unwrap();
    assert_eq!(out.json().unwrap()["keys"][0]["name"], "from-login");
    let dir = s.scratch().unwrap();
    let (file, _) = artifact(&dir, "login.bin");
    let mut sign = signet(&home).unwrap();
    sign.args(["sign", "--key", "from-login", p(&file)]);
    run_cli(&mut sign, None).unwrap().ok().unwrap();
    let mut verify = signet(&home).unwrap();
    verify.args(["verify", "--key", "from-login", p(&file)]);
    let out = run_cli(&mut verify, None).unwrap();
    out.ok().unwrap();
    assert!(out.stdout.contains("verified"), "{}", out.stdout);

    // A wrong token: login fails and says the settings do not work.
    let other_home = s.config_home().unwrap();
    let mut bad = signet(&other_home).unwrap();
    bad.args([
        "login",
        "--url",
        s.base_url(),
        "--ca",
        p(s.ca_cert()),
        "--token-stdin",
    ]);
    let out = run_cli(&mut bad, Some(b"signet_nope_notarealtoken\n")).unwrap();
    out.fails_with(1, "settings do not work").unwrap();
    assert!(out.stderr.contains("unauthenticated"), "{}", out.stderr);
    assert!(!out.stdout.contains("saved"), "{}", out.stdout);

    // A failed login over a working one leaves the working settings in place.
    let config_file = home.join("signet").join("config.toml");
    let before = std::fs::read_to_string(&config_file).unwrap();
    let mut relogin = signet(&home).unwrap();
    relogin.args([
        "login",
        "--url",
        s.base_url(),
        "--ca",
        p(s.ca_cert()),
        "--token-stdin",
    ]);
    run_cli(&mut relogin, Some(b"signet_nope_notarealtoken\n"))
        .unwrap()
        .fails_with(1, "nothing was saved")
        .unwrap();
    assert_eq!(std::fs::read_to_string(&config_file).unwrap(), before);
    let mut list = signet(&home).unwrap();
    list.args(["key", "list"]);
    run_cli(&mut list, None).unwrap().ok().unwrap();

    // No token on stdin is refused.
    let mut empty = signet(&s.config_home().unwrap()).unwrap();
    empty.args(["login", "--url", s.base_url(), "--token-stdin"]);
    run_cli(&mut empty, Some(b"\n"))
        .unwrap()
        .fails_with(1, "no token")
        .unwrap();
}

// ---- 2. key lifecycle -----------------------------------------------------------------------

#[test]
fn key_lifecycle_for_every_algorithm() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();

    for (algorithm, _) in ALGORITHMS {
        let name = format!("k-{algorithm}");
        let out = s
            .signet(["key", "create", &name, "--algorithm", algorithm])
            .unwrap();
        out.ok().unwrap();
        assert!(out.stdout.contains(&name), "{}", out.stdout);
        assert!(out.stdout.contains(algorithm), "{}", out.stdout);
    }

    // Text list: a header and one row per key.
    let out = s.signet(["key", "list"]).unwrap();
    out.ok().unwrap();
    assert!(out.stdout.starts_with("NAME"), "{}", out.stdout);
    for (algorithm, _) in ALGORITHMS {
        let row = out
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("k-{algorithm} ")))
            .unwrap_or_else(|| panic!("k-{algorithm} not listed:\n{}", out.stdout));
        assert!(row.contains(algorithm) && row.contains("active"), "{row}");
        assert!(row.contains("sha256:"), "no fingerprint: {row}");
    }
    // JSON list.
    let out = s.signet(["key", "list", "--json"]).unwrap();
    out.ok().unwrap();
    let list = out.json().unwrap();
    let mut names: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    let mut want: Vec<String> = ALGORITHMS.iter().map(|(a, _)| format!("k-{a}")).collect();
    want.sort_unstable();
    assert_eq!(names, want);

    for (algorithm, _) in ALGORITHMS {
        let name = format!("k-{algorithm}");
        let out = s.signet(["key", "show", &name]).unwrap();
        out.ok().unwrap();
        assert!(
            out.stdout.contains(&format!("name:       {name}")),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout.contains(&format!("algorithm:  {algorithm}")),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("state:      active"), "{}", out.stdout);

        let out = s.signet(["key", "show", &name, "--json"]).unwrap();
        out.ok().unwrap();
        let info = out.json().unwrap();
        assert_eq!(info["name"], name.as_str());
        assert_eq!(info["algorithm"], algorithm);
        assert_eq!(info["current_version"], 1);
        let fp = info["versions"][0]["fingerprint"].as_str().unwrap();

        // The PEM OpenSSL reads, with the fingerprint the server reports.
        let pem = public_pem(&s, &name, None);
        assert_eq!(spki_fingerprint(&pem).unwrap(), fp);
        let pem_path = write_file(&dir, &format!("{name}.pem"), pem.as_bytes()).unwrap();
        openssl_ok(&dir, &["pkey", "-pubin", "-in", p(&pem_path), "-noout"]).unwrap();
    }

    // Rotate: a new current version; the old one is still there and differs.
    let name = "k-ecdsa-p256";
    let v1 = public_pem(&s, name, None);
    let out = s.signet(["key", "rotate", name, "--json"]).unwrap();
    out.ok().unwrap();
    let info = out.json().unwrap();
    assert_eq!(info["current_version"], 2, "{info}");
    assert_eq!(info["versions"].as_array().unwrap().len(), 2, "{info}");
    let current = public_pem(&s, name, None);
    assert_eq!(public_pem(&s, name, Some(1)), v1);
    assert_eq!(public_pem(&s, name, Some(2)), current);
    assert_ne!(current, v1, "rotation kept the same public key");
    s.signet(["key", "public", name, "--version", "7"])
        .unwrap()
        .fails_with(1, "no version")
        .unwrap();

    // Disable: signing fails with key_disabled; enable: it works again.
    let (file, _) = artifact(&dir, "lifecycle.bin");
    let out = s.signet(["key", "disable", name, "--json"]).unwrap();
    out.ok().unwrap();
    assert_eq!(out.json().unwrap()["state"], "disabled");
    s.signet(["sign", "--key", name, p(&file)])
        .unwrap()
        .fails_with(1, "key_disabled")
        .unwrap();
    assert!(
        !outputs(&file, None).0.exists(),
        "a refused sign wrote FILE.sig"
    );
    let digest = digest_hex("sha256", b"disabled").unwrap();
    s.signet(["sign", "--key", name, "--digest", &digest])
        .unwrap()
        .fails_with(1, "key_disabled")
        .unwrap();
    let out = s.signet(["key", "enable", name]).unwrap();
    out.ok().unwrap();
    assert!(out.stdout.contains("state:      active"), "{}", out.stdout);
    s.signet(["sign", "--key", name, p(&file)])
        .unwrap()
        .ok()
        .unwrap();
    assert!(outputs(&file, None).0.exists());

    // Unknown algorithm; unknown key.
    s.signet(["key", "create", "bogus", "--algorithm", "rsa-1024"])
        .unwrap()
        .fails_with(1, "unsupported_algorithm")
        .unwrap();
    s.signet(["key", "show", "no-such-key"])
        .unwrap()
        .fails_with(1, "no-such-key")
        .unwrap();
    // Missing --algorithm is a usage error.
    s.signet(["key", "create", "bogus"])
        .unwrap()
        .fails_with(2, "--algorithm")
        .unwrap();
    assert_eq!(s.key_names().unwrap().len(), ALGORITHMS.len());
}

// ---- 3. sign and verify, every algorithm ----------------------------------------------------

fn sign_and_verify(algorithm: &str) {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    let key = format!("k-{algorithm}");
    create_key(&s, &key, algorithm);
    let pem_path = public_pem_file(&s, &dir, &key, None);
    let fingerprint = spki_fingerprint(&std::fs::read_to_string(&pem_path).unwrap()).unwrap();

    let (file, data) = artifact(&dir, "app.tar.gz");
    let out = s.signet(["sign", "--key", &key, p(&file)]).unwrap();
    out.ok().unwrap();
    assert!(out.stdout.contains("signed"), "{}", out.stdout);
    let (sig_path, bundle_path) = outputs(&file, None);
    let sig = std::fs::read(&sig_path).unwrap();
    let bundle = read_json(&bundle_path);
    check_bundle(&bundle, &key, 1, algorithm, &file, &sig, &fingerprint);
    assert!(
        out.stdout
            .contains(&format!("audit #{}", bundle["audit_index"])),
        "{}",
        out.stdout
    );

    // signet verify: by key name (online) and by public key (offline), text and JSON.
    let out = s.signet(["verify", "--key", &key, p(&file)]).unwrap();
    out.ok().unwrap();
    assert!(out.stdout.contains("verified"), "{}", out.stdout);
    let out = s
        .signet(["verify", "--public-key", p(&pem_path), p(&file)])
        .unwrap();
    out.ok().unwrap();
    assert!(out.stdout.contains("verified"), "{}", out.stdout);
    let out = s
        .signet(["verify", "--public-key", p(&pem_path), p(&file), "--json"])
        .unwrap();
    out.ok().unwrap();
    let v = out.json().unwrap();
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["algorithm"], algorithm, "{v}");
    assert_eq!(v["public_key_fingerprint"], fingerprint.as_str(), "{v}");

    // OpenSSL, with the documented commands.
    assert!(
        openssl_verifies(&dir, algorithm, &pem_path, &file, &sig_path),
        "{algorithm}: OpenSSL rejected the CLI's signature"
    );

    // Tampered file: signet and OpenSSL both refuse.
    let bad = tampered(&dir, "app-tampered.tar.gz", &data);
    s.signet([
        "verify",
        "--key",
        &key,
        p(&bad),
        "--bundle",
        p(&bundle_path),
    ])
    .unwrap()
    .fails_with(1, "verification failed")
    .unwrap();
    s.signet([
        "verify",
        "--public-key",
        p(&pem_path),
        p(&bad),
        "--bundle",
        p(&bundle_path),
    ])
    .unwrap()
    .fails_with(1, "verification failed")
    .unwrap();
    assert!(
        !openssl_verifies(&dir, algorithm, &pem_path, &bad, &sig_path),
        "{algorithm}: OpenSSL accepted a tampered file"
    );

    // Another key's public key (same algorithm): refused, with and without a bundle.
    let other = format!("other-{algorithm}");
    create_key(&s, &other, algorithm);
    let other_pem = public_pem_file(&s, &dir, &other, None);
    s.signet(["verify", "--public-key", p(&other_pem), p(&file)])
        .unwrap()
        .fails_with(1, "verification failed")
        .unwrap();
    s.signet([
        "verify",
        "--public-key",
        p(&other_pem),
        "--signature",
        p(&sig_path),
        "--algorithm",
        algorithm,
        p(&file),
    ])
    .unwrap()
    .fails_with(1, "verification failed")
    .unwrap();
    // --key naming a different key than the bundle's.
    s.signet(["verify", "--key", &other, p(&file)])
        .unwrap()
        .fails_with(1, &key)
        .unwrap();
    assert!(!openssl_verifies(
        &dir, algorithm, &other_pem, &file, &sig_path
    ));

    // A bundle whose signature was changed.
    let mut forged = bundle.clone();
    let mut bad_sig = sig.clone();
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 0x01;
    forged["signature"] = base64_encode(&bad_sig).into();
    let forged_path = write_file(
        &dir,
        "forged.signet.json",
        serde_json::to_string_pretty(&forged).unwrap().as_bytes(),
    )
    .unwrap();
    for by in [["--key", key.as_str()], ["--public-key", p(&pem_path)]] {
        s.signet([
            "verify",
            by[0],
            by[1],
            p(&file),
            "--bundle",
            p(&forged_path),
        ])
        .unwrap()
        .fails_with(1, "verification failed")
        .unwrap();
    }

    // Raw mode: FILE.sig without the bundle.
    let out = s
        .signet([
            "verify",
            "--public-key",
            p(&pem_path),
            "--signature",
            p(&sig_path),
            "--algorithm",
            algorithm,
            p(&file),
        ])
        .unwrap();
    out.ok().unwrap();
    assert!(out.stdout.contains("verified"), "{}", out.stdout);
    // With --key the algorithm comes from the server.
    s.signet([
        "verify",
        "--key",
        &key,
        "--signature",
        p(&sig_path),
        p(&file),
    ])
    .unwrap()
    .ok()
    .unwrap();
    s.signet([
        "verify",
        "--public-key",
        p(&pem_path),
        "--signature",
        p(&sig_path),
        "--algorithm",
        algorithm,
        p(&bad),
    ])
    .unwrap()
    .fails_with(1, "verification failed")
    .unwrap();
    // Raw mode with a public key file only needs --algorithm.
    s.signet([
        "verify",
        "--public-key",
        p(&pem_path),
        "--signature",
        p(&sig_path),
        p(&file),
    ])
    .unwrap()
    .fails_with(1, "--algorithm")
    .unwrap();
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn sign_verify_ed25519() {
    sign_and_verify("ed25519");
}

#[test]
fn sign_verify_ecdsa_p256() {
    sign_and_verify("ecdsa-p256");
}

#[test]
fn sign_verify_ecdsa_p384() {
    sign_and_verify("ecdsa-p384");
}

#[test]
fn sign_verify_rsa_3072_pss() {
    sign_and_verify("rsa-3072-pss");
}

#[test]
fn sign_verify_rsa_3072_pkcs1() {
    sign_and_verify("rsa-3072-pkcs1");
}

#[test]
fn sign_verify_rsa_4096_pss() {
    sign_and_verify("rsa-4096-pss");
}

#[test]
fn sign_verify_rsa_4096_pkcs1() {
    sign_and_verify("rsa-4096-pkcs1");
}

#[test]
fn several_files_in_one_batch_and_output_dir() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    let key = "release";
    create_key(&s, key, "ecdsa-p256");
    let pem_path = public_pem_file(&s, &dir, key, None);
    let fingerprint = spki_fingerprint(&std::fs::read_to_string(&pem_path).unwrap()).unwrap();

    let files: Vec<PathBuf> = ["a.bin", "b.tar.gz", "c.zip"]
        .iter()
        .map(|n| artifact(&dir, n).0)
        .collect();
    let before = sign_events(&s, key).len();
    let mut args = vec!["sign", "--key", key, "--json"];
    args.extend(files.iter().map(|f| p(f)));
    let out = s.signet(&args).unwrap();
    out.ok().unwrap();
    let printed = out.json().unwrap();
    let printed = printed.as_array().unwrap();
    assert_eq!(printed.len(), files.len(), "{}", out.stdout);
    let mut indices = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let (sig_path, bundle_path) = outputs(f, None);
        let sig = std::fs::read(&sig_path).unwrap();
        let bundle = read_json(&bundle_path);
        check_bundle(&bundle, key, 1, "ecdsa-p256", f, &sig, &fingerprint);
        assert_eq!(&printed[i], &bundle, "--json output differs from the file");
        indices.push(bundle["audit_index"].as_u64().unwrap());
        assert!(openssl_verifies(
            &dir,
            "ecdsa-p256",
            &pem_path,
            f,
            &sig_path
        ));
        let out = s
            .signet(["verify", "--public-key", p(&pem_path), p(f)])
            .unwrap();
        out.ok().unwrap();
        assert!(out.stdout.contains("verified"), "{}", out.stdout);
    }
    // One audit entry per file, in order.
    assert!(indices.windows(2).all(|w| w[0] < w[1]), "{indices:?}");
    assert_eq!(sign_events(&s, key).len(), before + files.len());

    // --output-dir: outputs there, nothing next to the inputs.
    let in_dir = dir.join("in");
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&in_dir).unwrap();
    std::fs::create_dir_all(&out_dir).unwrap();
    let x = artifact(&in_dir, "x.bin").0;
    let y = artifact(&in_dir, "y.bin").0;
    let out = s
        .signet([
            "sign",
            "--key",
            key,
            "--output-dir",
            p(&out_dir),
            p(&x),
            p(&y),
        ])
        .unwrap();
    out.ok().unwrap();
    let mut left: Vec<_> = std::fs::read_dir(&in_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["x.bin", "y.bin"], "outputs written next to inputs");
    for f in [&x, &y] {
        let (sig_path, bundle_path) = outputs(f, Some(&out_dir));
        assert!(sig_path.is_file() && bundle_path.is_file(), "{out:?}");
        assert!(openssl_verifies(
            &dir,
            "ecdsa-p256",
            &pem_path,
            f,
            &sig_path
        ));
        s.signet(["verify", "--key", key, p(f), "--bundle", p(&bundle_path)])
            .unwrap()
            .ok()
            .unwrap();
    }
    // Without --bundle the default (FILE.signet.json next to the file) is absent: raw mode via
    // the server's algorithm needs FILE.sig, which is not there either.
    s.signet(["verify", "--key", key, p(&x)])
        .unwrap()
        .fails_with(1, "x.bin.sig")
        .unwrap();
}

// ---- 4. rotation ----------------------------------------------------------------------------

#[test]
fn old_bundles_verify_after_rotation() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    let key = "rot";
    create_key(&s, key, "ed25519");
    let v1_pem = public_pem_file(&s, &dir, key, Some(1));

    let (old, _) = artifact(&dir, "old.bin");
    s.signet(["sign", "--key", key, p(&old)])
        .unwrap()
        .ok()
        .unwrap();
    s.signet(["key", "rotate", key]).unwrap().ok().unwrap();
    let v2_pem = public_pem_file(&s, &dir, key, None);
    let (new, _) = artifact(&dir, "new.bin");
    s.signet(["sign", "--key", key, p(&new)])
        .unwrap()
        .ok()
        .unwrap();

    assert_eq!(read_json(&outputs(&old, None).1)["key_version"], 1);
    assert_eq!(read_json(&outputs(&new, None).1)["key_version"], 2);

    // --key fetches the version the bundle names.
    for f in [&old, &new] {
        let out = s.signet(["verify", "--key", key, p(f)]).unwrap();
        out.ok().unwrap();
        assert!(out.stdout.contains("verified"), "{}", out.stdout);
    }
    let out = s
        .signet(["verify", "--key", key, p(&old), "--json"])
        .unwrap();
    out.ok().unwrap();
    assert_eq!(out.json().unwrap()["key_version"], 1);

    // Offline: each bundle verifies with its own version's key only.
    s.signet(["verify", "--public-key", p(&v1_pem), p(&old)])
        .unwrap()
        .ok()
        .unwrap();
    s.signet(["verify", "--public-key", p(&v2_pem), p(&old)])
        .unwrap()
        .fails_with(1, "verification failed")
        .unwrap();
    assert!(openssl_verifies(
        &dir,
        "ed25519",
        &v1_pem,
        &old,
        &outputs(&old, None).0
    ));
    assert!(openssl_verifies(
        &dir,
        "ed25519",
        &v2_pem,
        &new,
        &outputs(&new, None).0
    ));
}

// ---- 5. signing a digest --------------------------------------------------------------------

#[test]
fn sign_a_digest() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    let key = "dig";
    create_key(&s, key, "ecdsa-p256");
    let pem_path = public_pem_file(&s, &dir, key, None);
    let (file, data) = artifact(&dir, "digest-me.bin");
    let digest = coreutils_digest("sha256", &file);
    assert_eq!(digest, digest_hex("sha256", &data).unwrap());

    let out = s
        .signet(["sign", "--key", key, "--digest", &digest])
        .unwrap();
    out.ok().unwrap();
    let line = out.stdout.trim();
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    let sig = b64decode(line).unwrap();
    assert!(out.stderr.contains(&digest), "{}", out.stderr);
    let sig_path = write_file(&dir, "digest-me.bin.sig", &sig).unwrap();
    assert!(openssl_verifies(
        &dir,
        "ecdsa-p256",
        &pem_path,
        &file,
        &sig_path
    ));
    // No files are written for a digest.
    assert!(!outputs(&file, None).1.exists());

    let out = s
        .signet([
            "sign",
            "--key",
            key,
            "--digest",
            &digest,
            "--artifact-name",
            "named.bin",
            "--json",
        ])
        .unwrap();
    out.ok().unwrap();
    let v = out.json().unwrap();
    assert_eq!(v["key"], key, "{v}");
    assert_eq!(v["key_version"], 1, "{v}");
    assert_eq!(v["algorithm"], "ecdsa-p256", "{v}");
    assert_eq!(v["digest_algorithm"], "sha256", "{v}");
    assert_eq!(v["digest"], digest.as_str(), "{v}");
    assert!(v["audit_index"].is_u64(), "{v}");
    let sig2 = b64decode(v["signature"].as_str().unwrap()).unwrap();
    let sig2_path = write_file(&dir, "second.sig", &sig2).unwrap();
    assert!(openssl_verifies(
        &dir,
        "ecdsa-p256",
        &pem_path,
        &file,
        &sig2_path
    ));
    let events = sign_events(&s, key);
    assert_eq!(
        events.last().unwrap()["context"]["artifact_name"],
        "named.bin"
    );

    // Wrong length, not hex, and a digest the key does not take.
    // (The stable code `digest_length_mismatch` is checked in
    // `bad_digest_length_names_its_error_code`.)
    s.signet(["sign", "--key", key, "--digest", "abcd"])
        .unwrap()
        .fails_with(1, "digest is 2 bytes but sha256 digests are 32 bytes")
        .unwrap();
    s.signet(["sign", "--key", key, "--digest", &"zz".repeat(32)])
        .unwrap()
        .fails_with(1, "hex")
        .unwrap();
    s.signet([
        "sign",
        "--key",
        key,
        "--digest-algorithm",
        "sha512",
        "--digest",
        &digest_hex("sha512", &data).unwrap(),
    ])
    .unwrap()
    .fails_with(1, "sha512")
    .unwrap();

    // --digest and files together; neither; no --key: usage errors.
    s.signet(["sign", "--key", key, "--digest", &digest, p(&file)])
        .unwrap()
        .fails_with(2, "cannot be used with")
        .unwrap();
    s.signet(["sign", "--key", key])
        .unwrap()
        .fails_with(2, "required")
        .unwrap();
    s.signet(["sign", p(&file)])
        .unwrap()
        .fails_with(2, "--key")
        .unwrap();
    assert_eq!(
        sign_events(&s, key).len(),
        2,
        "a refused sign was audited as signed"
    );
}

/// The CLI checks a digest's length itself before sending it, and prints the domain error's
/// message without its stable code (the server's answer would carry `(digest_length_mismatch)`).
#[test]
fn bad_digest_length_names_its_error_code() {
    let s = Server::start().unwrap();
    create_key(&s, "dig", "ecdsa-p256");
    for bad in ["abcd", &"00".repeat(33)] {
        s.signet(["sign", "--key", "dig", "--digest", bad])
            .unwrap()
            .fails_with(1, "digest_length_mismatch")
            .unwrap();
    }
}

// ---- 6. audit context -----------------------------------------------------------------------

#[test]
fn sign_context_is_in_the_audit_log() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    let key = "audited";
    create_key(&s, key, "ecdsa-p384");
    create_key(&s, "unrelated", "ed25519");
    let (file, _) = artifact(&dir, "release-1.2.0.tar.gz");
    s.signet([
        "sign",
        "--key",
        key,
        "--reason",
        "release v1.2.0",
        "--commit",
        "0123456789abcdef0123456789abcdef01234567",
        "--repository",
        "https://git.example/app.git",
        "--pipeline-id",
        "pipeline-42",
        p(&file),
    ])
    .unwrap()
    .ok()
    .unwrap();
    let bundle = read_json(&outputs(&file, None).1);

    let out = s.signet(["audit", "list", "--key", key, "--json"]).unwrap();
    out.ok().unwrap();
    let records = out.json().unwrap()["records"].as_array().unwrap().clone();
    assert!(
        records.iter().all(|r| r["event"]["key"]["name"] == key),
        "--key filter let other keys through: {records:?}"
    );
    let rec = records
        .iter()
        .find(|r| r["event"]["action"] == "sign")
        .unwrap_or_else(|| panic!("no sign event: {records:?}"));
    assert_eq!(rec["index"], bundle["audit_index"], "{rec}");
    let e = &rec["event"];
    assert_eq!(e["outcome"]["result"], "allowed", "{e}");
    assert_eq!(e["key"]["version"], 1, "{e}");
    assert_eq!(e["digest"]["algorithm"], "sha384", "{e}");
    assert_eq!(e["digest"]["value"], bundle["digest"]["value"], "{e}");
    let c = &e["context"];
    assert_eq!(c["reason"], "release v1.2.0", "{e}");
    assert_eq!(c["artifact_name"], "release-1.2.0.tar.gz", "{e}");
    assert_eq!(c["artifact_kind"], "file", "{e}");
    assert_eq!(
        c["build"]["commit"], "0123456789abcdef0123456789abcdef01234567",
        "{e}"
    );
    assert_eq!(
        c["build"]["repository"], "https://git.example/app.git",
        "{e}"
    );
    assert_eq!(c["build"]["pipeline_id"], "pipeline-42", "{e}");

    // --action sign: only sign events; without it, the key_create is there too.
    let out = s
        .signet(["audit", "list", "--key", key, "--action", "sign", "--json"])
        .unwrap();
    out.ok().unwrap();
    let signs = out.json().unwrap()["records"].as_array().unwrap().clone();
    assert_eq!(signs.len(), 1, "{signs:?}");
    assert!(signs.iter().all(|r| r["event"]["action"] == "sign"));
    assert!(
        records.iter().any(|r| r["event"]["action"] == "key_create"),
        "{records:?}"
    );
    let out = s
        .signet(["audit", "list", "--action", "key_create", "--json"])
        .unwrap();
    out.ok().unwrap();
    assert_eq!(
        out.json().unwrap()["records"].as_array().unwrap().len(),
        2,
        "{}",
        out.stdout
    );

    // Text output: one line per record, index then the event.
    let out = s.signet(["audit", "list", "--key", key]).unwrap();
    out.ok().unwrap();
    assert!(out.stdout.contains("release v1.2.0"), "{}", out.stdout);

    // The build context also comes from the environment (CI variables).
    let (file2, _) = artifact(&dir, "env.bin");
    let mut cmd = s.signet_command(Some(s.admin_token())).unwrap();
    cmd.env("SIGNET_REASON", "from env")
        .env("SIGNET_BUILD_COMMIT", "cafe")
        .args(["sign", "--key", key, p(&file2)]);
    run_cli(&mut cmd, None).unwrap().ok().unwrap();
    let last = sign_events(&s, key).pop().unwrap();
    assert_eq!(last["context"]["reason"], "from env", "{last}");
    assert_eq!(last["context"]["build"]["commit"], "cafe", "{last}");
}

// ---- 7. tokens ------------------------------------------------------------------------------

#[test]
fn token_create_use_list_revoke() {
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    create_key(&s, "ci-key", "ed25519");

    let out = s
        .signet([
            "token",
            "create",
            "ci",
            "--role",
            "signer",
            "--expires-in",
            "1h",
        ])
        .unwrap();
    out.ok().unwrap();
    // stdout: exactly the secret, once; stderr: the id, never the secret.
    let token = out.stdout.trim().to_owned();
    assert_eq!(out.stdout, format!("{token}\n"), "stdout: {:?}", out.stdout);
    assert!(token.starts_with("signet_"), "{token}");
    let id = token_id_of(&token);
    let secret = token_secret_part(&token).unwrap();
    assert!(out.stderr.contains(&id), "{}", out.stderr);
    assert!(!out.stderr.contains(&secret), "secret on stderr");

    // The signer token signs, but cannot create keys.
    let (file, _) = artifact(&dir, "ci.bin");
    s.signet_as(&token, ["sign", "--key", "ci-key", p(&file)])
        .unwrap()
        .ok()
        .unwrap();
    s.signet_as(&token, ["verify", "--key", "ci-key", p(&file)])
        .unwrap()
        .ok()
        .unwrap();
    s.signet_as(
        &token,
        ["key", "create", "ci-made", "--algorithm", "ed25519"],
    )
    .unwrap()
    .fails_with(1, "policy_denied")
    .unwrap();
    s.signet_as(&token, ["token", "create", "escalate", "--role", "admin"])
        .unwrap()
        .fails_with(1, "policy_denied")
        .unwrap();
    assert!(!s.key_names().unwrap().contains(&"ci-made".to_owned()));

    // Listed (text and JSON), with its expiry, never with its secret.
    let out = s.signet(["token", "list"]).unwrap();
    out.ok().unwrap();
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("token not listed:\n{}", out.stdout));
    assert!(row.contains("ci") && row.contains("signer") && row.contains("active"));
    assert!(!out.stdout.contains(&secret) && !out.stderr.contains(&secret));
    let out = s.signet(["token", "list", "--json"]).unwrap();
    out.ok().unwrap();
    assert!(!out.stdout.contains(&secret), "secret in token list --json");
    let list = out.json().unwrap();
    let info = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(info["name"], "ci");
    assert_eq!(info["role"], "signer");
    let expires = time::OffsetDateTime::parse(
        info["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(55) && left <= time::Duration::minutes(61),
        "expires in {left}"
    );

    // Revoke: the token stops authenticating.
    let out = s.signet(["token", "revoke", &id]).unwrap();
    out.ok().unwrap();
    assert!(out.stdout.contains(&id), "{}", out.stdout);
    s.signet_as(&token, ["sign", "--key", "ci-key", p(&file)])
        .unwrap()
        .fails_with(1, "unauthenticated")
        .unwrap();
    s.signet_as(&token, ["key", "list"])
        .unwrap()
        .fails_with(1, "unauthenticated")
        .unwrap();
    let out = s.signet(["token", "list"]).unwrap();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("revoked")),
        "{}",
        out.stdout
    );

    // JSON create: the secret is in the object.
    let out = s
        .signet([
            "token",
            "create",
            "json-one",
            "--expires-in",
            "90d",
            "--json",
        ])
        .unwrap();
    out.ok().unwrap();
    let v = out.json().unwrap();
    assert!(v["token"].as_str().unwrap().starts_with("signet_"), "{v}");
    assert_eq!(v["info"]["role"], "signer", "{v}");

    // Bad lifetimes and roles.
    for bad in ["5y", "garbage", "0d", "-1h", "1.5h", ""] {
        s.signet(["token", "create", "bad", &format!("--expires-in={bad}")])
            .unwrap()
            .fails_with(1, "invalid duration")
            .unwrap();
    }
    s.signet(["token", "create", "bad", "--role", "overlord"])
        .unwrap()
        .fails_with(1, "overlord")
        .unwrap();
    let out = s.signet(["token", "list", "--json"]).unwrap();
    let names: Vec<String> = out.json().unwrap()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!names.contains(&"bad".to_owned()), "{names:?}");
    s.signet(["token", "revoke", "no-such-token"])
        .unwrap()
        .fails_with(1, "token_not_found")
        .unwrap();
}

// ---- 8. bench -------------------------------------------------------------------------------

#[test]
fn bench_reports_throughput_and_latency() {
    let s = Server::start().unwrap();
    create_key(&s, "bench", "ecdsa-p256");
    let out = s
        .signet([
            "bench",
            "--key",
            "bench",
            "--concurrency",
            "4",
            "--duration",
            "2",
            "--json",
        ])
        .unwrap();
    out.ok().unwrap();
    let r = out.json().unwrap();
    assert_eq!(r["key"], "bench", "{r}");
    assert_eq!(r["concurrency"], 4, "{r}");
    assert!(r["signatures"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    assert!(r["signatures_per_second"].as_f64().unwrap() > 0.0, "{r}");
    let l = &r["latency_ms"];
    let (p50, p90, p99, max) = (
        l["p50"].as_f64().unwrap(),
        l["p90"].as_f64().unwrap(),
        l["p99"].as_f64().unwrap(),
        l["max"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p90 && p90 <= p99 && p99 <= max, "{r}");
    let secs = r["seconds"].as_f64().unwrap();
    assert!((2.0..30.0).contains(&secs), "{r}");
    // Every bench signature is audited.
    let audited = s.audit_events("sign", "allowed").unwrap().len() as u64;
    assert_eq!(audited, r["signatures"].as_u64().unwrap(), "{r}");

    // Text output.
    let out = s
        .signet([
            "bench",
            "--key",
            "bench",
            "--concurrency",
            "2",
            "--duration",
            "1",
        ])
        .unwrap();
    out.ok().unwrap();
    assert!(out.stdout.contains("signatures/s"), "{}", out.stdout);
    assert!(out.stdout.contains("p99"), "{}", out.stdout);

    for bad in ["0", "1025"] {
        s.signet(["bench", "--key", "bench", "--concurrency", bad])
            .unwrap()
            .fails_with(1, "concurrency")
            .unwrap();
    }
    s.signet(["bench", "--key", "no-such-key", "--duration", "1"])
        .unwrap()
        .fails_with(1, "no-such-key")
        .unwrap();
}

// ---- 9. large files stream ------------------------------------------------------------------

#[test]
fn large_file_is_hashed_streaming_in_little_memory() {
    const SIZE: u64 = 2 << 30; // 2 GiB, sparse
    const MAX_RSS_KIB: u64 = 200 * 1024;

    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    create_key(&s, "big", "ecdsa-p256");
    let pem_path = public_pem_file(&s, &dir, "big", None);

    let file = dir.join("big.img");
    let f = std::fs::File::create(&file).unwrap();
    f.set_len(SIZE).unwrap();
    // A non-zero tail, so a reader that stops early gets a different digest.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = f;
        f.seek(SeekFrom::Start(SIZE - 16)).unwrap();
        f.write_all(b"signet-tail-0001").unwrap();
    }
    assert_eq!(std::fs::metadata(&file).unwrap().len(), SIZE);

    let mut cmd = s.signet_command(Some(s.admin_token())).unwrap();
    cmd.args(["sign", "--key", "big", p(&file)]);
    let m = run_measuring_rss(&mut cmd, Duration::from_secs(300)).unwrap();
    m.output.ok().unwrap();
    eprintln!(
        "signet sign of a {} GiB file: peak RSS {} KiB ({:.1} MiB, measured with {}), wall {:.2} s",
        SIZE >> 30,
        m.peak_rss_kib,
        m.peak_rss_kib as f64 / 1024.0,
        m.method,
        m.wall.as_secs_f64()
    );
    assert!(
        m.peak_rss_kib < MAX_RSS_KIB,
        "peak RSS {} KiB is not below {MAX_RSS_KIB} KiB: the file is not streamed",
        m.peak_rss_kib
    );

    let (sig_path, bundle_path) = outputs(&file, None);
    let bundle = read_json(&bundle_path);
    assert_eq!(
        bundle["digest"]["value"],
        coreutils_digest("sha256", &file).as_str()
    );
    // OpenSSL streams the file too.
    assert!(openssl_verifies(
        &dir,
        "ecdsa-p256",
        &pem_path,
        &file,
        &sig_path
    ));
}

// ---- 10. errors and usage -------------------------------------------------------------------

#[test]
fn no_server_configured() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        vec!["key", "list"],
        vec!["sign", "--key", "k", "--digest", "00"],
        vec!["token", "list"],
        vec!["status"],
    ] {
        let mut cmd = signet(home.path()).unwrap();
        cmd.args(&args);
        run_cli(&mut cmd, None)
            .unwrap()
            .fails_with(1, "SIGNET_URL")
            .unwrap();
    }
    // Nothing was written to the config directory.
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);
}

#[test]
fn server_down_non_tls_and_missing_files() {
    let home = tempfile::tempdir().unwrap();

    // Nothing listens there.
    let port = closed_port().unwrap();
    let mut cmd = signet(home.path()).unwrap();
    cmd.env("SIGNET_URL", format!("https://127.0.0.1:{port}"))
        .env("SIGNET_TOKEN", "signet_x_y")
        .args(["key", "list"]);
    let out = run_cli(&mut cmd, None).unwrap();
    out.fails_with(1, "cannot reach the server").unwrap();
    assert!(out.stderr.contains(&port.to_string()), "{}", out.stderr);

    // Plain http is only for loopback; the token must not leave over it.
    for url in ["http://signet.example:8443", "http://10.1.2.3"] {
        let mut cmd = signet(home.path()).unwrap();
        cmd.env("SIGNET_URL", url)
            .env("SIGNET_TOKEN", "signet_x_y")
            .args(["key", "list"]);
        run_cli(&mut cmd, None)
            .unwrap()
            .fails_with(1, "https")
            .unwrap();
    }
    let mut cmd = signet(home.path()).unwrap();
    cmd.args(["--url", "ftp://127.0.0.1", "key", "list"]);
    run_cli(&mut cmd, None)
        .unwrap()
        .fails_with(1, "https")
        .unwrap();

    // Missing inputs, against a working server.
    let s = Server::start().unwrap();
    let dir = s.scratch().unwrap();
    create_key(&s, "k", "ecdsa-p256");
    let (good, _) = artifact(&dir, "present.bin");
    let missing = dir.join("does-not-exist.bin");
    s.signet(["sign", "--key", "k", p(&missing)])
        .unwrap()
        .fails_with(1, "does-not-exist.bin")
        .unwrap();
    // One missing file among several: nothing is signed or written.
    s.signet(["sign", "--key", "k", p(&good), p(&missing)])
        .unwrap()
        .fails_with(1, "does-not-exist.bin")
        .unwrap();
    assert!(!outputs(&good, None).0.exists(), "partial outputs written");
    assert!(s.audit_events("sign", "allowed").unwrap().is_empty());
    s.signet(["verify", "--key", "k", p(&missing)])
        .unwrap()
        .fails_with(1, "does-not-exist.bin")
        .unwrap();
    s.signet(["verify", "--public-key", p(&dir.join("nope.pem")), p(&good)])
        .unwrap()
        .fails_with(1, "nope.pem")
        .unwrap();
    s.signet(["sign", "--key", "k", p(&dir)])
        .unwrap()
        .fails_with(1, "not a regular file")
        .unwrap();
    // A missing CA file is named.
    let mut cmd = s.signet_command(Some(s.admin_token())).unwrap();
    cmd.env("SIGNET_CA", dir.join("no-ca.pem"))
        .args(["key", "list"]);
    run_cli(&mut cmd, None)
        .unwrap()
        .fails_with(1, "no-ca.pem")
        .unwrap();
    // Without SIGNET_CA the self-signed server is not trusted.
    let mut cmd = s.signet_command(Some(s.admin_token())).unwrap();
    cmd.env_remove("SIGNET_CA").args(["key", "list"]);
    run_cli(&mut cmd, None)
        .unwrap()
        .fails_with(1, "cannot reach the server")
        .unwrap();
    // A broken config file is named.
    let home = s.config_home().unwrap();
    std::fs::create_dir_all(home.join("signet")).unwrap();
    std::fs::write(home.join("signet").join("config.toml"), "url = [").unwrap();
    let mut cmd = signet(&home).unwrap();
    cmd.args(["key", "list"]);
    run_cli(&mut cmd, None)
        .unwrap()
        .fails_with(1, "config.toml")
        .unwrap();
}

#[test]
fn usage_errors_and_help() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut cmd = signet(home.path()).unwrap();
        cmd.args(args);
        run_cli(&mut cmd, None).unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("Usage"), "{}", out.stderr);
    run(&["frobnicate"]).fails_with(2, "frobnicate").unwrap();
    run(&["key"]).fails_with(2, "Usage").unwrap();
    run(&["verify", "file.bin"]).fails_with(2, "--key").unwrap();
    run(&[
        "verify",
        "f",
        "--public-key",
        "k.pem",
        "--bundle",
        "b",
        "--signature",
        "s",
    ])
    .fails_with(2, "cannot be used with")
    .unwrap();
    run(&["bench", "--key", "k", "--concurrency", "many"])
        .fails_with(2, "many")
        .unwrap();

    let out = run(&["--help"]);
    out.ok().unwrap();
    for sub in ["login", "key", "sign", "verify", "token", "audit", "bench"] {
        assert!(
            out.stdout.contains(sub),
            "--help lacks {sub}: {}",
            out.stdout
        );
    }
    run(&["sign", "--help"]).ok().unwrap();
    let out = run(&["--version"]);
    out.ok().unwrap();
    assert!(out.stdout.starts_with("signet "), "{}", out.stdout);

    let mut d = signetd().unwrap();
    d.arg("--help");
    let out = run_cli(&mut d, None).unwrap();
    out.ok().unwrap();
    assert!(out.stdout.contains("serve"), "{}", out.stdout);
    assert!(out.stdout.contains("init"), "{}", out.stdout);
}
