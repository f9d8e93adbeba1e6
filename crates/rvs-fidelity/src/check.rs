//! One comparison between the kernel's run and rvs's, and the helpers that make them.
//!
//! Every helper takes each side's value as a [`Got`]: `Ok(value)`, or `Err(what that side
//! lacks)`. A check with a value missing on either side fails, whatever the other side shows,
//! and says which side lacks what: two sides that both lack the data do not agree.

use crate::runner::Side;

/// One side's value, or what that side lacks (`Err("no emitted file ts-Lnc.txt")`).
pub type Got<T> = Result<T, String>;

/// One comparison: what is compared (the rule, with its tolerance), what each side showed,
/// and whether they agree.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// `case/check`, the name known-differences.toml uses.
    pub id: String,
    /// What is compared and how (tolerance), for the report.
    pub rule: String,
    /// The kernel's side, as printed.
    pub kernel: String,
    /// rvs's side, as printed.
    pub rvs: String,
    /// The numbers compared (kernel, rvs), for checks that compare one number per side;
    /// known-differences.toml can pin them by range.
    pub values: Option<(f64, f64)>,
    /// The two sides agree under the rule.
    pub ok: bool,
}

/// A value as a check prints it, and the number it stands for (if it is one number).
pub trait Shown {
    /// The printed form.
    fn text(&self) -> String;
    /// The number compared, if any.
    fn num(&self) -> Option<f64> {
        None
    }
}

impl Shown for String {
    fn text(&self) -> String {
        self.clone()
    }
}

impl Shown for &str {
    fn text(&self) -> String {
        self.to_string()
    }
}

impl Shown for i64 {
    fn text(&self) -> String {
        self.to_string()
    }
    fn num(&self) -> Option<f64> {
        Some(*self as f64)
    }
}

/// A number with its own printed form (`first answer after 5012 ms`).
#[derive(Clone, Debug, PartialEq)]
pub struct Num {
    /// The number compared.
    pub v: f64,
    /// How it is printed.
    pub text: String,
}

impl Shown for Num {
    fn text(&self) -> String {
        self.text.clone()
    }
    fn num(&self) -> Option<f64> {
        Some(self.v)
    }
}

/// A value of any type with its printed form (`["ok", "refused"]   (attempted=12 ok=3 ...)`).
#[derive(Clone, Debug, PartialEq)]
pub struct Shows<T> {
    /// The value compared.
    pub v: T,
    /// How it is printed.
    pub text: String,
}

impl<T> Shown for Shows<T> {
    fn text(&self) -> String {
        self.text.clone()
    }
}

/// The text a check prints for a side that lacks its value.
pub fn missing_text(side: &str, why: &str) -> String {
    format!("MISSING on the {side} side: {why}")
}

