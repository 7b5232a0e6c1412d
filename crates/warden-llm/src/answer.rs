//! Reading the model's structured answers, leniently.
//!
//! Models wrap JSON in prose or code fences, send numbers as strings, use
//! synonyms for enum values and forget optional fields. Each answer is
//! therefore located in the text, then read field by field with defaults;
//! an entry that cannot be used (a hypothesis without a statement, a
//! finding without a summary) is skipped, and only an answer with nothing
//! usable is an error, which the reasoner turns into one retry and then a
//! fallback (see [`crate::reasoner`]).

use chrono::{DateTime, Utc};
use serde_json::Value;
use warden_core::Domain;
use warden_core::ports::{Assessment, Bearing, Finding, ProposedHypothesis};
use warden_core::report::{HypothesisStatus, Remediation};

/// Longest text kept from any answer field.
const MAX_TEXT: usize = 600;
/// Most hypotheses or refinements taken from one answer.
pub const MAX_HYPOTHESES: usize = 6;

/// Remediation actions a proposal may name; anything else is dropped. The
/// same vocabulary as the built-in reasoner and the action gate.
pub const ACTIONS: [&str; 8] = [
    "revert_change",
    "restart_pod",
    "rollout_restart",
    "scale",
    "scale_deployment",
    "rollback",
    "rollback_deployment",
    "escalate",
];

/// The JSON value in a model's answer: the whole text, a fenced block, or
/// the outermost `{...}` (or `[...]`) span.
pub fn extract_json(text: &str) -> Option<Value> {
    let trimmed = text.trim();
    if let Ok(v) = serde_json::from_str::<Value>(trimmed)
        && (v.is_object() || v.is_array())
    {
        return Some(v);
    }
    if let Some(start) = trimmed.find("```") {
        let rest = trimmed.get(start + 3..).unwrap_or_default();
        let body_start = rest.find('\n').map_or(0, |n| n + 1);
        let body = rest.get(body_start..).unwrap_or_default();
        if let Some(end) = body.find("```")
            && let Ok(v) = serde_json::from_str::<Value>(body.get(..end).unwrap_or_default().trim())
        {
            return Some(v);
        }
    }
    for (open, close) in [('{', '}'), ('[', ']')] {
        if let (Some(a), Some(b)) = (trimmed.find(open), trimmed.rfind(close))
            && a < b
            && let Some(span) = trimmed.get(a..=b)
            && let Ok(v) = serde_json::from_str::<Value>(span)
        {
            return Some(v);
        }
    }
    None
}

fn text(v: Option<&Value>) -> Option<String> {
    let s = match v? {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty()).then(|| s.chars().take(MAX_TEXT).collect())
}

fn number(v: Option<&Value>) -> Option<f64> {
    let n = match v? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().trim_end_matches('%').parse::<f64>().ok()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

/// A score in 0..=1; percentages (above 1, up to 100) are scaled.
fn unit(v: Option<&Value>) -> Option<f64> {
    let n = number(v)?;
    Some(if n > 1.0 && n <= 100.0 { n / 100.0 } else { n }.clamp(0.0, 1.0))
}

fn boolean(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" => Some(true),
            "false" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn list<'a>(v: &'a Value, key: &str) -> Option<&'a Vec<Value>> {
    v.get(key)
        .and_then(Value::as_array)
        .or_else(|| v.as_array())
}

/// Hypotheses from `{"hypotheses": [...]}` or a bare array.
pub fn hypotheses(v: &Value, key: &str) -> Result<Vec<ProposedHypothesis>, String> {
    let Some(items) = list(v, key) else {
        return Err(format!("no {key:?} list in the answer"));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(statement) = text(item.get("statement").or_else(|| item.get("hypothesis"))) else {
            continue;
        };
        let subject = text(item.get("subject").or_else(|| item.get("component")))
            .unwrap_or_else(|| "unknown".to_string());
        let tag = text(item.get("tag").or_else(|| item.get("id")))
            .unwrap_or_else(|| format!("{subject}#{i}"));
        out.push(ProposedHypothesis {
            tag: format!("llm:{tag}"),
            statement,
            subject,
            prior: unit(item.get("prior").or_else(|| item.get("score"))).unwrap_or(0.5),
        });
        if out.len() == MAX_HYPOTHESES {
            break;
        }
    }
    if out.is_empty() && !items.is_empty() {
        return Err(format!(
            "none of the {} entries has a statement",
            items.len()
        ));
    }
    Ok(out)
}

fn status(v: Option<&Value>) -> Option<HypothesisStatus> {
    let s = text(v)?.to_ascii_lowercase();
    Some(match s.as_str() {
        "supported" | "confirmed" | "support" | "true" => HypothesisStatus::Supported,
        "rejected" | "refuted" | "reject" | "false" => HypothesisStatus::Rejected,
        "open" | "inconclusive" | "unknown" | "undecided" | "uncertain" => HypothesisStatus::Open,
        _ => return None,
    })
}

fn bearing(v: Option<&Value>) -> Bearing {
    match text(v).map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("supports" | "support" | "supporting" | "for") => Bearing::Supports,
        Some("contradicts" | "contradict" | "contradicting" | "against" | "refutes") => {
            Bearing::Contradicts
        }
        _ => Bearing::Neutral,
    }
}

/// The observation a finding cites: `2`, `"2"`, `"obs[2]"` or `"obs 2"`.
fn observation_index(v: Option<&Value>) -> Option<usize> {
    match v? {
        Value::Number(n) => n.as_u64().map(|n| n as usize),
        Value::String(s) => {
            let digits: String = s.chars().filter(char::is_ascii_digit).collect();
            digits.parse().ok()
        }
        _ => None,
    }
}

