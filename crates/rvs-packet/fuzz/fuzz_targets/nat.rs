//! nat never panics; on error it leaves the buffer alone; on success it keeps valid checksums
//! valid, and the packet still parses when it parsed before.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_packet::{PacketMeta, rewrite, verify_checksums};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((flags, src, dst, packet)) = common::split(data) else {
        return;
    };
    let src = (flags & 1 != 0).then_some(src);
    let dst = (flags & 2 != 0).then_some(dst);
    let valid = verify_checksums(packet);
    let parsed = PacketMeta::parse(packet).is_ok();
    let mut buf = packet.to_vec();
    match rewrite::nat(&mut buf, src, dst) {
        Ok(()) => {
            if valid {
                assert!(verify_checksums(&buf), "nat broke a checksum");
            }
            if parsed {
                PacketMeta::parse(&buf).expect("a parsable packet stays parsable");
            }
        }
        Err(_) => assert_eq!(&buf[..], packet, "a failed nat wrote to the buffer"),
    }
});
