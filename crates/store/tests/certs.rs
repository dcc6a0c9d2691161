//! Key usage and policy, certificates, CAs, CRL numbers and time-stamp serials against a real
//! SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use signet_core::cert::{
    CaRecord, CertKind, CertStore, CertificateRecord, KeyPolicy, KeyUsage, RevocationReason,
};
use signet_core::key::{Key, KeyHandle, KeyName, KeyState, KeyVersion};
use signet_core::store::KeyStore;
use signet_core::{Algorithm, ErrorCode};
use signet_store::SqliteStore;
use sqlx::Connection;
use time::OffsetDateTime;
use time::macros::datetime;

const T: OffsetDateTime = datetime!(2026-11-23 12:00 UTC);

fn key(name: &str) -> Key {
    Key {
        id: format!("id-{name}"),
        name: KeyName::parse(name).unwrap(),
        algorithm: Algorithm::Ed25519,
        backend: "software".into(),
        state: KeyState::Active,
        created_at: T,
        current_version: 1,
        versions: vec![KeyVersion {
            version: 1,
            public_key_der: vec![1, 2, 3],
            handle: KeyHandle(vec![9; 40]),
            created_at: T,
        }],
        usage: KeyUsage::Signing,
        policy: KeyPolicy::default(),
    }
}

fn cert(id: &str, key_id: &str, issuer: &str, serial: &str, minute: u8) -> CertificateRecord {
    CertificateRecord {
        id: id.into(),
        key_id: key_id.into(),
        key_version: 1,
        kind: CertKind::CodeSigning,
        serial: serial.into(),
        subject: format!("CN={id}"),
        issuer: issuer.into(),
        ca: Some("corp".into()),
        not_before: T,
        not_after: datetime!(2027-11-23 12:00:00.123456789 UTC),
        der: vec![0x30, 0x03, 1, 2, minute],
        chain: vec![vec![0x30, 0x01, 7], vec![], vec![0xab; 1000]],
        created_at: T + time::Duration::minutes(i64::from(minute)),
        revoked_at: None,
        revocation_reason: None,
    }
}

fn ca(name: &str) -> CaRecord {
    CaRecord {
        name: name.into(),
        root_key: format!("{name}-root"),
        issuing_key: format!("{name}-issuing"),
        root_certificate: format!("{name}-root-cert"),
        issuing_certificate: format!("{name}-issuing-cert"),
        created_at: T,
    }
}

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path).await.unwrap()
}

/// A raw connection to the database, behind the store's back.
async fn raw(path: &Path) -> sqlx::SqliteConnection {
    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn usage_and_policy_round_trip_and_set_policy_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = open(&path).await;
    let mut ca_key = key("ca");
    ca_key.usage = KeyUsage::CertificateAuthority;
    ca_key.policy = KeyPolicy {
        require_certificate: true,
        require_timestamp: false,
    };
    let mut tsa = key("tsa");
    tsa.usage = KeyUsage::Timestamping;
    s.create_key(&ca_key).await.unwrap();
    s.create_key(&tsa).await.unwrap();
    s.create_key(&key("plain")).await.unwrap();

    let got = s.get_key("ca").await.unwrap().unwrap();
    assert_eq!(got.usage, KeyUsage::CertificateAuthority);
    assert_eq!(got.policy, ca_key.policy);
    let listed: Vec<_> = s
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.name.to_string(), k.usage, k.policy))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("ca".into(), KeyUsage::CertificateAuthority, ca_key.policy),
            ("plain".into(), KeyUsage::Signing, KeyPolicy::default()),
            ("tsa".into(), KeyUsage::Timestamping, KeyPolicy::default()),
        ]
    );

    let both = KeyPolicy {
        require_certificate: true,
        require_timestamp: true,
    };
    s.set_policy("id-plain", &both).await.unwrap();
    s.close().await;
    let s = open(&path).await;
    let plain = s.get_key("plain").await.unwrap().unwrap();
    assert_eq!(plain.policy, both);
    assert_eq!(plain.usage, KeyUsage::Signing);
    // Only that key changed.
    assert_eq!(
        s.get_key("tsa").await.unwrap().unwrap().policy,
        KeyPolicy::default()
    );

    let missing = s.set_policy("id-nope", &both).await.unwrap_err();
    assert_eq!(missing.code, ErrorCode::KeyNotFound);
    assert!(missing.message.contains("`id-nope`"), "{}", missing.message);
}

