//! A parser for the subset of HCL that Vault/OpenBao ACL policies use:
//!
//! ```hcl
//! # comment
//! path "agent/data/database" {
//!   capabilities = ["read", "list"]
//! }
//! ```
//!
//! Only `path "..." { ... }` blocks are accepted at the top level. Inside a
//! block, `capabilities` is required; the other policy attributes
//! (`allowed_parameters`, `min_wrapping_ttl`, ...) are parsed and kept as
//! opaque text so a change to them is still visible, but they do not take
//! part in the permission comparison. Anything else is an error that names
//! its line and column: a policy we cannot read fully must not be compared
//! as if we had.

use std::collections::BTreeMap;
use std::fmt;

/// The capabilities Vault and OpenBao know. Anything else is a typo.
pub const CAPABILITIES: [&str; 10] = [
    "create",
    "read",
    "update",
    "patch",
    "delete",
    "list",
    "sudo",
    "deny",
    "subscribe",
    "recover",
];

/// One `path` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRule {
    /// The path pattern, possibly with `+` segments and a trailing `*`.
    pub pattern: String,
    /// Capabilities as written (deduplicated, sorted).
    pub capabilities: Vec<String>,
    /// Other attributes of the block, rendered canonically.
    pub other: BTreeMap<String, String>,
    /// 1-based line of the `path` keyword.
    pub line: usize,
}

/// A parsed policy: its path blocks in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    pub rules: Vec<PathRule>,
}

/// What is wrong with a policy text, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Eq,
    Comma,
    Colon,
    Newline,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Str(s) => write!(f, "string {s:?}"),
            Tok::Num(s) => write!(f, "number {s}"),
            Tok::LBrace => f.write_str("`{`"),
            Tok::RBrace => f.write_str("`}`"),
            Tok::LBracket => f.write_str("`[`"),
            Tok::RBracket => f.write_str("`]`"),
            Tok::Eq => f.write_str("`=`"),
            Tok::Comma => f.write_str("`,`"),
            Tok::Colon => f.write_str("`:`"),
            Tok::Newline => f.write_str("end of line"),
        }
    }
}

#[derive(Debug, Clone)]
struct Spanned {
    tok: Tok,
    line: usize,
    column: usize,
}

fn err(line: usize, column: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        column,
        message: message.into(),
    }
}

