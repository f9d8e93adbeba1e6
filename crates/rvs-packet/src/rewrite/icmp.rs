//! Translation of ICMP and ICMPv6 errors: outer addresses one way, the quoted packet the
//! other way (the packet half of the kernel's `ip_vs_nat_icmp()` / `ip_vs_nat_icmp_v6()`).

use core::net::IpAddr;

use super::{fix_checksum, write_addr, write16};
use crate::checksum::{self, Delta};
use crate::error::Malformed;
use crate::field::get32;
use crate::icmp::{self as icmpv, HEADER_LEN};
use crate::ip::{self, Layout, has_ports};
use crate::ipv4;
use crate::meta::{Fragment, ipproto};
use crate::sctp;
use crate::tcp;
use crate::udp;

/// Translates the ICMP error `buf` whose layout is `lay` (see [`super::nat`] for the
/// contract). Validates first, then writes.
pub(super) fn translate(
    buf: &mut [u8],
    lay: &Layout,
    src: Option<(IpAddr, u16)>,
    dst: Option<(IpAddr, u16)>,
) -> Result<(), Malformed> {
    let icmp = lay.l4_off;
    if lay.end - icmp < HEADER_LEN {
        return Err(Malformed::TruncatedL4);
    }
    let q0 = icmp + HEADER_LEN;
    let q = ip::locate_quote(&buf[q0..lay.end], lay.v6)?;
    let ql4 = q0 + q.l4_off;
    let qend = q0 + q.end;
    let ports = has_ports(q.protocol) && q.has_l4_header();
    // The quoted SCTP CRC32c can be patched only over the whole quoted SCTP packet.
    let sctp_crc = ports
        && q.protocol == ipproto::SCTP
        && q.full
        && q.frag == Fragment::None
        && qend - ql4 >= sctp::HEADER_LEN;

    // Outer addresses.
    let mut d_outer = Delta::ZERO;
    if let Some((a, _)) = src {
        write_addr(buf, lay.src_range().start, a, &mut d_outer);
    }
    if let Some((a, _)) = dst {
        write_addr(buf, lay.dst_range().start, a, &mut d_outer);
    }
    let mut unused = Delta::ZERO;
    if !lay.v6 {
        fix_checksum(buf, ipv4::CHECKSUM, d_outer, false, &mut unused);
    }

    // Everything changed inside the ICMP message goes into `d_icmp`.
    let mut d_icmp = Delta::ZERO;
    let mut d_qaddr = Delta::ZERO;
    if let Some((a, _)) = src {
        write_addr(buf, q0 + q.dst_range().start, a, &mut d_qaddr);
    }
    if let Some((a, _)) = dst {
        write_addr(buf, q0 + q.src_range().start, a, &mut d_qaddr);
    }
    d_icmp = d_icmp.merged(d_qaddr);
    if !q.v6 {
        fix_checksum(buf, q0 + ipv4::CHECKSUM, d_qaddr, false, &mut d_icmp);
    }

    if ports {
        let old = get32(buf, ql4).to_be_bytes();
        let mut d_ports = Delta::ZERO;
        if let Some((_, p)) = src {
            write16(buf, ql4 + 2, p, &mut d_ports);
        }
        if let Some((_, p)) = dst {
            write16(buf, ql4, p, &mut d_ports);
        }
        d_icmp = d_icmp.merged(d_ports);
        let d_l4 = d_qaddr.merged(d_ports);
        match q.protocol {
            ipproto::TCP if ql4 + tcp::CHECKSUM + 2 <= qend => {
                fix_checksum(buf, ql4 + tcp::CHECKSUM, d_l4, false, &mut d_icmp);
            }
            ipproto::UDP if ql4 + udp::CHECKSUM + 2 <= qend => {
                fix_checksum(buf, ql4 + udp::CHECKSUM, d_l4, true, &mut d_icmp);
            }
            ipproto::SCTP if sctp_crc => {
                let new = get32(buf, ql4).to_be_bytes();
                let at = ql4 + sctp::CHECKSUM.start;
                let old_crc = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
                let crc = u32::from_le_bytes(old_crc);
                let crc = checksum::crc32c_patch(crc, &old, &new, qend - ql4 - 4);
                let new_crc = crc.to_le_bytes();
                d_icmp.add_bytes(&old_crc, &new_crc);
                buf[at..at + 4].copy_from_slice(&new_crc);
            }
            _ => {}
        }
    } else if q.v6
        && q.protocol == ipproto::ICMPV6
        && q.has_l4_header()
        && ql4 + icmpv::CHECKSUM + 2 <= qend
    {
        // A quoted ICMPv6 message (an echo request that timed out) covers its pseudo-header.
        fix_checksum(buf, ql4 + icmpv::CHECKSUM, d_qaddr, false, &mut d_icmp);
    }

    if lay.v6 {
        d_icmp = d_icmp.merged(d_outer);
    }
    fix_checksum(buf, icmp + icmpv::CHECKSUM, d_icmp, false, &mut unused);
    Ok(())
}

