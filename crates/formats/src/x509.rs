//! X.509 v3 certificates, PKCS#10 certification requests and CRLs (RFC 5280, RFC 2986).
