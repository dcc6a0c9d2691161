//! Signet's domain: algorithms and digests, keys and their versions, principals, the audit model,
//! the pure authorization facade, every plug-in trait (key backends, stores, the audit log, the
//! clock, randomness) and the one signing pipeline ([`service::SigningService`]).
//!
//! This crate must not depend on any other workspace crate, nor on any I/O crate (no database,
//! network or async runtime). Its only cryptography is SHA-256 (`sha2`) for fingerprints, token
//! hashes and, later, the audit log's Merkle tree; signing lives behind [`backend::KeyBackend`].
//! Implementations plug in through the traits defined here, and only the server wires them
//! together.

pub mod algorithm;
pub mod audit;
pub mod backend;
pub mod cert;
pub mod clock;
pub mod error;
pub mod key;
pub mod log;
pub mod merkle;
pub mod offload;
pub mod policy;
pub mod principal;
pub mod random;
pub mod secret;
pub mod service;
pub mod statement;
pub mod store;
pub mod token;

pub use algorithm::{Algorithm, Digest, DigestAlgorithm};
pub use clock::{Clock, SystemClock};
pub use error::{CoreError, ErrorCode};
pub use random::Random;
