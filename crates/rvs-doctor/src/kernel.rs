//! Kernel release parsing and the judgement "does this kernel carry fix X?".
//!
//! The judgement uses, in order: the mainline version in which the commit landed
//! (`docs/kernel-semantics.md` §2.4.4, §2.5, §9.2); the kernel's build date from `/proc/version` (a
//! kernel built before a fix was written cannot contain it); the upstream stable patch level when
//! it is known (Debian prints it in `/proc/version`, Ubuntu in `/proc/version_signature`,
//! mainline-style release strings carry it directly); and the stable series that are known to have
//! received a backport. Everything else is reported as [`Verdict::Unknown`] with the reason, never
//! guessed.

use serde::Serialize;
use std::fmt;

/// A calendar date, `(year, month, day)`; ordering is chronological.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Date {
    /// Year, e.g. 2021.
    pub year: u32,
    /// Month, 1..=12.
    pub month: u32,
    /// Day of month, 1..=31.
    pub day: u32,
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// The distribution a kernel release string points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distro {
    /// Debian (`X.Y.0-N-amd64`): `N` is an ABI number, not the upstream patch level.
    Debian,
    /// Ubuntu (`X.Y.0-N-generic`, `-aws`, `-gke`, …): `N` is an ABI number.
    Ubuntu,
    /// Red Hat Enterprise Linux / CentOS / Rocky / Alma (`.elN`): heavy vendor backports.
    Rhel {
        /// The `N` of `.elN`.
        el: u32,
    },
    /// Amazon Linux (`.amzn2`, `.amzn2023`): the patch number is the upstream one.
    Amazon,
    /// Anything else: the patch number, if any, is taken as the upstream one (an assumption).
    Other,
}

impl fmt::Display for Distro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Distro::Debian => f.write_str("Debian"),
            Distro::Ubuntu => f.write_str("Ubuntu"),
            Distro::Rhel { el } => write!(f, "RHEL/CentOS family (el{el})"),
            Distro::Amazon => f.write_str("Amazon Linux"),
            Distro::Other => f.write_str("unknown distribution"),
        }
    }
}

/// What is known about the running kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelInfo {
    /// The release string as read (`/proc/sys/kernel/osrelease`).
    pub release: String,
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// The third number of the release string, if any (not necessarily the upstream patch level).
    pub release_patch: Option<u32>,
    /// The distribution hinted by the release string (and `/proc/version`).
    pub distro: Distro,
    /// The upstream stable patch level, when it is known.
    pub upstream_patch: Option<u32>,
    /// Where [`KernelInfo::upstream_patch`] came from.
    pub upstream_source: Option<String>,
    /// The build date from `/proc/version`, when it can be parsed.
    pub build_date: Option<Date>,
}

impl KernelInfo {
    /// `(major, minor)`.
    pub fn series(&self) -> (u32, u32) {
        (self.major, self.minor)
    }

    /// Parses the release string, and refines it with `/proc/version` and
    /// `/proc/version_signature` when given. Returns `None` if the release does not start with
    /// `MAJOR.MINOR`.
    pub fn parse(
        release: &str,
        proc_version: Option<&str>,
        version_signature: Option<&str>,
    ) -> Option<KernelInfo> {
        let release = release.trim();
        let end = release
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(release.len());
        let (numbers, rest) = release.split_at(end);
        let mut parts = numbers.split('.').filter(|s| !s.is_empty());
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts.next()?.parse().ok()?;
        let release_patch: Option<u32> = parts.next().and_then(|p| p.parse().ok());

        let distro = detect_distro(rest, proc_version);
        let mut info = KernelInfo {
            release: release.to_string(),
            major,
            minor,
            release_patch,
            distro,
            upstream_patch: None,
            upstream_source: None,
            build_date: proc_version.and_then(parse_build_date),
        };

        // Upstream patch level, best source first.
        if let Some(sig) = version_signature
            && let Some((ma, mi, pa)) = sig.split_whitespace().last().and_then(parse_xyz)
            && (ma, mi) == (major, minor)
        {
            info.upstream_patch = Some(pa);
            info.upstream_source =
                Some(format!("/proc/version_signature: upstream {ma}.{mi}.{pa}"));
        }
        if info.upstream_patch.is_none()
            && let Some(pv) = proc_version
            && let Some((ma, mi, pa)) = debian_upstream(pv)
            && (ma, mi) == (major, minor)
        {
            info.upstream_patch = Some(pa);
            info.upstream_source = Some(format!("/proc/version: Debian {ma}.{mi}.{pa}"));
        }
        if info.upstream_patch.is_none()
            && let Some(p) = release_patch
        {
            match distro {
                Distro::Debian | Distro::Ubuntu | Distro::Rhel { .. } => {}
                Distro::Amazon => {
                    info.upstream_patch = Some(p);
                    info.upstream_source =
                        Some("release string (Amazon Linux uses the upstream patch level)".into());
                }
                Distro::Other => {
                    info.upstream_patch = Some(p);
                    info.upstream_source =
                        Some("release string (assumed to be the upstream patch level)".into());
                }
            }
        }
        Some(info)
    }

