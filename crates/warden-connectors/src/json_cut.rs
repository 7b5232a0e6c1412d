//! Making a cut-off JSON answer usable again.
//!
//! A response cut at the size limit ends mid-document. Rather than throw it
//! away, [`close_truncated`] goes back to the last comma separating two
//! complete elements of a container no deeper than `max_depth`, drops what
//! follows, and closes the containers still open. Choosing `max_depth`
//! chooses the unit kept whole: for a Prometheus matrix (`result` at depth
//! 3) only complete series survive; for Loki streams (`values` at depth 5)
//! every complete `[ts, line]` entry does.
//!
//! The scanner only tracks strings, escapes and brackets; it validates
//! nothing else, and the caller parses the result as usual.

/// Scans `bytes`, calling `on_comma(index, depth)` for each comma outside
/// strings; returns the stack of open containers at the end.
fn scan(bytes: &[u8], mut on_comma: impl FnMut(usize, usize)) -> Vec<u8> {
    let mut stack = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => stack.push(b),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => on_comma(i, stack.len()),
            _ => {}
        }
    }
    stack
}

/// The document cut back to whole elements at depth `max_depth` or less and
/// closed; `None` when no such cut point exists.
pub fn close_truncated(bytes: &[u8], max_depth: usize) -> Option<Vec<u8>> {
    let mut cut = None;
    scan(bytes, |i, depth| {
        if depth >= 1 && depth <= max_depth {
            cut = Some(i);
        }
    });
    let prefix = bytes.get(..cut?)?;
    let stack = scan(prefix, |_, _| {});
    let mut out = prefix.to_vec();
    for open in stack.iter().rev() {
        out.push(if *open == b'{' { b'}' } else { b']' });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn cut(s: &str, depth: usize) -> Value {
        serde_json::from_slice(&close_truncated(s.as_bytes(), depth).unwrap()).unwrap()
    }

    #[test]
    fn keeps_complete_entries_at_the_chosen_depth() {
        let doc = r#"{"data":{"result":[{"s":{"a":"1"},"values":[["1","x, ]"],["2","y"],["3","z"#;
        assert_eq!(
            cut(doc, 5),
            json!({"data":{"result":[{"s":{"a":"1"},"values":[["1","x, ]"],["2","y"]]}]}})
        );
    }

    #[test]
    fn keeps_only_whole_series_at_depth_three() {
        let doc =
            r#"{"data":{"result":[{"m":{"a":"1"},"values":[[1,"1"]]},{"m":{"a":"2"},"values":[[1,"#;
        assert_eq!(
            cut(doc, 3),
            json!({"data":{"result":[{"m":{"a":"1"},"values":[[1,"1"]]}]}})
        );
    }

    #[test]
    fn escaped_quotes_do_not_confuse_the_scanner() {
        let doc = r#"[["a \"quoted, thing\"", 1],["b"#;
        assert_eq!(cut(doc, 1), json!([["a \"quoted, thing\"", 1]]));
    }

    #[test]
    fn nothing_to_keep_is_none() {
        assert!(close_truncated(br#"{"data":{"result":[{"m":"#, 3).is_none());
    }
}
