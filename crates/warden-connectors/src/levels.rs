//! Log levels of lines that do not come with one.
//!
//! The agent ranks lines by `TRACE`..`FATAL`. Loki streams and container
//! logs carry the level in many shapes: a stream label, `level=warn`
//! (logfmt), `"level":"error"` (JSON), or a bare word near the start
//! (`2024-05-01T10:00:00Z ERROR ...`, `[WARN]`). [`detect`] looks for those in
//! that order and says `INFO` when it finds none.

/// Severity order of the agent's level names; an unknown name counts as INFO.
pub fn rank(level: &str) -> usize {
    ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
        .iter()
        .position(|l| l.eq_ignore_ascii_case(level))
        .unwrap_or(2)
}

/// The agent's name for a level word, if it is one.
pub fn normalise(word: &str) -> Option<&'static str> {
    let w = word.trim_matches(|c: char| !c.is_ascii_alphabetic());
    Some(match w.to_ascii_lowercase().as_str() {
        "trace" => "TRACE",
        "debug" | "dbg" => "DEBUG",
        "info" | "information" | "notice" => "INFO",
        "warn" | "warning" => "WARN",
        "error" | "err" => "ERROR",
        "fatal" | "critical" | "crit" | "panic" | "emerg" | "alert" => "FATAL",
        _ => return None,
    })
}

/// Value of `key=value` or `"key":"value"` in `line`, if present.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    for pattern in [
        format!("{key}="),
        format!("\"{key}\":\""),
        format!("\"{key}\": \""),
    ] {
        for (at, _) in line.match_indices(&pattern) {
            // Must start a token: `xlevel=` is not `level=`.
            let before = line.get(..at).and_then(|s| s.chars().last());
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let rest = line.get(at + pattern.len()..)?;
            let rest = rest.trim_start_matches('"');
            let end = rest
                .find(|c: char| c == '"' || c == ',' || c.is_whitespace())
                .unwrap_or(rest.len());
            return rest.get(..end);
        }
    }
    None
}

/// The level of a log line: see the module docs.
pub fn detect(line: &str) -> &'static str {
    for key in ["level", "severity", "lvl"] {
        if let Some(level) = field(line, key).and_then(normalise) {
            return level;
        }
    }
    line.split_whitespace()
        .take(4)
        .find_map(normalise)
        .unwrap_or("INFO")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_found_in_the_usual_shapes() {
        assert_eq!(detect("ts=1 level=warn msg=\"slow\""), "WARN");
        assert_eq!(detect(r#"{"ts":1,"level":"error","msg":"x"}"#), "ERROR");
        assert_eq!(detect("2024-05-01T10:00:00Z ERROR pool exhausted"), "ERROR");
        assert_eq!(detect("[WARN] retrying"), "WARN");
        assert_eq!(detect("panic: runtime error"), "FATAL");
        assert_eq!(detect("GET /health 200"), "INFO");
        // A level word late in the message is not the line's level.
        assert_eq!(detect("user a b c said error"), "INFO");
        assert_eq!(detect("xlevel=error level=debug"), "DEBUG");
    }
}
