//! The SQLite store. WAL journal with `synchronous=FULL`: a committed transaction has been
//! fsync'd, which the audit log's durability promise relies on.
//!
//! SQLite has one writer at a time, so every write goes through one writer connection, in
//! `BEGIN IMMEDIATE` transactions: a deferred transaction that reads and then writes cannot
//! upgrade its lock while another connection writes (SQLITE_BUSY, which no timeout cures).
//! Reads use a pool of read-only connections, which WAL runs beside the writer.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use signet_core::cert::{KeyPolicy, KeyUsage};
use signet_core::key::{Key, KeyHandle, KeyName, KeyState, KeyVersion};
use signet_core::principal::Role;
use signet_core::store::{KeyStore, TokenStore};
use signet_core::token::TokenRecord;
use signet_core::{Algorithm, CoreError, ErrorCode};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use time::OffsetDateTime;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_merkle_log.sql")),
    (
        3,
        include_str!("../migrations/sqlite/0003_certificates.sql"),
    ),
];

/// The SQLite implementation of every store trait.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Reader connections.
    pool: SqlitePool,
    /// The one writer connection: every write, in `BEGIN IMMEDIATE` transactions.
    writer: SqlitePool,
}

pub(crate) fn db_err(context: &'static str) -> impl FnOnce(sqlx::Error) -> CoreError {
    move |e| CoreError::internal(context, e)
}

/// `t` as Unix nanoseconds, clamped to what an `i64` holds (1677-09-21 to 2262-04-11).
pub(crate) fn nanos(t: OffsetDateTime) -> i64 {
    let n = t.unix_timestamp_nanos();
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

pub(crate) fn from_nanos(n: i64) -> Result<OffsetDateTime, CoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n))
        .map_err(|e| CoreError::internal("stored time out of range", e))
}

pub(crate) fn corrupt(what: &str) -> CoreError {
    CoreError::new(ErrorCode::Internal, format!("stored {what} is not valid"))
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, CoreError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // The writer connects first: it creates the file.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(opts.clone())
            .await
            .map_err(db_err("opening the SQLite database"))?;
        // Readers connect only after the migrations: a connection holding the old schema
        // prepares `SELECT *` with the old columns, SQLite re-prepares it with the new ones on
        // the first step, and sqlx fails to decode the row (a panic in its worker thread).
        migrate(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts.read_only(true))
            .await
            .map_err(db_err("opening the SQLite database"))?;
        Ok(SqliteStore { pool, writer })
    }

    /// Whether the database answers.
    pub async fn health(&self) -> Result<(), CoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db_err("database health check"))
    }

    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// A write transaction on the writer connection.
    pub(crate) async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>, CoreError> {
        begin_immediate(&self.writer).await
    }

    async fn versions(&self, key_id: &str) -> Result<Vec<KeyVersion>, CoreError> {
        let rows = sqlx::query(
            "SELECT version, public_key, handle, created_at FROM key_versions WHERE key_id = ? ORDER BY version",
        )
        .bind(key_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("reading key versions"))?;
        rows.iter()
            .map(|r| {
                Ok(KeyVersion {
                    version: u32::try_from(
                        r.try_get::<i64, _>("version").map_err(db_err("version"))?,
                    )
                    .map_err(|_| corrupt("key version"))?,
                    public_key_der: r.try_get("public_key").map_err(db_err("public key"))?,
                    handle: KeyHandle(r.try_get("handle").map_err(db_err("handle"))?),
                    created_at: from_nanos(r.try_get("created_at").map_err(db_err("created_at"))?)?,
                })
            })
            .collect()
    }

    async fn key_from_row(&self, r: &SqliteRow) -> Result<Key, CoreError> {
        let id: String = r.try_get("id").map_err(db_err("key id"))?;
        let name: String = r.try_get("name").map_err(db_err("key name"))?;
        let algorithm: String = r.try_get("algorithm").map_err(db_err("algorithm"))?;
        let state: String = r.try_get("state").map_err(db_err("state"))?;
        let usage: String = r.try_get("usage").map_err(db_err("usage"))?;
        let policy: String = r.try_get("policy").map_err(db_err("policy"))?;
        let versions = self.versions(&id).await?;
        Ok(Key {
            name: KeyName::parse(&name).map_err(|_| corrupt("key name"))?,
            algorithm: Algorithm::from_str(&algorithm).map_err(|_| corrupt("algorithm"))?,
            backend: r.try_get("backend").map_err(db_err("backend"))?,
            state: KeyState::parse(&state).ok_or_else(|| corrupt("key state"))?,
            created_at: from_nanos(r.try_get("created_at").map_err(db_err("created_at"))?)?,
            current_version: u32::try_from(
                r.try_get::<i64, _>("current_version")
                    .map_err(db_err("current_version"))?,
            )
            .map_err(|_| corrupt("current version"))?,
            versions,
            usage: KeyUsage::parse(&usage).ok_or_else(|| corrupt("key usage"))?,
            policy: serde_json::from_str(&policy).map_err(|_| corrupt("key policy"))?,
            id,
        })
    }
}

