//! The subset of popt's option scanner that ipvsadm relies on, reproduced so that argument
//! vectors are split exactly as ipvsadm 1.31 (linked with popt 1.19) splits them.
//!
//! Behaviours kept: options may appear anywhere (non-options are collected as leftover
//! arguments, popt does not stop at the first one); `--` makes everything after it a leftover;
//! long options need their exact name (no abbreviations) and take their value after `=` or as
//! the next word; a long option that takes no value silently ignores `=value`; a single dash
//! introduces a bundle of short options (`-Lnc`), where an option taking a value consumes the
//! rest of the bundle (`-t10.0.0.1:80`, `-p=60`) or else the next word; an optional value
//! (`-p`) is only taken from the next word when that word does not start with `-`; a required
//! value is taken from the next word whatever it is. Errors are "unknown option" and "missing
//! argument", and the option popt blames is always the whole argv word it last consumed.
//! Not reproduced: aliases and the `!#:+` argument expansion (ipvsadm defines no aliases).

/// Does an option take a value?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArgKind {
    /// No value.
    None,
    /// A value is required.
    Required,
    /// A value may follow (`POPT_ARGFLAG_OPTIONAL`).
    Optional,
}

/// One entry of the option table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OptDef<T: Copy> {
    pub long: &'static str,
    pub short: Option<u8>,
    pub arg: ArgKind,
    pub tag: T,
}

/// A popt error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PoptError {
    /// `POPT_ERROR_NOARG`.
    NoArg,
    /// `POPT_ERROR_BADOPT`.
    BadOpt,
}

impl PoptError {
    /// `poptStrerror`.
    pub fn text(self) -> &'static str {
        match self {
            PoptError::NoArg => "missing argument",
            PoptError::BadOpt => "unknown option",
        }
    }
}

/// What `poptGetNextOpt` returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Next<T> {
    /// An option and its value (if it takes one and one was given).
    Opt(T, Option<String>),
    /// No more options (-1).
    End,
    /// An error (< -1).
    Err(PoptError),
}

/// A scanning context over one argument vector (`argv[0]` is skipped).
pub(crate) struct Context<'a, T: Copy> {
    table: &'a [OptDef<T>],
    argv: &'a [String],
    next: usize,
    /// Rest of a short-option bundle: (argv index, byte offset).
    next_char: Option<(usize, usize)>,
    rest_leftover: bool,
    leftovers: Vec<String>,
    next_leftover: usize,
}

impl<'a, T: Copy> Context<'a, T> {
    pub fn new(table: &'a [OptDef<T>], argv: &'a [String]) -> Self {
        Context {
            table,
            argv,
            next: 1,
            next_char: None,
            rest_leftover: false,
            leftovers: Vec::new(),
            next_leftover: 0,
        }
    }