    /// One line for the report, e.g. `5.4.0-150-generic: Ubuntu, series 5.4, upstream patch
    /// level unknown, built 2023-05-15`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{}: {}, series {}.{}",
            self.release, self.distro, self.major, self.minor
        );
        match (self.upstream_patch, &self.upstream_source) {
            (Some(p), Some(src)) => s.push_str(&format!(
                ", upstream {}.{}.{p} ({src})",
                self.major, self.minor
            )),
            _ => s.push_str(", upstream stable patch level unknown"),
        }
        if let Some(d) = self.build_date {
            s.push_str(&format!(", built {d}"));
        }
        s
    }
}

fn parse_xyz(s: &str) -> Option<(u32, u32, u32)> {
    let core = s.split(['-', '~', '+']).next()?;
    let mut it = core.split('.');
    let a = it.next()?.parse().ok()?;
    let b = it.next()?.parse().ok()?;
    let c = it.next()?.parse().ok()?;
    Some((a, b, c))
}

/// `... Debian 5.10.197-1 (2023-09-29)` → (5, 10, 197).
fn debian_upstream(proc_version: &str) -> Option<(u32, u32, u32)> {
    let toks: Vec<&str> = proc_version.split_whitespace().collect();
    toks.windows(2)
        .filter(|w| w[0] == "Debian")
        .find_map(|w| parse_xyz(w[1]))
}

