//! The SQLite side of the Merkle audit log: entries and checkpoints, written together.

use async_trait::async_trait;
use signet_core::audit::{AuditQuery, AuditRecord, Checkpoint};
use signet_core::log::{LogEntry, LogStorage, StoredEntry};
use signet_core::merkle::{Hash, leaf_hash};
use signet_core::{CoreError, ErrorCode};
use sqlx::{QueryBuilder, Row, Sqlite};
use time::OffsetDateTime;

use crate::sqlite::{SqliteStore, db_err, nanos};

/// Rows per INSERT statement (6 bound values each, well under SQLite's parameter limit).
const ROWS_PER_INSERT: usize = 200;

fn hash_of(v: Option<Vec<u8>>) -> Result<Option<Hash>, CoreError> {
    v.map(|b| {
        Hash::try_from(b.as_slice())
            .map_err(|_| CoreError::new(ErrorCode::Internal, "a stored leaf hash is not 32 bytes"))
    })
    .transpose()
}

fn index_of(i: i64) -> Result<u64, CoreError> {
    u64::try_from(i)
        .map_err(|_| CoreError::new(ErrorCode::Internal, "a stored audit index is negative"))
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[async_trait]
impl LogStorage for SqliteStore {
    async fn append_batch(
        &self,
        entries: &[LogEntry],
        checkpoint: &Checkpoint,
    ) -> Result<(), CoreError> {
        let mut tx = self.write_tx().await?;
        for chunk in entries.chunks(ROWS_PER_INSERT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO audit_log (idx, time, action, actor_id, key_name, entry, leaf_hash, digest) ",
            );
            q.push_values(chunk, |mut b, e| {
                b.push_bind(to_i64(e.index))
                    .push_bind(nanos(e.event.time))
                    .push_bind(e.event.action.as_str())
                    .push_bind(e.event.actor.id.clone())
                    .push_bind(e.event.key.as_ref().map(|k| k.name.clone()))
                    .push_bind(String::from_utf8_lossy(&e.bytes).into_owned())
                    .push_bind(e.leaf_hash.to_vec())
                    .push_bind(e.event.digest.as_ref().map(|d| d.value.clone()));
            });
            q.build()
                .execute(&mut *tx)
                .await
                .map_err(db_err("appending audit entries"))?;
        }
        sqlx::query(
            "INSERT INTO log_checkpoints (size, root, note, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(to_i64(checkpoint.size))
        .bind(checkpoint.root.to_vec())
        .bind(&checkpoint.note)
        .bind(nanos(OffsetDateTime::now_utc()))
        .execute(&mut *tx)
        .await
        .map_err(db_err("storing a checkpoint"))?;
        // INVARIANT: with WAL and synchronous=FULL, commit returns after the fsync.
        tx.commit()
            .await
            .map_err(db_err("committing audit entries"))
    }

    async fn leaf_hashes(&self) -> Result<Vec<Hash>, CoreError> {
        let rows = sqlx::query("SELECT idx, leaf_hash, CASE WHEN leaf_hash IS NULL THEN entry END AS entry FROM audit_log ORDER BY idx")
            .fetch_all(self.reader())
            .await
            .map_err(db_err("reading the audit log"))?;
        let mut out = Vec::with_capacity(rows.len());
        for (position, r) in rows.iter().enumerate() {
            let idx = index_of(r.try_get("idx").map_err(db_err("audit index"))?)?;
            if idx != position as u64 {
                return Err(CoreError::new(
                    ErrorCode::Internal,
                    format!(
                        "the audit log has no entry at index {position}; it was altered — run `signet audit verify`"
                    ),
                ));
            }
            let stored = hash_of(r.try_get("leaf_hash").map_err(db_err("leaf hash"))?)?;
            let leaf = match stored {
                Some(h) => h,
                None => {
                    let entry: String = r.try_get("entry").map_err(db_err("audit entry"))?;
                    leaf_hash(entry.as_bytes())
                }
            };
            out.push(leaf);
        }
        Ok(out)
    }

    async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, CoreError> {
        let row =
            sqlx::query("SELECT size, root, note FROM log_checkpoints ORDER BY size DESC LIMIT 1")
                .fetch_optional(self.reader())
                .await
                .map_err(db_err("reading checkpoints"))?;
        row.map(|r| {
            Ok(Checkpoint {
                size: index_of(r.try_get("size").map_err(db_err("checkpoint size"))?)?,
                root: hash_of(Some(r.try_get("root").map_err(db_err("checkpoint root"))?))?
                    .ok_or_else(|| {
                        CoreError::new(ErrorCode::Internal, "checkpoint without a root")
                    })?,
                note: r.try_get("note").map_err(db_err("checkpoint note"))?,
            })
        })
        .transpose()
    }

    async fn entries(&self, start: u64, end: u64) -> Result<Vec<StoredEntry>, CoreError> {
        let rows = sqlx::query(
            "SELECT idx, entry, leaf_hash FROM audit_log WHERE idx >= ? AND idx < ? ORDER BY idx",
        )
        .bind(to_i64(start))
        .bind(to_i64(end))
        .fetch_all(self.reader())
        .await
        .map_err(db_err("reading audit entries"))?;
        rows.iter()
            .map(|r| {
                let entry: String = r.try_get("entry").map_err(db_err("audit entry"))?;
                Ok(StoredEntry {
                    index: index_of(r.try_get("idx").map_err(db_err("audit index"))?)?,
                    bytes: entry.into_bytes(),
                    leaf_hash: hash_of(r.try_get("leaf_hash").map_err(db_err("leaf hash"))?)?,
                })
            })
            .collect()
    }

    async fn search(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, CoreError> {
        let after = q.after_index.map_or(-1, to_i64);
        let limit = i64::from(q.limit.clamp(1, 10_000));
        let rows = sqlx::query(
            "SELECT idx, entry FROM audit_log WHERE idx > ?
               AND (? IS NULL OR key_name = ?)
               AND (? IS NULL OR actor_id = ?)
               AND (? IS NULL OR action = ?)
               AND (? IS NULL OR digest = ?)
               AND (? IS NULL OR time >= ?)
               AND (? IS NULL OR time < ?)
             ORDER BY idx LIMIT ?",
        )
        .bind(after)
        .bind(q.key.as_deref())
        .bind(q.key.as_deref())
        .bind(q.actor_id.as_deref())
        .bind(q.actor_id.as_deref())
        .bind(q.action.map(|a| a.as_str()))
        .bind(q.action.map(|a| a.as_str()))
        .bind(q.digest.as_deref())
        .bind(q.digest.as_deref())
        .bind(q.since.map(nanos))
        .bind(q.since.map(nanos))
        .bind(q.until.map(nanos))
        .bind(q.until.map(nanos))
        .bind(limit)
        .fetch_all(self.reader())
        .await
        .map_err(db_err("searching the audit log"))?;
        rows.iter()
            .map(|r| {
                let idx: i64 = r.try_get("idx").map_err(db_err("audit index"))?;
                let entry: String = r.try_get("entry").map_err(db_err("audit entry"))?;
                let mut value: serde_json::Value = serde_json::from_str(&entry).map_err(|_| {
                    CoreError::new(ErrorCode::Internal, "a stored audit entry is not JSON")
                })?;
                if let serde_json::Value::Object(map) = &mut value {
                    map.remove("index");
                }
                Ok(AuditRecord {
                    index: index_of(idx)?,
                    event: serde_json::from_value(value).map_err(|_| {
                        CoreError::new(ErrorCode::Internal, "a stored audit entry is not an event")
                    })?,
                })
            })
            .collect()
    }
}
