//! Label and field selectors, parsed from the `labelSelector` and `fieldSelector` query
//! parameters and matched against stored objects.
//!
//! The label-selector grammar is the one of `k8s.io/apimachinery/pkg/labels.Parse`:
//! comma-separated requirements that must all hold, each one of `key`, `!key`,
//! `key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`,
//! `key>N` and `key<N`. Keys and values are checked against the characters Kubernetes
//! allows but not against its length limits.
//!
//! Field selectors support what rvs needs and every kind supports on the real server:
//! `metadata.name` and `metadata.namespace` with `=`, `==` or `!=`. The real server's
//! backslash escapes in field-selector values are not supported.

use serde_json::Value;

/// One label requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelReq {
    /// `key`: the label is present.
    Exists(String),
    /// `!key`: the label is absent.
    NotExists(String),
    /// `key=value` / `key==value`, or `key in (values)`: present with one of the values.
    In(String, Vec<String>),
    /// `key!=value`, or `key notin (values)`: absent, or present with none of the values.
    NotIn(String, Vec<String>),
    /// `key>N`: present, an integer, and greater than N.
    Gt(String, i64),
    /// `key<N`: present, an integer, and less than N.
    Lt(String, i64),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector(Vec<LabelReq>);

impl LabelSelector {
    /// Parses a `labelSelector` query value; the error is the message of a 400 answer.
    pub(crate) fn parse(s: &str) -> Result<LabelSelector, String> {
        Parser {
            s: s.as_bytes(),
            pos: 0,
            whole: s,
        }
        .selector()
    }

    /// Whether the object's `metadata.labels` satisfy every requirement.
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
            LabelReq::In(k, vs) => get(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|v| vs.iter().all(|x| x != v)),
            LabelReq::Gt(k, n) => get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > *n),
            LabelReq::Lt(k, n) => get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *n),
        })
    }
}

/// A small recursive-descent parser over the selector's bytes (the grammar is ASCII; any
/// other byte is a syntax error).
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    whole: &'a str,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!(
            "unable to parse requirement: {what} at position {} in selector {:?}",
            self.pos, self.whole
        )
    }

    fn skip_ws(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// Consumes `tok` if the input continues with it.
    fn eat(&mut self, tok: &str) -> bool {
        let end = self.pos + tok.len();
        if self.s.get(self.pos..end) == Some(tok.as_bytes()) {
            self.pos = end;
            true
        } else {
            false
        }
    }

    /// A run of the bytes `ok` accepts (possibly empty).
    fn run(&mut self, ok: fn(u8) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(ok) {
            self.pos += 1;
        }
        // Only ASCII bytes are accepted, so this slice is valid UTF-8.
        String::from_utf8_lossy(&self.s[start..self.pos]).into_owned()
    }

    fn key(&mut self) -> Result<String, String> {
        let k = self.run(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
        if k.is_empty() {
            return Err(self.err("expected a label key"));
        }
        Ok(k)
    }

    fn value(&mut self) -> String {
        self.run(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    }

    fn integer(&mut self) -> Result<i64, String> {
        self.skip_ws();
        let start = self.pos;
        let v = self.run(|b| b.is_ascii_digit() || b == b'-');
        v.parse().map_err(|_| {
            self.pos = start;
            self.err("expected an integer")
        })
    }

    /// `( v1, v2, ... )`: at least one value, as Kubernetes requires.
    fn set(&mut self) -> Result<Vec<String>, String> {
        self.skip_ws();
        if !self.eat("(") {
            return Err(self.err("expected '('"));
        }
        self.skip_ws();
        if self.peek() == Some(b')') {
            return Err(self.err("for 'in' and 'notin', the set of values can't be empty"));
        }
        let mut vs = Vec::new();
        loop {
            self.skip_ws();
            vs.push(self.value());
            self.skip_ws();
            if self.eat(")") {
                return Ok(vs);
            }
            if !self.eat(",") {
                return Err(self.err("expected ',' or ')'"));
            }
        }
    }

    fn requirement(&mut self) -> Result<LabelReq, String> {
        self.skip_ws();
        if self.eat("!") {
            self.skip_ws();
            return Ok(LabelReq::NotExists(self.key()?));
        }
        let key = self.key()?;
        self.skip_ws();
        let req = match self.peek() {
            None | Some(b',') => LabelReq::Exists(key),
            Some(b'=') => {
                if !self.eat("==") {
                    self.eat("=");
                }
                self.skip_ws();
                LabelReq::In(key, vec![self.value()])
            }
            Some(b'!') => {
                if !self.eat("!=") {
                    return Err(self.err("expected '!='"));
                }
                self.skip_ws();
                LabelReq::NotIn(key, vec![self.value()])
            }
            Some(b'>') => {
                self.pos += 1;
                LabelReq::Gt(key, self.integer()?)
            }
            Some(b'<') => {
                self.pos += 1;
                LabelReq::Lt(key, self.integer()?)
            }
            Some(_) => {
                // `in` and `notin` must be followed by whitespace or '(' (checked by set()).
                if self.eat("notin") {
                    LabelReq::NotIn(key, self.set()?)
                } else if self.eat("in") {
                    LabelReq::In(key, self.set()?)
                } else {
                    return Err(self.err("expected an operator"));
                }
            }
        };
        Ok(req)
    }

    fn selector(&mut self) -> Result<LabelSelector, String> {
        let mut reqs = Vec::new();
        self.skip_ws();
        if self.peek().is_none() {
            return Ok(LabelSelector(reqs));
        }
        loop {
            reqs.push(self.requirement()?);
            self.skip_ws();
            match self.peek() {
                None => return Ok(LabelSelector(reqs)),
                Some(b',') => self.pos += 1,
                Some(_) => return Err(self.err("expected ','")),
            }
        }
    }
}

/// One field requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldReq {
    field: Field,
    value: String,
    equal: bool,
}

/// The fields a selector may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    Namespace,
}

