//! Property tests over arbitrary bytes and over valid packets (with and without random
//! mutations): nothing panics; a failed rewrite leaves the buffer alone; a rewrite keeps every
//! checksum valid; the inverse NAT restores the original bytes; parse sees the translation.
//!
//! Valid packets are built by etherparse (an independent implementation), except the SCTP
//! common header, whose CRC32c our unit tests check against scapy.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::PacketBuilder;
use proptest::prelude::*;
use rvs_packet::checksum::{self, Delta};
use rvs_packet::{
    L4, Malformed, PacketMeta, Pretty, Quoted, SctpPacket, rewrite, synth, verify_checksums,
};

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Kind {
    Tcp,
    Udp,
    UdpNoChecksum,
    Sctp,
    Echo,
}

#[derive(Clone, Debug)]
struct Flow {
    v6: bool,
    kind: Kind,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    payload: Vec<u8>,
    /// IPv4 options (4 bytes) or IPv6 hop-by-hop + destination options headers.
    extras: bool,
    /// Mark as a first fragment (IPv4 MF, or an IPv6 fragment header with M set).
    first_fragment: bool,
}

fn addr(v6: bool) -> impl Strategy<Value = IpAddr> {
    if v6 {
        any::<u128>()
            .prop_map(|a| IpAddr::V6(Ipv6Addr::from(a)))
            .boxed()
    } else {
        any::<u32>()
            .prop_map(|a| IpAddr::V4(Ipv4Addr::from(a)))
            .boxed()
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Tcp),
        Just(Kind::Udp),
        Just(Kind::UdpNoChecksum),
        Just(Kind::Sctp),
        Just(Kind::Echo)
    ]
}

fn flow_of(v6: bool) -> impl Strategy<Value = Flow> {
    (
        kind(),
        addr(v6),
        addr(v6),
        any::<u16>(),
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
        prop::bool::weighted(0.15),
    )
        .prop_map(
            move |(kind, src, dst, sport, dport, payload, extras, first_fragment)| Flow {
                v6,
                kind,
                src,
                dst,
                sport,
                dport,
                payload,
                extras,
                first_fragment,
            },
        )
}

fn flow() -> impl Strategy<Value = Flow> {
    any::<bool>().prop_flat_map(flow_of)
}

fn v4o(a: IpAddr) -> [u8; 4] {
    match a {
        IpAddr::V4(a) => a.octets(),
        _ => unreachable!(),
    }
}

fn v6o(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V6(a) => a.octets(),
        _ => unreachable!(),
    }
}

