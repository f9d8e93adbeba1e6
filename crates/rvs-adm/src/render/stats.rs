//! `ipvsadm -L --stats` and `--rate`, and ipvsadm's number formatter (K/M/G/T, `--exact`).

use std::fmt::Write as _;

use rvs_core::snapshot::{DestView, ServiceView};

/// `--stats` titles (`%-33s %8s %8s %8s %8s %8s`).
pub const STATS_TITLE: &str = "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n";
/// `--rate` titles.
pub const RATE_TITLE: &str = "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port\n";

/// ipvsadm's `print_largenum`: always a leading space; `%9llu` below 10^8, then thousands
/// (`K`), millions (`M`, below 10^11), billions (`G`, below 10^14), else `T`. With `exact`:
/// the plain number in 9 columns, or digits + 1 when longer than 8 digits.
pub fn largenum(i: u64, exact: bool) -> String {
    if exact {
        let len = i.to_string().len();
        let w = if len <= 8 { 9 } else { len + 1 };
        return format!("{i:>w$}");
    }
    if i < 100_000_000 {
        format!("{i:>9}")
    } else if i < 1_000_000_000 {
        format!("{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        format!("{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        format!("{:>8}G", i / 1_000_000_000)
    } else {
        format!("{:>8}T", i / 1_000_000_000_000)
    }
}

pub(crate) fn stats_service(out: &mut String, name: &str, svc: &ServiceView, exact: bool) {
    let s = &svc.stats;
    let _ = write!(out, "{name:<33}");
    for v in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
        out.push_str(&largenum(v, exact));
    }
    out.push('\n');
}

pub(crate) fn rate_service(out: &mut String, name: &str, svc: &ServiceView, exact: bool) {
    let r = &svc.rates;
    let _ = write!(out, "{name:<33}");
    for v in [r.cps, r.inpps, r.outpps, r.inbps, r.outbps] {
        out.push_str(&largenum(v, exact));
    }
    out.push('\n');
}

pub(crate) fn stats_dest(out: &mut String, name: &str, d: &DestView, exact: bool) {
    let s = &d.stats;
    let _ = write!(out, "  -> {name:<28}");
    for v in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
        out.push_str(&largenum(v, exact));
    }
    out.push('\n');
}

/// Real-server rate lines print CPS, InPPS and OutPPS with a plain `%8llu`.
pub(crate) fn rate_dest(out: &mut String, name: &str, d: &DestView, exact: bool) {
    let r = &d.rates;
    let _ = write!(
        out,
        "  -> {name:<28} {:>8} {:>8} {:>8}",
        r.cps, r.inpps, r.outpps
    );
    out.push_str(&largenum(r.inbps, exact));
    out.push_str(&largenum(r.outbps, exact));
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::largenum;

    #[test]
    fn suffixes() {
        assert_eq!(largenum(99_999_999, false), " 99999999");
        assert_eq!(largenum(123_456_789, false), "  123456K");
        assert_eq!(largenum(99_999_999_999, false), "   99999M");
        assert_eq!(largenum(100_000_000_000, false), "     100G");
        assert_eq!(largenum(100_000_000_000_000, false), "     100T");
        assert_eq!(largenum(7, true), "        7");
        assert_eq!(largenum(123_456_789, true), " 123456789");
    }
}
