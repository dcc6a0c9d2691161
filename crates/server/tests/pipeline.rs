//! The signing pipeline wired as in production (SQLite store, software backend), with the clock
//! and the audit log replaceable: checks the invariants that only this level can see.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use signet_core::audit::{
    Action, AuditEvent, AuditLog, AuditQuery, AuditReceipt, AuditRecord, Outcome,
};
use signet_core::clock::ManualClock;
use signet_core::log::MerkleLog;
use signet_core::principal::{Principal, PrincipalKind, Role};
use signet_core::secret::SecretString;
use signet_core::service::{Deps, RequestMeta, SignBatch, SignItem, SigningService};
use signet_core::{Clock, CoreError, ErrorCode};
use signet_keys::{Kek, SoftwareBackend, SystemRandom};
use signet_server::audit_log::{LogSigner, find_log_key};
use signet_store::SqliteStore;
use time::macros::datetime;

/// An audit log that can be made to fail, over the real Merkle log on SQLite.
struct Switchable {
    inner: MerkleLog,
    fail: AtomicBool,
}

#[async_trait]
impl AuditLog for Switchable {
    async fn append(&self, events: Vec<AuditEvent>) -> Result<Vec<AuditReceipt>, CoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(CoreError::new(ErrorCode::Internal, "disk full (simulated)"));
        }
        self.inner.append(events).await
    }
    async fn query(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, CoreError> {
        self.inner.query(q).await
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    service: SigningService,
    audit: Arc<Switchable>,
    clock: Arc<ManualClock>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-23 12:00 UTC)));
    let shared = Arc::new(store);
    let kek = Kek::from_bytes(Kek::generate_bytes().unwrap().as_ref()).unwrap();
    let backend = Arc::new(SoftwareBackend::new(kek));
    let log_key = find_log_key(
        shared.as_ref(),
        backend.as_ref(),
        clock.as_ref(),
        &SystemRandom,
    )
    .await
    .unwrap();
    let signer = Arc::new(LogSigner::new("signet/test".into(), backend.clone(), log_key).unwrap());
    let audit = Arc::new(Switchable {
        inner: MerkleLog::open(shared.clone(), signer).await.unwrap(),
        fail: AtomicBool::new(false),
    });
    let service = SigningService::new(Deps {
        keys: shared.clone(),
        tokens: shared.clone(),
        certs: shared,
        audit: audit.clone(),
        backends: signet_core::backend::Backends::single(backend),
        creation: Default::default(),
        seal: Arc::new(signet_core::backend::NeverSealed),
        fips: false,
        clock: clock.clone(),
        random: Arc::new(SystemRandom),
        offload: Arc::new(signet_server::offload::BlockingPool::per_core()),
        node: "test".into(),
    });
    Fixture {
        _dir: dir,
        service,
        audit,
        clock,
    }
}

fn admin() -> Principal {
    Principal {
        id: "admin".into(),
        name: "admin".into(),
        kind: PrincipalKind::ServiceAccount,
        role: Some(Role::Admin),
    }
}

fn batch(key: &str, n: usize) -> SignBatch {
    SignBatch {
        key: key.into(),
        digest_algorithm: None,
        items: (0..n)
            .map(|i| SignItem {
                digest: hex::encode([i as u8; 32]),
                artifact_name: Some(format!("a{i}")),
                artifact_kind: None,
            })
            .collect(),
        reason: Some("test".into()),
        build: None,
    }
}

#[tokio::test]
async fn no_signature_without_a_durable_audit_entry() {
    let f = fixture().await;
    let meta = RequestMeta::default();
    f.service
        .create_key(&admin(), "k", "ecdsa-p256", &meta)
        .await
        .unwrap();
    f.audit.fail.store(true, Ordering::SeqCst);
    let err = f
        .service
        .sign(&admin(), batch("k", 3), &meta)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Internal);
    f.audit.fail.store(false, Ordering::SeqCst);
    let sigs = f
        .service
        .sign(&admin(), batch("k", 3), &meta)
        .await
        .unwrap();
    assert_eq!(sigs.len(), 3);
    // Each signature's audit index names an entry recording exactly its digest.
    let records = f
        .audit
        .query(&AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    for s in &sigs {
        let r = records.iter().find(|r| r.index == s.log.index).unwrap();
        // The receipt proves the entry is in the log the checkpoint commits to.
        assert_eq!(
            s.log.leaf_hash,
            signet_core::merkle::leaf_hash(&s.log.entry)
        );
        signet_core::merkle::verify_inclusion(
            &s.log.leaf_hash,
            s.log.index,
            s.log.checkpoint.size,
            &s.log.inclusion_proof,
            &s.log.checkpoint.root,
        )
        .unwrap();
        assert_eq!(r.event.action, Action::Sign);
        assert_eq!(r.event.outcome, Outcome::Allowed);
        assert_eq!(r.event.digest.as_ref().unwrap().value, s.digest.to_hex());
        assert_eq!(r.event.digest.as_ref().unwrap().algorithm, "sha256");
    }
}

