//! CMS SignedData (RFC 5652): detached signatures and RFC 3161 time-stamp tokens.
