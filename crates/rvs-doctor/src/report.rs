//! The report: findings, severities, exit codes, and the human and JSON renderings.

use crate::kernel::{KernelInfo, KernelJudgement};
use crate::tree::InputError;
use serde::Serialize;
use std::fmt;
use std::io::{self, Write};

/// How bad a finding is. Ordered: `Ok < Info < Warning < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Checked; the hazard is not present.
    Ok,
    /// Worth knowing; no action required (also: "cannot tell, and it does not matter here").
    Info,
    /// A hazard that can hurt during a rolling update, or a hazard that cannot be ruled out
    /// ("cannot tell").
    Warning,
    /// Traffic to dead pods or 1 s connect stalls are likely with this configuration.
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier, e.g. `reuse-sticky-terminating` (the same id is used whatever the
    /// severity, including `ok`).
    pub id: &'static str,
    /// Severity.
    pub severity: Severity,
    /// One line.
    pub title: String,
    /// What was read, as `file: value` strings.
    pub evidence: Vec<String>,
    /// Why it matters, with the Kubernetes issue or kernel commit.
    pub why: String,
    /// What to do (empty when nothing needs doing).
    pub fix: String,
    /// What `why` rests on, for a reader without rvs's sources: issues (`kubernetes#81775`),
    /// kernel commits, kernel source files and functions, the kernel's documentation, and
    /// rvs's own measurements (`docs/kernel-6.1-incident.md`).
    pub references: Vec<String>,
}

/// The kernel part of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelSection {
    /// What the release string and `/proc/version` say, if readable.
    pub info: Option<KernelInfo>,
    /// Which relevant changes this kernel carries.
    pub judgement: KernelJudgement,
}

/// The whole audit result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The root that was read.
    pub root: String,
    /// Kernel facts.
    pub kernel: KernelSection,
    /// Findings, worst first.
    pub findings: Vec<Finding>,
    /// Files that exist but could not be read or parsed (each forces exit code 3).
    pub input_errors: Vec<InputError>,
    /// The worst finding severity.
    pub worst: Severity,
    /// The exit code `run` returns for this report.
    pub exit_code: i32,
}

/// Exit code: nothing worse than `info`.
pub const EXIT_OK: i32 = 0;
/// Exit code: at least one `warning`, no `critical`.
pub const EXIT_WARNING: i32 = 1;
/// Exit code: at least one `critical`.
pub const EXIT_CRITICAL: i32 = 2;
/// Exit code: the tree (or a kube-proxy input) could not be read or parsed, or the report could
/// not be written. Takes precedence over 0/1/2: the audit is incomplete.
pub const EXIT_INPUT_ERROR: i32 = 3;

/// The exit code for a worst severity, when every input was readable.
pub fn exit_code_for(worst: Severity) -> i32 {
    match worst {
        Severity::Ok | Severity::Info => EXIT_OK,
        Severity::Warning => EXIT_WARNING,
        Severity::Critical => EXIT_CRITICAL,
    }
}