#[tokio::test]
async fn denied_requests_are_audited_and_sign_nothing() {
    let f = fixture().await;
    let meta = RequestMeta::default();
    let signer = Principal {
        role: Some(Role::Signer),
        ..admin()
    };
    let err = f
        .service
        .create_key(&signer, "k", "ed25519", &meta)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::PolicyDenied);
    f.service
        .create_key(&admin(), "k", "ed25519", &meta)
        .await
        .unwrap();
    f.service
        .set_key_state(&admin(), "k", signet_core::key::KeyState::Disabled, &meta)
        .await
        .unwrap();
    let err = f
        .service
        .sign(&signer, batch("k", 2), &meta)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::KeyDisabled);
    let records = f
        .audit
        .query(&AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let denied_signs = records
        .iter()
        .filter(|r| {
            r.event.action == Action::Sign && matches!(r.event.outcome, Outcome::Denied { .. })
        })
        .count();
    assert_eq!(denied_signs, 2, "one denied entry per digest");
    assert!(records.iter().any(|r| r.event.action == Action::KeyCreate
        && matches!(&r.event.outcome, Outcome::Denied { code, .. } if code == "policy_denied")));
    assert!(
        !records
            .iter()
            .any(|r| r.event.action == Action::Sign && r.event.outcome == Outcome::Allowed)
    );
}

#[tokio::test]
async fn tokens_expire_at_the_exact_instant() {
    let f = fixture().await;
    let meta = RequestMeta::default();
    let expiry = datetime!(2026-11-23 13:00 UTC);
    let (_, secret) = f
        .service
        .create_token(&admin(), "ci", "signer", Some(expiry), &meta)
        .await
        .unwrap();
    f.clock.set(expiry - time::Duration::nanoseconds(1));
    let p = f.service.authenticate(&secret, &meta).await.unwrap();
    assert_eq!(p.role, Some(Role::Signer));
    f.clock.set(expiry);
    let err = f.service.authenticate(&secret, &meta).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthenticated);
    // A wrong secret for a real id, and garbage, fail the same way.
    let wrong = SecretString::new(format!(
        "{}{}",
        &secret.expose()[..secret.expose().len() - 1],
        "0"
    ));
    f.clock.set(expiry - time::Duration::hours(1));
    for bad in [
        wrong,
        SecretString::new("nope".into()),
        SecretString::new(String::new()),
    ] {
        let e = f.service.authenticate(&bad, &meta).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Unauthenticated);
        assert_eq!(e.message, err.message);
    }
    // No audit entry carries a secret.
    let records = f
        .audit
        .query(&AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let all = serde_json::to_string(&records.iter().map(|r| &r.event).collect::<Vec<_>>()).unwrap();
    assert!(!all.contains(&secret.expose()[24..]));
}

#[tokio::test]
async fn rotation_keeps_old_versions_and_signs_with_the_new_one() {
    let f = fixture().await;
    let meta = RequestMeta::default();
    f.service
        .create_key(&admin(), "k", "rsa-3072-pss", &meta)
        .await
        .unwrap();
    let v1 = f
        .service
        .sign(&admin(), batch("k", 1), &meta)
        .await
        .unwrap();
    let key = f.service.rotate_key(&admin(), "k", &meta).await.unwrap();
    assert_eq!(key.current_version, 2);
    assert_eq!(key.versions.len(), 2);
    let v2 = f
        .service
        .sign(&admin(), batch("k", 1), &meta)
        .await
        .unwrap();
    assert_eq!((v1[0].key_version, v2[0].key_version), (1, 2));
    assert_ne!(v1[0].public_key_fingerprint, v2[0].public_key_fingerprint);
    for (sig, version) in [(&v1[0], 1), (&v2[0], 2)] {
        let spki = &key.version(version).unwrap().public_key_der;
        signet_formats::raw::verify(key.algorithm, spki, &sig.digest, &sig.signature).unwrap();
    }
    let wrong = &key.version(2).unwrap().public_key_der;
    assert!(
        signet_formats::raw::verify(key.algorithm, wrong, &v1[0].digest, &v1[0].signature).is_err()
    );
}

