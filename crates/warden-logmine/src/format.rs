//! Header formats in Loghub's notation, e.g.
//! `<Date> <Time> <Level> \[<Component>\]: <Content>`.
//!
//! `<Name>` is a field, everything else is a regex fragment (so `\[`, `\|`
//! and optional groups such as `(\[<PID>\])?` work), and a run of spaces
//! matches any run of whitespace. The format compiles to an anchored regex;
//! formats that are just fields between plain literals also get a
//! hand-rolled matcher that finds each literal in turn, which gives the same
//! split as the lazy regex and is several times faster on the hot path.

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
    /// `(literal before field i)` for the fast matcher, when applicable.
    plain: Option<Vec<Literal>>,
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

impl LogFormat {
    /// Compiles a Loghub-style format string.
    pub fn parse(format: &str) -> Result<Self, FormatError> {
        let mut pattern = String::from("^");
        let mut fields: Vec<String> = Vec::new();
        let mut plain: Option<Vec<Literal>> = Some(Vec::new());
        let mut last_was_field = false;
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
                    // Two adjacent fields cannot be split by literals.
                    if last_was_field {
                        plain = None;
                    }
                    pattern.push_str("(?P<");
                    pattern.push_str(name);
                    pattern.push_str(">.*?)");
                    fields.push(name.to_string());
                    last_was_field = true;
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
                    match (plain.as_mut(), plain_literals(lit)) {
                        (Some(p), Some(lits)) => p.extend(lits),
                        _ => plain = None,
                    }
                    last_was_field = false;
                }
            }
        }
        pattern.push('$');
        let Some(content_index) = fields.iter().position(|f| f == "Content") else {
            return Err(FormatError::NoContent {
                format: format.to_string(),
            });
        };
        let regex = Regex::new(&pattern).map_err(|source| FormatError::Pattern {
            format: format.to_string(),
            source: Box::new(source),
        })?;
        // The fast matcher needs Content last: it takes the rest of the line.
        if content_index + 1 != fields.len() {
            plain = None;
        }
        let plain = plain.and_then(|_| Self::plain_plan(format));
        Ok(LogFormat {
            fields,
            regex,
            plain,
        })
    }

    /// The literal sequence between fields, re-derived piece by piece so
    /// that each field is preceded by exactly the literals before it.
    fn plain_plan(format: &str) -> Option<Vec<Literal>> {
        let mut plan = Vec::new();
        for piece in pieces(format) {
            match piece {
                Piece::Literal(lit) => plan.extend(plain_literals(lit)?),
                Piece::Field(_) => plan.push(Literal::Text(String::new())),
            }
        }
        Some(plan)
    }

    /// The field names in order.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// The content of `line`, or `None` when the line does not fit the
    /// format.
    pub fn content<'a>(&self, line: &'a str) -> Option<&'a str> {
        if let Some(plan) = &self.plain
            && let Some(content) = plain_content(plan, line)
        {
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
/// the next literal; the last field (Content) takes the rest.
fn plain_content<'a>(plan: &[Literal], line: &'a str) -> Option<&'a str> {
    let mut pos = 0usize;
    let mut in_field = false;
    for lit in plan {
        let rest = line.get(pos..)?;
        match lit {
            Literal::Text(t) if t.is_empty() => in_field = true,
            Literal::Text(t) => {
                if in_field {
                    pos += rest.find(t.as_str())? + t.len();
                } else if rest.starts_with(t.as_str()) {
                    pos += t.len();
                } else {
                    return None;
                }
                in_field = false;
            }
            Literal::Whitespace => {
                let start = if in_field {
                    rest.find(char::is_whitespace)?
                } else {
                    0
                };
                let after = rest.get(start..)?;
                let ws = after.len() - after.trim_start().len();
                if ws == 0 {
                    return None;
                }
                pos += start + ws;
                in_field = false;
            }
        }
    }
    // The last plan entry is the Content field marker.
    line.get(pos..)
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
        assert!(f.plain.is_none());
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
        assert!(f.plain.is_some());
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
