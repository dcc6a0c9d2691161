//! signetd with a real SoftHSM2 token: keys generated inside the token and verified by OpenSSL,
//! and PKCS#11 auto-unseal (the key-encryption key wrapped by an AES key in the token) across
//! restarts and a KEK rotation. Skipped with a notice when SoftHSM2 is missing, unless
//! `SIGNET_REQUIRE_SOFTHSM=1` (set by `scripts/test`), which makes a missing token a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use serde_json::json;
use signet_e2e::*;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A private SoftHSM2 token directory with one initialized token.
struct Token {
    _dir: tempfile::TempDir,
    conf: PathBuf,
    pin_file: PathBuf,
    label: String,
}

fn softhsm_available() -> Result<bool> {
    let ok = Path::new(MODULE).exists()
        && Command::new("softhsm2-util")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok && std::env::var("SIGNET_REQUIRE_SOFTHSM").as_deref() == Ok("1") {
        anyhow::bail!(
            "SoftHSM2 is required (SIGNET_REQUIRE_SOFTHSM=1) but `{MODULE}` or `softhsm2-util` is missing; install softhsm2"
        );
    }
    if !ok {
        eprintln!("skipped: SoftHSM2 is not installed");
    }
    Ok(ok)
}

fn token() -> Result<Token> {
    let dir = tempfile::Builder::new().prefix("signet-hsm-").tempdir()?;
    std::fs::create_dir(dir.path().join("tokens"))?;
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir.path().join("tokens").display()
        ),
    )?;
    let label = "signet-e2e".to_owned();
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", &label])
        .args(["--so-pin", "87654321", "--pin", "24681357"])
        .output()?;
    ensure!(
        out.status.success(),
        "softhsm2-util --init-token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, "24681357\n")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(Token {
        _dir: dir,
        conf,
        pin_file,
        label,
    })
}

fn hsm_server(t: &Token) -> Result<Server> {
    let env = vec![(
        "SOFTHSM2_CONF".to_owned(),
        t.conf.to_string_lossy().into_owned(),
    )];
    Server::start_with(ServeOptions {
        env,
        init_args: Some(vec![
            "--pkcs11-module".into(),
            MODULE.into(),
            "--pkcs11-token-label".into(),
            t.label.clone(),
            "--pkcs11-pin-file".into(),
            t.pin_file.to_string_lossy().into_owned(),
        ]),
        ..ServeOptions::default()
    })
}

/// Signs `data` with `key` and checks the signature with OpenSSL; returns the key's PEM.
fn sign_and_verify(s: &Server, dir: &Path, key: &str, algorithm: &str) -> Result<String> {
    let data = write_file(dir, &format!("{key}.txt"), key.as_bytes())?;
    let digest = digest_hex("sha256", key.as_bytes())?;
    let signed = s.sign(key, "sha256", &digest)?;
    let sig = b64decode(signed["signature"].as_str().context("no signature")?)?;
    let (pem, _) = s.public_key(key, 1)?;
    let ok = openssl_verify(
        dir,
        VerifyMode::for_algorithm(algorithm)?,
        "sha256",
        &pem,
        &data,
        &sig,
    )?;
    ensure!(ok, "OpenSSL rejected the {algorithm} signature of `{key}`");
    Ok(pem)
}

#[test]
fn hsm_keys_sign_and_auto_unseal_survives_restart_and_rotation() -> Result<()> {
    if !softhsm_available()? {
        return Ok(());
    }
    let t = token()?;
    let mut s = hsm_server(&t)?;
    let work = tempfile::tempdir()?;

    let (_, status) = s.get("/api/v1/status", None)?;
    assert_eq!(status["kek_source"], "pkcs11", "{status}");
    assert_eq!(status["sealed"], false, "auto-unseal at start: {status}");
    assert!(
        s.data_dir().join("kek.p11").is_file(),
        "the wrapped KEK is stored"
    );
    assert!(!s.data_dir().join("kek.dev").exists(), "no plaintext KEK");

    // Keys inside the token, checked by OpenSSL.
    let mut pems = Vec::new();
    for (name, alg) in [
        ("hsm-p256", "ecdsa-p256"),
        ("hsm-ed", "ed25519"),
        ("hsm-rsa", "rsa-3072-pss"),
    ] {
        let (code, body) = s.post_json(
            "/api/v1/keys",
            Some(s.admin_token()),
            &json!({"name": name, "algorithm": alg, "backend": "pkcs11"}),
        )?;
        assert_eq!(code, 201, "{name}: {body}");
        assert_eq!(body["backend"], "pkcs11", "{body}");
        pems.push((name, alg, sign_and_verify(&s, work.path(), name, alg)?));
    }
    // Post-quantum keys are refused by the token backend, clearly and before anything exists.
    let (code, body) = s.post_json(
        "/api/v1/keys",
        Some(s.admin_token()),
        &json!({"name": "hsm-pq", "algorithm": "ml-dsa-65", "backend": "pkcs11"}),
    )?;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["code"], "unsupported_algorithm", "{body}");
    // An unknown backend names the configured ones.
    let (code, body) = s.post_json(
        "/api/v1/keys",
        Some(s.admin_token()),
        &json!({"name": "x", "algorithm": "ed25519", "backend": "tpm"}),
    )?;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap_or("").contains("pkcs11"),
        "{body}"
    );
    s.create_key("soft", "ecdsa-p256")?;
    sign_and_verify(&s, work.path(), "soft", "ecdsa-p256")?;

    // Restart: the token unwraps the KEK again, no custodian needed.
    s.restart()?;
    let (_, status) = s.get("/api/v1/status", None)?;
    assert_eq!(status["sealed"], false, "{status}");
    for (name, alg, pem) in &pems {
        assert_eq!(&sign_and_verify(&s, work.path(), name, alg)?, pem);
    }

    // KEK rotation: the new KEK is wrapped in the token; software keys keep signing, also
    // after a restart.
    let before = std::fs::read(s.data_dir().join("kek.p11"))?;
    let (code, body) = s.post_json(
        "/api/v1/operator/rotate-kek",
        Some(s.admin_token()),
        &json!({}),
    )?;
    assert_eq!(code, 200, "{body}");
    assert!(body["rewrapped"].as_u64().unwrap_or(0) >= 2, "{body}");
    assert_eq!(body["shares"], json!([]), "{body}");
    assert_ne!(std::fs::read(s.data_dir().join("kek.p11"))?, before);
    sign_and_verify(&s, work.path(), "soft", "ecdsa-p256")?;
    s.restart()?;
    sign_and_verify(&s, work.path(), "soft", "ecdsa-p256")?;
    sign_and_verify(&s, work.path(), "hsm-p256", "ecdsa-p256")?;

    // A wrapped KEK that is not the token's: the server refuses to start with a clear error.
    s.stop()?;
    let mut blob = std::fs::read(s.data_dir().join("kek.p11"))?;
    if let Some(b) = blob.last_mut() {
        *b ^= 1;
    }
    std::fs::write(s.data_dir().join("kek.p11"), &blob)?;
    let out = s.serve_expecting_exit(std::time::Duration::from_secs(60))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("unwrap"), "unhelpful error: {stderr}");
    Ok(())
}
