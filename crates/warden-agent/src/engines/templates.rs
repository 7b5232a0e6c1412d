//! Log template mining: which kinds of log line are new or bursting?
//!
//! Individual log lines differ in ids, durations and addresses; what
//! matters is the *kind* of line. A small Drain-style miner (He et al.,
//! ICWS 2017) groups lines into templates: variable tokens are masked
//! first (numbers, hex, IPs, UUIDs), lines are bucketed by token count and
//! first token, and a line joins the most similar template in its bucket
//! when enough positions match, turning differing positions into `<*>`.
//!
//! Templates are then compared across windows per service: a template seen
//! in the incident window but never in the baseline is *new*; one whose rate
//! rose by a large factor is *bursting*. Either comes with an onset, the
//! first line of the burst.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use warden_core::telemetry::{LogLine, TimeRange};

use crate::bundle::level_rank;

/// The placeholder for a masked or merged variable token.
pub const WILDCARD: &str = "<*>";

fn is_ipv4(s: &str) -> bool {
    let host = match s.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => s,
    };
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_hex(s: &str) -> bool {
    if let Some(rest) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_hexdigit());
    }
    s.len() >= 6
        && s.bytes().all(|b| b.is_ascii_hexdigit())
        && s.bytes().any(|b| b.is_ascii_digit())
}