#[tokio::test]
async fn corrupt_usage_or_policy_is_an_internal_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = open(&path).await;
    s.create_key(&key("a")).await.unwrap();
    s.create_key(&key("b")).await.unwrap();
    s.close().await;
    let mut conn = raw(&path).await;
    // The schema refuses an unknown usage; bypass the check to simulate a damaged database.
    let refused = sqlx::query("UPDATE keys SET usage = 'minting' WHERE name = 'a'")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("CHECK"), "{refused}");
    sqlx::query("PRAGMA ignore_check_constraints = ON")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("UPDATE keys SET usage = 'minting' WHERE name = 'a'")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("UPDATE keys SET policy = '{\"require_certificate\": 1' WHERE name = 'b'")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let s = open(&path).await;
    for name in ["a", "b"] {
        let err = s.get_key(name).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Internal, "{name}");
    }
    assert_eq!(s.list_keys().await.unwrap_err().code, ErrorCode::Internal);
}

#[tokio::test]
async fn keys_stored_before_the_migration_get_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    // A version-2 database with one key, as the previous release left it.
    let mut conn =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
    sqlx::raw_sql(concat!(
        include_str!("../migrations/sqlite/0001_init.sql"),
        include_str!("../migrations/sqlite/0002_merkle_log.sql"),
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
         INSERT INTO schema_migrations VALUES (1, 0), (2, 0);
         INSERT INTO keys (id, name, algorithm, backend, state, created_at, current_version)
             VALUES ('id-old', 'old', 'ed25519', 'software', 'active', 0, 1);
         INSERT INTO key_versions VALUES ('id-old', 1, x'010203', x'09', 0);"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let s = open(&path).await;
    let old = s.get_key("old").await.unwrap().unwrap();
    assert_eq!(old.algorithm, Algorithm::Ed25519);
    assert_eq!(old.usage, KeyUsage::Signing);
    assert_eq!(old.policy, KeyPolicy::default());
    // And the new tables exist.
    let mut c = cert("c1", "id-old", "CN=Corp CA", "01", 0);
    c.ca = None;
    s.insert_certificate(&c).await.unwrap();
    assert_eq!(s.get_certificate("c1").await.unwrap(), Some(c));
}

#[tokio::test]
async fn certificates_insert_get_list_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = open(&path).await;
    s.create_key(&key("a")).await.unwrap();
    s.create_key(&key("b")).await.unwrap();
    let a1 = cert("a1", "id-a", "CN=Corp CA", "01", 1);
    let a2 = cert("a2", "id-a", "CN=Corp CA", "02", 3);
    let mut b1 = cert("b1", "id-b", "CN=Other CA", "0a", 2);
    b1.kind = CertKind::Imported;
    b1.ca = None;
    b1.chain = vec![];
    for c in [&a1, &b1, &a2] {
        s.insert_certificate(c).await.unwrap();
    }
    assert_eq!(s.get_certificate("a1").await.unwrap(), Some(a1.clone()));
    assert_eq!(s.get_certificate("b1").await.unwrap(), Some(b1.clone()));
    assert_eq!(s.get_certificate("zz").await.unwrap(), None);

    let ids = |v: Vec<CertificateRecord>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_certificates(None).await.unwrap()),
        ["a2", "b1", "a1"]
    );
    assert_eq!(
        ids(s.list_certificates(Some("id-a")).await.unwrap()),
        ["a2", "a1"]
    );
    assert_eq!(
        s.list_certificates(Some("id-b")).await.unwrap(),
        vec![b1.clone()]
    );
    assert!(
        s.list_certificates(Some("id-none"))
            .await
            .unwrap()
            .is_empty()
    );

    let at = T + time::Duration::days(30);
    assert!(
        s.revoke_certificate("a1", at, RevocationReason::KeyCompromise)
            .await
            .unwrap()
    );
    // The first revocation stands.
    assert!(
        !s.revoke_certificate(
            "a1",
            at + time::Duration::days(1),
            RevocationReason::Superseded
        )
        .await
        .unwrap()
    );
    assert!(
        !s.revoke_certificate("zz", at, RevocationReason::Unspecified)
            .await
            .unwrap()
    );
    s.close().await;

    let s = open(&path).await;
    let revoked = s.get_certificate("a1").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(at));
    assert_eq!(
        revoked.revocation_reason,
        Some(RevocationReason::KeyCompromise)
    );
    assert_eq!(
        CertificateRecord {
            revoked_at: None,
            revocation_reason: None,
            ..revoked
        },
        a1
    );
    // The others are untouched.
    assert_eq!(s.get_certificate("a2").await.unwrap(), Some(a2));
    assert_eq!(s.get_certificate("b1").await.unwrap(), Some(b1));
}

