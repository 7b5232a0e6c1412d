//! The investigation's structured log: one JSON object a line.
//!
//! The job's standard output is the investigation's log (the runtime
//! captures it), so every step is written there as it happens and flushed at
//! once: when a job is killed at its deadline, what it did up to that moment
//! is still on record. A write error never stops an investigation; the
//! report matters more than its log.

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// Severity of a log event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Writes investigation events as JSON lines.
pub struct EventLog {
    investigation_id: String,
    out: Box<dyn Write + Send>,
}

impl EventLog {
    pub fn new(investigation_id: impl Into<String>, out: Box<dyn Write + Send>) -> Self {
        EventLog {
            investigation_id: investigation_id.into(),
            out,
        }
    }

    /// Events to the process's standard output.
    pub fn stdout(investigation_id: impl Into<String>) -> Self {
        EventLog::new(investigation_id, Box::new(std::io::stdout()))
    }

    /// Events into a shared buffer, to read back what was logged.
    pub fn capture(investigation_id: impl Into<String>) -> (Self, CapturedLog) {
        let captured = CapturedLog::default();
        let log = EventLog::new(investigation_id, Box::new(captured.clone()));
        (log, captured)
    }

    pub fn set_investigation_id(&mut self, id: impl Into<String>) {
        self.investigation_id = id.into();
    }

    /// Writes one event; `fields` (an object) are merged into the line.
    pub fn emit(&mut self, level: Level, event: &str, fields: Value) {
        let mut line = Map::new();
        line.insert(
            "ts".into(),
            json!(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        line.insert("level".into(), json!(level.as_str()));
        line.insert("investigation_id".into(), json!(self.investigation_id));
        line.insert("event".into(), json!(event));
        if let Value::Object(extra) = fields {
            for (k, v) in extra {
                line.entry(k).or_insert(v);
            }
        }
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        // A closed stdout must not stop the investigation.
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }

    pub fn info(&mut self, event: &str, fields: Value) {
        self.emit(Level::Info, event, fields);
    }

    pub fn warn(&mut self, event: &str, fields: Value) {
        self.emit(Level::Warn, event, fields);
    }

    pub fn error(&mut self, event: &str, fields: Value) {
        self.emit(Level::Error, event, fields);
    }
}

/// A clonable in-memory sink for [`EventLog::capture`].
#[derive(Clone, Default)]
pub struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl CapturedLog {
    /// Everything written so far.
    pub fn text(&self) -> String {
        match self.0.lock() {
            Ok(buf) => String::from_utf8_lossy(&buf).into_owned(),
            Err(poisoned) => String::from_utf8_lossy(&poisoned.into_inner()).into_owned(),
        }
    }

    /// Every line parsed as JSON; lines that are not JSON are skipped.
    pub fn events(&self) -> Vec<Value> {
        self.text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Write for CapturedLog {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut buf) => buf.extend_from_slice(data),
            Err(poisoned) => poisoned.into_inner().extend_from_slice(data),
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_is_one_json_line_with_the_common_fields() {
        let (mut log, captured) = EventLog::capture("inv-1");
        log.info("cycle_started", json!({"cycle": 2, "budget": 8}));
        log.warn("breaker_tripped", json!({}));
        let events = captured.events();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["event"], "cycle_started");
        assert_eq!(events[0]["investigation_id"], "inv-1");
        assert_eq!(events[0]["level"], "info");
        assert_eq!(events[0]["cycle"], 2);
        assert!(chrono::DateTime::parse_from_rfc3339(events[0]["ts"].as_str().unwrap()).is_ok());
        assert_eq!(events[1]["level"], "warn");
    }

    #[test]
    fn fields_cannot_overwrite_the_common_ones() {
        let (mut log, captured) = EventLog::capture("inv-1");
        log.info(
            "query",
            json!({"event": "forged", "investigation_id": "other"}),
        );
        let events = captured.events();
        assert_eq!(events[0]["event"], "query");
        assert_eq!(events[0]["investigation_id"], "inv-1");
    }
}
