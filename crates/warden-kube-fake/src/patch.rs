//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902).
//!
//! Strategic merge patch and server-side apply are served as merge patch:
//! lists are replaced wholesale instead of merged by key, and apply does not
//! track field managers. Tests that depend on list merging by key will see
//! the difference.

use serde_json::Value;

/// Applies an RFC 7386 merge patch in place.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Applies an RFC 6902 JSON patch; the error names the failing operation.
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("a JSON patch must be an array of operations")?;
    for (i, op) in ops.iter().enumerate() {
        let name = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or(format!("operation {i}: missing \"op\""))?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or(format!("operation {i}: missing \"path\""))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or(format!("operation {i}: missing \"value\""))
        };
        match name {
            "add" => add(target, path, value()?)?,
            "remove" => {
                remove(target, path)?;
            }
            "replace" => {
                remove(target, path)?;
                add(target, path, value()?)?;
            }
            "test" => {
                if target.pointer(path) != Some(&value()?) {
                    return Err(format!("operation {i}: test failed at {path}"));
                }
            }
            "move" | "copy" => {
                let from = op
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or(format!("operation {i}: missing \"from\""))?;
                let v = if name == "move" {
                    remove(target, from)?
                } else {
                    target
                        .pointer(from)
                        .cloned()
                        .ok_or(format!("operation {i}: no value at {from}"))?
                };
                add(target, path, v)?;
            }
            other => return Err(format!("operation {i}: unknown op {other:?}")),
        }
    }
    Ok(())
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_parent(path: &str) -> Result<(&str, String), String> {
    let idx = path
        .rfind('/')
        .ok_or(format!("invalid JSON pointer {path:?}"))?;
    let parent = path.get(..idx).unwrap_or("");
    let last = unescape(path.get(idx + 1..).unwrap_or(""));
    Ok((parent, last))
}

fn add(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, last) = split_parent(path)?;
    let container = target
        .pointer_mut(parent)
        .ok_or(format!("no parent for {path}"))?;
    match container {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i: usize = last
                .parse()
                .map_err(|_| format!("bad array index in {path}"))?;
            if i > a.len() {
                return Err(format!("index out of range in {path}"));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("parent of {path} is not a container")),
    }
}

fn remove(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_parent(path)?;
    let container = target
        .pointer_mut(parent)
        .ok_or(format!("no value at {path}"))?;
    match container {
        Value::Object(m) => m.remove(&last).ok_or(format!("no value at {path}")),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("bad array index in {path}"))?;
            if i >= a.len() {
                return Err(format!("index out of range in {path}"));
            }
            Ok(a.remove(i))
        }
        _ => Err(format!("no value at {path}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}, "l": [3]}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
    }

    #[test]
    fn json_patch_ops() {
        let mut t = json!({"spec": {"replicas": 1, "list": [1, 2]}});
        json_patch(
            &mut t,
            &json!([
                {"op": "replace", "path": "/spec/replicas", "value": 3},
                {"op": "add", "path": "/spec/list/-", "value": 9},
                {"op": "remove", "path": "/spec/list/0"},
                {"op": "test", "path": "/spec/replicas", "value": 3}
            ]),
        )
        .unwrap();
        assert_eq!(t, json!({"spec": {"replicas": 3, "list": [2, 9]}}));
        assert!(
            json_patch(
                &mut t,
                &json!([{"op": "test", "path": "/spec/replicas", "value": 4}])
            )
            .is_err()
        );
    }
}
