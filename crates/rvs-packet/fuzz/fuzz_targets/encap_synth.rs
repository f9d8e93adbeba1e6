//! encap, decap, and the ICMP error builders never panic, and what they build verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_packet::{PacketMeta, rewrite, synth, verify_checksums};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((flags, src, dst, packet)) = common::split(data) else {
        return;
    };
    // An output buffer whose size the fuzzer controls, to reach OutputTooSmall.
    let mut out = vec![0u8; (flags as usize) * 8];
    if let Ok(n) = rewrite::encap(packet, src.0, dst.0, &mut out) {
        // The outer header always verifies (the inner packet is carried as it is).
        assert!(verify_checksums(&out[..n]));
        let hl = if src.0.is_ipv4() { 20 } else { 40 };
        assert_eq!(rewrite::decap(&out[..n]), Ok(&packet[..n - hl]));
    }
    // parse does not verify transport checksums: a fully quoted packet with a bad one makes
    // the error's quote fail verification, though the error itself is well formed.
    let valid = verify_checksums(packet);
    if let Ok(n) = synth::icmp_unreachable(&mut out, packet, src.0, Some(flags & 15)) {
        assert!(verify_checksums(&out[..n]) || !valid);
        PacketMeta::parse(&out[..n]).expect("an ICMP error we built parses");
    }
    if let Ok(n) = synth::icmp_too_big(&mut out, packet, src.0, u32::from(dst.1)) {
        assert!(verify_checksums(&out[..n]) || !valid);
    }
    if let Ok(n) = synth::tcp_rst(
        &mut out,
        src,
        dst,
        u32::from(src.1) << 16,
        (flags & 1 != 0).then_some(7),
    ) {
        assert!(verify_checksums(&out[..n]));
    }
});