#[tokio::test]
async fn an_issuer_cannot_reuse_a_serial() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir.path().join("s.db")).await;
    s.create_key(&key("a")).await.unwrap();
    s.insert_certificate(&cert("c1", "id-a", "CN=Corp CA", "7f01", 0))
        .await
        .unwrap();

    let dup = s
        .insert_certificate(&cert("c2", "id-a", "CN=Corp CA", "7f01", 1))
        .await
        .unwrap_err();
    assert_eq!(dup.code, ErrorCode::Conflict);
    assert!(dup.message.contains("`7f01`"), "{}", dup.message);
    assert!(dup.message.contains("`c1`"), "{}", dup.message);
    assert!(s.get_certificate("c2").await.unwrap().is_none());
    assert_eq!(s.list_certificates(None).await.unwrap().len(), 1);

    // Another issuer may use the same serial.
    let other = cert("c3", "id-a", "CN=Other CA", "7f01", 2);
    s.insert_certificate(&other).await.unwrap();
    assert_eq!(s.get_certificate("c3").await.unwrap(), Some(other));

    // A reused id is a conflict too, and says so.
    let same_id = s
        .insert_certificate(&cert("c1", "id-a", "CN=Corp CA", "7f02", 3))
        .await
        .unwrap_err();
    assert_eq!(same_id.code, ErrorCode::Conflict);
    assert!(same_id.message.contains("`c1`"), "{}", same_id.message);
    assert_eq!(s.list_certificates(None).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_certificate_belongs_to_a_stored_key_version() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir.path().join("s.db")).await;
    s.create_key(&key("a")).await.unwrap();
    let no_key = s
        .insert_certificate(&cert("c1", "id-nope", "CN=Corp CA", "01", 0))
        .await
        .unwrap_err();
    assert_eq!(no_key.code, ErrorCode::KeyNotFound);
    let mut v2 = cert("c2", "id-a", "CN=Corp CA", "02", 0);
    v2.key_version = 2;
    let no_version = s.insert_certificate(&v2).await.unwrap_err();
    assert_eq!(no_version.code, ErrorCode::KeyNotFound);
    assert!(s.list_certificates(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn validity_beyond_the_nanosecond_range_is_clamped_not_inverted() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir.path().join("s.db")).await;
    s.create_key(&key("a")).await.unwrap();
    let mut c = cert("c1", "id-a", "CN=Corp CA", "01", 0);
    c.not_before = datetime!(1600-01-01 0:00 UTC);
    // RFC 5280 §4.1.2.5: no well-defined expiration.
    c.not_after = datetime!(9999-12-31 23:59:59 UTC);
    s.insert_certificate(&c).await.unwrap();
    let got = s.get_certificate("c1").await.unwrap().unwrap();
    assert!(got.not_before < datetime!(1678-01-01 0:00 UTC));
    assert!(got.not_after > datetime!(2262-01-01 0:00 UTC));
    assert!(got.is_valid_at(T));
}

#[tokio::test]
async fn cas_create_get_list_and_names_are_unique() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = open(&path).await;
    s.create_ca(&ca("corp")).await.unwrap();
    s.create_ca(&ca("build")).await.unwrap();
    let mut again = ca("corp");
    again.root_key = "elsewhere".into();
    let dup = s.create_ca(&again).await.unwrap_err();
    assert_eq!(dup.code, ErrorCode::Conflict);
    assert!(dup.message.contains("`corp`"), "{}", dup.message);
    s.close().await;

    let s = open(&path).await;
    assert_eq!(s.get_ca("corp").await.unwrap(), Some(ca("corp")));
    assert_eq!(s.get_ca("nope").await.unwrap(), None);
    assert_eq!(s.list_cas().await.unwrap(), vec![ca("build"), ca("corp")]);
}

#[tokio::test]
async fn crl_numbers_count_per_ca_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = open(&path).await;
    for want in 1..=3 {
        assert_eq!(s.next_crl_number("corp").await.unwrap(), want);
    }
    assert_eq!(s.next_crl_number("build").await.unwrap(), 1);
    s.close().await;
    let s = open(&path).await;
    assert_eq!(s.next_crl_number("corp").await.unwrap(), 4);
    assert_eq!(s.next_crl_number("build").await.unwrap(), 2);
}

#[tokio::test]
async fn concurrent_crl_numbers_are_distinct() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(&dir.path().join("s.db")).await);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..4 {
                got.push(s.next_crl_number("corp").await.unwrap());
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let got = t.await.unwrap();
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        all.extend(got);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=64).collect::<Vec<u64>>());
}

#[tokio::test]
async fn timestamp_serials_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = open(&path).await;
    s.record_timestamp_serial("5eed01", T).await.unwrap();
    s.record_timestamp_serial("5eed02", T).await.unwrap();
    let dup = s.record_timestamp_serial("5eed01", T).await.unwrap_err();
    assert_eq!(dup.code, ErrorCode::Conflict);
    assert!(dup.message.contains("`5eed01`"), "{}", dup.message);
    s.close().await;

    let s = open(&path).await;
    let after = s
        .record_timestamp_serial("5eed02", T + time::Duration::days(1))
        .await
        .unwrap_err();
    assert_eq!(after.code, ErrorCode::Conflict);
    s.record_timestamp_serial("5eed03", T).await.unwrap();
}