fn lex(src: &str) -> Result<Vec<Spanned>, ParseError> {
    let mut out = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    let at = |i: usize| chars.get(i).copied();
    while let Some(c) = at(i) {
        let (tl, tc) = (line, col);
        let mut push = |tok: Tok| {
            out.push(Spanned {
                tok,
                line: tl,
                column: tc,
            })
        };
        match c {
            '\n' => {
                push(Tok::Newline);
                i += 1;
                line += 1;
                col = 1;
                continue;
            }
            c if c.is_whitespace() => {}
            '#' => {
                while at(i).is_some_and(|c| c != '\n') {
                    i += 1;
                }
                continue;
            }
            '/' if at(i + 1) == Some('/') => {
                while at(i).is_some_and(|c| c != '\n') {
                    i += 1;
                }
                continue;
            }
            '/' if at(i + 1) == Some('*') => {
                i += 2;
                col += 2;
                loop {
                    match at(i) {
                        None => return Err(err(tl, tc, "unterminated /* comment")),
                        Some('*') if at(i + 1) == Some('/') => {
                            i += 2;
                            col += 2;
                            break;
                        }
                        Some('\n') => {
                            i += 1;
                            line += 1;
                            col = 1;
                        }
                        Some(_) => {
                            i += 1;
                            col += 1;
                        }
                    }
                }
                continue;
            }
            '{' => push(Tok::LBrace),
            '}' => push(Tok::RBrace),
            '[' => push(Tok::LBracket),
            ']' => push(Tok::RBracket),
            '=' => push(Tok::Eq),
            ',' => push(Tok::Comma),
            ':' => push(Tok::Colon),
            '"' => {
                let mut s = String::new();
                i += 1;
                col += 1;
                loop {
                    match at(i) {
                        None | Some('\n') => return Err(err(tl, tc, "unterminated string")),
                        Some('"') => break,
                        Some('\\') => {
                            let escaped = match at(i + 1) {
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some('"') => '"',
                                Some('\\') => '\\',
                                other => {
                                    return Err(err(
                                        line,
                                        col,
                                        format!("unknown escape \\{}", other.unwrap_or(' ')),
                                    ));
                                }
                            };
                            s.push(escaped);
                            i += 2;
                            col += 2;
                        }
                        Some(c) => {
                            s.push(c);
                            i += 1;
                            col += 1;
                        }
                    }
                }
                push(Tok::Str(s));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut s = String::new();
                while let Some(c) = at(i).filter(|c| c.is_ascii_alphanumeric() || "-.".contains(*c))
                {
                    s.push(c);
                    i += 1;
                    col += 1;
                }
                push(Tok::Num(s));
                continue;
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut s = String::new();
                while let Some(c) = at(i).filter(|c| c.is_alphanumeric() || "_-".contains(*c)) {
                    s.push(c);
                    i += 1;
                    col += 1;
                }
                push(Tok::Ident(s));
                continue;
            }
            other => return Err(err(tl, tc, format!("unexpected character {other:?}"))),
        }
        i += 1;
        col += 1;
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Spanned>,
    pos: usize,
    /// Where the text ends, for "unexpected end of input" errors.
    end: (usize, usize),
}

impl Parser {
    fn peek(&self) -> Option<&Spanned> {
        self.toks.get(self.pos)
    }

    fn skip_newlines(&mut self) {
        while self.peek().is_some_and(|t| t.tok == Tok::Newline) {
            self.pos += 1;
        }
    }

    fn next(&mut self, what: &str) -> Result<Spanned, ParseError> {
        match self.toks.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok(t.clone())
            }
            None => Err(err(
                self.end.0,
                self.end.1,
                format!("unexpected end of input, expected {what}"),
            )),
        }
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<Spanned, ParseError> {
        let t = self.next(what)?;
        if t.tok == want {
            Ok(t)
        } else {
            Err(err(
                t.line,
                t.column,
                format!("expected {what}, found {}", t.tok),
            ))
        }
    }

    fn policy(&mut self) -> Result<Policy, ParseError> {
        let mut rules = Vec::new();
        loop {
            self.skip_newlines();
            let Some(t) = self.peek().cloned() else {
                break;
            };
            match &t.tok {
                Tok::Ident(k) if k == "path" => {
                    self.pos += 1;
                    rules.push(self.path_block(t.line)?);
                }
                other => {
                    return Err(err(
                        t.line,
                        t.column,
                        format!("expected a `path \"...\" {{ ... }}` block, found {other}"),
                    ));
                }
            }
        }
        Ok(Policy { rules })
    }

    fn path_block(&mut self, line: usize) -> Result<PathRule, ParseError> {
        let t = self.next("a quoted path after `path`")?;
        let Tok::Str(pattern) = t.tok else {
            return Err(err(
                t.line,
                t.column,
                format!("expected a quoted path after `path`, found {}", t.tok),
            ));
        };
        check_pattern(&pattern).map_err(|m| err(t.line, t.column, m))?;
        self.expect(Tok::LBrace, "`{` to open the path block")?;
        let mut capabilities: Option<Vec<String>> = None;
        let mut other = BTreeMap::new();
        loop {
            self.skip_newlines();
            let t = self.next("an attribute or `}`")?;
            let key = match t.tok {
                Tok::RBrace => break,
                Tok::Ident(k) => k,
                other => {
                    return Err(err(
                        t.line,
                        t.column,
                        format!("expected an attribute or `}}`, found {other}"),
                    ));
                }
            };
            if key == "capabilities" {
                self.expect(Tok::Eq, "`=` after `capabilities`")?;
                if capabilities.is_some() {
                    return Err(err(
                        t.line,
                        t.column,
                        format!("`capabilities` given twice in path {pattern:?}"),
                    ));
                }
                capabilities = Some(self.capability_list()?);
            } else {
                // Attributes (`key = value`) and nested blocks (`key { ... }`).
                let value = if self.peek().is_some_and(|n| n.tok == Tok::LBrace) {
                    self.value()?
                } else {
                    self.expect(Tok::Eq, &format!("`=` after `{key}`"))?;
                    self.value()?
                };
                other.insert(key, value);
            }
        }
        let Some(mut capabilities) = capabilities else {
            return Err(err(
                line,
                1,
                format!("path {pattern:?} has no `capabilities` attribute"),
            ));
        };
        capabilities.sort();
        capabilities.dedup();
        Ok(PathRule {
            pattern,
            capabilities,
            other,
            line,
        })
    }

    fn capability_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(Tok::LBracket, "`[` to open the capability list")?;
        let mut caps = Vec::new();
        loop {
            self.skip_newlines();
            let t = self.next("a capability or `]`")?;
            match t.tok {
                Tok::RBracket => break,
                Tok::Comma if !caps.is_empty() => {}
                Tok::Str(c) => {
                    if !CAPABILITIES.contains(&c.as_str()) {
                        return Err(err(
                            t.line,
                            t.column,
                            format!(
                                "unknown capability {c:?} (known: {})",
                                CAPABILITIES.join(", ")
                            ),
                        ));
                    }
                    caps.push(c);
                }
                other => {
                    return Err(err(
                        t.line,
                        t.column,
                        format!("expected a quoted capability or `]`, found {other}"),
                    ));
                }
            }
        }
        Ok(caps)
    }

    /// Any value, rendered canonically (for opaque attributes).
    fn value(&mut self) -> Result<String, ParseError> {
        self.skip_newlines();
        let t = self.next("a value")?;
        Ok(match t.tok {
            Tok::Str(s) => format!("{s:?}"),
            Tok::Num(n) => n,
            Tok::Ident(b) => b,
            Tok::LBracket => {
                let mut items = Vec::new();
                loop {
                    self.skip_newlines();
                    if self.peek().is_some_and(|n| n.tok == Tok::RBracket) {
                        self.pos += 1;
                        break;
                    }
                    items.push(self.value()?);
                    self.skip_newlines();
                    let sep = self.next("`,` or `]`")?;
                    match sep.tok {
                        Tok::Comma => {}
                        Tok::RBracket => break,
                        other => {
                            return Err(err(
                                sep.line,
                                sep.column,
                                format!("expected `,` or `]`, found {other}"),
                            ));
                        }
                    }
                }
                format!("[{}]", items.join(","))
            }
            Tok::LBrace => {
                let mut entries = BTreeMap::new();
                loop {
                    self.skip_newlines();
                    let k = self.next("a key or `}`")?;
                    let key = match k.tok {
                        Tok::RBrace => break,
                        Tok::Comma => continue,
                        Tok::Ident(s) | Tok::Str(s) => s,
                        other => {
                            return Err(err(
                                k.line,
                                k.column,
                                format!("expected a key or `}}`, found {other}"),
                            ));
                        }
                    };
                    let sep = self.next("`=` or `:`")?;
                    if !matches!(sep.tok, Tok::Eq | Tok::Colon) {
                        return Err(err(
                            sep.line,
                            sep.column,
                            format!("expected `=` or `:` after {key:?}, found {}", sep.tok),
                        ));
                    }
                    entries.insert(key, self.value()?);
                }
                let body: Vec<String> = entries.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{{{}}}", body.join(","))
            }
            other => {
                return Err(err(
                    t.line,
                    t.column,
                    format!("expected a value, found {other}"),
                ));
            }
        })
    }
}