#[cfg(test)]
mod test {
    use crate::rewrite::nat;
    use crate::testutil::*;
    use crate::{L4, Malformed, PacketMeta, Quoted, verify_checksums};

    /// Masquerading, reply direction: the real server's side sends an error to the client
    /// about the client's packet as the RS saw it (client -> RS:8080). After translation it
    /// must read as from the VIP about client -> VIP:80.
    #[test]
    fn error_towards_client_v4() {
        let quoted = udp_v4(CLIENT4, 5353, RS4, 5300, b"query data");
        let orig = icmp4_error(RS4, CLIENT4, 3, 3, &quoted);
        assert!(verify_checksums(&orig));
        let mut b = orig.clone();
        nat(&mut b, Some((VIP4, 53)), None).unwrap();
        assert!(verify_checksums(&b));
        assert!(oracle_checksums_ok(&b));
        let m = PacketMeta::parse(&b).unwrap();
        assert_eq!((m.src, m.dst), (VIP4, CLIENT4));
        let L4::IcmpError { quoted: q, .. } = m.l4 else {
            panic!("{m:?}")
        };
        assert_eq!(
            q,
            Quoted {
                src: CLIENT4,
                dst: VIP4,
                protocol: 17,
                sport: 5353,
                dport: 53
            }
        );
        // The quote is now exactly what the client sent.
        assert_eq!(
            &b[28..],
            &udp_v4(CLIENT4, 5353, VIP4, 53, b"query data")[..]
        );
        // The inverse translation restores the original bytes.
        nat(&mut b, Some((RS4, 5300)), None).unwrap();
        assert_eq!(b, orig);
    }

    /// Masquerading, forward direction: a router on the client's side reports an error about
    /// a reply VIP:80 -> client; it goes to the RS, and must quote RS:8080 -> client.
    #[test]
    fn error_towards_rs_v6_tcp_cut_quote() {
        let quoted = tcp_v6(VIP6, 80, CLIENT6, 40000, &[7u8; 100]);
        let orig = icmp6_error(ROUTER6, VIP6, 3, 0, &quoted[..48]); // cut after 8 bytes of TCP
        assert!(verify_checksums(&orig));
        let mut b = orig.clone();
        nat(&mut b, None, Some((RS6, 8080))).unwrap();
        assert!(verify_checksums(&b));
        let m = PacketMeta::parse(&b).unwrap();
        assert_eq!((m.src, m.dst), (ROUTER6, RS6));
        let L4::IcmpError { quoted: q, .. } = m.l4 else {
            panic!("{m:?}")
        };
        assert_eq!(
            q,
            Quoted {
                src: RS6,
                dst: CLIENT6,
                protocol: 6,
                sport: 8080,
                dport: 40000
            }
        );
        nat(&mut b, None, Some((VIP6, 80))).unwrap();
        assert_eq!(b, orig);
    }

    #[test]
    fn full_nat_error_with_full_tcp_quote_v6() {
        // Full NAT, reply direction: the RS refuses LOCAL:61000 -> RS:8080, which the client
        // sent as CLIENT:40000 -> VIP:80.
        let quoted = tcp_v6(LOCAL6, 61000, RS6, 8080, b"abc");
        let orig = icmp6_error(RS6, LOCAL6, 1, 4, &quoted);
        let mut b = orig.clone();
        nat(&mut b, Some((VIP6, 80)), Some((CLIENT6, 40000))).unwrap();
        assert!(verify_checksums(&b));
        assert!(oracle_checksums_ok(&b));
        // The fully quoted TCP segment is now the client's own, checksum included.
        assert_eq!(&b[48..], &tcp_v6(CLIENT6, 40000, VIP6, 80, b"abc")[..]);
        nat(&mut b, Some((RS6, 8080)), Some((LOCAL6, 61000))).unwrap();
        assert_eq!(b, orig);
    }

    #[test]
    fn quote_without_ports_is_refused() {
        let quoted = udp_v4(CLIENT4, 5353, RS4, 5300, b"");
        let orig = icmp4_error(RS4, CLIENT4, 3, 3, &quoted[..22]);
        let mut b = orig.clone();
        assert_eq!(PacketMeta::parse(&b), Err(Malformed::BadIcmpQuote));
        assert_eq!(
            nat(&mut b, Some((VIP4, 53)), None),
            Err(Malformed::BadIcmpQuote)
        );
        assert_eq!(b, orig);
    }
}