/// A number, optionally signed, with a decimal part and a short unit
/// (`30s`, `250ms`, `-1.5`, `99%`, `12/50`).
fn is_number(s: &str) -> bool {
    let digits_end = s
        .bytes()
        .position(|b| !(b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+' || b == b'/'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    num.bytes().any(|b| b.is_ascii_digit())
        && unit.len() <= 3
        && unit.bytes().all(|b| b.is_ascii_alphabetic() || b == b'%')
}

fn is_variable(s: &str) -> bool {
    !s.is_empty() && (is_number(s) || is_ipv4(s) || is_uuid(s) || is_hex(s))
}

/// Masks one whitespace-separated token, keeping surrounding punctuation
/// and `key=` prefixes so that `took=350ms,` becomes `took=<*>,`.
pub fn mask_token(token: &str) -> String {
    const EDGE: &[char] = &[
        '(', ')', '[', ']', '{', '}', '"', '\'', ',', ';', '.', ':', '!', '?',
    ];
    let core = token.trim_start_matches(EDGE);
    let lead = &token[..token.len() - core.len()];
    let inner = core.trim_end_matches(EDGE);
    let trail = &core[inner.len()..];
    let (key, value) = match inner.rsplit_once('=') {
        Some((k, v)) => (format!("{k}="), v),
        None => (String::new(), inner),
    };
    let masked = if is_variable(value) {
        WILDCARD.to_string()
    } else if let Some((stem, suffix)) = value.rsplit_once(['-', '_'])
        && !stem.is_empty()
        && is_variable(suffix)
    {
        // `conn-4821`, `pod_7f9c2a`: keep the stem, mask the id.
        format!("{stem}{}{WILDCARD}", &value[stem.len()..=stem.len()])
    } else {
        value.to_string()
    };
    format!("{lead}{key}{masked}{trail}")
}

/// The masked tokens of a message.
pub fn mask(message: &str) -> Vec<String> {
    message.split_whitespace().map(mask_token).collect()
}

/// Identifies a template within one miner.
pub type TemplateId = usize;

#[derive(Debug, Clone)]
struct Cluster {
    tokens: Vec<String>,
    size: u64,
}

/// A Drain-style online template miner.
#[derive(Debug, Clone)]
pub struct TemplateMiner {
    similarity: f64,
    clusters: Vec<Cluster>,
    buckets: HashMap<(usize, String), Vec<TemplateId>>,
}

impl TemplateMiner {
    /// `similarity`: the fraction of positions that must match for a line to
    /// join a template (Drain's `st`; 0.5 is its usual value).
    pub fn new(similarity: f64) -> Self {
        TemplateMiner {
            similarity,
            clusters: Vec::new(),
            buckets: HashMap::new(),
        }
    }

    /// Adds a message; returns the template it now belongs to.
    pub fn add(&mut self, message: &str) -> TemplateId {
        let tokens = mask(message);
        let first = match tokens.first() {
            Some(t) if !t.contains(WILDCARD) => t.clone(),
            _ => WILDCARD.to_string(),
        };
        let bucket = self.buckets.entry((tokens.len(), first)).or_default();
        let best = bucket
            .iter()
            .filter_map(|&id| {
                let cluster = self.clusters.get(id)?;
                let same = cluster
                    .tokens
                    .iter()
                    .zip(&tokens)
                    .filter(|(a, b)| a == b)
                    .count();
                let sim = if tokens.is_empty() {
                    1.0
                } else {
                    same as f64 / tokens.len() as f64
                };
                Some((id, sim))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((id, sim)) = best
            && sim >= self.similarity
            && let Some(cluster) = self.clusters.get_mut(id)
        {
            for (have, new) in cluster.tokens.iter_mut().zip(&tokens) {
                if have != new {
                    *have = WILDCARD.to_string();
                }
            }
            cluster.size += 1;
            return id;
        }
        let id = self.clusters.len();
        self.clusters.push(Cluster { tokens, size: 1 });
        bucket.push(id);
        id
    }

    /// The template text, tokens joined by spaces.
    pub fn template(&self, id: TemplateId) -> String {
        self.clusters
            .get(id)
            .map(|c| c.tokens.join(" "))
            .unwrap_or_default()
    }

    pub fn size(&self, id: TemplateId) -> u64 {
        self.clusters.get(id).map_or(0, |c| c.size)
    }

    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MiningConfig {
    pub similarity: f64,
    /// Lines in the incident window below which a template is ignored.
    pub min_count: u64,
    /// Rate increase (incident vs baseline, per minute) that makes a burst.
    pub burst_factor: f64,
}

impl Default for MiningConfig {
    fn default() -> Self {
        MiningConfig {
            similarity: 0.5,
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
    let mut miner = TemplateMiner::new(cfg.similarity);
    let assigned: Vec<TemplateId> = lines.iter().map(|l| miner.add(&l.message)).collect();

    #[derive(Default)]
    struct Tally<'a> {
        baseline: u64,
        incident: Vec<&'a LogLine>,
    }
    let mut tallies: BTreeMap<(&str, TemplateId), Tally<'_>> = BTreeMap::new();
    for (line, &id) in lines.iter().zip(&assigned) {
        let tally = tallies.entry((line.service.as_str(), id)).or_default();
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
            template: miner.template(id),
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

    #[test]
    fn variable_tokens_are_masked_and_words_kept() {
        assert_eq!(
            mask("conn to 10.0.3.7:5432 failed after 3000ms (attempt 2/5) id=9f8e7d6c5b"),
            vec![
                "conn", "to", "<*>", "failed", "after", "<*>", "(attempt", "<*>)", "id=<*>"
            ]
        );
        assert_eq!(mask_token("request-4821,"), "request-<*>,");
        assert_eq!(mask_token("123e4567-e89b-12d3-a456-426614174000"), "<*>");
        assert_eq!(mask_token("0xdeadbeef"), "<*>");
        assert_eq!(mask_token("orders"), "orders");
        assert_eq!(mask_token("v2"), "v2");
    }

    #[test]
    fn lines_differing_in_values_share_a_template() {
        let mut m = TemplateMiner::new(0.5);
        let a = m.add("timeout acquiring connection from pool orders after 5000 ms");
        let b = m.add("timeout acquiring connection from pool payments after 5000 ms");
        let c = m.add("user 42 logged in");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            m.template(a),
            "timeout acquiring connection from pool <*> after <*> ms"
        );
        assert_eq!(m.size(a), 2);
        assert_eq!(m.len(), 2);
    }

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
}
