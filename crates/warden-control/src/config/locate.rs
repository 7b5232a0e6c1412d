//! Where a field path (`secrets.domains[2].endpoints[0].cidr`) sits in the
//! YAML text, so that a semantic problem found after deserialising can be
//! reported as `file:line:column` like a syntax error.
//!
//! serde_yaml's values carry no positions, so the text is walked once more
//! with yaml-rust2's event parser, whose events carry markers, recording the
//! position of every mapping key and sequence item under its path.

use std::collections::BTreeMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A position in the text: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// The positions of every key and item of a YAML document, by path.
#[derive(Debug, Default)]
pub struct Locator {
    positions: BTreeMap<String, Position>,
}

enum Frame {
    Map {
        path: String,
        /// The key whose value comes next; `None` while a key is expected.
        key: Option<String>,
    },
    Seq {
        path: String,
        index: usize,
    },
    /// A complex mapping key (never used by warden's configuration): its
    /// contents are skipped.
    Skip,
}

struct Walker {
    stack: Vec<Frame>,
    /// Position and byte offset of each path.
    positions: BTreeMap<String, (Position, usize)>,
}

impl Walker {
    /// Records where `path` starts. A block mapping's start event is marked
    /// after its first key, so a key that starts earlier moves its mapping's
    /// position back to it.
    fn record(&mut self, path: &str, mark: Marker) {
        let here = (
            Position {
                line: mark.line(),
                column: mark.col() + 1,
            },
            mark.index(),
        );
        let entry = self.positions.entry(path.to_string()).or_insert(here);
        if here.1 < entry.1 {
            *entry = here;
        }
    }

    /// The path of the node starting now, if known; advances the parent.
    fn node_path(&mut self, key_scalar: Option<&str>, mark: Marker) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Skip) => None,
            Some(Frame::Map { path, key }) => match key.take() {
                None => {
                    // This node is a key.
                    match key_scalar {
                        Some(k) => {
                            let full = join(path, k);
                            *key = Some(k.to_string());
                            let parent = path.clone();
                            self.record(&full, mark);
                            self.record(&parent, mark);
                        }
                        None => *key = Some(String::new()),
                    }
                    None
                }
                Some(k) if k.is_empty() => None,
                Some(k) => Some(join(path, &k)),
            },
            Some(Frame::Seq { path, index }) => {
                let full = format!("{path}[{index}]");
                *index += 1;
                self.record(&full, mark);
                Some(full)
            }
        }
    }

    /// Whether the node starting now is a mapping key (rather than a value
    /// or a sequence item).
    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                let is_key = self.expecting_key();
                self.node_path(is_key.then_some(value.as_str()), mark);
            }
            Event::Alias(_) => {
                self.node_path(None, mark);
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_key = self.expecting_key();
                let path = self.node_path(None, mark);
                let frame = match (is_key, path) {
                    (false, Some(path)) => {
                        if matches!(ev, Event::MappingStart(..)) {
                            Frame::Map { path, key: None }
                        } else {
                            Frame::Seq { path, index: 0 }
                        }
                    }
                    _ => Frame::Skip,
                };
                self.stack.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

impl Locator {
    /// Walks `text`; a text that does not parse yields an empty locator
    /// (serde_yaml reports its syntax errors with their own positions).
    pub fn new(text: &str) -> Locator {
        let mut walker = Walker {
            stack: Vec::new(),
            positions: BTreeMap::new(),
        };
        // Only the first document is configuration.
        let _ = Parser::new_from_str(text).load(&mut walker, false);
        Locator {
            positions: walker
                .positions
                .into_iter()
                .map(|(path, (pos, _))| (path, pos))
                .collect(),
        }
    }

    /// The position of exactly `path`, if it is in the text.
    pub fn position(&self, path: &str) -> Option<Position> {
        self.positions.get(path).copied()
    }

    /// The position of `path`, or of its nearest ancestor present in the
    /// text (a field left out takes its default, which lives in its parent),
    /// with the path that was found.
    pub fn find<'p>(&self, path: &'p str) -> Option<(Position, &'p str)> {
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return Some((*pos, p));
            }
            let cut = p.rfind(['.', '['])?;
            p = p.get(..cut)?;
        }
    }
}

/// Splits a problem such as `runtime.max_concurrent must be at least 1` or
/// `phases.shadow.actions: a read-only phase ...` into its leading field path
/// and the rest.
pub fn split_field(problem: &str) -> Option<(&str, &str)> {
    let end = problem
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']')))
        .unwrap_or(problem.len());
    let (field, rest) = problem.split_at(end);
    let looks_like_path = !field.is_empty()
        && field.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && (field.contains('.') || field.contains('[') || rest.starts_with(':'));
    looks_like_path.then(|| (field, rest.trim_start_matches(':').trim_start()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# comment
server:
  listen: 127.0.0.1:7878
secrets:
  domains:
    - name: a
      endpoints:
        - {cidr: 10.0.0.0/24, port: 90}
        - cidr: 10.1.0.0/24
          port: 91
    - name: b
      serves: [\"*\", x]
phases:
  shadow: {readable_domains: [a]}
";

    fn at(l: &Locator, path: &str) -> (usize, usize, String) {
        let (p, found) = l.find(path).unwrap();
        (p.line, p.column, found.to_string())
    }

    #[test]
    fn keys_and_items_are_found_at_their_line_and_column() {
        let l = Locator::new(TEXT);
        assert_eq!(at(&l, "server.listen"), (3, 3, "server.listen".into()));
        assert_eq!(
            at(&l, "secrets.domains[0]"),
            (6, 7, "secrets.domains[0]".into())
        );
        assert_eq!(
            at(&l, "secrets.domains[0].endpoints[0].cidr"),
            (8, 12, "secrets.domains[0].endpoints[0].cidr".into())
        );
        assert_eq!(
            at(&l, "secrets.domains[0].endpoints[1].port"),
            (10, 11, "secrets.domains[0].endpoints[1].port".into())
        );
        assert_eq!(
            at(&l, "secrets.domains[1].serves[1]"),
            (12, 21, "secrets.domains[1].serves[1]".into())
        );
        assert_eq!(
            at(&l, "phases.shadow.readable_domains"),
            (14, 12, "phases.shadow.readable_domains".into())
        );
    }

    #[test]
    fn a_missing_field_is_located_at_its_nearest_ancestor() {
        let l = Locator::new(TEXT);
        assert_eq!(
            at(&l, "secrets.domains[1].path"),
            (11, 7, "secrets.domains[1]".into())
        );
        assert!(l.find("runtime.max_concurrent").is_none());
    }

    #[test]
    fn field_paths_are_split_from_problems() {
        assert_eq!(
            split_field("runtime.max_concurrent must be at least 1"),
            Some(("runtime.max_concurrent", "must be at least 1"))
        );
        assert_eq!(
            split_field("environments: declare at least one environment"),
            Some(("environments", "declare at least one environment"))
        );
        assert_eq!(
            split_field("secrets.domains[0].name \"X\": use lowercase"),
            Some(("secrets.domains[0].name", "\"X\": use lowercase"))
        );
        assert_eq!(split_field("Something else entirely"), None);
    }
}
