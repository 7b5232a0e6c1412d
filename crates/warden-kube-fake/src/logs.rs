//! Container logs as the kubelet would serve them through `pods/log`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

/// One log line with the time the kubelet received it.
#[derive(Debug, Clone)]
pub(crate) struct LogLine {
    pub at: DateTime<Utc>,
    /// The text including its trailing `\n` when the line is complete.
    pub text: String,
}

/// Current and previous container instance logs.
#[derive(Debug, Default, Clone)]
pub(crate) struct ContainerLogs {
    pub current: Vec<LogLine>,
    pub previous: Option<Vec<LogLine>>,
}

/// Logs keyed by (namespace, pod uid, container).
#[derive(Debug, Default)]
pub(crate) struct Logs {
    pub by_container: HashMap<(String, String, String), ContainerLogs>,
}

impl Logs {
    /// Appends text; a chunk without a trailing newline continues on the next
    /// append, as a partial line does in a container runtime log.
    pub fn append(&mut self, ns: &str, pod_uid: &str, container: &str, text: &str) {
        let entry = self
            .by_container
            .entry((ns.to_string(), pod_uid.to_string(), container.to_string()))
            .or_default();
        let now = Utc::now();
        let mut rest = text;
        if let Some(last) = entry.current.last_mut()
            && !last.text.ends_with('\n')
        {
            let (head, tail) = split_first_line(rest);
            last.text.push_str(head);
            rest = tail;
        }
        while !rest.is_empty() {
            let (head, tail) = split_first_line(rest);
            entry.current.push(LogLine {
                at: now,
                text: head.to_string(),
            });
            rest = tail;
        }
    }

    /// Moves current logs to `previous`, as a container restart does.
    pub fn restart(&mut self, ns: &str, pod_uid: &str, container: &str) {
        let entry = self
            .by_container
            .entry((ns.to_string(), pod_uid.to_string(), container.to_string()))
            .or_default();
        entry.previous = Some(std::mem::take(&mut entry.current));
    }

    pub fn get(&self, ns: &str, pod_uid: &str, container: &str) -> Option<&ContainerLogs> {
        self.by_container
            .get(&(ns.to_string(), pod_uid.to_string(), container.to_string()))
    }
}

/// Splits after the first `\n` (the newline stays with the head).
fn split_first_line(s: &str) -> (&str, &str) {
    match s.find('\n') {
        Some(i) => (s.get(..=i).unwrap_or(s), s.get(i + 1..).unwrap_or("")),
        None => (s, ""),
    }
}

/// Query options of `pods/log`.
#[derive(Debug, Default, Clone)]
pub(crate) struct LogOptions {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub tail_lines: Option<usize>,
    pub since_time: Option<DateTime<Utc>>,
    pub since_seconds: Option<i64>,
    pub timestamps: bool,
    pub limit_bytes: Option<usize>,
}

impl LogOptions {
    /// Selects and renders lines for a non-follow request (or the initial
    /// part of a follow request).
    pub fn render(&self, lines: &[LogLine]) -> String {
        let cutoff = match (self.since_time, self.since_seconds) {
            (Some(t), _) => Some(t),
            (None, Some(s)) => Some(Utc::now() - chrono::Duration::seconds(s)),
            _ => None,
        };
        let selected: Vec<&LogLine> = lines
            .iter()
            .filter(|l| cutoff.is_none_or(|c| l.at >= c))
            .collect();
        let start = match self.tail_lines {
            Some(n) => selected.len().saturating_sub(n),
            None => 0,
        };
        let mut out = String::new();
        for line in selected.iter().skip(start) {
            out.push_str(&self.render_line(line));
        }
        out
    }

    pub fn render_line(&self, line: &LogLine) -> String {
        if self.timestamps {
            format!(
                "{} {}",
                line.at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                line.text
            )
        } else {
            line.text.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_lines_join_and_tail_counts_lines() {
        let mut logs = Logs::default();
        logs.append("ns", "p", "c", "a\nb");
        logs.append("ns", "p", "c", "c\nd\n");
        let l = logs.get("ns", "p", "c").unwrap();
        let texts: Vec<&str> = l.current.iter().map(|x| x.text.as_str()).collect();
        assert_eq!(texts, ["a\n", "bc\n", "d\n"]);
        let opts = LogOptions {
            tail_lines: Some(2),
            ..Default::default()
        };
        assert_eq!(opts.render(&l.current), "bc\nd\n");
    }
}
