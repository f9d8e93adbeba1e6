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
    /// They differ, as listed in known-differences.toml.
    Known(Known),
    /// Listed in known-differences.toml, but they agree now: the suite fails until the
    /// entry is removed.
    Stale(Known),
}

impl Verdict {
    /// Whether this verdict fails the suite.
    pub fn fails(&self) -> bool {
        matches!(self, Verdict::Differ | Verdict::Stale(_))
    }
}

/// The verdict of one check.
pub fn judge(c: &Check, known: &[Known]) -> Verdict {
    match (c.ok, known.iter().find(|k| k.check == c.id)) {
        (true, None) => Verdict::Agree,
        (true, Some(k)) => Verdict::Stale(k.clone()),
        (false, None) => Verdict::Differ,
        (false, Some(k)) => Verdict::Known(k.clone()),
    }
}

/// Totals over some cases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Checks.
    pub checks: usize,
    /// Agreeing.
    pub agree: usize,
    /// Differing, not listed.
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
            Verdict::Differ | Verdict::Known(_) | Verdict::Stale(_) => {
                let tag = match &v {
                    Verdict::Differ => {
                        t.differ += 1;
                        "DIFFER".to_string()
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

    fn check(id: &str, ok: bool) -> Check {
        Check {
            id: id.into(),
            rule: "r".into(),
            kernel: "k".into(),
            rvs: "v".into(),
            values: None,
            ok,
        }
    }

    #[test]
    fn verdicts() {
        let k = vec![Known {
            check: "a/b".into(),
            kind: "rvs-bug".into(),
            reason: "x".into(),
        }];
        assert_eq!(judge(&check("a/c", true), &k), Verdict::Agree);
        assert_eq!(judge(&check("a/c", false), &k), Verdict::Differ);
        assert!(matches!(judge(&check("a/b", false), &k), Verdict::Known(_)));
        let st = judge(&check("a/b", true), &k);
        assert!(matches!(st, Verdict::Stale(_)) && st.fails());
    }
}
