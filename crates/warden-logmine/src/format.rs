//! Header formats in Loghub's notation, e.g.
//! `<Date> <Time> <Level> \[<Component>\]: <Content>`.
//!
//! `<Name>` is a field, everything else is a regex fragment (so `\[`, `\|`
//! and optional groups such as `(\[<PID>\])?` work), and a run of spaces
//! matches any run of whitespace. The format compiles to an anchored regex;
//! formats that are just fields between plain literals, or that add one
//! optional group after a field, also get a hand-rolled matcher that finds
//! each literal in turn. It gives the same split as the lazy regex and is
//! several times faster on the hot path; when it cannot decide (a literal
//! is missing), the regex does.

use regex::Regex;

/// Why a format string was rejected.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// No `<Content>` field, so there is nothing to mine.
    #[error("log format {format:?} has no <Content> field")]
    NoContent { format: String },
    /// A field name is empty, repeated or not alphanumeric.
    #[error("log format {format:?}: bad field name {name:?}")]
    BadField { format: String, name: String },
    /// The literal parts are not a valid regular expression.
    #[error("log format {format:?} is not a valid pattern: {source}")]
    Pattern {
        format: String,
        #[source]
        source: Box<regex::Error>,
    },
}

/// A compiled header format.
#[derive(Debug, Clone)]
pub struct LogFormat {
    fields: Vec<String>,
    regex: Regex,
    /// The hand-rolled matcher, when the format allows one.
    fast: Option<Fast>,
}

/// Plans for the hand-rolled matcher.
#[derive(Debug, Clone)]
enum Fast {
    /// Fields between plain literals.
    Plain(Vec<Literal>),
    /// One optional group `(...)?` right after field number `field`: the
    /// plans with and without the group. Like the lazy regex, the field ends
    /// at the first place either continuation starts, the group winning
    /// ties.
    Optional {
        with: Vec<Literal>,
        without: Vec<Literal>,
        field: usize,
    },
}

/// A literal that precedes a field; `ws` literals are runs of whitespace.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Text(String),
    Whitespace,
}

enum Piece<'a> {
    Field(&'a str),
    Literal(&'a str),
}

fn pieces(format: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = format;
    while !rest.is_empty() {
        let field = rest.find('<').and_then(|open| {
            let close = rest.get(open..)?.find('>')? + open;
            let name = rest.get(open + 1..close)?;
            (!name.contains('<')).then_some((open, close, name))
        });
        match field {
            Some((open, close, name)) => {
                if open > 0 {
                    out.push(Piece::Literal(rest.get(..open).unwrap_or_default()));
                }
                out.push(Piece::Field(name));
                rest = rest.get(close + 1..).unwrap_or_default();
            }
            None => {
                out.push(Piece::Literal(rest));
                rest = "";
            }
        }
    }
    out
}

/// Splits a literal into plain text and whitespace runs when it has no
/// regex syntax other than escaped punctuation.
fn plain_literals(lit: &str) -> Option<Vec<Literal>> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = lit.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {
                while chars.peek() == Some(&' ') {
                    chars.next();
                }
                if !text.is_empty() {
                    out.push(Literal::Text(std::mem::take(&mut text)));
                }
                out.push(Literal::Whitespace);
            }
            '\\' => match chars.next() {
                Some(e) if e.is_ascii_punctuation() => text.push(e),
                _ => return None,
            },
            c if "()[]{}?*+|.^$".contains(c) => return None,
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        out.push(Literal::Text(text));
    }
    Some(out)
}

/// The plan of a format made of fields between plain literals, with no
/// two fields adjacent and `Content` last (it takes the rest of the line).
fn plain_plan(format: &str) -> Option<Vec<Literal>> {
    let mut plan = Vec::new();
    let mut last_field: Option<&str> = None;
    for piece in pieces(format) {
        match piece {
            Piece::Literal(lit) => {
                plan.extend(plain_literals(lit)?);
                last_field = None;
            }
            Piece::Field(name) => {
                // Two adjacent fields cannot be split by literals.
                if last_field.is_some() {
                    return None;
                }
                plan.push(Literal::Text(String::new()));
                last_field = Some(name);
            }
        }
    }
    (last_field == Some("Content")).then_some(plan)
}