fn fix_v4_header(b: &mut [u8]) {
    let hl = ((b[0] & 0xf) as usize) * 4;
    b[10] = 0;
    b[11] = 0;
    let c = checksum::finish(checksum::data(&b[..hl]));
    b[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Builds the packet of a flow; its checksums are valid.
fn build(f: &Flow) -> Vec<u8> {
    let mut out = Vec::new();
    match f.kind {
        Kind::Sctp => {
            // Common header plus one DATA chunk holding the payload, padded.
            let mut l4 = vec![0u8; 12];
            let clen = 4 + f.payload.len();
            l4.extend_from_slice(&[0, 3, (clen >> 8) as u8, clen as u8]);
            l4.extend_from_slice(&f.payload);
            while l4.len() % 4 != 0 {
                l4.push(0);
            }
            let mut s = SctpPacket::new_unchecked(&mut l4[..]);
            s.set_src_port(f.sport);
            s.set_dst_port(f.dport);
            s.set_verification_tag(0x1234_5678);
            s.fill_checksum();
            if f.v6 {
                let h = etherparse::Ipv6Header {
                    payload_length: l4.len() as u16,
                    next_header: etherparse::IpNumber(132),
                    hop_limit: 64,
                    source: v6o(f.src),
                    destination: v6o(f.dst),
                    ..Default::default()
                };
                h.write(&mut out).unwrap();
            } else {
                let h = etherparse::Ipv4Header::new(
                    l4.len() as u16,
                    64,
                    etherparse::IpNumber(132),
                    v4o(f.src),
                    v4o(f.dst),
                )
                .unwrap();
                h.write(&mut out).unwrap();
            }
            out.extend_from_slice(&l4);
        }
        _ => {
            let b = if f.v6 {
                PacketBuilder::ipv6(v6o(f.src), v6o(f.dst), 64)
            } else {
                PacketBuilder::ipv4(v4o(f.src), v4o(f.dst), 64)
            };
            match f.kind {
                Kind::Tcp => b
                    .tcp(f.sport, f.dport, 7, 1000)
                    .syn()
                    .write(&mut out, &f.payload),
                Kind::Udp | Kind::UdpNoChecksum => {
                    b.udp(f.sport, f.dport).write(&mut out, &f.payload)
                }
                _ => {
                    if f.v6 {
                        b.icmpv6_echo_request(f.sport, f.dport)
                            .write(&mut out, &f.payload)
                    } else {
                        b.icmpv4_echo_request(f.sport, f.dport)
                            .write(&mut out, &f.payload)
                    }
                }
            }
            .unwrap();
        }
    }
    if matches!(f.kind, Kind::UdpNoChecksum) && !f.v6 {
        out[26] = 0;
        out[27] = 0;
    }
    if f.v6 {
        let mut ext = Vec::new();
        let l4proto = out[6];
        let mut first = l4proto;
        if f.extras {
            // hop-by-hop -> destination options -> (fragment ->) transport
            ext.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
            ext.extend_from_slice(&[
                if f.first_fragment { 44 } else { l4proto },
                0,
                1,
                4,
                0,
                0,
                0,
                0,
            ]);
            first = 0;
        }
        if f.first_fragment {
            if !f.extras {
                first = 44;
            }
            ext.extend_from_slice(&[l4proto, 0, 0, 1, 0xca, 0xfe, 0xba, 0xbe]);
        }
        out[6] = first;
        let plen = u16::from_be_bytes([out[4], out[5]]) as usize + ext.len();
        out[4..6].copy_from_slice(&(plen as u16).to_be_bytes());
        out.splice(40..40, ext);
    } else {
        if f.extras {
            out.splice(20..20, [1u8, 1, 1, 0]); // NOP NOP NOP EOL
            out[0] = 0x46;
            let tl = out.len() as u16;
            out[2..4].copy_from_slice(&tl.to_be_bytes());
        }
        if f.first_fragment {
            out[6] = 0x20; // MF, offset 0
            out[7] = 0;
        }
        fix_v4_header(&mut out);
    }
    out
}

#[derive(Clone, Debug)]
struct IcmpError {
    /// The flow of the quoted packet.
    quoted: Flow,
    /// How many bytes of the quoted packet to keep (clamped to at least header + 8).
    cut: usize,
    /// The error comes from the quoted packet's destination and goes to its source (as when
    /// the endpoint itself answers); otherwise from and to arbitrary addresses.
    mirror: bool,
    from: IpAddr,
    to: IpAddr,
    icmp_type: u8,
}

fn icmp_error() -> impl Strategy<Value = IcmpError> {
    any::<bool>().prop_flat_map(|v6| {
        let types = if v6 {
            prop::sample::select(vec![1u8, 2, 3, 4])
        } else {
            prop::sample::select(vec![3u8, 4, 11, 12])
        };
        (
            flow_of(v6),
            0usize..400,
            any::<bool>(),
            addr(v6),
            addr(v6),
            types,
        )
            .prop_map(|(quoted, cut, mirror, from, to, icmp_type)| IcmpError {
                quoted,
                cut,
                mirror,
                from,
                to,
                icmp_type,
            })
    })
}

fn build_error(e: &IcmpError) -> Vec<u8> {
    let q = build(&e.quoted);
    let hl = if e.quoted.v6 {
        40 + 16 * e.quoted.extras as usize + 8 * e.quoted.first_fragment as usize
    } else {
        (q[0] & 0xf) as usize * 4
    };
    let keep = e.cut.clamp((hl + 8).min(q.len()), q.len());
    let (from, to) = if e.mirror {
        (e.quoted.dst, e.quoted.src)
    } else {
        (e.from, e.to)
    };
    let mut out = Vec::new();
    if e.quoted.v6 {
        PacketBuilder::ipv6(v6o(from), v6o(to), 64)
            .icmpv6_raw(e.icmp_type, 0, [0; 4])
            .write(&mut out, &q[..keep])
            .unwrap();
    } else {
        PacketBuilder::ipv4(v4o(from), v4o(to), 64)
            .icmpv4_raw(e.icmp_type, 0, [0; 4])
            .write(&mut out, &q[..keep])
            .unwrap();
    }
    out
}

type Xlat = Option<(IpAddr, u16)>;

fn translation(v6: bool) -> impl Strategy<Value = (Xlat, Xlat)> {
    (
        prop::option::of((addr(v6), any::<u16>())),
        prop::option::of((addr(v6), any::<u16>())),
    )
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// Runs every entry point on `buf`; returns nothing, must not panic.
fn exercise(buf: &[u8], x: (Xlat, Xlat)) {
    let _ = PacketMeta::parse(buf);
    let ok = verify_checksums(buf);
    let _ = Pretty(buf).to_string();
    let _ = rewrite::decap(buf);
    let mut out = vec![0u8; 2000];
    let _ = rewrite::encap(
        buf,
        x.0.map_or(Ipv4Addr::LOCALHOST.into(), |a| a.0),
        x.1.map_or(Ipv4Addr::LOCALHOST.into(), |a| a.0),
        &mut out,
    );
    let _ = synth::icmp_unreachable(
        &mut out,
        buf,
        x.0.map_or(Ipv4Addr::LOCALHOST.into(), |a| a.0),
        None,
    );
    let _ = synth::icmp_too_big(
        &mut out[..300],
        buf,
        x.0.map_or(Ipv6Addr::LOCALHOST.into(), |a| a.0),
        1280,
    );
    let mut b = buf.to_vec();
    match rewrite::nat(&mut b, x.0, x.1) {
        Ok(()) => {
            if ok {
                assert!(
                    verify_checksums(&b),
                    "nat broke a checksum: {:02x?} -> {:02x?}",
                    buf,
                    b
                );
            }
        }
        Err(_) => assert_eq!(&b[..], buf, "a failed nat wrote to the buffer"),
    }
}

/// Translates `orig` with `x`, checks the checksums, and checks that `inverse` restores it.
/// Returns the translated packet, or `None` for a (refused) SCTP fragment port change.
fn check_translation(
    orig: &[u8],
    x: (Xlat, Xlat),
    inverse: (Xlat, Xlat),
) -> Result<Option<Vec<u8>>, TestCaseError> {
    let mut b = orig.to_vec();
    match rewrite::nat(&mut b, x.0, x.1) {
        Ok(()) => {}
        Err(Malformed::FragmentedSctp) => {
            prop_assert_eq!(&b[..], orig);
            return Ok(None);
        }
        Err(e) => return Err(TestCaseError::fail(format!("nat failed: {e}"))),
    }
    prop_assert!(verify_checksums(&b), "checksums after nat: {}", Pretty(&b));
    let mut back = b.clone();
    rewrite::nat(&mut back, inverse.0, inverse.1).unwrap();
    prop_assert_eq!(&back[..], orig, "inverse NAT");
    Ok(Some(b))
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

proptest! {
    // 2000 cases per property by default; PROPTEST_CASES=100000 for a long run.
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        v in prop::sample::select(vec![0x45u8, 0x46, 0x4f, 0x60, 0x61, 0x00]),
        x in any::<bool>().prop_flat_map(translation),
    ) {
        // Half the time, start with a plausible version/IHL byte to get past the first check.
        let mut b = bytes;
        if let Some(first) = b.first_mut() {
            if *first & 1 == 0 {
                *first = v;
            }
        }
        exercise(&b, x);
    }

    #[test]
    fn valid_packets(f in flow(), x in any::<bool>().prop_flat_map(translation)) {
        let orig = build(&f);
        prop_assert!(verify_checksums(&orig), "generator: {}", Pretty(&orig));
        let m = PacketMeta::parse(&orig).unwrap();
        prop_assert_eq!((m.src, m.dst, m.len as usize), (f.src, f.dst, orig.len()));
        let ports = !matches!(f.kind, Kind::Echo);
        if ports {
            prop_assert_eq!((m.sport, m.dport), (f.sport, f.dport));
        }
        // Translations of the packet's own family.
        let x = (x.0.filter(|a| a.0.is_ipv6() == f.v6), x.1.filter(|a| a.0.is_ipv6() == f.v6));
        let inverse = (x.0.map(|_| (f.src, f.sport)), x.1.map(|_| (f.dst, f.dport)));
        if let Some(b) = check_translation(&orig, x, inverse)? {
            let n = PacketMeta::parse(&b).unwrap();
            prop_assert_eq!(n.src, x.0.map_or(f.src, |a| a.0));
            prop_assert_eq!(n.dst, x.1.map_or(f.dst, |a| a.0));
            if ports {
                prop_assert_eq!(n.sport, x.0.map_or(f.sport, |a| a.1));
                prop_assert_eq!(n.dport, x.1.map_or(f.dport, |a| a.1));
            }
            prop_assert_eq!(n.l4, m.l4);
        }
        exercise(&orig, x);
    }

    #[test]
    fn valid_icmp_errors(e in icmp_error(), x in any::<bool>().prop_flat_map(translation)) {
        let orig = build_error(&e);
        prop_assert!(verify_checksums(&orig), "generator: {}", Pretty(&orig));
        let m = PacketMeta::parse(&orig).unwrap();
        let L4::IcmpError { quoted, .. } = m.l4 else {
            return Err(TestCaseError::fail(format!("not an error: {m:?}")));
        };
        let q = &e.quoted;
        let ports = !matches!(q.kind, Kind::Echo);
        let (qs, qd) = if ports { (q.sport, q.dport) } else { (0, 0) };
        prop_assert_eq!(quoted, Quoted { src: q.src, dst: q.dst, protocol: quoted.protocol, sport: qs, dport: qd });
        let v6 = q.v6;
        let x = (x.0.filter(|a| a.0.is_ipv6() == v6), x.1.filter(|a| a.0.is_ipv6() == v6));
        let mut b = orig.clone();
        rewrite::nat(&mut b, x.0, x.1).unwrap();
        prop_assert!(verify_checksums(&b), "checksums after nat: {}", Pretty(&b));
        let n = PacketMeta::parse(&b).unwrap();
        let L4::IcmpError { quoted: nq, .. } = n.l4 else { unreachable!() };
        // Outer addresses follow src/dst; the quote goes the other way.
        prop_assert_eq!(n.src, x.0.map_or(m.src, |a| a.0));
        prop_assert_eq!(n.dst, x.1.map_or(m.dst, |a| a.0));
        prop_assert_eq!(nq.dst, x.0.map_or(q.dst, |a| a.0));
        prop_assert_eq!(nq.src, x.1.map_or(q.src, |a| a.0));
        if ports {
            prop_assert_eq!(nq.dport, x.0.map_or(q.dport, |a| a.1));
            prop_assert_eq!(nq.sport, x.1.map_or(q.sport, |a| a.1));
        }
        if e.mirror {
            // The error came from the quoted destination: one call undoes the translation.
            let inverse = (x.0.map(|_| (q.dst, q.dport)), x.1.map(|_| (q.src, q.sport)));
            check_translation(&orig, x, inverse)?;
        }
        exercise(&orig, x);
    }

    #[test]
    fn mutated_packets(
        f in flow(),
        e in icmp_error(),
        pick_error in any::<bool>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        cut in prop::option::weighted(0.2, any::<prop::sample::Index>()),
        x in any::<bool>().prop_flat_map(translation),
    ) {
        let mut b = if pick_error { build_error(&e) } else { build(&f) };
        for (i, v) in flips {
            let i = i.index(b.len());
            b[i] ^= v;
        }
        if let Some(c) = cut {
            b.truncate(c.index(b.len() + 1));
        }
        exercise(&b, x);
    }

    #[test]
    fn encap_then_decap(f in flow(), outer in any::<bool>().prop_flat_map(|v6| (addr(v6), addr(v6)))) {
        let inner = build(&f);
        let mut out = vec![0u8; inner.len() + 40];
        let n = rewrite::encap(&inner, outer.0, outer.1, &mut out).unwrap();
        prop_assert!(verify_checksums(&out[..n]));
        let m = PacketMeta::parse(&out[..n]).unwrap();
        prop_assert_eq!((m.src, m.dst), outer);
        prop_assert_eq!(m.protocol, if f.v6 { 41 } else { 4 });
        prop_assert_eq!(rewrite::decap(&out[..n]).unwrap(), &inner[..]);
        prop_assert_eq!(rewrite::encap(&inner, outer.0, outer.1, &mut out[..n - 1]), Err(Malformed::OutputTooSmall));
    }

    #[test]
    fn synthesized_packets_are_valid(
        f in flow(),
        x in any::<bool>().prop_flat_map(|v6| (addr(v6), any::<u16>(), addr(v6), any::<u16>())),
        seq in any::<u32>(),
        ack in any::<Option<u32>>(),
    ) {
        let mut out = [0u8; 1500];
        let n = synth::tcp_rst(&mut out, (x.0, x.1), (x.2, x.3), seq, ack).unwrap();
        prop_assert!(verify_checksums(&out[..n]));
        let m = PacketMeta::parse(&out[..n]).unwrap();
        prop_assert_eq!((m.src, m.sport, m.dst, m.dport), (x.0, x.1, x.2, x.3));
        let orig = build(&f);
        let from = if f.v6 { IpAddr::V6(Ipv6Addr::LOCALHOST) } else { IpAddr::V4(Ipv4Addr::LOCALHOST) };
        match synth::icmp_unreachable(&mut out, &orig, from, None) {
            Ok(n) => {
                prop_assert!(verify_checksums(&out[..n]));
                let max = if f.v6 { 1280 } else { 576 };
                prop_assert!(n <= max);
                let m = PacketMeta::parse(&out[..n]).unwrap();
                prop_assert!(matches!(m.l4, L4::IcmpError { .. }), "{:?}", m);
                prop_assert_eq!(m.dst, f.src);
            }
            Err(Malformed::IcmpSuppressed) => {}
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        }
    }

    #[test]
    fn incremental_equals_recompute(
        data in prop::collection::vec(any::<u8>(), 2..200),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u16>()), 1..6),
    ) {
        let mut d = data.clone();
        let words = d.len() / 2;
        let mut delta = Delta::ZERO;
        for (i, new) in edits {
            let at = i.index(words) * 2;
            let old = u16::from_be_bytes([d[at], d[at + 1]]);
            delta.add16(old, new);
            d[at..at + 2].copy_from_slice(&new.to_be_bytes());
        }
        let before = checksum::finish(checksum::data(&data));
        let after = checksum::finish(checksum::data(&d));
        let inc = delta.apply(before);
        // Equal as ones' complement numbers (0 and 0xffff are both zero).
        prop_assert!(inc == after || (inc | after) == 0xffff && (inc & after) == 0, "{inc:#x} vs {after:#x}");
    }

    #[test]
    fn crc32c_patch_equals_recompute(
        data in prop::collection::vec(any::<u8>(), 4..600),
        at in any::<prop::sample::Index>(),
        new in any::<[u8; 4]>(),
    ) {
        let at = at.index(data.len() - 3);
        let mut d = data.clone();
        let old = [d[at], d[at + 1], d[at + 2], d[at + 3]];
        d[at..at + 4].copy_from_slice(&new);
        let patched = checksum::crc32c_patch(checksum::crc32c(&data), &old, &new, data.len() - at - 4);
        prop_assert_eq!(patched, checksum::crc32c(&d));
    }
}