fn detect_distro(rest: &str, proc_version: Option<&str>) -> Distro {
    let lower = rest.to_ascii_lowercase();
    if let Some(pos) = lower.find(".el") {
        let digits: String = lower[pos + 3..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        if let Ok(el) = digits.parse() {
            return Distro::Rhel { el };
        }
    }
    if lower.contains("amzn") {
        return Distro::Amazon;
    }
    if let Some(pv) = proc_version {
        if pv.contains("Ubuntu") {
            return Distro::Ubuntu;
        }
        if pv.contains("Debian") {
            return Distro::Debian;
        }
    }
    // `-N-flavour`: look at the flavour.
    let flavour = lower
        .trim_start_matches('-')
        .split_once('-')
        .map(|(_, f)| f)
        .unwrap_or("");
    const UBUNTU: &[&str] = &[
        "generic",
        "lowlatency",
        "aws",
        "azure",
        "gcp",
        "gke",
        "gkeop",
        "kvm",
        "oracle",
        "raspi",
        "ibm",
        "nvidia",
        "intel",
        "realtime",
    ];
    const DEBIAN: &[&str] = &[
        "amd64",
        "arm64",
        "686",
        "686-pae",
        "armmp",
        "armmp-lpae",
        "powerpc64le",
        "s390x",
        "marvell",
        "rpi",
        "loong64",
        "riscv64",
        "mips64r2el",
        "octeon",
    ];
    let last = flavour.rsplit('-').next().unwrap_or("");
    if UBUNTU.iter().any(|u| flavour.starts_with(u) || last == *u) {
        return Distro::Ubuntu;
    }
    if DEBIAN
        .iter()
        .any(|d| flavour == *d || flavour.ends_with(&format!("-{d}")))
    {
        return Distro::Debian;
    }
    Distro::Other
}

fn month_number(m: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS.iter().position(|x| *x == m).map(|i| i as u32 + 1)
}

/// The build date in `/proc/version`: either Debian's `(YYYY-MM-DD)` or the `uname -v` style
/// `Mon May 15 17:35:05 UTC 2023` (the last one found wins, as it is the build timestamp).
pub fn parse_build_date(proc_version: &str) -> Option<Date> {
    let toks: Vec<&str> = proc_version.split_whitespace().collect();
    // Debian: "(2023-09-29)"
    for t in toks.iter().rev() {
        let t = t.trim_matches(|c| c == '(' || c == ')');
        let p: Vec<&str> = t.split('-').collect();
        if p.len() == 3
            && p[0].len() == 4
            && p[1].len() == 2
            && p[2].len() == 2
            && let (Ok(year), Ok(month), Ok(day)) = (p[0].parse(), p[1].parse(), p[2].parse())
            && (1..=12).contains(&month)
            && (1..=31).contains(&day)
        {
            return Some(Date { year, month, day });
        }
    }
    // "Mon May 15 17:35:05 UTC 2023"
    let mut found = None;
    for i in 0..toks.len() {
        let Some(month) = month_number(toks[i]) else {
            continue;
        };
        let Some(day) = toks.get(i + 1).and_then(|d| d.parse::<u32>().ok()) else {
            continue;
        };
        if !toks.get(i + 2).is_some_and(|t| t.contains(':')) {
            continue;
        }
        // optional time zone token
        let year = toks[i + 3..]
            .iter()
            .take(2)
            .find_map(|t| t.parse::<u32>().ok().filter(|y| (1990..3000).contains(y)));
        if let Some(year) = year {
            found = Some(Date { year, month, day });
        }
    }
    found
}

/// Whether a kernel carries a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// It does.
    Yes,
    /// It does not.
    No,
    /// Cannot tell from what was read.
    Unknown,
}

/// A verdict with its reasoning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixStatus {
    /// The verdict.
    pub verdict: Verdict,
    /// Why.
    pub reason: String,
}

impl FixStatus {
    fn new(verdict: Verdict, reason: impl Into<String>) -> Self {
        FixStatus {
            verdict,
            reason: reason.into(),
        }
    }
}

/// A stable series known to have received a backport, with conservative bounds on the upstream
/// patch level: below `no_below` the release predates the backport, from `yes_from` on it is
/// certainly after it; in between the verdict is unknown. The bounds are deliberately wide
/// around the backport date, not exact stable release numbers.
struct Backport {
    series: (u32, u32),
    no_below: u32,
    yes_from: u32,
    when: &'static str,
}

/// A kernel change and where it is known to be.
struct Change {
    commit: &'static str,
    title: &'static str,
    mainline: (u32, u32),
    /// No kernel built before this date can contain the change (the patch did not exist yet).
    written: Date,
    backports: &'static [Backport],
    /// Series that may have received it (evidence incomplete).
    maybe: &'static [(u32, u32)],
}

/// f0a5e4d7a594 "ipvs: allow connection reuse for unconfirmed conntrack" (5.9; stable 5.7.y and
/// 5.4.y, Aug 2020) — ends the 1 s SYN drop of `conn_reuse_mode=1` + `conntrack=1`.
const CONNTRACK_REUSE_FIX: Change = Change {
    commit: "f0a5e4d7a594",
    title: "ipvs: allow connection reuse for unconfirmed conntrack",
    mainline: (5, 9),
    written: Date {
        year: 2020,
        month: 7,
        day: 1,
    },
    backports: &[
        Backport {
            series: (5, 4),
            no_below: 49,
            yes_from: 80,
            when: "Aug 2020",
        },
        Backport {
            series: (5, 7),
            no_below: 8,
            yes_from: u32::MAX,
            when: "Aug 2020",
        },
    ],
    maybe: &[(5, 8)],
};