/// Vault accepts `*` only at the end and `+` only as a whole segment.
fn check_pattern(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("empty path".into());
    }
    if let Some(star) = p.find('*')
        && star + 1 != p.len()
    {
        return Err(format!("path {p:?}: `*` is only allowed at the end"));
    }
    for seg in p.trim_end_matches('*').split('/') {
        if seg.contains('+') && seg != "+" {
            return Err(format!(
                "path {p:?}: `+` must be a whole segment (found {seg:?})"
            ));
        }
    }
    Ok(())
}

/// Parses a policy text.
pub fn parse(src: &str) -> Result<Policy, ParseError> {
    let toks = lex(src)?;
    let lines = src.split('\n').count().max(1);
    let last_col = src.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Parser {
        toks,
        pos: 0,
        end: (lines, last_col),
    }
    .policy()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_paths_capabilities_comments_and_extra_attributes() {
        let p = parse(
            r#"
# The database domain, read-only.
path "agent/data/database" {
  capabilities = ["read", "list", "read"]  // duplicate collapses
}
/* a block
   comment */
path "agent/metadata/+/x*" {
  capabilities = [
    "list",
  ]
  min_wrapping_ttl = "1m"
  allowed_parameters = {
    "ttl" = ["1h", "2h"]
  }
}
path "sys/health" { capabilities = [] }
"#,
        )
        .unwrap();
        assert_eq!(p.rules.len(), 3);
        assert_eq!(p.rules[0].pattern, "agent/data/database");
        assert_eq!(p.rules[0].capabilities, vec!["list", "read"]);
        assert_eq!(p.rules[0].line, 3);
        assert_eq!(p.rules[1].pattern, "agent/metadata/+/x*");
        assert_eq!(p.rules[1].capabilities, vec!["list"]);
        assert_eq!(p.rules[1].other["min_wrapping_ttl"], "\"1m\"");
        assert_eq!(
            p.rules[1].other["allowed_parameters"],
            "{ttl=[\"1h\",\"2h\"]}"
        );
        assert!(p.rules[2].capabilities.is_empty());
    }

    #[test]
    fn empty_policy_is_fine() {
        assert!(parse("").unwrap().rules.is_empty());
        assert!(parse("# nothing\n\n").unwrap().rules.is_empty());
    }

    fn bad(src: &str) -> ParseError {
        parse(src).unwrap_err()
    }

    #[test]
    fn unknown_capability_is_named_with_its_location() {
        let e = bad("path \"a\" {\n  capabilities = [\"read\", \"raed\"]\n}\n");
        assert_eq!((e.line, e.column), (2, 27));
        assert!(e.message.contains("unknown capability \"raed\""), "{e}");
    }

    #[test]
    fn missing_capabilities_is_an_error() {
        let e = bad("path \"a/b\" {\n  min_wrapping_ttl = \"1s\"\n}\n");
        assert_eq!(e.line, 1);
        assert!(e.message.contains("no `capabilities`"), "{e}");
    }

    #[test]
    fn top_level_garbage_is_an_error() {
        let e = bad("path \"a\" { capabilities = [\"read\"] }\nname = \"x\"\n");
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.contains("expected a `path"), "{e}");
    }

    #[test]
    fn unterminated_block_string_and_comment_are_errors() {
        let e = bad("path \"a\" {\n capabilities = [\"read\"]\n");
        assert!(e.message.contains("unexpected end of input"), "{e}");
        let e = bad("path \"a {\n");
        assert!(e.message.contains("unterminated string"), "{e}");
        let e = bad("/* open\n");
        assert!(e.message.contains("unterminated /* comment"), "{e}");
    }

    #[test]
    fn malformed_globs_and_unquoted_paths_are_errors() {
        assert!(
            bad("path \"a/*/b\" { capabilities = [] }")
                .message
                .contains("only allowed at the end")
        );
        assert!(
            bad("path \"a/b+/c\" { capabilities = [] }")
                .message
                .contains("whole segment")
        );
        assert!(
            bad("path a { capabilities = [] }")
                .message
                .contains("expected a quoted path")
        );
        assert!(
            bad("path \"a\" { capabilities = \"read\" }")
                .message
                .contains("expected `[`")
        );
        assert!(
            bad("path \"a\" { capabilities = [\"read\"]\n capabilities = [] }")
                .message
                .contains("given twice")
        );
        assert!(
            bad("path \"a\" { capabilities = [read] }")
                .message
                .contains("quoted capability")
        );
    }
}
