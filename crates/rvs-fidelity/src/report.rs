//! Verdicts (checks judged against the known differences) and the text report.

use std::fmt::Write as _;

use crate::CaseResult;
use crate::check::Check;
use crate::known::Known;

/// A check's verdict.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The two sides agree.
    Agree,
    /// They differ, and this difference is not listed: the suite fails.
    Differ,
    /// They differ, as listed in known-differences.toml (both sides show the pinned values).
    Known(Known),
    /// They differ, and known-differences.toml lists the check, but with other values: the
    /// difference grew or changed, and the suite fails until the entry is reviewed.
    Changed(Known),
    /// Listed in known-differences.toml, but they agree now: the suite fails until the
    /// entry is removed.
    Stale(Known),
}

impl Verdict {
    /// Whether this verdict fails the suite.
    pub fn fails(&self) -> bool {
        matches!(
            self,
            Verdict::Differ | Verdict::Changed(_) | Verdict::Stale(_)
        )
    }
}

/// The verdict of one check.
pub fn judge(c: &Check, known: &[Known]) -> Verdict {
    match (c.ok, known.iter().find(|k| k.check == c.id)) {
        (true, None) => Verdict::Agree,
        (true, Some(k)) => Verdict::Stale(k.clone()),
        (false, None) => Verdict::Differ,
        (false, Some(k)) if k.matches(c) => Verdict::Known(k.clone()),
        (false, Some(k)) => Verdict::Changed(k.clone()),
    }
}

/// Totals over some cases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Checks.
    pub checks: usize,
    /// Agreeing.
    pub agree: usize,
    /// Differing, not listed (or listed with other values).
    pub differ: usize,
    /// Differing, listed.
    pub known: usize,
    /// Listed but agreeing.
    pub stale: usize,
}

impl Totals {
    /// Whether the suite passes.
    pub fn pass(&self) -> bool {
        self.differ == 0 && self.stale == 0
    }
}

