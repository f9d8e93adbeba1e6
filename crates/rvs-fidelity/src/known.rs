//! `tests/fidelity/known-differences.toml`: reviewed differences between the kernel and rvs.
//!
//! ```toml
//! [[difference]]
//! check = "reply-same-client-port/flow-2-outcome"   # a check id (case/check) as the report prints it
//! kind = "rvs-bug"                                  # rvs-bug | environment
//! reason = "why it differs, and what would remove it"
//! ```
//!
//! A failing check listed here is reported as KNOWN (both sides still printed) and does not
//! fail the suite; a failing check not listed fails it; a listed check that now passes fails
//! it too ("remove the entry"), so the file stays honest. Entries whose case did not run
//! (e.g. the CI subset) are not judged.

use serde::Deserialize;

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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    difference: Vec<Known>,
}

/// Parses the file's text.
pub fn parse(text: &str) -> Result<Vec<Known>, String> {
    let f: File = toml::from_str(text).map_err(|e| e.to_string())?;
    for k in &f.difference {
        if !matches!(k.kind.as_str(), "rvs-bug" | "environment") {
            return Err(format!(
                "{}: kind must be rvs-bug or environment, not {:?}",
                k.check, k.kind
            ));
        }
        if k.reason.trim().is_empty() {
            return Err(format!("{}: an entry needs a reason", k.check));
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

    #[test]
    fn parses_and_validates() {
        let k =
            parse("[[difference]]\ncheck = \"a/b\"\nkind = \"rvs-bug\"\nreason = \"because\"\n")
                .unwrap();
        assert_eq!(k[0].check, "a/b");
        assert!(parse("[[difference]]\ncheck = \"a/b\"\nkind = \"x\"\nreason = \"r\"\n").is_err());
        assert!(
            parse("[[difference]]\ncheck = \"a/b\"\nkind = \"rvs-bug\"\nreason = \" \"\n").is_err()
        );
        assert!(parse("").unwrap().is_empty());
    }
}