/// c95c07836fa4 "ipvs: Fix reuse connection if RS weight is 0" (5.16; stable 5.4/5.10/5.15,
/// 2021-11-29) — `expire_nodest_conn=1` reschedules SYNs hitting a weight-0 server even with
/// `conn_reuse_mode=0`.
const WEIGHT0_FIX: Change = Change {
    commit: "c95c07836fa4",
    title: "ipvs: Fix reuse connection if RS weight is 0",
    mainline: (5, 16),
    written: Date {
        year: 2021,
        month: 10,
        day: 1,
    },
    backports: &[
        Backport {
            series: (5, 4),
            no_below: 158,
            yes_from: 170,
            when: "2021-11-29",
        },
        Backport {
            series: (5, 10),
            no_below: 78,
            yes_from: 90,
            when: "2021-11-29",
        },
        Backport {
            series: (5, 15),
            no_below: 3,
            yes_from: 12,
            when: "2021-11-29",
        },
    ],
    // Stable queue logs of early Dec 2021 also list it for older longterm series; not verified.
    maybe: &[(4, 4), (4, 9), (4, 14), (4, 19)],
};

/// 04231e52d355 (Andrew Sy Kim, 5.9): `expire_nodest_conn=1` expires a deleted server's
/// connections in bulk and reschedules without dropping.
const NODEST_FLUSH: Change = Change {
    commit: "04231e52d355",
    title: "ipvs: queue delayed work to expire no destination connections",
    mainline: (5, 9),
    written: Date {
        year: 2020,
        month: 7,
        day: 1,
    },
    backports: &[],
    maybe: &[],
};

fn judge(k: &KernelInfo, c: &Change) -> FixStatus {
    let (ma, mi) = c.mainline;
    let name = format!("{} \"{}\"", c.commit, c.title);
    if k.series() >= c.mainline {
        return FixStatus::new(
            Verdict::Yes,
            format!(
                "{name} is in mainline since {ma}.{mi}; this is {}.{}",
                k.major, k.minor
            ),
        );
    }
    if let Some(d) = k.build_date
        && d < c.written
    {
        return FixStatus::new(
            Verdict::No,
            format!("this kernel was built on {d}, before {name} was written"),
        );
    }
    if let Distro::Rhel { el } = k.distro {
        return FixStatus::new(
            Verdict::Unknown,
            format!(
                "{name} landed in mainline {ma}.{mi}; this is a RHEL-family el{el} kernel based on \
                 {}.{}, which carries vendor backports that cannot be verified from the release \
                 string (check the vendor's changelog: rpm -q --changelog kernel | grep -i ipvs)",
                k.major, k.minor
            ),
        );
    }
    if let Some(b) = c.backports.iter().find(|b| b.series == k.series()) {
        let (sa, sb) = b.series;
        return match k.upstream_patch {
            Some(p) if p < b.no_below => FixStatus::new(
                Verdict::No,
                format!(
                    "{name} reached stable {sa}.{sb}.y on {}; upstream {sa}.{sb}.{p} predates that",
                    b.when
                ),
            ),
            Some(p) if p >= b.yes_from => FixStatus::new(
                Verdict::Yes,
                format!(
                    "{name} reached stable {sa}.{sb}.y on {}; upstream {sa}.{sb}.{p} is well after it",
                    b.when
                ),
            ),
            Some(p) => FixStatus::new(
                Verdict::Unknown,
                format!(
                    "{name} reached stable {sa}.{sb}.y on {}; upstream {sa}.{sb}.{p} is too close \
                     to that date to tell",
                    b.when
                ),
            ),
            None => FixStatus::new(
                Verdict::Unknown,
                format!(
                    "{name} reached stable {sa}.{sb}.y on {}, but the release string {} does not \
                     give the upstream stable patch level ({} ABI numbers are not patch levels), \
                     and no /proc/version_signature or Debian version in /proc/version says it",
                    b.when, k.release, k.distro
                ),
            ),
        };
    }
    if c.maybe.contains(&k.series()) {
        return FixStatus::new(
            Verdict::Unknown,
            format!(
                "{name} landed in mainline {ma}.{mi}; a backport to {}.{}.y may exist but is not \
                 verified",
                k.major, k.minor
            ),
        );
    }
    let vendor = match k.distro {
        Distro::Other | Distro::Amazon => " (vendor backports, if any, are unknown)",
        _ => "",
    };
    FixStatus::new(
        Verdict::No,
        format!(
            "{name} landed in mainline {ma}.{mi}; no backport to {}.{}.y is known{vendor}",
            k.major, k.minor
        ),
    )
}

