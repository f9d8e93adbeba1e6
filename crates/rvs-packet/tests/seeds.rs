//! The fuzz seeds in `fuzz/seeds/parse/` were built by scapy, a third implementation: each
//! must parse, and its checksums (SCTP CRC32c and ICMP included) must verify.

use rvs_packet::{Fragment, L4, PacketMeta, Pretty, verify_checksums};

#[test]
fn scapy_seeds_parse_and_verify() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/parse");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let m = PacketMeta::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(verify_checksums(&bytes), "{name}: {}", Pretty(&bytes));
        match name.as_str() {
            "sctp6_cookie_abort.bin" => {
                assert!(matches!(
                    m.l4,
                    L4::Sctp {
                        first_chunk: 10,
                        cookie_then_abort: true,
                        vtag: 7
                    }
                ))
            }
            "udp6_exts_first_frag.bin" => assert_eq!((m.frag, m.dport), (Fragment::First, 53)),
            "udp6_nonfirst_frag.bin" => assert_eq!((m.frag, m.dport), (Fragment::NonFirst, 0)),
            "icmp6_unreach_tcp_cut.bin" | "icmp4_unreach_udp.bin" => {
                assert!(matches!(m.l4, L4::IcmpError { .. }), "{name}: {m:?}")
            }
            _ => {}
        }
        n += 1;
    }
    assert!(n >= 10);
}