/// Plans for a format with one optional group `(...)?` that directly
/// follows a field and starts, like what comes after it, with plain text.
fn optional_plans(format: &str) -> Option<Fast> {
    let bytes = format.as_bytes();
    let unescaped = |i: usize| i == 0 || bytes.get(i - 1) != Some(&b'\\');
    let open = (0..bytes.len()).find(|&i| bytes.get(i) == Some(&b'(') && unescaped(i))?;
    let close = (open..bytes.len()).find(|&i| bytes.get(i) == Some(&b')') && unescaped(i))?;
    let (before, inner, after) = (
        format.get(..open)?,
        format.get(open + 1..close)?,
        format.get(close + 1..)?.strip_prefix('?')?,
    );
    let plain_start = |s: &str| s.starts_with(|c: char| c != ' ' && c != '<');
    if !before.ends_with('>') || !plain_start(inner) || !plain_start(after) {
        return None;
    }
    let field = pieces(before)
        .iter()
        .filter(|p| matches!(p, Piece::Field(_)))
        .count()
        .checked_sub(1)?;
    Some(Fast::Optional {
        with: plain_plan(&format!("{before}{inner}{after}"))?,
        without: plain_plan(&format!("{before}{after}"))?,
        field,
    })
}

impl LogFormat {
    /// Compiles a Loghub-style format string.
    pub fn parse(format: &str) -> Result<Self, FormatError> {
        let mut pattern = String::from("^");
        let mut fields: Vec<String> = Vec::new();
        for piece in pieces(format) {
            match piece {
                Piece::Field(name) => {
                    let valid = !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        && !fields.iter().any(|f| f == name);
                    if !valid {
                        return Err(FormatError::BadField {
                            format: format.to_string(),
                            name: name.to_string(),
                        });
                    }
                    pattern.push_str("(?P<");
                    pattern.push_str(name);
                    pattern.push_str(">.*?)");
                    fields.push(name.to_string());
                }
                Piece::Literal(lit) => {
                    let mut spaced = String::new();
                    let mut in_spaces = false;
                    for c in lit.chars() {
                        if c == ' ' {
                            if !in_spaces {
                                spaced.push_str(r"\s+");
                            }
                            in_spaces = true;
                        } else {
                            spaced.push(c);
                            in_spaces = false;
                        }
                    }
                    pattern.push_str(&spaced);
                }
            }
        }
        pattern.push('$');
        if !fields.iter().any(|f| f == "Content") {
            return Err(FormatError::NoContent {
                format: format.to_string(),
            });
        }
        let regex = Regex::new(&pattern).map_err(|source| FormatError::Pattern {
            format: format.to_string(),
            source: Box::new(source),
        })?;
        let fast = match plain_plan(format) {
            Some(plan) => Some(Fast::Plain(plan)),
            None => optional_plans(format),
        };
        Ok(LogFormat {
            fields,
            regex,
            fast,
        })
    }