impl Report {
    /// Builds a report: sorts findings (worst first, stable otherwise) and computes the worst
    /// severity and exit code.
    pub fn new(
        root: String,
        kernel: KernelSection,
        mut findings: Vec<Finding>,
        input_errors: Vec<InputError>,
    ) -> Report {
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let worst = findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Ok);
        let exit_code = if input_errors.is_empty() {
            exit_code_for(worst)
        } else {
            EXIT_INPUT_ERROR
        };
        Report {
            root,
            kernel,
            findings,
            input_errors,
            worst,
            exit_code,
        }
    }

    /// The finding with this id, if any.
    pub fn finding(&self, id: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.id == id)
    }

    /// Writes the report as pretty JSON.
    pub fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, self).map_err(io::Error::other)?;
        writeln!(out)
    }

    /// Writes the report for a terminal: aligned, wrapped at [`WIDTH`] columns, no colours.
    pub fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "rvs doctor: kernel IPVS rolling-update audit (read-only)"
        )?;
        write_wrapped(out, "Root:     ", &self.root)?;
        let kernel = match &self.kernel.info {
            Some(k) => k.describe(),
            None => "unknown (no readable /proc/sys/kernel/osrelease)".to_string(),
        };
        write_wrapped(out, "Kernel:   ", &kernel)?;
        let count = |s: Severity| self.findings.iter().filter(|f| f.severity == s).count();
        let summary = format!(
            "{} critical, {} warning, {} info, {} ok{}; exit code {}",
            count(Severity::Critical),
            count(Severity::Warning),
            count(Severity::Info),
            count(Severity::Ok),
            if self.input_errors.is_empty() {
                String::new()
            } else {
                format!(", {} unreadable input(s)", self.input_errors.len())
            },
            self.exit_code
        );
        write_wrapped(out, "Result:   ", &summary)?;
        if !self.input_errors.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "Could not read (the checks that need these files say \"cannot tell\"):"
            )?;
            for e in &self.input_errors {
                write_wrapped(out, "  ", &format!("{}: {}", e.path, e.error))?;
            }
        }
        for f in self.findings.iter().filter(|f| f.severity != Severity::Ok) {
            writeln!(out)?;
            let head = format!(
                "[{}] {}: {}",
                f.severity.to_string().to_uppercase(),
                f.id,
                f.title
            );
            write_hanging(out, "", 2, &head)?;
            for (i, e) in f.evidence.iter().enumerate() {
                let label = if i == 0 {
                    "  Evidence: "
                } else {
                    "            "
                };
                write_wrapped(out, label, e)?;
            }
            write_wrapped(out, "  Why:      ", &f.why)?;
            if !f.fix.is_empty() {
                write_wrapped(out, "  Fix:      ", &f.fix)?;
            }
            if !f.references.is_empty() {
                write_wrapped(out, "  Refs:     ", &f.references.join(", "))?;
            }
        }
        let oks: Vec<&Finding> = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Ok)
            .collect();
        if !oks.is_empty() {
            writeln!(out)?;
            writeln!(out, "Checked and fine:")?;
            for f in oks {
                write_wrapped(out, "  [OK] ", &format!("{}: {}", f.id, f.title))?;
            }
        }
        Ok(())
    }
}

/// Line width of the human report.
pub const WIDTH: usize = 100;

/// Writes `text` after `label`, wrapped at [`WIDTH`] with a hanging indent of the label's width.
fn write_wrapped(out: &mut dyn Write, label: &str, text: &str) -> io::Result<()> {
    write_hanging(out, label, label.chars().count(), text)
}

/// Writes `text` after `label`, wrapped at [`WIDTH`]; continuation lines are indented by
/// `indent` columns.
fn write_hanging(out: &mut dyn Write, label: &str, indent: usize, text: &str) -> io::Result<()> {
    let avail = WIDTH
        .saturating_sub(indent.max(label.chars().count()))
        .max(20);
    let mut first = true;
    for line in wrap(text, avail) {
        if first {
            writeln!(out, "{label}{line}")?;
            first = false;
        } else {
            writeln!(out, "{:indent$}{line}", "")?;
        }
    }
    if first {
        writeln!(out, "{}", label.trim_end())?;
    }
    Ok(())
}

/// Greedy word wrap; words longer than `width` are put on a line of their own.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let wlen = word.chars().count();
        let clen = cur.chars().count();
        if clen > 0 && clen + 1 + wlen > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping() {
        let w = wrap("aaa bbb ccc ddd", 7);
        assert_eq!(w, vec!["aaa bbb", "ccc ddd"]);
        assert_eq!(wrap("", 10), Vec::<String>::new());
        assert_eq!(wrap("abcdefghijkl x", 5), vec!["abcdefghijkl", "x"]);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code_for(Severity::Ok), 0);
        assert_eq!(exit_code_for(Severity::Info), 0);
        assert_eq!(exit_code_for(Severity::Warning), 1);
        assert_eq!(exit_code_for(Severity::Critical), 2);
        assert!(Severity::Critical > Severity::Warning && Severity::Info > Severity::Ok);
    }
}
