//! One comparison between the kernel's run and rvs's, and the helpers that make them.

/// One comparison: what is compared (the rule, with its tolerance), what each side showed,
/// and whether they agree.
#[derive(Clone, Debug)]
pub struct Check {
    /// `case/check`, the name known-differences.toml uses.
    pub id: String,
    /// What is compared and how (tolerance), for the report.
    pub rule: String,
    /// The kernel's side, as printed.
    pub kernel: String,
    /// rvs's side, as printed.
    pub rvs: String,
    /// The two sides agree under the rule.
    pub ok: bool,
}

/// The checks of one case, with the case's name in front of every id.
#[derive(Debug)]
pub struct Checks {
    case: String,
    /// The checks so far.
    pub list: Vec<Check>,
}

impl Checks {
    /// No checks yet, for case `case`.
    pub fn new(case: &str) -> Checks {
        Checks {
            case: case.to_string(),
            list: Vec::new(),
        }
    }

    /// Records a check.
    pub fn push(&mut self, id: &str, rule: &str, kernel: String, rvs: String, ok: bool) {
        self.list.push(Check {
            id: format!("{}/{id}", self.case),
            rule: rule.to_string(),
            kernel,
            rvs,
            ok,
        });
    }

    /// Exact equality of two printable values.
    pub fn eq<T: PartialEq + std::fmt::Display>(&mut self, id: &str, rule: &str, k: T, r: T) {
        let ok = k == r;
        self.push(id, rule, k.to_string(), r.to_string(), ok);
    }

    /// `|k - r| <= max(abs, rel * |k|)`.
    pub fn near(&mut self, id: &str, what: &str, k: i64, r: i64, abs: i64, rel: f64) {
        let tol = abs.max((rel * k.abs() as f64).round() as i64);
        let rule = format!(
            "{what}: equal within ±{tol} (max of {abs} and {:.0}%)",
            rel * 100.0
        );
        self.push(
            id,
            &rule,
            k.to_string(),
            r.to_string(),
            (k - r).abs() <= tol,
        );
    }

    /// Both zero or both non-zero.
    pub fn zero_class(&mut self, id: &str, what: &str, k: i64, r: i64) {
        let rule = format!("{what}: both zero or both non-zero");
        self.push(
            id,
            &rule,
            k.to_string(),
            r.to_string(),
            (k == 0) == (r == 0),
        );
    }

    /// A check that could not be made because one side lacks the data: always a failure.
    pub fn missing(&mut self, id: &str, what: &str, k: Option<String>, r: Option<String>) {
        let show = |v: Option<String>| v.unwrap_or_else(|| "(missing from the output)".into());
        self.push(
            id,
            &format!("{what}: present on both sides"),
            show(k),
            show(r),
            false,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances() {
        let mut c = Checks::new("x");
        c.near("a", "pkts", 600, 601, 3, 0.02);
        c.near("b", "pkts", 600, 620, 3, 0.02);
        c.zero_class("c", "n", 0, 0);
        c.zero_class("d", "n", 5, 0);
        c.eq("e", "text", "a", "a");
        let oks: Vec<bool> = c.list.iter().map(|c| c.ok).collect();
        assert_eq!(oks, vec![true, false, true, false, true]);
        assert_eq!(c.list[0].id, "x/a");
        assert!(c.list[0].rule.contains("±12"));
    }
}