    /// The field names in order.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// The content of `line`, or `None` when the line does not fit the
    /// format.
    pub fn content<'a>(&self, line: &'a str) -> Option<&'a str> {
        let fast = match &self.fast {
            Some(Fast::Plain(plan)) => plain_content(plan, line, usize::MAX).1,
            Some(Fast::Optional {
                with,
                without,
                field,
            }) => {
                let (end_with, content_with) = plain_content(with, line, *field);
                let (end_without, content_without) = plain_content(without, line, *field);
                match (end_with, end_without) {
                    (Some(a), Some(b)) if a <= b => content_with,
                    (Some(_), None) => content_with,
                    (_, Some(_)) => content_without,
                    (None, None) => None,
                }
            }
            None => None,
        };
        if let Some(content) = fast {
            return Some(content);
        }
        let caps = self.regex.captures(line)?;
        Some(caps.name("Content")?.as_str())
    }

    /// Every field of `line` by name, or `None` when it does not fit.
    pub fn fields_of<'a>(&self, line: &'a str) -> Option<Vec<(&str, &'a str)>> {
        let caps = self.regex.captures(line)?;
        Some(
            self.fields
                .iter()
                .map(|name| (name.as_str(), caps.name(name).map_or("", |m| m.as_str())))
                .collect(),
        )
    }
}

/// Runs the plan: a field marker (empty text) starts a field that ends at
/// the next literal; the last field (Content) takes the rest. Returns where
/// field number `watch` ended (when it did) and the content.
fn plain_content<'a>(
    plan: &[Literal],
    line: &'a str,
    watch: usize,
) -> (Option<usize>, Option<&'a str>) {
    let mut watched = None;
    let content = run_plan(plan, line, watch, &mut watched);
    (watched, content)
}

fn run_plan<'a>(
    plan: &[Literal],
    line: &'a str,
    watch: usize,
    watched: &mut Option<usize>,
) -> Option<&'a str> {
    let mut pos = 0usize;
    let mut in_field = false;
    let mut field = 0usize;
    let mut items = plan.iter().peekable();
    while let Some(lit) = items.next() {
        let rest = line.get(pos..)?;
        match lit {
            Literal::Text(t) if t.is_empty() => {
                in_field = true;
                field += 1;
            }
            Literal::Text(t) => {
                if in_field {
                    let end = rest.find(t.as_str())?;
                    if watch.checked_add(1) == Some(field) {
                        *watched = Some(pos + end);
                    }
                    pos += end + t.len();
                } else if rest.starts_with(t.as_str()) {
                    pos += t.len();
                } else {
                    return None;
                }
                in_field = false;
            }
            Literal::Whitespace => {
                // After a field, the lazy regex ends the field at the first
                // whitespace run that the following text fits after.
                let next = match items.peek() {
                    Some(Literal::Text(t)) if in_field && !t.is_empty() => Some(t.as_str()),
                    _ => None,
                };
                let (start, ws) = whitespace_run(rest, in_field, next)?;
                if in_field && watch.checked_add(1) == Some(field) {
                    *watched = Some(pos + start);
                }
                pos += start + ws;
                in_field = false;
            }
        }
    }
    // The last plan entry is the Content field marker.
    line.get(pos..)
}

