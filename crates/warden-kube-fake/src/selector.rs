//! Label and field selectors with the real server's grammar and semantics.
//!
//! Label selectors: `k=v`, `k==v`, `k!=v` (also matches objects without
//! `k`), `k in (a,b)`, `k notin (a,b)` (also matches objects without `k`),
//! `k` (exists), `!k` (does not exist), `k>n`, `k<n`, joined by `,` (AND).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::status::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelSelector {
    reqs: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub fn parse(input: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top_level(input)? {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(part)?);
        }
        Ok(LabelSelector { reqs })
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.reqs.iter().all(|r| {
            let v = labels.get(&r.key);
            match &r.op {
                Op::Eq(want) => v == Some(want),
                Op::NotEq(want) => v != Some(want),
                Op::In(set) => v.is_some_and(|v| set.contains(v)),
                Op::NotIn(set) => v.is_none_or(|v| !set.contains(v)),
                Op::Exists => v.is_some(),
                Op::NotExists => v.is_none(),
                Op::Gt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|x| x > *n),
                Op::Lt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|x| x < *n),
            }
        })
    }

    /// Whether the object's `metadata.labels` satisfy the selector.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.matches(&labels_of(obj))
    }
}

/// `metadata.labels` as a map (non-string values are ignored).
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Splits on commas that are not inside `( )`.
fn split_top_level(input: &str) -> Result<Vec<&str>, ApiError> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "unable to parse requirement: unbalanced ')' in {input:?}"
                    ))
                })?;
            }
            ',' if depth == 0 => {
                out.push(input.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(ApiError::bad_request(format!(
            "unable to parse requirement: unclosed '(' in {input:?}"
        )));
    }
    out.push(input.get(start..).unwrap_or(""));
    Ok(out)
}

fn parse_requirement(part: &str) -> Result<Requirement, ApiError> {
    let bad =
        |why: &str| ApiError::bad_request(format!("unable to parse requirement: {why}: {part:?}"));
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        validate_key(key).map_err(|e| bad(&e))?;
        return Ok(Requirement {
            key: key.into(),
            op: Op::NotExists,
        });
    }
    // Set-based forms: `key in (a,b)` / `key notin (a,b)`.
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    if let [key, rest] = words.as_slice() {
        let rest = rest.trim_start();
        for (word, is_in) in [("in", true), ("notin", false)] {
            if let Some(list) = rest.strip_prefix(word) {
                let list = list.trim();
                let inner = list
                    .strip_prefix('(')
                    .and_then(|l| l.strip_suffix(')'))
                    .ok_or_else(|| bad("expected '(' values ')'"))?;
                let values: Vec<String> = inner
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect();
                if values.is_empty() && is_in {
                    return Err(bad("for 'in' operator, values set can't be empty"));
                }
                for v in &values {
                    validate_value(v).map_err(|e| bad(&e))?;
                }
                validate_key(key).map_err(|e| bad(&e))?;
                let op = if is_in {
                    Op::In(values)
                } else {
                    Op::NotIn(values)
                };
                return Ok(Requirement {
                    key: key.to_string(),
                    op,
                });
            }
        }
    }
    for (sym, kind) in [("==", 0), ("!=", 1), ("=", 0), (">", 2), ("<", 3)] {
        if let Some((key, value)) = part.split_once(sym) {
            let key = key.trim();
            let value = value.trim();
            validate_key(key).map_err(|e| bad(&e))?;
            let op = match kind {
                0 => {
                    validate_value(value).map_err(|e| bad(&e))?;
                    Op::Eq(value.into())
                }
                1 => {
                    validate_value(value).map_err(|e| bad(&e))?;
                    Op::NotEq(value.into())
                }
                2 => Op::Gt(value.parse().map_err(|_| bad("for 'gt', 'lt' operators, exactly one value is required and it must be an integer"))?),
                _ => Op::Lt(value.parse().map_err(|_| bad("for 'gt', 'lt' operators, exactly one value is required and it must be an integer"))?),
            };
            return Ok(Requirement {
                key: key.into(),
                op,
            });
        }
    }
    let key = part.trim();
    validate_key(key).map_err(|e| bad(&e))?;
    Ok(Requirement {
        key: key.into(),
        op: Op::Exists,
    })
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