/// The kernel facts that matter for the rolling-update hazards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelJudgement {
    /// `conn_reuse_mode` exists upstream since 4.1 (d752c3645717).
    pub has_conn_reuse_mode: FixStatus,
    /// f719e3754ee2 (≈4.6–4.8): a rescheduled SYN on a conntrack-using conn is dropped.
    pub syn_drop_on_reuse: FixStatus,
    /// f0a5e4d7a594 (5.9): the drop only happens with a confirmed conntrack.
    pub conntrack_reuse_fix: FixStatus,
    /// c95c07836fa4 (5.16): weight-0 reschedule independent of `conn_reuse_mode`.
    pub weight0_fix: FixStatus,
    /// 04231e52d355 (5.9): bulk expiry of a deleted server's conns.
    pub nodest_flush: FixStatus,
}

impl KernelJudgement {
    /// Judges every change for this kernel.
    pub fn for_kernel(k: &KernelInfo) -> KernelJudgement {
        let series = k.series();
        let el7 = matches!(k.distro, Distro::Rhel { el: 7 });
        let has_conn_reuse_mode = if series >= (4, 1) {
            FixStatus::new(
                Verdict::Yes,
                "conn_reuse_mode exists since 4.1 (d752c3645717)",
            )
        } else if el7 {
            FixStatus::new(
                Verdict::Yes,
                "CentOS/RHEL 7 3.10 kernels carry a backport of conn_reuse_mode (kubernetes#82065)",
            )
        } else {
            FixStatus::new(
                Verdict::No,
                "conn_reuse_mode was added in 4.1 (d752c3645717); no backport is known for this kernel",
            )
        };
        let syn_drop_on_reuse = if series >= (4, 9) {
            FixStatus::new(
                Verdict::Yes,
                "f719e3754ee2 \"ipvs: drop first packet to redirect conntrack\" landed in 4.6–4.8",
            )
        } else if series >= (4, 6) {
            FixStatus::new(
                Verdict::Unknown,
                "f719e3754ee2 landed between 4.6 and 4.8; the exact release is unverified",
            )
        } else if el7 {
            FixStatus::new(
                Verdict::Yes,
                "the 1 s SYN drop was reported on CentOS 7's 3.10 kernel (kubernetes#70747)",
            )
        } else if series >= (4, 1) {
            FixStatus::new(
                Verdict::No,
                "before f719e3754ee2 (4.6–4.8) a reused port was rescheduled without a drop \
                 (reconstructed from the commit history, unverified)",
            )
        } else {
            FixStatus::new(
                Verdict::No,
                "no conn_reuse_mode, so no reschedule and no drop",
            )
        };
        KernelJudgement {
            has_conn_reuse_mode,
            syn_drop_on_reuse,
            conntrack_reuse_fix: judge(k, &CONNTRACK_REUSE_FIX),
            weight0_fix: judge(k, &WEIGHT0_FIX),
            nodest_flush: judge(k, &NODEST_FLUSH),
        }
    }