/// Where the whitespace run that ends a field (or, outside a field, the
/// one at the start of `rest`) begins and how long it is. With `next`, the
/// run must be followed by that text.
fn whitespace_run(rest: &str, in_field: bool, next: Option<&str>) -> Option<(usize, usize)> {
    let mut from = 0;
    loop {
        let tail = rest.get(from..)?;
        let start = from
            + if in_field {
                tail.find(char::is_whitespace)?
            } else {
                0
            };
        let after = rest.get(start..)?;
        let trimmed = after.trim_start();
        let ws = after.len() - trimmed.len();
        if ws == 0 {
            return None;
        }
        match next {
            Some(t) if !trimmed.starts_with(t) => from = start + ws,
            _ => return Some((start, ws)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_split_on_their_literals() {
        let f = LogFormat::parse(r"<Date> <Time> <Level> \[<Process>\] <Component>: <Content>")
            .unwrap();
        let line = "2015-10-18 18:01:47,978 INFO [main] org.apache.App: Created MRAppMaster: x";
        assert_eq!(f.content(line), Some("Created MRAppMaster: x"));
        let fields = f.fields_of(line).unwrap();
        assert_eq!(fields[2], ("Level", "INFO"));
        assert_eq!(fields[3], ("Process", "main"));
    }

    #[test]
    fn optional_groups_fall_back_to_the_regex() {
        let f =
            LogFormat::parse(r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>")
                .unwrap();
        assert!(matches!(f.fast, Some(Fast::Optional { field: 4, .. })));
        assert_eq!(
            f.content("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown"),
            Some("check pass; user unknown")
        );
        assert_eq!(
            f.content("Jun 14 15:16:01 combo kernel: Linux version 2.6"),
            Some("Linux version 2.6")
        );
    }

    #[test]
    fn pipes_and_multiple_spaces_are_literals() {
        let f = LogFormat::parse(r"<Time>\|<Component>\|<Pid>\|<Content>").unwrap();
        assert!(matches!(f.fast, Some(Fast::Plain(_))));
        assert_eq!(
            f.content("20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579"),
            Some("onStandStepChanged 3579")
        );
        let z =
            LogFormat::parse(r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>")
                .unwrap();
        assert_eq!(
            z.content("2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time out: 3200"),
            Some("Notification time out: 3200")
        );
    }

    #[test]
    fn a_field_with_spaces_ends_where_the_next_literal_fits() {
        let f = LogFormat::parse(r"\[<Time>\] <Program> - <Content>").unwrap();
        let Some(Fast::Plain(plan)) = &f.fast else {
            panic!("a plain format gets the fast matcher")
        };
        let line = "[10.30 16:49:06] Google Chrome.exe - host:443 open through proxy";
        assert_eq!(f.content(line), Some("host:443 open through proxy"));
        assert_eq!(plain_content(plan, line, usize::MAX).1, f.content(line));
        assert_eq!(
            f.fields_of(line).unwrap()[1],
            ("Program", "Google Chrome.exe")
        );
    }

    proptest::proptest! {
        #[test]
        fn the_fast_matcher_splits_like_the_regex(line in "[a-z :\\[\\]-]{0,40}") {
            for format in [
                r"\[<Time>\] <Program> - <Content>",
                "<A> <B>: <Content>",
                "<A> - <B>  - <Content>",
            ] {
                let f = LogFormat::parse(format).unwrap();
                let Some(Fast::Plain(plan)) = &f.fast else {
                    panic!("{format} is plain")
                };
                if let Some(fast) = plain_content(plan, &line, usize::MAX).1 {
                    let slow = f.regex.captures(&line).and_then(|c| c.name("Content"));
                    proptest::prop_assert_eq!(Some(fast), slow.map(|m| m.as_str()));
                }
            }
        }

        #[test]
        fn the_optional_group_matcher_splits_like_the_regex(
            line in "[ab :\\[\\]]{0,30}"
        ) {
            let f = LogFormat::parse(r"<A> <B>(\[<P>\])?: <Content>").unwrap();
            let optional = matches!(f.fast, Some(Fast::Optional { .. }));
            proptest::prop_assert!(optional, "the optional group gets the fast matcher");
            let slow = f.regex.captures(&line).and_then(|c| c.name("Content"));
            proptest::prop_assert_eq!(f.content(&line), slow.map(|m| m.as_str()));
        }
    }

    #[test]
    fn a_line_that_does_not_fit_has_no_content() {
        let f = LogFormat::parse("<Date> <Level>: <Content>").unwrap();
        assert_eq!(f.content("no-colon-here"), None);
    }

    #[test]
    fn bad_formats_are_rejected_with_the_reason() {
        assert!(matches!(
            LogFormat::parse("<Date> <Time>"),
            Err(FormatError::NoContent { .. })
        ));
        assert!(matches!(
            LogFormat::parse("<A> <A> <Content>"),
            Err(FormatError::BadField { .. })
        ));
        assert!(matches!(
            LogFormat::parse("<A b> <Content>"),
            Err(FormatError::BadField { .. })
        ));
        assert!(matches!(
            LogFormat::parse(r"(<A> <Content>"),
            Err(FormatError::Pattern { .. })
        ));
    }
}
