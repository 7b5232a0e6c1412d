//! Scoring against Loghub-2k labels with the Loghub-2.0 metrics
//! (Jiang et al., ISSTA 2024).
//!
//! - GA: share of messages whose predicted group is exactly their
//!   ground-truth group (same set of messages).
//! - PA: share of messages whose predicted template equals the ground-truth
//!   template after whitespace normalisation.
//! - FGA: F1 over groups; a ground-truth group is correctly grouped when a
//!   predicted group has exactly its messages.
//! - FTA: as FGA, but the predicted template text must also match.
//!
//! The layout is `<dir>/<System>/<System>_2k.log_structured_corrected.csv`
//! with `Content` and `EventTemplate` columns; mining reads `Content`, so
//! the score measures the miner, not the header parser.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::miner::{Miner, MinerConfig};

/// The nine systems shipped with Loghub-2k here.
pub const SYSTEMS: [&str; 9] = [
    "HDFS",
    "Hadoop",
    "Zookeeper",
    "HPC",
    "Linux",
    "HealthApp",
    "Proxifier",
    "OpenSSH",
    "OpenStack",
];

/// Errors while loading a labelled dataset.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("dataset directory {0} does not exist")]
    MissingDir(PathBuf),
    #[error("unknown system {name:?} (known: {known})")]
    UnknownSystem { name: String, known: String },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Malformed { path: PathBuf, reason: String },
}

/// The four accuracy metrics, each in `[0, 1]`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scores {
    pub ga: f64,
    pub pa: f64,
    pub fga: f64,
    pub fta: f64,
}

/// One system's result.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemReport {
    pub system: String,
    pub scores: Scores,
    pub lines: usize,
    pub lines_per_sec: f64,
}

/// A labelled message.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    pub content: String,
    pub template: String,
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Scores predicted `(group, template)` pairs against truth, message by
/// message (same order, same length).
pub fn score<G: Eq + std::hash::Hash + Clone>(
    truth: &[(String, String)],
    predicted: &[(G, String)],
) -> Scores {
    let n = truth.len().min(predicted.len());
    if n == 0 {
        return Scores::default();
    }
    let truth = truth.get(..n).unwrap_or_default();
    let predicted = predicted.get(..n).unwrap_or_default();
    let mut truth_groups: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut pred_groups: HashMap<&G, Vec<usize>> = HashMap::new();
    for (i, ((tg, _), (pg, _))) in truth.iter().zip(predicted).enumerate() {
        truth_groups.entry(tg.as_str()).or_default().push(i);
        pred_groups.entry(pg).or_default().push(i);
    }
    let mut grouped_msgs = 0usize;
    let mut grouped_templates = 0usize;
    let mut exact_templates = 0usize;
    for members in truth_groups.values() {
        let Some(first) = members.first().and_then(|&i| predicted.get(i)) else {
            continue;
        };
        let same_group = members
            .iter()
            .all(|&i| predicted.get(i).is_some_and(|(g, _)| *g == first.0))
            && pred_groups.get(&first.0).map(Vec::len) == Some(members.len());
        if same_group {
            grouped_msgs += members.len();
            grouped_templates += 1;
            let truth_text = members
                .first()
                .and_then(|&i| truth.get(i))
                .map(|t| normalise(&t.1));
            if truth_text == Some(normalise(&first.1)) {
                exact_templates += 1;
            }
        }
    }
    let parsed = truth
        .iter()
        .zip(predicted)
        .filter(|(t, p)| normalise(&t.1) == normalise(&p.1))
        .count();
    let f1 = |correct: usize| {
        let p = correct as f64 / pred_groups.len() as f64;
        let r = correct as f64 / truth_groups.len() as f64;
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    };
    Scores {
        ga: grouped_msgs as f64 / n as f64,
        pa: parsed as f64 / n as f64,
        fga: f1(grouped_templates),
        fta: f1(exact_templates),
    }
}

/// Splits CSV text (RFC 4180: quoted fields, doubled quotes, newlines in
/// quotes) into records.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                any = false;
            }
            c => field.push(c),
        }
    }
    if any {
        record.push(field);
        records.push(record);
    }
    records
}

/// Loads `(EventId, EventTemplate, Content)` rows of one system.
pub fn load_system(dir: &Path, system: &str) -> Result<Vec<(String, Labelled)>, EvalError> {
    let path = dir
        .join(system)
        .join(format!("{system}_2k.log_structured_corrected.csv"));
    let text = std::fs::read_to_string(&path).map_err(|source| EvalError::Read {
        path: path.clone(),
        source,
    })?;
    let mut rows = parse_csv(&text).into_iter();
    let header = rows.next().unwrap_or_default();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| EvalError::Malformed {
                path: path.clone(),
                reason: format!("no {name} column"),
            })
    };
    let (content, template) = (column("Content")?, column("EventTemplate")?);
    rows.filter(|r| !(r.len() == 1 && r.first().is_some_and(String::is_empty)))
        .enumerate()
        .map(|(i, row)| match (row.get(content), row.get(template)) {
            (Some(c), Some(t)) => Ok((
                t.clone(),
                Labelled {
                    content: c.clone(),
                    template: t.clone(),
                },
            )),
            _ => Err(EvalError::Malformed {
                path: path.clone(),
                reason: format!("row {} has {} fields", i + 2, row.len()),
            }),
        })
        .collect()
}

