//! `ipvsadm -R`: rules read from standard input, one ipvsadm command per line.
//!
//! Tokenising follows ipvsadm's `config_stream.c`: a line is split on spaces, tabs and
//! carriage returns; every token equal to `ipvsadm` is dropped; a line left without tokens is
//! skipped. `#` starts no comment (ipvsadm's comment test looks at the separator character,
//! which is never `#`): a line such as `# saved rules` reaches the option parser, which
//! rejects it (with the "Try ..." hint, status 255) and so ends the restore. The
//! `ipvsadm-restore` wrapper some distributions ship drops lines starting with `#` first:
//! [`strip_comment_lines`] does the same. One quirk is kept: if the input ends with blanks
//! after the last token and no newline, that last line is dropped.
//!
//! Each line is then parsed like a command line. A parse error that makes ipvsadm `exit()`
//! (most of them: status 2) aborts the restore, leaving the earlier lines applied; a popt
//! error after the command (`-A --bogus`) only fails that line. A kernel error prints its
//! message and the restore goes on. The exit status is that of the last line.

use crate::args::{self, ArgError, Request};
use crate::resolve::Resolver;

/// What the caller did with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Done; the value is ipvsadm's result for the line (0, or -1 after a kernel error).
    Continue(i32),
    /// ipvsadm exits here with this status (`-h`, `-v`, a failed single-service listing).
    Exit(i32),
}

fn is_sep(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Reads one line's tokens as `config_stream_read` does; `None` ends the input.
fn next_line(input: &[u8], pos: &mut usize) -> Option<Vec<String>> {
    let mut tokens = Vec::new();
    loop {
        if *pos >= input.len() {
            break;
        }
        if is_sep(input[*pos]) {
            // No token here: skip blanks up to the end of the line.
            loop {
                let &c = input.get(*pos)?;
                *pos += 1;
                match c {
                    b'\n' => return Some(tokens),
                    b' ' | b'\t' | b'\r' => {}
                    _ => {
                        *pos -= 1;
                        break;
                    }
                }
            }
            continue;
        }
        let start = *pos;
        while *pos < input.len() && !is_sep(input[*pos]) {
            *pos += 1;
        }
        let token = String::from_utf8_lossy(&input[start..*pos]).into_owned();
        let mut newline = false;
        if let Some(&t) = input.get(*pos) {
            *pos += 1;
            newline = t == b'\n';
        }
        if token != "ipvsadm" {
            tokens.push(token);
        }
        if newline {
            return Some(tokens);
        }
    }
    if tokens.is_empty() {
        None
    } else {
        Some(tokens)
    }
}

/// The token lists ipvsadm would parse, line by line (lines without tokens included, as
/// empty lists).
pub fn tokenize(input: &[u8]) -> Vec<Vec<String>> {
    let mut pos = 0;
    let mut v = Vec::new();
    while let Some(t) = next_line(input, &mut pos) {
        v.push(t);
    }
    v
}

/// Drops lines whose first character is `#` (what a `grep -v '^#'` in a restore wrapper does).
pub fn strip_comment_lines(input: &str) -> String {
    input
        .split_inclusive('\n')
        .filter(|l| !l.starts_with('#'))
        .collect()
}

/// Runs a restore: each line becomes a [`Request`] handed to `apply`, each refused line an
/// [`ArgError`] handed to `report`. Returns ipvsadm's exit status.
pub fn restore(
    input: &[u8],
    program: &str,
    names: &dyn Resolver,
    apply: &mut dyn FnMut(Request) -> Flow,
    report: &mut dyn FnMut(&ArgError),
) -> i32 {
    let mut result = 0i32;
    let mut pos = 0;
    while let Some(tokens) = next_line(input, &mut pos) {
        if tokens.is_empty() {
            continue;
        }
        let mut argv = Vec::with_capacity(tokens.len() + 1);
        argv.push(program.to_string());
        argv.extend(tokens);
        match args::parse(&argv, names) {
            Err(e) => {
                report(&e);
                if e.fatal {
                    return e.status;
                }
                result = -1;
            }
            Ok(Request::Restore) => {
                // ipvsadm refuses a nested restore with the "Try ..." hint.
                let e = ArgError {
                    message: format!(
                        "Try `{program} -h' or '{program} --help' for more information.\n"
                    ),
                    status: 255,
                    fatal: true,
                };
                report(&e);
                return e.status;
            }
            Ok(req) => match apply(req) {
                Flow::Continue(r) => result = r,
                Flow::Exit(code) => return code,
            },
        }
    }
    exit_status(result)
}

/// A C `int` result as a process exit status.
pub(crate) fn exit_status(result: i32) -> i32 {
    result & 0xff
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Vec<Vec<String>> {
        tokenize(s.as_bytes())
    }

    #[test]
    fn config_stream_rules() {
        assert_eq!(
            t("ipvsadm -A  -t 1.2.3.4:80\r\n\n  \t\n-C"),
            vec![
                vec!["-A".to_string(), "-t".into(), "1.2.3.4:80".into()],
                vec![],
                vec![],
                vec!["-C".into()],
            ]
        );
        assert_eq!(t("# x\n"), vec![vec!["#".to_string(), "x".into()]]);
        // Trailing blanks and no newline at the end: the last line is lost.
        assert_eq!(t("-C\n-Z \t"), vec![vec!["-C".to_string()]]);
        assert_eq!(t("ipvsadm"), Vec::<Vec<String>>::new());
        assert_eq!(strip_comment_lines("# a\n-C\n #b\n"), "-C\n #b\n");
    }
}