/// A parsed field selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector(Vec<FieldReq>);

impl FieldSelector {
    /// Parses a `fieldSelector` query value; the error is the message of a 400 answer.
    pub(crate) fn parse(s: &str) -> Result<FieldSelector, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector(reqs));
        }
        for term in s.split(',') {
            let (lhs, rhs, equal) = if let Some((l, r)) = term.split_once("!=") {
                (l, r, false)
            } else if let Some((l, r)) = term.split_once("==") {
                (l, r, true)
            } else if let Some((l, r)) = term.split_once('=') {
                (l, r, true)
            } else {
                return Err(format!(
                    "invalid selector: {s:?}; can't understand {term:?}"
                ));
            };
            let field = match lhs.trim() {
                "metadata.name" => Field::Name,
                "metadata.namespace" => Field::Namespace,
                other => return Err(format!("field label not supported: {other}")),
            };
            reqs.push(FieldReq {
                field,
                value: rhs.trim().to_string(),
                equal,
            });
        }
        Ok(FieldSelector(reqs))
    }

    /// Whether the object satisfies every requirement (an absent namespace is "").
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|r| {
            let path = match r.field {
                Field::Name => "/metadata/name",
                Field::Namespace => "/metadata/namespace",
            };
            let v = obj.pointer(path).and_then(Value::as_str).unwrap_or("");
            (v == r.value) == r.equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "n", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn label_selectors() {
        let o = obj(json!({"a": "x", "b": "y", "n": "5"}));
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&o);
        assert!(m(""));
        assert!(m("a"));
        assert!(!m("!a"));
        assert!(m("!c,!d"));
        assert!(m("a=x"));
        assert!(m("a==x , b = y"));
        assert!(!m("a=z"));
        assert!(m("a!=z"));
        assert!(m("c!=z"));
        assert!(!m("a!=x"));
        assert!(m("a in (x, z)"));
        assert!(!m("a notin (x,z)"));
        assert!(m("c notin (x)"));
        assert!(m("n>4,n<6"));
        assert!(!m("n>5"));
        assert!(m(
            "service.kubernetes.io/x!=y,!service.kubernetes.io/headless"
        ));
        let bare = json!({"metadata": {"name": "n"}});
        assert!(LabelSelector::parse("!a").unwrap().matches(&bare));
        assert!(!LabelSelector::parse("a").unwrap().matches(&bare));
    }

    #[test]
    fn label_selector_errors() {
        for bad in [
            "a=x,", ",", "a b", "a in x", "a in (x", "a>b", "a=(x)", "!", "a!x", "é",
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn field_selectors() {
        let o = obj(json!({}));
        let m = |s: &str| FieldSelector::parse(s).unwrap().matches(&o);
        assert!(m(""));
        assert!(m("metadata.name=n"));
        assert!(m("metadata.name==n,metadata.namespace=ns"));
        assert!(!m("metadata.name!=n"));
        assert!(m("metadata.namespace!=other"));
        assert!(FieldSelector::parse("spec.clusterIP=1.2.3.4").is_err());
        assert!(FieldSelector::parse("metadata.name").is_err());
    }
}
