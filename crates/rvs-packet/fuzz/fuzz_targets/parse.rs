//! Parsing, checksum verification, pretty printing and decapsulation of arbitrary bytes
//! never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_packet::{PacketMeta, Pretty, rewrite, verify_checksums};

fuzz_target!(|data: &[u8]| {
    if let Err(e) = PacketMeta::parse(data) {
        assert!(!e.as_str().is_empty());
    }
    let _ = verify_checksums(data);
    let _ = Pretty(data).to_string();
    let _ = rewrite::decap(data);
});