/// Mines one system's messages with `config` and scores the result.
pub fn evaluate_system(
    dir: &Path,
    system: &str,
    config: &MinerConfig,
) -> Result<SystemReport, EvalError> {
    let rows = load_system(dir, system)?;
    let mut miner = Miner::new(config.clone());
    let started = Instant::now();
    let ids: Vec<usize> = rows.iter().map(|(_, l)| miner.add(&l.content)).collect();
    let elapsed = started.elapsed().as_secs_f64();
    let predicted: Vec<(usize, String)> = ids
        .iter()
        .map(|&id| {
            let t = miner.template_of(id);
            (
                t.map_or(id, |t| t.id),
                t.map(|t| t.text.clone()).unwrap_or_default(),
            )
        })
        .collect();
    let truth: Vec<(String, String)> = rows
        .iter()
        .map(|(g, l)| (g.clone(), l.template.clone()))
        .collect();
    Ok(SystemReport {
        system: system.to_string(),
        scores: score(&truth, &predicted),
        lines: rows.len(),
        lines_per_sec: if elapsed > 0.0 {
            rows.len() as f64 / elapsed
        } else {
            0.0
        },
    })
}

/// Evaluates `systems` (all nine when empty) under `dir`.
pub fn evaluate(
    dir: &Path,
    systems: &[String],
    config: &MinerConfig,
) -> Result<Vec<SystemReport>, EvalError> {
    if !dir.is_dir() {
        return Err(EvalError::MissingDir(dir.to_path_buf()));
    }
    let chosen: Vec<String> = if systems.is_empty() {
        SYSTEMS.iter().map(|s| s.to_string()).collect()
    } else {
        systems.to_vec()
    };
    for name in &chosen {
        if !SYSTEMS.contains(&name.as_str()) {
            return Err(EvalError::UnknownSystem {
                name: name.clone(),
                known: SYSTEMS.join(","),
            });
        }
    }
    chosen
        .iter()
        .map(|s| evaluate_system(dir, s, config))
        .collect()
}

/// The mean of each metric and of throughput.
pub fn average(reports: &[SystemReport]) -> (Scores, f64) {
    let n = reports.len().max(1) as f64;
    let mut s = Scores::default();
    let mut lps = 0.0;
    for r in reports {
        s.ga += r.scores.ga / n;
        s.pa += r.scores.pa / n;
        s.fga += r.scores.fga / n;
        s.fta += r.scores.fta / n;
        lps += r.lines_per_sec / n;
    }
    (s, lps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth(rows: &[(&str, &str)]) -> Vec<(String, String)> {
        rows.iter()
            .map(|(g, t)| (g.to_string(), t.to_string()))
            .collect()
    }

    fn pred(rows: &[(u32, &str)]) -> Vec<(u32, String)> {
        rows.iter().map(|(g, t)| (*g, t.to_string())).collect()
    }

    #[test]
    fn a_perfect_parse_scores_one_everywhere() {
        let t = truth(&[("A", "open <*>"), ("A", "open <*>"), ("B", "close")]);
        let p = pred(&[(7, "open  <*>"), (7, "open <*>"), (9, "close")]);
        let s = score(&t, &p);
        assert_eq!((s.ga, s.pa, s.fga, s.fta), (1.0, 1.0, 1.0, 1.0));
    }

    #[test]
    fn merging_two_true_groups_loses_both() {
        // Truth: A={0,1}, B={2}, C={3}. Predicted: {0,1,2} and {3}.
        let t = truth(&[("A", "a <*>"), ("A", "a <*>"), ("B", "b"), ("C", "c")]);
        let p = pred(&[(1, "<*> <*>"), (1, "<*> <*>"), (1, "<*>"), (2, "c")]);
        let s = score(&t, &p);
        // Only C (1 message) is correctly grouped: GA = 1/4.
        assert_eq!(s.ga, 0.25);
        // Template strings equal for message 3 only: PA = 1/4.
        assert_eq!(s.pa, 0.25);
        // FGA: precision 1/2, recall 1/3, F1 = 2*(1/6)/(5/6) = 0.4.
        assert!((s.fga - 0.4).abs() < 1e-12);
        // C's text also matches, so FTA equals FGA here.
        assert!((s.fta - 0.4).abs() < 1e-12);
    }

    #[test]
    fn splitting_a_true_group_loses_it_and_wrong_text_only_costs_pa_and_fta() {
        // Truth: A={0,1,2}, B={3}. Predicted: {0,1}, {2}, {3 with wrong text}.
        let t = truth(&[
            ("A", "x <*>"),
            ("A", "x <*>"),
            ("A", "x <*>"),
            ("B", "y <*>"),
        ]);
        let p = pred(&[(1, "x <*>"), (1, "x <*>"), (2, "x 3"), (3, "y 4")]);
        let s = score(&t, &p);
        assert_eq!(s.ga, 0.25); // only message 3
        assert_eq!(s.pa, 0.5); // messages 0 and 1
        // FGA: 1 correct of 3 predicted, of 2 true: F1 = 2*(1/3)(1/2)/(5/6) = 0.4.
        assert!((s.fga - 0.4).abs() < 1e-12);
        assert_eq!(s.fta, 0.0);
    }

    #[test]
    fn csv_handles_quotes_commas_and_doubled_quotes() {
        let rows = parse_csv("a,b\n1,\"x, \"\"y\"\"\"\n2,z\n");
        assert_eq!(
            rows,
            vec![
                vec!["a".to_string(), "b".into()],
                vec!["1".into(), "x, \"y\"".into()],
                vec!["2".into(), "z".into()],
            ]
        );
    }
}
