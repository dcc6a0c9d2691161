//! The PKCS#11 key backend: keys generated and used inside a token (an HSM; SoftHSM2 in tests).