#[tokio::test]
async fn refused_batches_are_recorded_once_and_bounded() {
    let f = fixture().await;
    let meta = RequestMeta::default();
    f.service
        .create_key(&admin(), "k", "ed25519", &meta)
        .await
        .unwrap();
    let before = f
        .audit
        .query(&AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .len();
    // 1001 items with an oversized reason: refused before any of it is copied into the log.
    let mut b = batch("k", 1001);
    b.reason = Some("x".repeat(100_000));
    let err = f.service.sign(&admin(), b, &meta).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::BatchTooLarge);
    let mut b = batch("k", 2);
    b.reason = Some("x".repeat(100_000));
    let err = f.service.sign(&admin(), b, &meta).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    let after = f
        .audit
        .query(&AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(after.len(), before + 2, "one event per refused batch");
    assert!(after.iter().all(|r| {
        r.event.context.is_none()
            || r.event
                .context
                .as_ref()
                .unwrap()
                .reason
                .as_deref()
                .map_or(0, str::len)
                < 2000
    }));
}

#[tokio::test]
async fn digest_algorithm_defaults_to_the_keys() {
    let f = fixture().await;
    let meta = RequestMeta::default();
    f.service
        .create_key(&admin(), "p384", "ecdsa-p384", &meta)
        .await
        .unwrap();
    let mut b = batch("p384", 1);
    b.items[0].digest = hex::encode([7u8; 48]);
    let sigs = f.service.sign(&admin(), b, &meta).await.unwrap();
    assert_eq!(
        sigs[0].digest.algorithm(),
        signet_core::DigestAlgorithm::Sha384
    );
    // A 32-byte digest for a SHA-384 key is a length mismatch, not a silent SHA-256 signature.
    let err = f
        .service
        .sign(&admin(), batch("p384", 1), &meta)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::DigestLengthMismatch);
}

/// CA and TSA keys sign only what Signet composes: a client's digest is refused and audited.
#[tokio::test]
async fn keys_for_certificates_or_time_stamps_never_sign_client_digests() {
    use signet_core::cert::KeyUsage;
    use signet_core::service::NewKey;
    let f = fixture().await;
    let meta = RequestMeta::default();
    for (name, usage) in [
        ("ca-root", KeyUsage::CertificateAuthority),
        ("tsa", KeyUsage::Timestamping),
    ] {
        f.service
            .create_key_with(
                &admin(),
                &NewKey {
                    name,
                    algorithm: "ecdsa-p256",
                    backend: None,
                    adopt: None,
                    usage,
                },
                &meta,
            )
            .await
            .unwrap();
        let err = f
            .service
            .sign(&admin(), batch(name, 1), &meta)
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::WrongKeyUsage, "{name}");
        let records = f
            .audit
            .query(&AuditQuery {
                limit: 100,
                key: Some(name.into()),
                action: Some(Action::Sign),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(records.len(), 1, "{name}");
        assert!(matches!(
            &records[0].event.outcome,
            Outcome::Denied { code, .. } if code == "wrong_key_usage"
        ));
    }
}

/// `require_certificate`: a key signs only while its signing version has a certificate valid
/// at that instant (inclusive bounds) and not revoked.
#[tokio::test]
async fn require_certificate_follows_validity_to_the_instant_and_revocation() {
    use signet_core::cert::{CertKind, CertificateRecord, KeyPolicy, RevocationReason};
    let f = fixture().await;
    let meta = RequestMeta::default();
    let key = f
        .service
        .create_key(&admin(), "k", "ecdsa-p256", &meta)
        .await
        .unwrap();
    f.service
        .set_key_policy(
            &admin(),
            "k",
            KeyPolicy {
                require_certificate: true,
                require_timestamp: false,
            },
            &meta,
        )
        .await
        .unwrap();
    let err = f
        .service
        .sign(&admin(), batch("k", 1), &meta)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::CertificateRequired);

    let now = f.clock.now();
    let not_after = now + time::Duration::days(1);
    // The pipeline reads only the record's validity and revocation; the DER is not parsed here
    // (X.509 itself is tested in signet-formats and end to end with OpenSSL).
    let cert = CertificateRecord {
        id: "c1".into(),
        key_id: key.id.clone(),
        key_version: 1,
        kind: CertKind::CodeSigning,
        serial: "01".into(),
        subject: "CN=k".into(),
        issuer: "CN=ca".into(),
        ca: None,
        not_before: now,
        not_after,
        der: vec![0x30, 0x00],
        chain: vec![],
        created_at: now,
        revoked_at: None,
        revocation_reason: None,
    };
    f.service.certs().insert_certificate(&cert).await.unwrap();
    f.service
        .sign(&admin(), batch("k", 1), &meta)
        .await
        .unwrap();
    f.clock.set(not_after);
    f.service
        .sign(&admin(), batch("k", 1), &meta)
        .await
        .unwrap();
    f.clock.set(not_after + time::Duration::seconds(1));
    let err = f
        .service
        .sign(&admin(), batch("k", 1), &meta)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::CertificateRequired);
    f.clock.set(now);
    f.service
        .certs()
        .revoke_certificate("c1", now, RevocationReason::KeyCompromise)
        .await
        .unwrap();
    let err = f
        .service
        .sign(&admin(), batch("k", 1), &meta)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::CertificateRequired);
}
