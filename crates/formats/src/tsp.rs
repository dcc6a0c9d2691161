//! RFC 3161 time-stamp protocol: queries, TSTInfo, responses and token verification.
