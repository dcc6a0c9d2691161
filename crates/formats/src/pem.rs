//! PEM encoding of SubjectPublicKeyInfo (RFC 7468 §13, label `PUBLIC KEY`).

use crate::FormatError;

const LABEL: &str = "PUBLIC KEY";

/// Encodes SPKI DER as PEM (64-column lines, LF).
pub fn spki_to_pem(der: &[u8]) -> Result<String, FormatError> {
    pem_rfc7468::encode_string(LABEL, pem_rfc7468::LineEnding::LF, der)
        .map_err(|e| FormatError::Pem(e.to_string()))
}

/// Decodes a `PUBLIC KEY` PEM block to SPKI DER.
pub fn pem_to_spki(pem: &str) -> Result<Vec<u8>, FormatError> {
    let (label, der) = pem_rfc7468::decode_vec(pem.trim().as_bytes())
        .map_err(|e| FormatError::Pem(e.to_string()))?;
    if label != LABEL {
        return Err(FormatError::Pem(format!("label is `{label}`")));
    }
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() -> Result<(), FormatError> {
        let der: Vec<u8> = (0u8..=200).collect();
        let pem = spki_to_pem(&der)?;
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(pem_to_spki(&pem)?, der);
        assert!(
            pem_to_spki("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err()
        );
        assert!(pem_to_spki("garbage").is_err());
        Ok(())
    }
}
