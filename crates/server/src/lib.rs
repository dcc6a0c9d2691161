//! `signetd`, the Signet server: the composition root that wires key backends, the store and the
//! signing service behind the REST API (`/api/v1`), and the `init`/`serve` commands.
//!
//! HTTP handlers here are thin — extract, call [`signet_core::service::SigningService`], map the
//! result; no SQL and no cryptography in handlers. This crate is the only one that depends on
//! concrete plug-in implementations.

pub mod api;
pub mod app;
pub mod audit_log;
pub mod config;
pub mod custody;
pub mod error;
pub mod hardening;
pub mod init;
pub mod metrics;
pub mod offload;
pub mod pki;
pub mod serve;
