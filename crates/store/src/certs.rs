//! The SQLite side of certificates, internal CAs, CRL numbers and time-stamp serials.

use async_trait::async_trait;
use signet_core::algorithm::truncate;
use signet_core::cert::{CaRecord, CertKind, CertStore, CertificateRecord, RevocationReason};
use signet_core::{CoreError, ErrorCode};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use crate::sqlite::{SqliteStore, corrupt, db_err, from_nanos, nanos};

/// Encodes a chain for the `chain` column: each certificate as a 4-byte big-endian length and
/// its bytes. Unlike bare concatenated DER it round-trips any bytes, valid DER or not.
fn encode_chain(chain: &[Vec<u8>]) -> Result<Vec<u8>, CoreError> {
    let mut out = Vec::with_capacity(chain.iter().map(|c| c.len() + 4).sum());
    for cert in chain {
        let len = u32::try_from(cert.len()).map_err(|_| {
            CoreError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "a chain certificate of `{}` bytes is too large; certificates are at most 4 GiB",
                    cert.len()
                ),
            )
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(cert);
    }
    Ok(out)
}

fn decode_chain(mut bytes: &[u8]) -> Result<Vec<Vec<u8>>, CoreError> {
    let mut chain = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("certificate chain"))?;
        let len =
            usize::try_from(u32::from_be_bytes(*len)).map_err(|_| corrupt("certificate chain"))?;
        let (cert, rest) = rest
            .split_at_checked(len)
            .ok_or_else(|| corrupt("certificate chain"))?;
        chain.push(cert.to_vec());
        bytes = rest;
    }
    Ok(chain)
}

fn certificate_from_row(r: &SqliteRow) -> Result<CertificateRecord, CoreError> {
    let kind: String = r.try_get("kind").map_err(db_err("certificate kind"))?;
    let reason: Option<String> = r
        .try_get("revocation_reason")
        .map_err(db_err("revocation reason"))?;
    let chain: Vec<u8> = r.try_get("chain").map_err(db_err("certificate chain"))?;
    let time = |col: &'static str| -> Result<OffsetDateTime, CoreError> {
        from_nanos(r.try_get(col).map_err(db_err("certificate time"))?)
    };
    Ok(CertificateRecord {
        id: r.try_get("id").map_err(db_err("certificate id"))?,
        key_id: r.try_get("key_id").map_err(db_err("certificate key id"))?,
        key_version: u32::try_from(
            r.try_get::<i64, _>("key_version")
                .map_err(db_err("certificate key version"))?,
        )
        .map_err(|_| corrupt("certificate key version"))?,
        kind: CertKind::parse(&kind).ok_or_else(|| corrupt("certificate kind"))?,
        serial: r.try_get("serial").map_err(db_err("certificate serial"))?,
        subject: r
            .try_get("subject")
            .map_err(db_err("certificate subject"))?,
        issuer: r.try_get("issuer").map_err(db_err("certificate issuer"))?,
        ca: r.try_get("ca").map_err(db_err("certificate ca"))?,
        not_before: time("not_before")?,
        not_after: time("not_after")?,
        der: r.try_get("der").map_err(db_err("certificate der"))?,
        chain: decode_chain(&chain)?,
        created_at: time("created_at")?,
        revoked_at: r
            .try_get::<Option<i64>, _>("revoked_at")
            .map_err(db_err("certificate time"))?
            .map(from_nanos)
            .transpose()?,
        revocation_reason: reason
            .map(|s| RevocationReason::parse(&s).map_err(|_| corrupt("revocation reason")))
            .transpose()?,
    })
}