/// Applies pending migrations, each in its own write transaction.
async fn migrate(writer: &SqlitePool) -> Result<(), CoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .execute(writer)
    .await
    .map_err(db_err("creating the migrations table"))?;
    for (version, sql) in MIGRATIONS {
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
                .bind(version)
                .fetch_optional(writer)
                .await
                .map_err(db_err("reading migrations"))?;
        if done.is_some() {
            continue;
        }
        let mut tx = begin_immediate(writer).await?;
        sqlx::raw_sql(*sql)
            .execute(&mut *tx)
            .await
            .map_err(db_err("applying a migration"))?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
            .bind(version)
            .bind(nanos(OffsetDateTime::now_utc()))
            .execute(&mut *tx)
            .await
            .map_err(db_err("recording a migration"))?;
        tx.commit()
            .await
            .map_err(db_err("committing a migration"))?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}

async fn begin_immediate(writer: &SqlitePool) -> Result<Transaction<'static, Sqlite>, CoreError> {
    writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(db_err("starting a write transaction"))
}

fn policy_json(policy: &KeyPolicy) -> Result<String, CoreError> {
    serde_json::to_string(policy).map_err(|e| CoreError::internal("encoding a key policy", e))
}

async fn insert_version(
    tx: &mut Transaction<'_, Sqlite>,
    key_id: &str,
    v: &KeyVersion,
) -> Result<(), CoreError> {
    sqlx::query(
        "INSERT INTO key_versions (key_id, version, public_key, handle, created_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(key_id)
    .bind(i64::from(v.version))
    .bind(&v.public_key_der)
    .bind(&v.handle.0)
    .bind(nanos(v.created_at))
    .execute(&mut **tx)
    .await
    .map_err(db_err("storing a key version"))?;
    Ok(())
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn create_key(&self, key: &Key) -> Result<(), CoreError> {
        let mut tx = self.write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO keys (id, name, algorithm, backend, state, created_at, current_version, usage, policy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(key.name.as_str())
        .bind(key.algorithm.as_str())
        .bind(&key.backend)
        .bind(key.state.as_str())
        .bind(nanos(key.created_at))
        .bind(i64::from(key.current_version))
        .bind(key.usage.as_str())
        .bind(policy_json(&key.policy)?)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            if e.as_database_error()
                .is_some_and(|d| d.is_unique_violation())
            {
                return Err(CoreError::new(
                    ErrorCode::KeyExists,
                    format!("key `{}` already exists; pick another name", key.name),
                ));
            }
            return Err(CoreError::internal("storing a key", e));
        }
        for v in &key.versions {
            insert_version(&mut tx, &key.id, v).await?;
        }
        tx.commit().await.map_err(db_err("committing a key"))
    }

    async fn get_key(&self, name: &str) -> Result<Option<Key>, CoreError> {
        let row = sqlx::query("SELECT * FROM keys WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("reading a key"))?;
        match row {
            Some(r) => Ok(Some(self.key_from_row(&r).await?)),
            None => Ok(None),
        }
    }

    async fn list_keys(&self) -> Result<Vec<Key>, CoreError> {
        let rows = sqlx::query("SELECT * FROM keys ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("listing keys"))?;
        let mut keys = Vec::with_capacity(rows.len());
        for r in &rows {
            keys.push(self.key_from_row(r).await?);
        }
        Ok(keys)
    }

    async fn add_version(
        &self,
        key_id: &str,
        expected_current: u32,
        version: &KeyVersion,
    ) -> Result<(), CoreError> {
        let mut tx = self.write_tx().await?;
        let updated =
            sqlx::query("UPDATE keys SET current_version = ? WHERE id = ? AND current_version = ?")
                .bind(i64::from(version.version))
                .bind(key_id)
                .bind(i64::from(expected_current))
                .execute(&mut *tx)
                .await
                .map_err(db_err("rotating a key"))?;
        if updated.rows_affected() != 1 {
            return Err(CoreError::new(
                ErrorCode::Conflict,
                "the key was rotated concurrently; check `signet key show` and retry if needed",
            ));
        }
        insert_version(&mut tx, key_id, version).await?;
        tx.commit().await.map_err(db_err("committing a rotation"))
    }

    async fn set_state(&self, key_id: &str, state: KeyState) -> Result<(), CoreError> {
        sqlx::query("UPDATE keys SET state = ? WHERE id = ?")
            .bind(state.as_str())
            .bind(key_id)
            .execute(&self.writer)
            .await
            .map_err(db_err("changing a key's state"))?;
        Ok(())
    }

    async fn set_policy(&self, key_id: &str, policy: &KeyPolicy) -> Result<(), CoreError> {
        let policy = policy_json(policy)?;
        let mut tx = self.write_tx().await?;
        let updated = sqlx::query("UPDATE keys SET policy = ? WHERE id = ?")
            .bind(policy)
            .bind(key_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err("changing a key's policy"))?;
        if updated.rows_affected() != 1 {
            return Err(CoreError::key_not_found(key_id));
        }
        tx.commit()
            .await
            .map_err(db_err("committing a key's policy"))
    }

    async fn replace_handles(
        &self,
        updates: &[(String, u32, signet_core::key::KeyHandle)],
    ) -> Result<(), CoreError> {
        let mut tx = self.write_tx().await?;
        for (key_id, version, handle) in updates {
            let done =
                sqlx::query("UPDATE key_versions SET handle = ? WHERE key_id = ? AND version = ?")
                    .bind(&handle.0)
                    .bind(key_id)
                    .bind(i64::from(*version))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err("replacing a key handle"))?;
            if done.rows_affected() != 1 {
                return Err(CoreError::new(
                    ErrorCode::Conflict,
                    format!("key `{key_id}` version {version} vanished during the rewrap; retry"),
                ));
            }
        }
        tx.commit()
            .await
            .map_err(db_err("committing rewrapped key handles"))
    }
}

fn token_from_row(r: &SqliteRow) -> Result<TokenRecord, CoreError> {
    let role: String = r.try_get("role").map_err(db_err("role"))?;
    let opt_time = |col: &'static str| -> Result<Option<OffsetDateTime>, CoreError> {
        r.try_get::<Option<i64>, _>(col)
            .map_err(db_err("token time"))?
            .map(from_nanos)
            .transpose()
    };
    Ok(TokenRecord {
        id: r.try_get("id").map_err(db_err("token id"))?,
        name: r.try_get("name").map_err(db_err("token name"))?,
        role: Role::parse(&role).ok_or_else(|| corrupt("token role"))?,
        secret_hash: r.try_get("secret_hash").map_err(db_err("token hash"))?,
        created_at: from_nanos(r.try_get("created_at").map_err(db_err("created_at"))?)?,
        expires_at: opt_time("expires_at")?,
        revoked_at: opt_time("revoked_at")?,
        created_by: r.try_get("created_by").map_err(db_err("created_by"))?,
    })
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn create_token(&self, t: &TokenRecord) -> Result<(), CoreError> {
        sqlx::query(
            "INSERT INTO tokens (id, name, role, secret_hash, created_at, expires_at, revoked_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.id)
        .bind(&t.name)
        .bind(t.role.as_str())
        .bind(&t.secret_hash)
        .bind(nanos(t.created_at))
        .bind(t.expires_at.map(nanos))
        .bind(t.revoked_at.map(nanos))
        .bind(&t.created_by)
        .execute(&self.writer)
        .await
        .map_err(db_err("storing a token"))?;
        Ok(())
    }

    async fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, CoreError> {
        sqlx::query("SELECT * FROM tokens WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("reading a token"))?
            .as_ref()
            .map(token_from_row)
            .transpose()
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, CoreError> {
        sqlx::query("SELECT * FROM tokens ORDER BY created_at")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("listing tokens"))?
            .iter()
            .map(token_from_row)
            .collect()
    }

    async fn revoke_token(&self, id: &str, at: OffsetDateTime) -> Result<bool, CoreError> {
        let exists =
            sqlx::query("UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
                .bind(nanos(at))
                .bind(id)
                .execute(&self.writer)
                .await
                .map_err(db_err("revoking a token"))?;
        Ok(exists.rows_affected() == 1)
    }
}
