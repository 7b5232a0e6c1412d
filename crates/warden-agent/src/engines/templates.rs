//! Log template mining: which kinds of log line are new or bursting?
//!
//! Individual log lines differ in ids, durations and addresses; what
//! matters is the *kind* of line. The lines of the investigation window go
//! through `warden-logmine`'s streaming Drain-class miner (the one `warden
//! logs mine` and `warden eval loghub` use), which masks variable fields and
//! groups lines into templates; templates it merges later are followed to
//! the template they joined.
//!
//! Templates are then compared across windows per service: a template seen
//! in the incident window but never in the baseline is *new*; one whose rate
//! (lines per minute) rose by `burst_factor` or more is *bursting*; the rest
//! are stable and not reported. Either comes with an onset, the first line
//! of the burst.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use warden_core::telemetry::{LogLine, TimeRange};
use warden_logmine::{Miner, MinerConfig, TemplateId};

use crate::bundle::level_rank;

/// The placeholder for a masked or merged variable token.
pub use warden_logmine::WILDCARD;

#[derive(Debug, Clone, PartialEq)]
pub struct MiningConfig {
    /// The miner's own configuration (one for every log source).
    pub miner: MinerConfig,
    /// Lines in the incident window below which a template is ignored.
    pub min_count: u64,
    /// Rate increase (incident vs baseline, per minute) that makes a burst.
    pub burst_factor: f64,
}

