//! `tests/fidelity/known-differences.toml`: reviewed differences between the kernel and rvs,
//! each pinned to the values it was reviewed with.
//!
//! ```toml
//! [[difference]]
//! check = "incident-drop/drop-reuse0-nodest0/main/failure-share"   # a check id as the report prints it
//! kind = "rvs-bug"                     # rvs-bug | environment
//! reason = "why it differs, and what would remove it"
//! kernel = { min = 0.30, max = 0.60 }  # what the kernel side may show: a range (inclusive) of
//! rvs = { min = 0.0, max = 0.0 }       # the number a one-number check compares, or
//! # kernel = "exact text"              # the side's text exactly as the report prints it
//! ```
//!
//! A failing check listed here whose two sides both match their pins is reported as KNOWN
//! (both sides still printed) and does not fail the suite. A failing check listed here whose
//! sides do not match the pins fails it (the difference grew or changed: review it again and
//! update the entry). A failing check not listed fails it; a listed check that now passes fails
//! it too ("remove the entry"), so the file stays honest. Entries whose case did not run (e.g.
//! the CI subset) are not judged.

use std::fmt;

use serde::Deserialize;

/// A number range, inclusive.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Smallest accepted value.
    pub min: f64,
    /// Largest accepted value.
    pub max: f64,
}

/// What one side of a listed difference may show.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Pin {
    /// The side's text exactly as the report prints it (trailing white space ignored).
    Text(String),
    /// For a check that compares one number per side: that number, within the range.
    Range(Range),
}

impl Pin {
    /// Whether a side that printed `text` (and compared the number `num`, if the check
    /// compares one) matches.
    pub fn matches(&self, text: &str, num: Option<f64>) -> bool {
        match self {
            Pin::Text(t) => t.trim_end() == text.trim_end(),
            Pin::Range(r) => num.is_some_and(|v| r.min <= v && v <= r.max),
        }
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pin::Text(t) => write!(f, "{t:?}"),
            Pin::Range(r) => write!(f, "a number in [{}, {}]", r.min, r.max),
        }
    }
}

/// One accepted difference.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Known {
    /// The check id (`case/check`).
    pub check: String,
    /// `rvs-bug` (rvs is wrong, found and not yet fixed) or `environment` (the two sides
    /// cannot be made equal by rvs, e.g. a difference of the client machines).
    pub kind: String,
    /// Why, and what would remove it.
    pub reason: String,
    /// What the kernel side may show.
    pub kernel: Pin,
    /// What the rvs side may show.
    pub rvs: Pin,
}

impl Known {
    /// Whether a differing check shows the pinned values on both sides.
    pub fn matches(&self, c: &crate::check::Check) -> bool {
        self.kernel.matches(&c.kernel, c.values.map(|v| v.0))
            && self.rvs.matches(&c.rvs, c.values.map(|v| v.1))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    difference: Vec<Known>,
}

/// Parses the file's text.
pub fn parse(text: &str) -> Result<Vec<Known>, String> {
    let f: File = toml::from_str(text).map_err(|e| {
        format!("{e} (every entry needs check, kind, reason, and kernel and rvs: a text or {{ min, max }})")
    })?;
    let mut seen = std::collections::BTreeSet::new();
    for k in &f.difference {
        if !k.check.contains('/') {
            return Err(format!("{:?}: a check id is case/check", k.check));
        }
        if !seen.insert(k.check.as_str()) {
            return Err(format!("{}: listed twice", k.check));
        }
        if !matches!(k.kind.as_str(), "rvs-bug" | "environment") {
            return Err(format!(
                "{}: kind must be rvs-bug or environment, not {:?}",
                k.check, k.kind
            ));
        }
        if k.reason.trim().is_empty() {
            return Err(format!("{}: an entry needs a reason", k.check));
        }
        for (side, p) in [("kernel", &k.kernel), ("rvs", &k.rvs)] {
            let bad = matches!(p, Pin::Range(r) if !(r.min.is_finite() && r.max.is_finite() && r.min <= r.max));
            if bad {
                return Err(format!("{}: {side} range needs finite min <= max", k.check));
            }
        }
    }
    Ok(f.difference)
}

/// Reads the file (a missing file is an empty list).
pub fn load(path: &std::path::Path) -> Result<Vec<Known>, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => parse(&t).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: &str =
        "[[difference]]\ncheck = \"a/b\"\nkind = \"rvs-bug\"\nreason = \"because\"\n";

    #[test]
    fn parses_and_validates() {
        let k = parse(&format!(
            "{ENTRY}kernel = \"rs1=3\"\nrvs = {{ min = 0, max = 2.5 }}\n"
        ))
        .unwrap();
        assert_eq!(k[0].check, "a/b");
        assert_eq!(k[0].kernel, Pin::Text("rs1=3".into()));
        assert_eq!(k[0].rvs, Pin::Range(Range { min: 0.0, max: 2.5 }));
        let pins = "kernel = \"x\"\nrvs = \"y\"\n";
        assert!(parse(&format!("{ENTRY}{pins}")).is_ok());
        // Pins are required on both sides.
        assert!(parse(ENTRY).is_err());
        assert!(parse(&format!("{ENTRY}kernel = \"x\"\n")).is_err());
        // A bad kind, an empty reason, a reversed or odd range, a duplicate, a bad id.
        let bad_kind = format!("{ENTRY}{pins}").replace("rvs-bug", "x");
        assert!(parse(&bad_kind).is_err());
        let no_reason = format!("{ENTRY}{pins}").replace("because", " ");
        assert!(parse(&no_reason).is_err());
        assert!(
            parse(&format!(
                "{ENTRY}kernel = {{ min = 2, max = 1 }}\nrvs = \"y\"\n"
            ))
            .is_err()
        );
        assert!(
            parse(&format!(
                "{ENTRY}kernel = {{ min = 1, max = 2, x = 3 }}\nrvs = \"y\"\n"
            ))
            .is_err()
        );
        assert!(parse(&format!("{ENTRY}{pins}{ENTRY}{pins}")).is_err());
        assert!(parse(&format!("{ENTRY}{pins}").replace("a/b", "ab")).is_err());
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn the_repository_file_parses() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fidelity/known-differences.toml");
        assert!(path.is_file());
        load(&path).unwrap();
    }

    #[test]
    fn pins_match_text_exactly_and_numbers_by_range() {
        let t = Pin::Text("rs1=3 rs2=4\n".into());
        assert!(t.matches("rs1=3 rs2=4", None));
        assert!(!t.matches("rs1=3 rs2=5", None));
        let r = Pin::Range(Range { min: 0.3, max: 0.6 });
        assert!(r.matches("0.45 (9 of 20)", Some(0.45)));
        assert!(r.matches("", Some(0.6)));
        assert!(!r.matches("0.65 (13 of 20)", Some(0.65)));
        // A range cannot match a side that has no number (a text check, or missing data).
        assert!(!r.matches("0.45", None));
    }
}
