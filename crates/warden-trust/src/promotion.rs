//! Promotion is never automatic: it is a reviewable change to the
//! environment's phase in `warden.yaml`, produced as a unified diff for a
//! GitOps pull request. The diff touches only that one `phase:` line, so it
//! applies cleanly with `git apply` or `patch -p1`.

use warden_core::TrustPhase;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PromotionError {
    #[error("{file}: no top-level `environments:` list")]
    NoEnvironments { file: String },
    #[error("{file}: environment {environment:?} is not declared in `environments:`")]
    UnknownEnvironment { file: String, environment: String },
    #[error("{file}: environment {environment:?} has no `phase:` line")]
    NoPhase { file: String, environment: String },
}

const CONTEXT: usize = 3;

fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
        .unwrap_or(v)
}

/// `key: value` of a block-style line (after an optional `- `), without a
/// trailing comment.
fn key_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let t = line.trim_start();
    let t = t.strip_prefix("- ").unwrap_or(t).trim_start();
    let rest = t.strip_prefix(key)?.strip_prefix(':')?;
    let value = rest.split(" #").next().unwrap_or(rest);
    Some(unquote(value))
}

/// Replaces the value of `phase:` on `line`, keeping indentation, quoting
/// style and a trailing comment.
fn replace_phase(line: &str, to: TrustPhase) -> Option<String> {
    let at = line.find("phase:")?;
    let (head, tail) = line.split_at(at + "phase:".len());
    let value_start = tail.len() - tail.trim_start().len();
    let rest = &tail[value_start..];
    let end = rest
        .find(|c: char| c == ',' || c == '}' || c == '#' || c.is_whitespace())
        .unwrap_or(rest.len());
    let old = &rest[..end];
    let quote = match old.chars().next() {
        Some(q @ ('"' | '\'')) => q.to_string(),
        _ => String::new(),
    };
    Some(format!(
        "{head}{}{quote}{to}{quote}{}",
        &tail[..value_start],
        &rest[end..]
    ))
}

/// The unified diff that moves `environment` to `to` in the `warden.yaml`
/// text `text` (named `file` in the headers).
pub fn config_diff(
    file: &str,
    text: &str,
    environment: &str,
    to: TrustPhase,
) -> Result<String, PromotionError> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_end() == "environments:")
        .ok_or_else(|| PromotionError::NoEnvironments {
            file: file.to_string(),
        })?;
    // The list runs until the next top-level key.
    let end = lines
        .iter()
        .enumerate()
        .skip(start + 1)
        .find(|(_, l)| {
            l.chars()
                .next()
                .is_some_and(|c| !c.is_whitespace() && c != '-' && c != '#')
        })
        .map(|(i, _)| i)
        .unwrap_or(lines.len());
    let body: Vec<(usize, &str)> = lines
        .iter()
        .enumerate()
        .take(end)
        .skip(start + 1)
        .map(|(i, l)| (i, *l))
        .collect();
    // Split into items at each `- `; flow style `- {name: dev, phase: x}`
    // is one line.
    let mut items: Vec<Vec<(usize, &str)>> = Vec::new();
    for (i, l) in body {
        if l.trim_start().starts_with("- ") || l.trim_start() == "-" {
            items.push(vec![(i, l)]);
        } else if let Some(last) = items.last_mut() {
            last.push((i, l));
        }
    }
    let item = items
        .iter()
        .find(|item| {
            item.iter().any(|(_, l)| {
                key_value(l, "name") == Some(environment)
                    || flow_value(l, "name").as_deref() == Some(environment)
            })
        })
        .ok_or_else(|| PromotionError::UnknownEnvironment {
            file: file.to_string(),
            environment: environment.to_string(),
        })?;
    let no_phase = || PromotionError::NoPhase {
        file: file.to_string(),
        environment: environment.to_string(),
    };
    let (at, old) = item
        .iter()
        .find(|(_, l)| key_value(l, "phase").is_some() || flow_value(l, "phase").is_some())
        .copied()
        .ok_or_else(no_phase)?;
    let new = replace_phase(old, to).ok_or_else(no_phase)?;
    Ok(hunk(file, text, &lines, at, old, &new))
}

fn flow_value(line: &str, key: &str) -> Option<String> {
    let open = line.find('{')?;
    let close = line.rfind('}')?;
    let inner = line.get(open + 1..close)?;
    inner.split(',').find_map(|kv| {
        let (k, v) = kv.split_once(':')?;
        (k.trim() == key).then(|| unquote(v).to_string())
    })
}

fn hunk(file: &str, text: &str, lines: &[&str], at: usize, old: &str, new: &str) -> String {
    let first = at.saturating_sub(CONTEXT);
    let last = (at + CONTEXT).min(lines.len().saturating_sub(1));
    let count = last - first + 1;
    let no_newline = !text.ends_with('\n');
    let mut out = format!(
        "--- a/{file}\n+++ b/{file}\n@@ -{},{count} +{},{count} @@\n",
        first + 1,
        first + 1
    );
    for (i, l) in lines.iter().enumerate().take(last + 1).skip(first) {
        let eof = no_newline && i + 1 == lines.len();
        let marker = if eof {
            "\n\\ No newline at end of file"
        } else {
            ""
        };
        if i == at {
            out.push_str(&format!("-{old}{marker}\n+{new}{marker}\n"));
        } else {
            out.push_str(&format!(" {l}{marker}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "server:\n  listen: 127.0.0.1:7878\nenvironments:\n  - name: dev\n    phase: shadow\n  - name: prod\n    phase: shadow  # careful\nphases:\n  x: 1\n";

    #[test]
    fn the_diff_changes_only_the_environments_phase() {
        let d = config_diff("warden.yaml", YAML, "prod", TrustPhase::Assist).unwrap();
        assert!(
            d.contains("-    phase: shadow  # careful\n+    phase: assist  # careful\n"),
            "{d}"
        );
        assert!(
            d.starts_with("--- a/warden.yaml\n+++ b/warden.yaml\n@@ -4,6 +4,6 @@\n"),
            "{d}"
        );
        assert_eq!(
            d.lines()
                .filter(|l| l.starts_with('-') && !l.starts_with("---"))
                .count(),
            1
        );
    }

    #[test]
    fn flow_style_and_quotes_are_kept() {
        let y = "environments:\n- {name: \"dev\", phase: 'shadow'}\n";
        let d = config_diff("w.yaml", y, "dev", TrustPhase::Assist).unwrap();
        assert!(d.contains("+- {name: \"dev\", phase: 'assist'}"), "{d}");
    }

    #[test]
    fn unknown_environment_is_named() {
        let e = config_diff("w.yaml", YAML, "staging", TrustPhase::Assist).unwrap_err();
        assert!(e.to_string().contains("\"staging\""));
        let e = config_diff("w.yaml", "server: {}\n", "dev", TrustPhase::Assist).unwrap_err();
        assert!(matches!(e, PromotionError::NoEnvironments { .. }));
    }
}