/// An emitted file (`emit NAME ...` in a scenario) of one side: `Err` when the side did not
/// emit it or it is empty (every file the scenarios emit has content).
pub fn emitted<'a>(s: &'a Side, name: &str) -> Got<&'a str> {
    match s.files.get(name) {
        None => Err(format!("no emitted file {name}")),
        Some(t) if t.trim().is_empty() => Err(format!("the emitted file {name} is empty")),
        Some(t) => Ok(t.as_str()),
    }
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

    /// Records a check whose two sides are already printed (the exit status, whether there
    /// is output at all).
    pub fn push(&mut self, id: &str, rule: &str, kernel: String, rvs: String, ok: bool) {
        self.list.push(Check {
            id: format!("{}/{id}", self.case),
            rule: rule.to_string(),
            kernel,
            rvs,
            values: None,
            ok,
        });
    }

    /// Compares two values under `agree`; a side without its value fails the check.
    pub fn compare<T: Shown>(
        &mut self,
        id: &str,
        rule: &str,
        k: Got<T>,
        r: Got<T>,
        agree: impl FnOnce(&T, &T) -> bool,
    ) {
        let (kernel, rvs, values, ok) = match (&k, &r) {
            (Ok(a), Ok(b)) => (a.text(), b.text(), a.num().zip(b.num()), agree(a, b)),
            _ => {
                let show = |g: &Got<T>, side: &str| match g {
                    Ok(v) => v.text(),
                    Err(why) => missing_text(side, why),
                };
                (show(&k, "kernel"), show(&r, "rvs"), None, false)
            }
        };
        self.list.push(Check {
            id: format!("{}/{id}", self.case),
            rule: rule.to_string(),
            kernel,
            rvs,
            values,
            ok,
        });
    }

    /// Exact equality.
    pub fn eq<T: Shown + PartialEq>(&mut self, id: &str, rule: &str, k: Got<T>, r: Got<T>) {
        self.compare(id, rule, k, r, |a, b| a == b);
    }

    /// `|k - r| <= max(abs, rel * |k|)`.
    pub fn near(&mut self, id: &str, what: &str, k: Got<i64>, r: Got<i64>, abs: i64, rel: f64) {
        let tol = |k: i64| abs.max((rel * k.abs() as f64).round() as i64);
        let rule = match &k {
            Ok(kv) => format!(
                "{what}: equal within ±{} (max of {abs} and {:.0}% of the kernel's)",
                tol(*kv),
                rel * 100.0
            ),
            Err(_) => format!(
                "{what}: equal within max({abs}, {:.0}% of the kernel's)",
                rel * 100.0
            ),
        };
        self.compare(id, &rule, k, r, |a, b| (a - b).abs() <= tol(*a));
    }

    /// Both zero or both non-zero.
    pub fn zero_class(&mut self, id: &str, what: &str, k: Got<i64>, r: Got<i64>) {
        let rule = format!("{what}: both zero or both non-zero");
        self.compare(id, &rule, k, r, |a, b| (*a == 0) == (*b == 0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances() {
        let mut c = Checks::new("x");
        c.near("a", "pkts", Ok(600), Ok(601), 3, 0.02);
        c.near("b", "pkts", Ok(600), Ok(620), 3, 0.02);
        c.zero_class("c", "n", Ok(0), Ok(0));
        c.zero_class("d", "n", Ok(5), Ok(0));
        c.eq("e", "text", Ok("a"), Ok("a"));
        let oks: Vec<bool> = c.list.iter().map(|c| c.ok).collect();
        assert_eq!(oks, vec![true, false, true, false, true]);
        assert_eq!(c.list[0].id, "x/a");
        assert!(c.list[0].rule.contains("±12"));
        assert_eq!(c.list[0].values, Some((600.0, 601.0)));
        assert_eq!(c.list[4].values, None);
    }

    #[test]
    fn a_value_missing_on_either_side_fails_and_says_which() {
        let mut c = Checks::new("x");
        let gone = || Err::<i64, _>("no summary line".to_string());
        c.near("a", "n", gone(), gone(), 3, 0.0);
        c.near("b", "n", Ok(1), gone(), 3, 0.0);
        c.zero_class("c", "n", gone(), Ok(0));
        c.eq::<String>("d", "t", Err("no file f".into()), Err("no file f".into()));
        c.compare(
            "e",
            "t",
            Ok(Num {
                v: 1.0,
                text: "1".into(),
            }),
            gone_num(),
            |_, _| true,
        );
        assert!(c.list.iter().all(|x| !x.ok));
        assert_eq!(
            c.list[0].kernel,
            "MISSING on the kernel side: no summary line"
        );
        assert_eq!(c.list[0].rvs, "MISSING on the rvs side: no summary line");
        assert_eq!(c.list[1].kernel, "1");
        assert!(c.list[1].rvs.starts_with("MISSING on the rvs side"));
        assert!(c.list[2].kernel.starts_with("MISSING on the kernel side"));
        assert_eq!(c.list[2].rvs, "0");
        assert!(c.list.iter().all(|x| x.values.is_none()));
    }

    fn gone_num() -> Got<Num> {
        Err("no number".into())
    }
}
