//! Signature algorithm identifiers and signature verification shared by X.509 and CMS.
