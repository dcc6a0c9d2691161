//! Fuzzes `signet_formats::tsp::parse_query`, the first code an RFC 3161 request from the
//! network reaches. Besides "no panic", it checks that whatever parses re-encodes to a query
//! that parses back to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_formats::tsp;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = tsp::parse_query(data) else {
        return;
    };
    let again = tsp::encode_query(&query).expect("a parsed query encodes");
    let reparsed = tsp::parse_query(&again).expect("an encoded query parses");
    assert_eq!(reparsed, query);
});