    /// `poptBadOption(con, POPT_BADOPTION_NOALIAS)`: the argv word last consumed.
    pub fn bad_option(&self) -> &str {
        self.next
            .checked_sub(1)
            .and_then(|i| self.argv.get(i))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// `poptGetArg`: the next leftover (non-option) argument.
    pub fn get_arg(&mut self) -> Option<String> {
        let a = self.leftovers.get(self.next_leftover).cloned();
        if a.is_some() {
            self.next_leftover += 1;
        }
        a
    }

    fn find_long(&self, name: &str) -> Option<&OptDef<T>> {
        self.table.iter().find(|o| o.long == name)
    }

    fn find_short(&self, c: u8) -> Option<&OptDef<T>> {
        self.table.iter().find(|o| o.short == Some(c))
    }

    /// `poptGetNextOpt`.
    pub fn next_opt(&mut self) -> Next<T> {
        loop {
            let mut long_arg: Option<String> = None;
            let mut opt: Option<OptDef<T>> = None;

            if self.next_char.is_none() {
                if self.next >= self.argv.len() {
                    return Next::End;
                }
                let idx = self.next;
                self.next += 1;
                let word = &self.argv[idx];
                let b = word.as_bytes();
                if self.rest_leftover || b.first() != Some(&b'-') || b.len() == 1 {
                    self.leftovers.push(word.clone());
                    continue;
                }
                if b == b"--" {
                    self.rest_leftover = true;
                    continue;
                }
                let (body, one_dash) = if b[1] == b'-' {
                    (&word[2..], false)
                } else {
                    (&word[1..], true)
                };
                let (name, value) = match body.find('=') {
                    Some(p) => (&body[..p], Some(body[p + 1..].to_string())),
                    None => (body, None),
                };
                // A single dash never matches a long option (none is marked ONEDASH).
                let found = if one_dash {
                    None
                } else {
                    self.find_long(name).copied()
                };
                match found {
                    Some(o) => {
                        opt = Some(o);
                        long_arg = value;
                    }
                    None if !one_dash => return Next::Err(PoptError::BadOpt),
                    None => self.next_char = Some((idx, 1)),
                }
            }

            if let Some((idx, off)) = self.next_char.take() {
                let b = self.argv[idx].as_bytes();
                // An empty rest (`-L=`) looks up the NUL character: unknown.
                let Some(&c) = b.get(off) else {
                    return Next::Err(PoptError::BadOpt);
                };
                let Some(o) = self.find_short(c).copied() else {
                    return Next::Err(PoptError::BadOpt);
                };
                opt = Some(o);
                let mut rest = off + 1;
                if rest < b.len() {
                    if b[rest] == b'=' {
                        rest += 1;
                    }
                    self.next_char = Some((idx, rest));
                }
            }

            let o = opt.expect("an option was found");
            let mut value = None;
            if o.arg != ArgKind::None {
                if let Some(v) = long_arg {
                    value = Some(v);
                } else if let Some((idx, off)) = self.next_char.take() {
                    // The rest of the bundle (possibly empty after a trailing '=').
                    value = Some(String::from_utf8_lossy(&self.argv[idx].as_bytes()[off..]).into());
                } else if self.next >= self.argv.len() {
                    if o.arg != ArgKind::Optional {
                        return Next::Err(PoptError::NoArg);
                    }
                } else if o.arg == ArgKind::Optional && self.argv[self.next].starts_with('-') {
                    // optional value not given
                } else {
                    value = Some(self.argv[self.next].clone());
                    self.next += 1;
                }
            }
            return Next::Opt(o.tag, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &[OptDef<char>] = &[
        OptDef {
            long: "list",
            short: Some(b'L'),
            arg: ArgKind::None,
            tag: 'L',
        },
        OptDef {
            long: "numeric",
            short: Some(b'n'),
            arg: ArgKind::None,
            tag: 'n',
        },
        OptDef {
            long: "tcp-service",
            short: Some(b't'),
            arg: ArgKind::Required,
            tag: 't',
        },
        OptDef {
            long: "persistent",
            short: Some(b'p'),
            arg: ArgKind::Optional,
            tag: 'p',
        },
    ];

    fn all(args: &[&str]) -> (Vec<Next<char>>, Vec<String>) {
        let argv: Vec<String> = std::iter::once("ipvsadm")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        let mut c = Context::new(T, &argv);
        let mut v = Vec::new();
        loop {
            let n = c.next_opt();
            let stop = !matches!(n, Next::Opt(..));
            v.push(n);
            if stop {
                break;
            }
        }
        let mut left = Vec::new();
        while let Some(a) = c.get_arg() {
            left.push(a);
        }
        (v, left)
    }

    #[test]
    fn bundles_and_values() {
        let (v, _) = all(&["-Lnt10.0.0.1:80", "-p", "-t", "-x"]);
        assert_eq!(
            v,
            vec![
                Next::Opt('L', None),
                Next::Opt('n', None),
                Next::Opt('t', Some("10.0.0.1:80".into())),
                Next::Opt('p', None),
                Next::Opt('t', Some("-x".into())),
                Next::End
            ]
        );
        let (v, left) = all(&["x", "--list=zzz", "--persistent=7", "--", "-L"]);
        assert_eq!(
            v,
            vec![
                Next::Opt('L', None),
                Next::Opt('p', Some("7".into())),
                Next::End
            ]
        );
        assert_eq!(left, vec!["x".to_string(), "-L".to_string()]);
        let (v, _) = all(&["-p=9", "--lis"]);
        assert_eq!(
            v,
            vec![
                Next::Opt('p', Some("9".into())),
                Next::Err(PoptError::BadOpt)
            ]
        );
        let (v, _) = all(&["-L=", "x"]);
        assert_eq!(v, vec![Next::Opt('L', None), Next::Err(PoptError::BadOpt)]);
        let (v, _) = all(&["-L", "-t"]);
        assert_eq!(v, vec![Next::Opt('L', None), Next::Err(PoptError::NoArg)]);
    }
}