impl Default for MiningConfig {
    fn default() -> Self {
        MiningConfig {
            miner: MinerConfig::default(),
            min_count: 3,
            burst_factor: 5.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Novelty {
    /// Never seen in the baseline.
    New,
    /// Seen before, now at a much higher rate.
    Burst,
}

/// A template that changed behaviour in one service's log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateActivity {
    pub service: String,
    pub template: String,
    pub novelty: Novelty,
    /// The most severe level among its incident-window lines.
    pub level: String,
    pub baseline_count: u64,
    pub incident_count: u64,
    pub onset: DateTime<Utc>,
    /// The first line of the burst, as cited evidence (file line number).
    pub first_line: u64,
    pub example: String,
}

impl TemplateActivity {
    /// WARN or worse.
    pub fn is_problem(&self) -> bool {
        level_rank(&self.level) >= level_rank("WARN")
    }
}

fn minutes(range: TimeRange) -> f64 {
    ((range.end - range.start).num_seconds() as f64 / 60.0).max(0.0)
}

/// Mines `lines` and reports templates that are new or bursting in
/// `incident` compared with `baseline`, ordered by onset.
pub fn mine_activity(
    lines: &[LogLine],
    baseline: TimeRange,
    incident: TimeRange,
    cfg: &MiningConfig,
) -> Vec<TemplateActivity> {
    let mut miner = Miner::new(cfg.miner.clone());
    let assigned: Vec<TemplateId> = lines.iter().map(|l| miner.add(&l.message)).collect();
    // Templates merged after a line was added: count the line where its
    // template ended up.
    let live = |id: TemplateId| miner.template_of(id).map_or(id, |t| t.id);

    #[derive(Default)]
    struct Tally<'a> {
        baseline: u64,
        incident: Vec<&'a LogLine>,
    }
    let mut tallies: BTreeMap<(&str, TemplateId), Tally<'_>> = BTreeMap::new();
    for (line, &id) in lines.iter().zip(&assigned) {
        let tally = tallies
            .entry((line.service.as_str(), live(id)))
            .or_default();
        if baseline.contains(line.ts) {
            tally.baseline += 1;
        } else if incident.contains(line.ts) {
            tally.incident.push(line);
        }
    }

    let (base_minutes, incident_minutes) = (minutes(baseline), minutes(incident));
    let mut out = Vec::new();
    for ((service, id), mut tally) in tallies {
        let count = tally.incident.len() as u64;
        if count < cfg.min_count {
            continue;
        }
        tally.incident.sort_by_key(|l| (l.ts, l.line));
        let base_rate = if base_minutes > 0.0 {
            tally.baseline as f64 / base_minutes
        } else {
            0.0
        };
        let rate = if incident_minutes > 0.0 {
            count as f64 / incident_minutes
        } else {
            0.0
        };
        let novelty = if tally.baseline == 0 {
            Novelty::New
        } else if rate >= cfg.burst_factor * base_rate {
            Novelty::Burst
        } else {
            continue;
        };
        let first = match novelty {
            Novelty::New => tally.incident.first().copied(),
            Novelty::Burst => {
                burst_start(&tally.incident, base_rate, cfg).or(tally.incident.first().copied())
            }
        };
        let Some(first) = first else { continue };
        let level = tally
            .incident
            .iter()
            .map(|l| l.level.as_str())
            .max_by_key(|l| level_rank(l))
            .unwrap_or("INFO")
            .to_string();
        out.push(TemplateActivity {
            service: service.to_string(),
            template: miner
                .template_of(id)
                .map(|t| t.text.clone())
                .unwrap_or_default(),
            novelty,
            level,
            baseline_count: tally.baseline,
            incident_count: count,
            onset: first.ts,
            first_line: first.line,
            example: first.message.chars().take(240).collect(),
        });
    }
    out.sort_by(|a, b| (a.onset, &a.service).cmp(&(b.onset, &b.service)));
    out
}

/// The first line of the first minute whose count exceeds the baseline
/// rate by the burst factor.
fn burst_start<'a>(
    lines: &[&'a LogLine],
    base_rate: f64,
    cfg: &MiningConfig,
) -> Option<&'a LogLine> {
    let needed = (cfg.burst_factor * base_rate).max(2.0);
    let mut i = 0;
    while let Some(start) = lines.get(i) {
        let minute_end = start.ts + chrono::Duration::seconds(60);
        let in_minute = lines
            .get(i..)?
            .iter()
            .take_while(|l| l.ts < minute_end)
            .count();
        if in_minute as f64 >= needed {
            return Some(start);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn line(
        service: &str,
        minute: i64,
        second: i64,
        level: &str,
        message: &str,
        n: u64,
    ) -> LogLine {
        LogLine {
            service: service.into(),
            ts: Utc
                .timestamp_opt(1_700_000_000 + minute * 60 + second, 0)
                .unwrap(),
            level: level.into(),
            message: message.into(),
            line: n,
        }
    }

    #[test]
    fn new_and_bursting_templates_are_reported_with_their_onset() {
        let mut lines = Vec::new();
        let mut n = 0;
        let mut push = |l: &mut Vec<LogLine>, s, m, sec, lvl, msg: String| {
            n += 1;
            l.push(line(s, m, sec, lvl, &msg, n));
        };
        for minute in 0..20 {
            push(
                &mut lines,
                "api",
                minute,
                0,
                "INFO",
                format!("served request {minute} in 12 ms"),
            );
            if minute % 10 == 0 {
                push(
                    &mut lines,
                    "api",
                    minute,
                    5,
                    "WARN",
                    format!("slow query took {} ms", 900 + minute),
                );
            }
        }
        for minute in 12..20 {
            for s in 0..4 {
                push(
                    &mut lines,
                    "api",
                    minute,
                    10 + s,
                    "ERROR",
                    format!("timeout calling db after {} ms", 5000 + s),
                );
                push(
                    &mut lines,
                    "api",
                    minute,
                    20 + s,
                    "WARN",
                    format!("slow query took {} ms", 1000 + s),
                );
            }
        }
        let base = TimeRange {
            start: lines[0].ts,
            end: Utc.timestamp_opt(1_700_000_000 + 600, 0).unwrap(),
        };
        let inc = TimeRange {
            start: base.end,
            end: Utc.timestamp_opt(1_700_000_000 + 1200, 0).unwrap(),
        };
        let found = mine_activity(&lines, base, inc, &MiningConfig::default());
        let new = found.iter().find(|a| a.novelty == Novelty::New).unwrap();
        assert_eq!(new.template, "timeout calling db after <*> ms");
        assert_eq!(new.onset.timestamp(), 1_700_000_000 + 12 * 60 + 10);
        assert_eq!(new.incident_count, 32);
        assert_eq!(new.level, "ERROR");
        let burst = found.iter().find(|a| a.novelty == Novelty::Burst).unwrap();
        assert_eq!(burst.template, "slow query took <*> ms");
        assert_eq!(burst.onset.timestamp(), 1_700_000_000 + 12 * 60 + 20);
        // The steady INFO template is neither.
        assert_eq!(found.len(), 2);
    }

    /// Minute-by-minute lines of one service: `per_minute(minute)` lines of
    /// `message(minute, i)` each minute.
    fn stream(
        lines: &mut Vec<LogLine>,
        minutes: std::ops::Range<i64>,
        per_minute: impl Fn(i64) -> i64,
        level: &str,
        message: impl Fn(i64, i64) -> String,
    ) {
        for minute in minutes {
            for i in 0..per_minute(minute) {
                let n = lines.len() as u64 + 1;
                lines.push(line("api", minute, i % 60, level, &message(minute, i), n));
            }
        }
    }

    fn windows() -> (TimeRange, TimeRange) {
        let at = |m: i64| Utc.timestamp_opt(1_700_000_000 + m * 60, 0).unwrap();
        (
            TimeRange {
                start: at(0),
                end: at(30),
            },
            TimeRange {
                start: at(30),
                end: at(40),
            },
        )
    }

    #[test]
    fn a_template_only_in_the_incident_window_is_new() {
        let mut lines = Vec::new();
        stream(
            &mut lines,
            0..40,
            |_| 2,
            "INFO",
            |m, i| format!("GET /api/orders/{} 200 {}ms", m * 7 + i, 10 + i),
        );
        stream(
            &mut lines,
            33..40,
            |_| 1,
            "ERROR",
            |m, _| {
                format!(
                    "connection to 10.0.0.{m}:5432 refused after {} retries",
                    m % 3
                )
            },
        );
        lines.sort_by_key(|l| l.ts);
        let (base, inc) = windows();
        let found = mine_activity(&lines, base, inc, &MiningConfig::default());
        assert_eq!(found.len(), 1, "{found:#?}");
        let new = &found[0];
        assert_eq!(new.novelty, Novelty::New);
        assert_eq!(
            new.template,
            "connection to <*>:<*> refused after <*> retries"
        );
        assert_eq!(new.incident_count, 7);
        assert_eq!(new.baseline_count, 0);
        assert_eq!(new.onset.timestamp(), 1_700_000_000 + 33 * 60);
        assert!(new.is_problem());
    }

    #[test]
    fn a_template_at_ten_times_its_baseline_rate_is_bursting_and_stable_ones_are_not() {
        let mut lines = Vec::new();
        // Stable: 6 a minute throughout.
        stream(
            &mut lines,
            0..40,
            |_| 6,
            "INFO",
            |m, i| format!("served request {} in {} ms", m * 100 + i, 12 + i),
        );
        // Bursting: 1 a minute in the baseline, 10 a minute from minute 35.
        stream(
            &mut lines,
            0..40,
            |m| if m >= 35 { 10 } else { 1 },
            "WARN",
            |m, i| format!("slow query on table orders took {} ms", 900 + m + i),
        );
        // Up a little (1 → 2 a minute): below the burst factor.
        stream(
            &mut lines,
            0..40,
            |m| if m >= 30 { 2 } else { 1 },
            "WARN",
            |m, i| format!("cache miss ratio {}.{i}%", m % 9),
        );
        lines.sort_by_key(|l| l.ts);
        let (base, inc) = windows();
        let found = mine_activity(&lines, base, inc, &MiningConfig::default());
        assert_eq!(found.len(), 1, "{found:#?}");
        let burst = &found[0];
        assert_eq!(burst.novelty, Novelty::Burst);
        assert_eq!(burst.template, "slow query on table orders took <*> ms");
        assert_eq!(burst.baseline_count, 30);
        assert_eq!(burst.incident_count, 5 + 50);
        // The onset is where the rate jumped, not the window's start.
        assert_eq!(burst.onset.timestamp(), 1_700_000_000 + 35 * 60);
    }

    #[test]
    fn templates_merged_by_the_miner_are_counted_together() {
        // Lines whose variable part has a varying number of words join one
        // template in the miner; the tally follows the merge.
        let mut lines = Vec::new();
        stream(
            &mut lines,
            30..40,
            |_| 1,
            "ERROR",
            |m, _| {
                if m % 2 == 0 {
                    format!("lost leases {m} {} {} of worker pool", m + 1, m + 2)
                } else {
                    format!("lost leases {m} of worker pool")
                }
            },
        );
        let (base, inc) = windows();
        let found = mine_activity(&lines, base, inc, &MiningConfig::default());
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].incident_count, 10);
        assert_eq!(found[0].novelty, Novelty::New);
    }
}
