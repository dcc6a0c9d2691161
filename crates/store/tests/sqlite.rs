//! The SQLite store against a real database file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use signet_core::audit::{Action, Actor, AuditEvent, AuditLog, AuditQuery, Outcome};
use signet_core::key::{Key, KeyHandle, KeyName, KeyState, KeyVersion};
use signet_core::log::{LogStorage, MerkleLog, NoteSigner};
use signet_core::merkle::{Hash, leaf_hash, root, verify_inclusion};
use signet_core::principal::PrincipalKind;
use signet_core::store::KeyStore;
use signet_core::{Algorithm, ErrorCode};
use signet_store::SqliteStore;
use time::macros::datetime;

fn key(name: &str) -> Key {
    let t = datetime!(2026-11-23 12:00 UTC);
    Key {
        id: format!("id-{name}"),
        name: KeyName::parse(name).unwrap(),
        algorithm: Algorithm::Ed25519,
        backend: "software".into(),
        state: KeyState::Active,
        created_at: t,
        current_version: 1,
        versions: vec![KeyVersion {
            version: 1,
            public_key_der: vec![1, 2, 3],
            handle: KeyHandle(vec![9; 40]),
            created_at: t,
        }],
        usage: Default::default(),
        policy: Default::default(),
    }
}

fn event(i: u8) -> AuditEvent {
    AuditEvent {
        time: datetime!(2026-11-23 12:00 UTC),
        action: Action::Sign,
        actor: Actor {
            id: format!("p{i}"),
            name: "p".into(),
            kind: PrincipalKind::ServiceAccount,
            role: None,
        },
        key: None,
        token_id: None,
        digest: None,
        context: None,
        outcome: Outcome::Allowed,
        client_addr: None,
        node: "n".into(),
        custody: None,
        fips: false,
    }
}

#[tokio::test]
async fn keys_round_trip_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let s = SqliteStore::open(&path).await.unwrap();
        s.create_key(&key("a")).await.unwrap();
        let dup = s.create_key(&key("a")).await.unwrap_err();
        assert_eq!(dup.code, ErrorCode::KeyExists);
        s.close().await;
    }
    let s = SqliteStore::open(&path).await.unwrap();
    let k = s.get_key("a").await.unwrap().unwrap();
    assert_eq!(k.versions.len(), 1);
    assert_eq!(k.versions[0].handle, KeyHandle(vec![9; 40]));
    assert!(s.get_key("b").await.unwrap().is_none());
}

#[tokio::test]
async fn rotation_is_compare_and_set() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
    s.create_key(&key("a")).await.unwrap();
    let mut v2 = key("a").versions[0].clone();
    v2.version = 2;
    s.add_version("id-a", 1, &v2).await.unwrap();
    let mut v3 = v2.clone();
    v3.version = 3;
    // A stale rotation (still believes version 1 is current) must not win.
    assert!(s.add_version("id-a", 1, &v3).await.is_err());
    assert_eq!(s.get_key("a").await.unwrap().unwrap().current_version, 2);
}

/// Storage tests do not check signatures (the pipeline, checkpoint and end-to-end tests do):
/// this stand-in writes the checkpoint body without one.
struct UnsignedNotes;

impl NoteSigner for UnsignedNotes {
    fn origin(&self) -> &str {
        "signet/test"
    }
    fn sign_checkpoint(&self, size: u64, root: &Hash) -> Result<String, signet_core::CoreError> {
        Ok(format!("signet/test\n{size}\n{}\n", hex::encode(root)))
    }
    fn open_checkpoint(&self, note: &str) -> Result<(u64, Hash), signet_core::CoreError> {
        let bad = || signet_core::CoreError::new(signet_core::ErrorCode::Internal, "bad note");
        let mut lines = note.lines().skip(1);
        let size = lines.next().and_then(|l| l.parse().ok()).ok_or_else(bad)?;
        let root = lines
            .next()
            .and_then(|l| hex::decode(l).ok())
            .and_then(|b| Hash::try_from(b).ok())
            .ok_or_else(bad)?;
        Ok((size, root))
    }
}

async fn log(s: &SqliteStore) -> MerkleLog {
    MerkleLog::open(Arc::new(s.clone()), Arc::new(UnsignedNotes))
        .await
        .unwrap()
}

#[tokio::test]
async fn audit_is_dense_ordered_and_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = SqliteStore::open(&path).await.unwrap();
    let l = log(&s).await;
    let idx =
        |r: &[signet_core::audit::AuditReceipt]| r.iter().map(|r| r.index).collect::<Vec<_>>();
    assert_eq!(
        idx(&l.append(vec![event(0), event(1)]).await.unwrap()),
        vec![0, 1]
    );
    let third = l.append(vec![event(2)]).await.unwrap();
    assert_eq!(idx(&third), vec![2]);
    // Stored leaves, stored checkpoint and receipts agree.
    let leaves = s.leaf_hashes().await.unwrap();
    let entries = s.entries(0, 3).await.unwrap();
    assert_eq!(
        leaves,
        entries
            .iter()
            .map(|e| leaf_hash(&e.bytes))
            .collect::<Vec<_>>()
    );
    let cp = s.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!((cp.size, cp.root), (3, root(&leaves)));
    verify_inclusion(
        &third[0].leaf_hash,
        2,
        3,
        &third[0].inclusion_proof,
        &cp.root,
    )
    .unwrap();
    let all = l
        .query(&AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|r| r.index).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(all[2].event, event(2));
    let by_actor = l
        .query(&AuditQuery {
            actor_id: Some("p1".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_actor.len(), 1);
    s.close().await;
    // Rewriting history through SQL, behind the application's back, is refused by the schema.
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    for q in [
        "UPDATE audit_log SET entry = '{}'",
        "DELETE FROM audit_log",
        "DELETE FROM log_checkpoints",
    ] {
        let err = sqlx::query(q).execute(&mut conn).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{q}: {err}");
    }
    conn.close().await.unwrap();
    let s = SqliteStore::open(&path).await.unwrap();
    let l = log(&s).await;
    assert_eq!(
        l.query(&AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .len(),
        3
    );
}

#[tokio::test]
async fn concurrent_appends_get_distinct_indices() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
    let l = Arc::new(log(&s).await);
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let l = Arc::clone(&l);
        tasks.push(tokio::spawn(async move {
            l.append(vec![event(i), event(i)])
                .await
                .unwrap()
                .iter()
                .map(|r| r.index)
                .collect::<Vec<_>>()
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let idx = t.await.unwrap();
        assert_eq!(idx[1], idx[0] + 1, "a batch is contiguous");
        all.extend(idx);
    }
    all.sort_unstable();
    assert_eq!(all, (0..32).collect::<Vec<u64>>());
    // The last checkpoint covers every entry, and a reopened log rebuilds the same tree.
    assert_eq!(s.latest_checkpoint().await.unwrap().unwrap().size, 32);
    let again = log(&s).await;
    assert_eq!(again.checkpoint().await.unwrap().size, 32);
}