fn ca_from_row(r: &SqliteRow) -> Result<CaRecord, CoreError> {
    Ok(CaRecord {
        name: r.try_get("name").map_err(db_err("ca name"))?,
        root_key: r.try_get("root_key").map_err(db_err("ca root key"))?,
        issuing_key: r.try_get("issuing_key").map_err(db_err("ca issuing key"))?,
        root_certificate: r
            .try_get("root_certificate")
            .map_err(db_err("ca root certificate"))?,
        issuing_certificate: r
            .try_get("issuing_certificate")
            .map_err(db_err("ca issuing certificate"))?,
        created_at: from_nanos(r.try_get("created_at").map_err(db_err("created_at"))?)?,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

#[async_trait]
impl CertStore for SqliteStore {
    async fn insert_certificate(&self, c: &CertificateRecord) -> Result<(), CoreError> {
        let chain = encode_chain(&c.chain)?;
        let mut tx = self.write_tx().await?;
        // Checked first, inside the write transaction, so the message can tell a reused serial
        // from a reused id.
        let taken: Option<String> =
            sqlx::query_scalar("SELECT id FROM certificates WHERE issuer = ? AND serial = ?")
                .bind(&c.issuer)
                .bind(&c.serial)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err("checking a certificate serial"))?;
        if let Some(other) = taken {
            return Err(CoreError::new(
                ErrorCode::Conflict,
                format!(
                    "serial `{}` of issuer `{}` is already used by certificate `{other}`; issue with a new serial",
                    truncate(&c.serial, 80),
                    truncate(&c.issuer, 200)
                ),
            ));
        }
        let inserted = sqlx::query(
            "INSERT INTO certificates (id, key_id, key_version, kind, serial, subject, issuer, ca, not_before, not_after, der, chain, created_at, revoked_at, revocation_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.id)
        .bind(&c.key_id)
        .bind(i64::from(c.key_version))
        .bind(c.kind.as_str())
        .bind(&c.serial)
        .bind(&c.subject)
        .bind(&c.issuer)
        .bind(&c.ca)
        .bind(nanos(c.not_before))
        .bind(nanos(c.not_after))
        .bind(&c.der)
        .bind(chain)
        .bind(nanos(c.created_at))
        .bind(c.revoked_at.map(nanos))
        .bind(c.revocation_reason.map(|r| r.as_str()))
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(CoreError::new(
                    ErrorCode::Conflict,
                    format!(
                        "certificate `{}` already exists; store it under a new id",
                        truncate(&c.id, 80)
                    ),
                ));
            }
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_foreign_key_violation()) =>
            {
                return Err(CoreError::new(
                    ErrorCode::KeyNotFound,
                    format!(
                        "key `{}` version {} not found; a certificate must belong to a stored key version",
                        truncate(&c.key_id, 80),
                        c.key_version
                    ),
                ));
            }
            Err(e) => return Err(CoreError::internal("storing a certificate", e)),
        }
        tx.commit()
            .await
            .map_err(db_err("committing a certificate"))
    }

    async fn get_certificate(&self, id: &str) -> Result<Option<CertificateRecord>, CoreError> {
        sqlx::query("SELECT * FROM certificates WHERE id = ?")
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .map_err(db_err("reading a certificate"))?
            .as_ref()
            .map(certificate_from_row)
            .transpose()
    }

    async fn list_certificates(
        &self,
        key_id: Option<&str>,
    ) -> Result<Vec<CertificateRecord>, CoreError> {
        let rows = match key_id {
            Some(k) => {
                sqlx::query(
                    "SELECT * FROM certificates WHERE key_id = ? ORDER BY created_at DESC, id",
                )
                .bind(k)
                .fetch_all(self.reader())
                .await
            }
            None => {
                sqlx::query("SELECT * FROM certificates ORDER BY created_at DESC, id")
                    .fetch_all(self.reader())
                    .await
            }
        }
        .map_err(db_err("listing certificates"))?;
        rows.iter().map(certificate_from_row).collect()
    }

    async fn revoke_certificate(
        &self,
        id: &str,
        at: OffsetDateTime,
        reason: RevocationReason,
    ) -> Result<bool, CoreError> {
        let mut tx = self.write_tx().await?;
        // The first revocation stands: its time is what CRLs report.
        let updated = sqlx::query(
            "UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(nanos(at))
        .bind(reason.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db_err("revoking a certificate"))?;
        tx.commit()
            .await
            .map_err(db_err("committing a revocation"))?;
        Ok(updated.rows_affected() == 1)
    }

    async fn create_ca(&self, ca: &CaRecord) -> Result<(), CoreError> {
        let mut tx = self.write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO cas (name, root_key, issuing_key, root_certificate, issuing_certificate, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&ca.name)
        .bind(&ca.root_key)
        .bind(&ca.issuing_key)
        .bind(&ca.root_certificate)
        .bind(&ca.issuing_certificate)
        .bind(nanos(ca.created_at))
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(CoreError::new(
                    ErrorCode::Conflict,
                    format!(
                        "certificate authority `{}` already exists; pick another name",
                        truncate(&ca.name, 80)
                    ),
                ));
            }
            Err(e) => return Err(CoreError::internal("storing a certificate authority", e)),
        }
        tx.commit()
            .await
            .map_err(db_err("committing a certificate authority"))
    }

    async fn get_ca(&self, name: &str) -> Result<Option<CaRecord>, CoreError> {
        sqlx::query("SELECT * FROM cas WHERE name = ?")
            .bind(name)
            .fetch_optional(self.reader())
            .await
            .map_err(db_err("reading a certificate authority"))?
            .as_ref()
            .map(ca_from_row)
            .transpose()
    }

    async fn list_cas(&self) -> Result<Vec<CaRecord>, CoreError> {
        sqlx::query("SELECT * FROM cas ORDER BY name")
            .fetch_all(self.reader())
            .await
            .map_err(db_err("listing certificate authorities"))?
            .iter()
            .map(ca_from_row)
            .collect()
    }

    async fn next_crl_number(&self, ca: &str) -> Result<u64, CoreError> {
        let mut tx = self.write_tx().await?;
        let next: i64 = sqlx::query_scalar(
            "INSERT INTO crl_numbers (ca, last) VALUES (?, 1) ON CONFLICT (ca) DO UPDATE SET last = last + 1 RETURNING last",
        )
        .bind(ca)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err("advancing a CRL number"))?;
        tx.commit()
            .await
            .map_err(db_err("committing a CRL number"))?;
        u64::try_from(next).map_err(|_| corrupt("CRL number"))
    }

    async fn record_timestamp_serial(
        &self,
        serial: &str,
        at: OffsetDateTime,
    ) -> Result<(), CoreError> {
        let mut tx = self.write_tx().await?;
        let inserted =
            sqlx::query("INSERT INTO timestamp_serials (serial, issued_at) VALUES (?, ?)")
                .bind(serial)
                .bind(nanos(at))
                .execute(&mut *tx)
                .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(CoreError::new(
                    ErrorCode::Conflict,
                    format!(
                        "time-stamp serial `{}` was already used; draw a new serial and retry",
                        truncate(serial, 80)
                    ),
                ));
            }
            Err(e) => return Err(CoreError::internal("recording a time-stamp serial", e)),
        }
        tx.commit()
            .await
            .map_err(db_err("committing a time-stamp serial"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_round_trip_any_bytes() {
        for chain in [
            vec![],
            vec![vec![]],
            vec![vec![0x30, 0x03, 1, 2, 3], vec![], vec![0xff; 300]],
        ] {
            let bytes = encode_chain(&chain).ok();
            assert_eq!(
                bytes.as_deref().map(decode_chain).and_then(Result::ok),
                Some(chain)
            );
        }
        assert_eq!(
            encode_chain(&[vec![7, 8]]).ok(),
            Some(vec![0, 0, 0, 2, 7, 8])
        );
        // A truncated length or body is corrupt, not a panic.
        for bad in [&[0, 0][..], &[0, 0, 0, 3, 1, 2][..]] {
            assert_eq!(
                decode_chain(bad).err().map(|e| e.code),
                Some(ErrorCode::Internal)
            );
        }
    }
}