/// An assessment; `domain_of` names the domain of an observation index,
/// `prior` is the score used when the answer gives none.
pub fn assessment(
    v: &Value,
    prior: f64,
    domain_of: &(dyn Fn(usize) -> Domain + Sync),
) -> Result<Assessment, String> {
    let status = status(v.get("status").or_else(|| v.get("verdict")))
        .ok_or("no status (supported, rejected or open) in the answer")?;
    let default_score = match status {
        HypothesisStatus::Supported => prior.max(0.6),
        HypothesisStatus::Rejected => prior.min(0.1),
        HypothesisStatus::Open => prior,
    };
    let score = unit(v.get("score").or_else(|| v.get("confidence"))).unwrap_or(default_score);
    let mut findings = Vec::new();
    for f in v
        .get("findings")
        .or_else(|| v.get("evidence"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(observation), Some(summary)) = (
            observation_index(f.get("observation").or_else(|| f.get("obs"))),
            text(f.get("summary").or_else(|| f.get("text"))),
        ) else {
            continue;
        };
        let domain = text(f.get("domain"))
            .map(Domain::new)
            .unwrap_or_else(|| domain_of(observation));
        let observed_at = text(f.get("observed_at"))
            .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map(|t| t.with_timezone(&Utc));
        findings.push(Finding {
            observation,
            domain,
            summary,
            observed_at,
            detail: Value::Null,
            bearing: bearing(f.get("bearing")),
        });
    }
    let refinements = match v.get("refinements") {
        Some(r) if r.is_array() => hypotheses(r, "refinements").unwrap_or_default(),
        _ => Vec::new(),
    };
    let chain = match v.get("chain") {
        Some(Value::Array(steps)) => steps.iter().filter_map(|s| text(Some(s))).collect(),
        Some(Value::String(s)) => s
            .split(['\n', '>'])
            .map(|p| p.trim().trim_end_matches('-').trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        _ => Vec::new(),
    };
    Ok(Assessment {
        status,
        score,
        findings,
        refinements,
        chain,
        explains_symptoms: boolean(v.get("explains_symptoms")).unwrap_or(false),
    })
}

/// Remediation proposals; actions outside [`ACTIONS`] are dropped.
pub fn remediation(v: &Value) -> Result<Vec<Remediation>, String> {
    let items = list(v, "remediation")
        .or_else(|| list(v, "actions"))
        .ok_or("no \"remediation\" list in the answer")?;
    Ok(items
        .iter()
        .filter_map(|item| {
            let action = text(item.get("action"))?.to_ascii_lowercase();
            if !ACTIONS.contains(&action.as_str()) {
                return None;
            }
            Some(Remediation {
                action,
                target: text(item.get("target"))?,
                rationale: text(item.get("rationale")).unwrap_or_default(),
                risk: text(item.get("risk")).unwrap_or_else(|| "not assessed".to_string()),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_is_found_in_fences_and_prose() {
        assert!(extract_json("{\"a\":1}").is_some());
        let fenced = "Here you go:\n```json\n{\"status\": \"open\"}\n```\nThanks";
        assert_eq!(extract_json(fenced).unwrap()["status"], "open");
        let prose = "I think {\"status\": \"rejected\"} is right.";
        assert_eq!(extract_json(prose).unwrap()["status"], "rejected");
        assert!(extract_json("no json here").is_none());
    }

    #[test]
    fn hypotheses_accept_strings_percentages_and_missing_tags() {
        let v = json!({"hypotheses": [
            {"statement": "fw broke it", "subject": "fw-core-01", "prior": "80%"},
            {"subject": "no statement"},
            {"statement": "db", "prior": 0.3, "tag": "db"}
        ]});
        let h = hypotheses(&v, "hypotheses").unwrap();
        assert_eq!(h.len(), 2);
        assert!((h[0].prior - 0.8).abs() < 1e-9);
        assert_eq!(h[1].tag, "llm:db");
        assert!(hypotheses(&json!({"hypotheses": [{"x": 1}]}), "hypotheses").is_err());
        assert!(hypotheses(&json!({"other": 1}), "hypotheses").is_err());
    }

    #[test]
    fn an_assessment_reads_synonyms_and_defaults() {
        let v = json!({"verdict": "Confirmed", "findings": [
            {"obs": "obs[1]", "summary": "drops on the db path", "bearing": "for"},
            {"observation": 0}
        ], "chain": "firewall -> orders-api -> front-end", "explains_symptoms": "yes"});
        let a = assessment(&v, 0.5, &|_| Domain::new("network")).unwrap();
        assert_eq!(a.status, HypothesisStatus::Supported);
        assert!((a.score - 0.6).abs() < 1e-9);
        assert_eq!(a.findings.len(), 1);
        assert_eq!(a.findings[0].observation, 1);
        assert_eq!(a.findings[0].bearing, Bearing::Supports);
        assert_eq!(a.findings[0].domain, Domain::new("network"));
        assert_eq!(a.chain, ["firewall", "orders-api", "front-end"]);
        assert!(a.explains_symptoms);
        assert!(assessment(&json!({"score": 1}), 0.5, &|_| Domain::new("x")).is_err());
    }

    #[test]
    fn remediation_outside_the_vocabulary_is_dropped() {
        let v = json!({"remediation": [
            {"action": "delete_namespace", "target": "prod"},
            {"action": "revert_change", "target": "chg-1", "rationale": "r"}
        ]});
        let r = remediation(&v).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].action, "revert_change");
    }
}