fn validate_key(key: &str) -> Result<(), String> {
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty()
                || prefix.len() > 253
                || !prefix
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            {
                return Err(format!("invalid label key prefix {prefix:?}"));
            }
            name
        }
        None => key,
    };
    if name.is_empty() || name.len() > 63 || !name.chars().all(is_name_char) {
        return Err(format!("invalid label key {key:?}"));
    }
    Ok(())
}

fn validate_value(value: &str) -> Result<(), String> {
    if value.len() > 63 || !value.chars().all(is_name_char) {
        return Err(format!("invalid label value {value:?}"));
    }
    Ok(())
}

/// A parsed field selector (`metadata.name=x,status.phase!=Running`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses `fieldSelector`, rejecting field labels the kind does not
    /// support, as the real server does.
    pub fn parse(input: &str, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in input.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (key, eq, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                )));
            };
            let key = key.trim();
            if key != "metadata.name" && key != "metadata.namespace" && !allowed.contains(&key) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {key}"
                )));
            }
            reqs.push((key.to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector { reqs })
    }

    /// Whether the object satisfies every requirement. Missing fields compare
    /// as the empty string.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(key, eq, want)| {
            let pointer = format!("/{}", key.replace('.', "/"));
            let got = match obj.pointer(&pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (got == *want) == *eq
        })
    }

    /// The exact `metadata.name` asked for, if any (lets watches skip work).
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn equality_and_inequality_forms() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        assert!(LabelSelector::parse("app=web").unwrap().matches(&l));
        assert!(LabelSelector::parse("app==web").unwrap().matches(&l));
        assert!(!LabelSelector::parse("app!=web").unwrap().matches(&l));
        assert!(LabelSelector::parse("missing!=x").unwrap().matches(&l));
        assert!(
            LabelSelector::parse("app=web,tier=front")
                .unwrap()
                .matches(&l)
        );
        assert!(
            !LabelSelector::parse("app=web,tier=back")
                .unwrap()
                .matches(&l)
        );
    }

    #[test]
    fn set_forms_and_existence() {
        let l = labels(&[("env", "prod")]);
        assert!(
            LabelSelector::parse("env in (prod, staging)")
                .unwrap()
                .matches(&l)
        );
        assert!(
            !LabelSelector::parse("env notin (prod)")
                .unwrap()
                .matches(&l)
        );
        assert!(
            LabelSelector::parse("other notin (prod)")
                .unwrap()
                .matches(&l)
        );
        assert!(!LabelSelector::parse("other in (prod)").unwrap().matches(&l));
        assert!(LabelSelector::parse("env").unwrap().matches(&l));
        assert!(!LabelSelector::parse("!env").unwrap().matches(&l));
        assert!(
            LabelSelector::parse("!other,env in (prod),env")
                .unwrap()
                .matches(&l)
        );
    }

    #[test]
    fn numeric_comparisons() {
        let l = labels(&[("n", "5")]);
        assert!(LabelSelector::parse("n>3").unwrap().matches(&l));
        assert!(!LabelSelector::parse("n<3").unwrap().matches(&l));
    }

    #[test]
    fn malformed_selectors_are_rejected() {
        for bad in [
            "env in prod",
            "env in ()",
            "a=b c",
            "env in (a",
            "=x",
            "a b=c",
        ] {
            assert!(
                LabelSelector::parse(bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn field_selector_checks_supported_labels() {
        let pod = serde_json::json!({"metadata": {"name": "p"}, "status": {"phase": "Running"}});
        let fs = FieldSelector::parse("metadata.name=p,status.phase!=Failed", &["status.phase"])
            .unwrap();
        assert!(fs.matches_object(&pod));
        assert!(FieldSelector::parse("spec.foo=x", &[]).is_err());
    }
}