fn indent(s: &str, pad: &str) -> String {
    if s.is_empty() {
        return format!("{pad}(empty)");
    }
    s.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn one_line(s: &str) -> String {
    let first = s.lines().next().unwrap_or("");
    let more = if s.lines().count() > 1 { " …" } else { "" };
    let mut t: String = first.chars().take(70).collect();
    if first.chars().count() > 70 {
        t.push('…');
    }
    t + more
}

/// The report of one case (every check; differences with both sides) and its totals.
pub fn case_report(r: &CaseResult, known: &[Known]) -> (String, Totals) {
    let mut t = Totals::default();
    let mut s = String::new();
    let mut body = String::new();
    for c in &r.checks {
        t.checks += 1;
        let v = judge(c, known);
        match &v {
            Verdict::Agree => {
                t.agree += 1;
                let shown = if c.kernel == c.rvs {
                    one_line(&c.kernel)
                } else {
                    format!(
                        "kernel: {} | rvs: {}",
                        one_line(&c.kernel),
                        one_line(&c.rvs)
                    )
                };
                let _ = writeln!(body, "  agree  {}   [{shown}]", c.id);
            }
            Verdict::Differ | Verdict::Changed(_) | Verdict::Known(_) | Verdict::Stale(_) => {
                let tag = match &v {
                    Verdict::Differ => {
                        t.differ += 1;
                        "DIFFER".to_string()
                    }
                    Verdict::Changed(k) => {
                        t.differ += 1;
                        format!(
                            "DIFFER: listed in known-differences.toml ({}), but not with these \
                             values (it accepts kernel {}, rvs {}): the difference changed; review \
                             it and the entry",
                            k.kind, k.kernel, k.rvs
                        )
                    }
                    Verdict::Known(k) => {
                        t.known += 1;
                        format!("KNOWN ({}: {})", k.kind, k.reason)
                    }
                    Verdict::Stale(k) => {
                        t.stale += 1;
                        format!(
                            "STALE: listed in known-differences.toml ({}), but the sides agree now: remove the entry",
                            k.kind
                        )
                    }
                    Verdict::Agree => unreachable!(),
                };
                let _ = writeln!(
                    body,
                    "  {tag}\n    check:  {}\n    rule:   {}",
                    c.id, c.rule
                );
                let _ = writeln!(body, "    kernel:\n{}", indent(&c.kernel, "      "));
                let _ = writeln!(body, "    rvs:\n{}", indent(&c.rvs, "      "));
            }
        }
    }
    let _ = writeln!(
        s,
        "== case {}: {} checks: {} agree, {} differ, {} known, {} stale   (kernel {:.0} s: {}; rvs {:.0} s: {})",
        r.case.name,
        t.checks,
        t.agree,
        t.differ,
        t.known,
        t.stale,
        r.kernel.wall.as_secs_f64(),
        r.kernel.dir.display(),
        r.rvs.wall.as_secs_f64(),
        r.rvs.dir.display(),
    );
    let knobs: Vec<String> = r
        .case
        .spec
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let _ = writeln!(
        s,
        "   scenario {} {}",
        r.case.spec.scenario.display(),
        knobs.join(" ")
    );
    s += &body;
    (s, t)
}

/// The whole report: every case, then the totals and the listed differences.
pub fn suite_report(results: &[CaseResult], known: &[Known]) -> (String, Totals) {
    let mut all = Totals::default();
    let mut s = String::new();
    for r in results {
        let (text, t) = case_report(r, known);
        s += &text;
        s.push('\n');
        all.checks += t.checks;
        all.agree += t.agree;
        all.differ += t.differ;
        all.known += t.known;
        all.stale += t.stale;
    }
    let _ = writeln!(s, "== cases");
    for r in results {
        let (_, t) = case_report(r, known);
        let what = if t.differ + t.stale > 0 {
            "DIFFER"
        } else if t.known > 0 {
            "agree except known differences"
        } else {
            "agree"
        };
        let _ = writeln!(s, "  {:<28} {what} ({} checks)", r.case.name, t.checks);
    }
    let _ = writeln!(
        s,
        "== total: {} cases, {} checks: {} agree, {} differ, {} known differences, {} stale entries => {}",
        results.len(),
        all.checks,
        all.agree,
        all.differ,
        all.known,
        all.stale,
        if all.pass() { "PASS" } else { "FAIL" }
    );
    (s, all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::known::{Pin, Range};

    fn check(id: &str, ok: bool, k: (&str, f64), r: (&str, f64)) -> Check {
        Check {
            id: id.into(),
            rule: "r".into(),
            kernel: k.0.into(),
            rvs: r.0.into(),
            values: Some((k.1, r.1)),
            ok,
        }
    }

    fn entry(id: &str, kernel: Pin, rvs: Pin) -> Known {
        Known {
            check: id.into(),
            kind: "rvs-bug".into(),
            reason: "x".into(),
            kernel,
            rvs,
        }
    }

    #[test]
    fn verdicts() {
        let k = vec![entry(
            "a/b",
            Pin::Text("0.50 (5 of 10)".into()),
            Pin::Range(Range { min: 0.0, max: 0.1 }),
        )];
        let (k5, r0) = (("0.50 (5 of 10)", 0.5), ("0.00 (0 of 10)", 0.0));
        assert_eq!(judge(&check("a/c", true, k5, k5), &k), Verdict::Agree);
        assert_eq!(judge(&check("a/c", false, k5, r0), &k), Verdict::Differ);
        // Listed, and both sides show the pinned values: known, does not fail.
        let v = judge(&check("a/b", false, k5, r0), &k);
        assert!(matches!(v, Verdict::Known(_)) && !v.fails());
        // Listed, but the difference changed on either side: a difference.
        let r2 = ("0.20 (2 of 10)", 0.2);
        let v = judge(&check("a/b", false, k5, r2), &k);
        assert!(matches!(v, Verdict::Changed(_)) && v.fails());
        let k6 = ("0.60 (6 of 10)", 0.6);
        assert!(matches!(
            judge(&check("a/b", false, k6, r0), &k),
            Verdict::Changed(_)
        ));
        // Listed, but the sides agree now: stale.
        let st = judge(&check("a/b", true, k5, k5), &k);
        assert!(matches!(st, Verdict::Stale(_)) && st.fails());
        // A range pin never matches a side whose data is missing.
        let mut miss = check("a/b", false, k5, ("MISSING on the rvs side: x", 0.0));
        miss.values = None;
        assert!(matches!(judge(&miss, &k), Verdict::Changed(_)));
    }

    #[test]
    fn a_changed_difference_is_counted_and_printed_as_one() {
        use crate::cases::{Case, Kind};
        use crate::runner::{RunSpec, Side, SideKind};
        let side = |kind| Side {
            kind,
            dir: "/x".into(),
            output: String::new(),
            files: Default::default(),
            rc: Some(0),
            wall: std::time::Duration::ZERO,
            log: String::new(),
        };
        let r = CaseResult {
            case: Case {
                name: "a".into(),
                kind: Kind::Timeouts,
                spec: RunSpec {
                    scenario: "/s.sh".into(),
                    env: Vec::new(),
                    udpflow: false,
                    timeout: std::time::Duration::ZERO,
                },
            },
            kernel: side(SideKind::Kernel),
            rvs: side(SideKind::Rvs),
            checks: vec![
                check("a/b", false, ("1", 1.0), ("3", 3.0)),
                check("a/c", false, ("1", 1.0), ("2", 2.0)),
                check("a/d", true, ("1", 1.0), ("1", 1.0)),
            ],
        };
        let two = Pin::Range(Range { min: 2.0, max: 2.0 });
        let one = Pin::Text("1".into());
        let known = vec![
            entry("a/b", one.clone(), two.clone()),
            entry("a/c", one.clone(), two.clone()),
            entry("a/d", one.clone(), two),
        ];
        let (text, t) = case_report(&r, &known);
        assert_eq!(
            (t.checks, t.agree, t.differ, t.known, t.stale),
            (3, 0, 1, 1, 1)
        );
        assert!(!t.pass());
        assert!(text.contains("but not with these values"), "{text}");
        assert!(text.contains("a number in [2, 2]"), "{text}");
    }
}
