//! Post-quantum software keys: ML-DSA (FIPS 204) and SLH-DSA (FIPS 205).