    /// The judgement when the kernel release could not be read.
    pub fn unknown(why: &str) -> KernelJudgement {
        let u = || FixStatus::new(Verdict::Unknown, format!("kernel version unknown: {why}"));
        KernelJudgement {
            has_conn_reuse_mode: u(),
            syn_drop_on_reuse: u(),
            conntrack_reuse_fix: u(),
            weight0_fix: u(),
            nodest_flush: u(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(rel: &str, pv: Option<&str>, sig: Option<&str>) -> KernelInfo {
        KernelInfo::parse(rel, pv, sig).expect("parses")
    }

    #[test]
    fn parses_common_releases() {
        let d = k("6.1.0-56-amd64", None, None);
        assert_eq!((d.major, d.minor, d.distro), (6, 1, Distro::Debian));
        assert_eq!(d.upstream_patch, None);
        let u = k("5.4.0-150-generic", None, None);
        assert_eq!(u.distro, Distro::Ubuntu);
        let g = k("5.15.0-1048-gke", None, None);
        assert_eq!(g.distro, Distro::Ubuntu);
        let r = k("3.10.0-1160.el7.x86_64", None, None);
        assert_eq!(r.distro, Distro::Rhel { el: 7 });
        let r8 = k("4.18.0-372.9.1.el8.x86_64", None, None);
        assert_eq!(r8.distro, Distro::Rhel { el: 8 });
        let a = k("5.10.201-191.748.amzn2.x86_64", None, None);
        assert_eq!((a.distro, a.upstream_patch), (Distro::Amazon, Some(201)));
        let m = k("6.6.30", None, None);
        assert_eq!((m.distro, m.upstream_patch), (Distro::Other, Some(30)));
        assert!(KernelInfo::parse("garbage", None, None).is_none());
    }

    #[test]
    fn upstream_from_proc_version_and_signature() {
        let d = k(
            "5.10.0-26-amd64",
            Some(
                "Linux version 5.10.0-26-amd64 (debian-kernel@lists.debian.org) (gcc-10 (Debian 10.2.1-6) 10.2.1 20210110, GNU ld (GNU Binutils for Debian) 2.35.2) #1 SMP Debian 5.10.197-1 (2023-09-29)",
            ),
            None,
        );
        assert_eq!(d.upstream_patch, Some(197));
        assert_eq!(
            d.build_date,
            Some(Date {
                year: 2023,
                month: 9,
                day: 29
            })
        );
        let u = k(
            "5.4.0-150-generic",
            Some(
                "Linux version 5.4.0-150-generic (buildd@bos03-amd64-012) (gcc version 9.4.0 (Ubuntu 9.4.0-1ubuntu1~20.04.1)) #167-Ubuntu SMP Mon May 15 17:35:05 UTC 2023",
            ),
            Some("Ubuntu 5.4.0-150.167-generic 5.4.233"),
        );
        assert_eq!(u.upstream_patch, Some(233));
        assert_eq!(
            u.build_date,
            Some(Date {
                year: 2023,
                month: 5,
                day: 15
            })
        );
    }

    #[test]
    fn judgements() {
        let six = KernelJudgement::for_kernel(&k("6.1.0-56-amd64", None, None));
        assert_eq!(six.weight0_fix.verdict, Verdict::Yes);
        assert_eq!(six.conntrack_reuse_fix.verdict, Verdict::Yes);

        let u = KernelJudgement::for_kernel(&k("5.4.0-150-generic", None, None));
        assert_eq!(u.weight0_fix.verdict, Verdict::Unknown);
        assert_eq!(u.conntrack_reuse_fix.verdict, Verdict::Unknown);
        let us = KernelJudgement::for_kernel(&k(
            "5.4.0-150-generic",
            None,
            Some("Ubuntu 5.4.0-150.167-generic 5.4.233"),
        ));
        assert_eq!(us.weight0_fix.verdict, Verdict::Yes);
        assert_eq!(us.conntrack_reuse_fix.verdict, Verdict::Yes);

        let old = KernelJudgement::for_kernel(&k(
            "5.4.0-42-generic",
            Some("#46-Ubuntu SMP Fri Jul 10 00:24:02 UTC 2020"),
            None,
        ));
        assert_eq!(old.weight0_fix.verdict, Verdict::No);

        let deb419 = KernelJudgement::for_kernel(&k(
            "4.19.0-26-amd64",
            Some("#1 SMP Debian 4.19.304-1 (2024-01-09)"),
            None,
        ));
        assert_eq!(deb419.conntrack_reuse_fix.verdict, Verdict::No);
        assert_eq!(deb419.syn_drop_on_reuse.verdict, Verdict::Yes);
        assert_eq!(deb419.weight0_fix.verdict, Verdict::Unknown);

        let el7 = KernelJudgement::for_kernel(&k("3.10.0-1160.el7.x86_64", None, None));
        assert_eq!(el7.has_conn_reuse_mode.verdict, Verdict::Yes);
        assert_eq!(el7.conntrack_reuse_fix.verdict, Verdict::Unknown);
        assert_eq!(el7.syn_drop_on_reuse.verdict, Verdict::Yes);
    }
}
