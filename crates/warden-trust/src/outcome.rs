//! Outcome records: the measured results that earn and lose trust.
//!
//! Four kinds: a shadow report scored against the known root cause; an
//! operator's verdict on a diagnosis (with how much they had to edit it); an
//! operator's decision on a proposed action; and a remediation's verified
//! result. Gates and demotion read only these.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use warden_core::RootCause;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewResult {
    Correct,
    PartiallyCorrect,
    Wrong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    Accept,
    Reject,
    Modify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemediationResult {
    Success,
    Failure,
    RolledBack,
}

impl RemediationResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RemediationResult::Success => "success",
            RemediationResult::Failure => "failure",
            RemediationResult::RolledBack => "rolled_back",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// A shadow report scored against the root cause found afterwards.
    ShadowReview { result: ReviewResult },
    /// An operator's verdict. `edit_size` is 0 for accept, 1 for reject,
    /// and the normalised edit distance of the root cause for modify.
    Verdict {
        verdict: VerdictKind,
        edit_size: f64,
    },
    /// An operator approved (`true`) or denied a proposed action.
    ApprovalDecision { approved: bool },
    /// A remediation's result, verified against the incident's alerts.
    Remediation { result: RemediationResult },
}

/// One recorded outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeRecord {
    pub id: String,
    pub environment: String,
    pub investigation: Option<String>,
    pub action: Option<String>,
    /// Who recorded it (an operator subject, or `warden` for verification).
    pub actor: String,
    pub at: DateTime<Utc>,
    pub outcome: Outcome,
}

impl OutcomeRecord {
    pub fn new(environment: &str, actor: &str, at: DateTime<Utc>, outcome: Outcome) -> Self {
        OutcomeRecord {
            id: format!("out-{}", ulid::Ulid::new().to_string().to_ascii_lowercase()),
            environment: environment.to_string(),
            investigation: None,
            action: None,
            actor: actor.to_string(),
            at,
            outcome,
        }
    }

    pub fn investigation(mut self, id: &str) -> Self {
        self.investigation = Some(id.to_string());
        self
    }

    pub fn action(mut self, id: &str) -> Self {
        self.action = Some(id.to_string());
        self
    }
}

/// Lowercase, keep letters and digits, split on everything else.
fn tokens(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(|t| t.to_lowercase())
        .collect()
}

fn normalise(s: &str) -> String {
    tokens(s).join("-")
}

/// Scores a report's root cause against the known one.
///
/// - correct: the blamed subject is the known one (case and punctuation
///   ignored: `Checkout-DB` equals `checkout_db`);
/// - partially correct: the known subject is named in the causal chain or
///   the statement (the agent found the right component but blamed a
///   neighbour), or the two subjects share a name part (`checkout` vs
///   `checkout-db`);
/// - wrong: anything else, including no root cause at all.
pub fn score_root_cause(reported: Option<&RootCause>, known_subject: &str) -> ReviewResult {
    let Some(rc) = reported else {
        return ReviewResult::Wrong;
    };
    let known = normalise(known_subject);
    if known.is_empty() {
        return ReviewResult::Wrong;
    }
    if normalise(&rc.subject) == known {
        return ReviewResult::Correct;
    }
    let mentions = std::iter::once(rc.statement.as_str())
        .chain(rc.chain.iter().map(String::as_str))
        .any(|line| normalise(line).contains(&known));
    let known_parts = tokens(known_subject);
    let shares_part = tokens(&rc.subject)
        .iter()
        .any(|t| t.len() > 2 && known_parts.contains(t));
    if mentions || shares_part {
        ReviewResult::PartiallyCorrect
    } else {
        ReviewResult::Wrong
    }
}

/// Normalised Levenshtein distance over characters: 0 (identical) ..= 1
/// (nothing in common). The size of an operator's edit of a diagnosis.
pub fn edit_size(before: &str, after: &str) -> f64 {
    let a: Vec<char> = before.chars().collect();
    let b: Vec<char> = after.chars().collect();
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 0.0;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev.get(j).copied().unwrap_or(0) + usize::from(ca != cb);
            let delete = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let insert = cur.last().copied().unwrap_or(0) + 1;
            cur.push(substitute.min(delete).min(insert));
        }
        prev = cur;
    }
    let distance = prev.last().copied().unwrap_or(longest);
    distance as f64 / longest as f64
}

/// The edit size of a modified diagnosis: subject and statement together,
/// so renaming the blamed component weighs as much as rewriting the text.
pub fn diagnosis_edit_size(
    before_subject: &str,
    before_statement: &str,
    after_subject: &str,
    after_statement: &str,
) -> f64 {
    let before = format!("{before_subject}\n{before_statement}");
    let after = format!("{after_subject}\n{after_statement}");
    edit_size(&before, &after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rc(subject: &str, statement: &str, chain: &[&str]) -> RootCause {
        RootCause {
            hypothesis: "h-1".into(),
            subject: subject.into(),
            statement: statement.into(),
            chain: chain.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn scoring_distinguishes_correct_partial_and_wrong() {
        let r = rc("Checkout_DB", "connection pool exhausted", &[]);
        assert_eq!(
            score_root_cause(Some(&r), "checkout-db"),
            ReviewResult::Correct
        );
        let r = rc(
            "checkout",
            "checkout times out",
            &["checkout-db slow", "checkout"],
        );
        assert_eq!(
            score_root_cause(Some(&r), "checkout-db"),
            ReviewResult::PartiallyCorrect
        );
        let r = rc("frontend", "frontend crash loop", &["frontend"]);
        assert_eq!(
            score_root_cause(Some(&r), "checkout-db"),
            ReviewResult::Wrong
        );
        assert_eq!(score_root_cause(None, "checkout-db"), ReviewResult::Wrong);
    }

    #[test]
    fn edit_size_is_normalised() {
        assert_eq!(edit_size("abc", "abc"), 0.0);
        assert_eq!(edit_size("", ""), 0.0);
        assert_eq!(edit_size("abc", "xyz"), 1.0);
        let s = edit_size("checkout-db pool exhausted", "checkout-db pool exhausted!");
        assert!(s > 0.0 && s < 0.05, "{s}");
        assert_eq!(edit_size("kitten", "sitting"), 3.0 / 7.0);
    }
}
