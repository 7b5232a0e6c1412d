//! The streaming miner: masking, a prefix tree keyed by token count and
//! leading token, similarity matching, and shape-based template merging.
//!
//! Tokens are interned to `u32` so that comparing a line with a template is
//! a comparison of integer slices; `0` is the wildcard. A bounded cache maps
//! a masked token sequence seen before straight to its template, which is
//! what most lines of a real log hit. Memory grows with the number of
//! distinct templates and tokens, never with the number of lines.

use rustc_hash::FxHashMap;

pub use crate::mask::WILDCARD;
use crate::mask::{mask_token, needs_mask};

/// Identifies a template within one miner. Ids are dense and stable; when
/// two templates merge, [`Miner::template_of`] follows the merge.
pub type TemplateId = usize;

const WILD: u32 = 0;

/// The one configuration used for every log source.
#[derive(Debug, Clone, PartialEq)]
pub struct MinerConfig {
    /// Fraction of positions that must agree for a line to join a template.
    pub similarity: f64,
    /// Masked token sequences remembered for the exact-repeat fast path;
    /// the cache is cleared when full, which bounds its memory.
    pub cache_capacity: usize,
}

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig {
            similarity: 0.7,
            cache_capacity: 1 << 16,
        }
    }
}

/// A mined template. `first_line`/`last_line` are 1-based positions in the
/// stream of lines given to [`Miner::add`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub id: TemplateId,
    pub text: String,
    pub count: u64,
    pub first_line: u64,
    pub last_line: u64,
}

#[derive(Debug, Clone)]
struct Cluster {
    tokens: Vec<u32>,
    /// Union-find parent; a cluster is a live template when it is its own.
    parent: usize,
    template: Template,
}

#[derive(Debug, Default, Clone)]
struct Interner {
    ids: FxHashMap<Box<str>, u32>,
    texts: Vec<Box<str>>,
    /// Whether a token may key a bucket: a plain word, not a value.
    word: Vec<bool>,
}

impl Interner {
    fn new() -> Self {
        let mut i = Interner::default();
        i.intern(WILDCARD);
        i
    }

    fn intern(&mut self, token: &str) -> u32 {
        if let Some(&id) = self.ids.get(token) {
            return id;
        }
        let id = u32::try_from(self.texts.len()).unwrap_or(u32::MAX);
        let word = !token.contains(WILDCARD)
            && token
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'-' | b':'));
        self.ids.insert(token.into(), id);
        self.texts.push(token.into());
        self.word.push(word);
        id
    }

    fn text(&self, id: u32) -> &str {
        self.texts.get(id as usize).map_or(WILDCARD, |t| t)
    }

    fn is_word(&self, id: u32) -> bool {
        self.word.get(id as usize).copied().unwrap_or(false)
    }
}

/// A streaming Drain-class template miner.
#[derive(Debug, Clone)]
pub struct Miner {
    config: MinerConfig,
    interner: Interner,
    clusters: Vec<Cluster>,
    buckets: FxHashMap<(usize, u32), Vec<usize>>,
    cache: FxHashMap<Vec<u32>, usize>,
    shapes: FxHashMap<Vec<u32>, usize>,
    lines: u64,
    scratch_tokens: Vec<u32>,
    scratch_text: String,
}

impl Miner {
    pub fn new(config: MinerConfig) -> Self {
        Miner {
            config,
            interner: Interner::new(),
            clusters: Vec::new(),
            buckets: FxHashMap::default(),
            cache: FxHashMap::default(),
            shapes: FxHashMap::default(),
            lines: 0,
            scratch_tokens: Vec::new(),
            scratch_text: String::new(),
        }
    }

    /// Adds the content of one log line; returns its template.
    pub fn add(&mut self, content: &str) -> TemplateId {
        self.lines += 1;
        let mut tokens = std::mem::take(&mut self.scratch_tokens);
        tokens.clear();
        for token in content.split_ascii_whitespace() {
            let id = if needs_mask(token) {
                self.scratch_text.clear();
                mask_token(token, &mut self.scratch_text);
                if self.scratch_text == WILDCARD {
                    WILD
                } else {
                    self.interner.intern(&self.scratch_text)
                }
            } else {
                self.interner.intern(token)
            };
            tokens.push(id);
        }
        let id = match self.cache.get(&tokens) {
            Some(&id) => self.find(id),
            None => {
                let id = self.place(&tokens);
                if self.cache.len() >= self.config.cache_capacity {
                    self.cache.clear();
                }
                self.cache.insert(tokens.clone(), id);
                self.find(id)
            }
        };
        let line = self.lines;
        if let Some(t) = self.clusters.get_mut(id).map(|c| &mut c.template) {
            t.count += 1;
            t.last_line = line;
            if t.first_line == 0 {
                t.first_line = line;
            }
        }
        self.scratch_tokens = tokens;
        id
    }

