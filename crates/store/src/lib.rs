//! Signet's storage: repositories for keys, tokens and certificates and the audit log, on SQLite
//! (the embedded default). PostgreSQL joins behind the same traits when several nodes share one
//! database.
//!
//! Depends on `signet-core` only (it implements core's store and audit traits); never on key
//! backends, formats or the server. All SQL lives here.

mod certs;
mod log;
mod sqlite;

pub use sqlite::SqliteStore;