    /// Finds or creates the cluster for a masked line (cache miss path).
    fn place(&mut self, tokens: &[u32]) -> usize {
        let lead = tokens
            .first()
            .copied()
            .filter(|&t| self.interner.is_word(t))
            .unwrap_or(WILD);
        let key = (tokens.len(), lead);
        let mut best: Option<(usize, usize)> = None;
        for &c in self
            .buckets
            .get(&key)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let Some(cluster) = self.clusters.get(c) else {
                continue;
            };
            let same = cluster
                .tokens
                .iter()
                .zip(tokens)
                .filter(|(a, b)| a == b)
                .count();
            if best.is_none_or(|(_, s)| same > s) {
                best = Some((c, same));
            }
        }
        let needed = self.config.similarity * tokens.len() as f64;
        if let Some((c, same)) = best
            && (same as f64 >= needed || tokens.is_empty())
        {
            let mut changed = false;
            if let Some(cluster) = self.clusters.get_mut(c) {
                for (have, new) in cluster.tokens.iter_mut().zip(tokens) {
                    if have != new && *have != WILD {
                        *have = WILD;
                        changed = true;
                    }
                }
            }
            if changed {
                self.reshape(c);
            }
            return c;
        }
        let c = self.clusters.len();
        self.clusters.push(Cluster {
            tokens: tokens.to_vec(),
            parent: c,
            template: Template {
                id: c,
                text: String::new(),
                count: 0,
                first_line: 0,
                last_line: 0,
            },
        });
        self.buckets.entry(key).or_default().push(c);
        self.reshape(c);
        c
    }

    /// Recomputes the shape (tokens with `<*>` runs collapsed) of cluster
    /// `c` after it changed, merges it with any template of the same shape,
    /// and refreshes the live template's text.
    fn reshape(&mut self, c: usize) {
        let Some(cluster) = self.clusters.get(c) else {
            return;
        };
        let mut shape = Vec::with_capacity(cluster.tokens.len());
        for &t in &cluster.tokens {
            if !(t == WILD && shape.last() == Some(&WILD)) {
                shape.push(t);
            }
        }
        let root = self.find(c);
        let other = self.shapes.get(&shape).copied().map(|o| self.find(o));
        let root = match other {
            Some(o) if o != root => self.union(o, root),
            _ => root,
        };
        let text = shape
            .iter()
            .map(|&t| self.interner.text(t))
            .collect::<Vec<_>>()
            .join(" ");
        self.shapes.insert(shape, root);
        if let Some(r) = self.clusters.get_mut(root) {
            r.template.text = text;
        }
    }

    /// Merges the template `from` into `into`; returns the survivor.
    fn union(&mut self, into: usize, from: usize) -> usize {
        let Some(moved) = self.clusters.get(from).map(|c| c.template.clone()) else {
            return into;
        };
        if let Some(f) = self.clusters.get_mut(from) {
            f.parent = into;
        }
        if let Some(t) = self.clusters.get_mut(into).map(|c| &mut c.template) {
            t.count += moved.count;
            t.first_line = match (t.first_line, moved.first_line) {
                (0, b) => b,
                (a, 0) => a,
                (a, b) => a.min(b),
            };
            t.last_line = t.last_line.max(moved.last_line);
        }
        into
    }

    fn find(&mut self, mut c: usize) -> usize {
        let mut root = c;
        while let Some(p) = self.clusters.get(root).map(|x| x.parent)
            && p != root
        {
            root = p;
        }
        while let Some(cluster) = self.clusters.get_mut(c)
            && cluster.parent != root
        {
            let next = cluster.parent;
            cluster.parent = root;
            c = next;
        }
        root
    }

    /// The live template a (possibly merged) id now belongs to.
    pub fn template_of(&self, id: TemplateId) -> Option<&Template> {
        let mut root = id;
        while let Some(p) = self.clusters.get(root).map(|x| x.parent)
            && p != root
        {
            root = p;
        }
        self.clusters.get(root).map(|c| &c.template)
    }

    /// The live templates in order of creation.
    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        self.clusters
            .iter()
            .enumerate()
            .filter(|(i, c)| c.parent == *i)
            .map(|(_, c)| &c.template)
    }

    /// Lines added so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }
}

impl Default for Miner {
    fn default() -> Self {
        Miner::new(MinerConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_differing_in_values_share_a_template() {
        let mut m = Miner::default();
        let a = m.add("timeout acquiring connection from pool orders after 5000 ms");
        let b = m.add("timeout acquiring connection from pool payments after 5000 ms");
        let c = m.add("user 42 logged in");
        assert_eq!(m.template_of(a).unwrap().id, m.template_of(b).unwrap().id);
        assert_ne!(a, c);
        let t = m.template_of(a).unwrap();
        assert_eq!(
            t.text,
            "timeout acquiring connection from pool <*> after <*> ms"
        );
        assert_eq!((t.count, t.first_line, t.last_line), (2, 1, 2));
        assert_eq!(m.template_of(c).unwrap().text, "user <*> logged in");
        assert_eq!(m.templates().count(), 2);
    }

    #[test]
    fn variable_length_values_merge_into_one_template() {
        let mut m = Miner::default();
        let a = m.add("could not resolve host 10.0.0.1 error 11001");
        let b = m.add("could not resolve host 10.0.0.1 10.0.0.2 error 11001");
        assert_eq!(m.template_of(a), m.template_of(b));
        let t = m.template_of(b).unwrap();
        assert_eq!(t.text, "could not resolve host <*> error <*>");
        assert_eq!(t.count, 2);
    }

    #[test]
    fn different_kinds_of_line_stay_apart() {
        let mut m = Miner::default();
        let a = m.add("Connection closed by 1.2.3.4 [preauth]");
        let b = m.add("Failed password for root from 1.2.3.4 port 22 ssh2");
        assert_ne!(m.template_of(a), m.template_of(b));
    }
}
