//! The streaming miner: masking, a prefix tree keyed by token count and
//! leading token, similarity matching, and shape-based template merging.
//!
//! Tokens are interned to `u32` so that comparing a line with a template is
//! a comparison of integer slices; `0` is the wildcard. A bounded cache maps
//! a masked token sequence seen before straight to its template, which is
//! what most lines of a real log hit. Memory grows with the number of
//! distinct templates and tokens, never with the number of lines.
//!
//! Plain words (keywords such as `GET`/`POST` or `Paused`/`Resumed`) are
//! not generalised on first sight: two lines that differ in a keyword stay
//! apart until that position of their bucket has carried more than
//! [`MinerConfig::keyword_variety`] distinct keywords, which marks it as a
//! variable (user names, weekdays); the templates it kept apart are then
//! merged.

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
    /// A position whose lines carried at most this many distinct keywords
    /// is treated as constant: lines differing there stay apart.
    pub keyword_variety: usize,
}

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig {
            similarity: 0.7,
            cache_capacity: 1 << 16,
            keyword_variety: 5,
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
    /// Clusters merged into this one, itself included (valid at a root).
    members: usize,
    template: Template,
}

#[derive(Debug, Default, Clone)]
struct Interner {
    ids: FxHashMap<Box<str>, u32>,
    texts: Vec<Box<str>>,
    /// Whether a token may key a bucket: a plain word, not a value.
    word: Vec<bool>,
    /// Whether a token looks like a keyword: letters only once surrounding
    /// punctuation is stripped (`GET`, `"POST`, `Paused`).
    keyword: Vec<bool>,
    /// [`CALENDAR`], [`UNIT`] and [`LOOSE`] bits per token.
    flags: Vec<u8>,
}

/// Where keywords are counted: token count, lead token, position and the
/// token before it, so unrelated templates sharing a bucket do not pool
/// their keywords.
type VarietyKey = (usize, u32, usize, u32);

fn variety_key(key: (usize, u32), tokens: &[u32], pos: usize) -> VarietyKey {
    let before = pos
        .checked_sub(1)
        .and_then(|p| tokens.get(p).copied())
        .unwrap_or(u32::MAX);
    (key.0, key.1, pos, before)
}

/// A month or weekday name: part of a date when next to a number.
const CALENDAR: u8 = 1;
/// A unit (`KB`, `ms`, `bytes`): part of the value when after a number.
const UNIT: u8 = 2;
/// Only a value and brackets or separators (`(<*>)`, `<*>:<*>`): for
/// matching shapes it stands for a value, whatever its punctuation.
const LOOSE: u8 = 4;

fn is_calendar(word: &str) -> bool {
    const NAMES: [&str; 19] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
        "mon", "tue", "wed", "thu", "fri", "sat",
    ];
    let lower = word.to_ascii_lowercase();
    lower == "sun"
        || NAMES.contains(&lower.as_str())
        || [
            "january",
            "february",
            "march",
            "april",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ]
        .contains(&lower.as_str())
}

fn is_unit(word: &str) -> bool {
    const UNITS: [&str; 30] = [
        "b", "kb", "mb", "gb", "tb", "kib", "mib", "gib", "tib", "byte", "bytes", "bit", "bits",
        "ns", "us", "ms", "s", "sec", "secs", "second", "seconds", "min", "mins", "minute",
        "minutes", "h", "hr", "hrs", "hour", "hours",
    ];
    UNITS.contains(&word.to_ascii_lowercase().as_str())
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
        let core = token.trim_matches(|c: char| c.is_ascii_punctuation());
        // `user=root` is as much a keyword as `root`: the key is constant.
        // Digits left unmasked belong to a name (`ssh2`, `SOCKS5`).
        let keyword = !token.contains(WILDCARD)
            && !core.is_empty()
            && core.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'=')
            && core.bytes().any(|b| b.is_ascii_alphabetic());
        let bare = token.trim_matches(|c: char| matches!(c, '(' | ')' | '[' | ']' | ','));
        let mut flags = 0;
        if is_calendar(core) {
            flags |= CALENDAR;
        }
        if is_unit(bare) && !token.ends_with(',') {
            flags |= UNIT;
        }
        if token.contains(WILDCARD)
            && token.replace(WILDCARD, "").bytes().all(|b| {
                matches!(
                    b,
                    b'(' | b')' | b'[' | b']' | b':' | b'.' | b'-' | b'+' | b'~'
                )
            })
        {
            flags |= LOOSE;
        }
        self.ids.insert(token.into(), id);
        self.texts.push(token.into());
        self.word.push(word);
        self.keyword.push(keyword);
        self.flags.push(flags);
        id
    }

    fn text(&self, id: u32) -> &str {
        self.texts.get(id as usize).map_or(WILDCARD, |t| t)
    }

    fn is_word(&self, id: u32) -> bool {
        self.word.get(id as usize).copied().unwrap_or(false)
    }

    fn has(&self, id: u32, flag: u8) -> bool {
        self.flags.get(id as usize).is_some_and(|f| f & flag != 0)
    }

    fn is_keyword(&self, id: u32) -> bool {
        self.keyword.get(id as usize).copied().unwrap_or(false)
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
    /// Distinct keywords seen per (token count, lead, position), capped just
    /// above [`MinerConfig::keyword_variety`].
    variety: FxHashMap<VarietyKey, Vec<u32>>,
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
            variety: FxHashMap::default(),
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
        self.mask_dates(&mut tokens);
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

    /// A run of month/weekday names and values that holds at least one of
    /// each is a date (`Fri Jul 1 07:57:30 2005`): all of it is a value.
    fn mask_dates(&self, tokens: &mut [u32]) {
        if !tokens.iter().any(|&t| self.interner.has(t, CALENDAR)) {
            return;
        }
        let datelike = |t: u32| t == WILD || self.interner.has(t, CALENDAR | LOOSE);
        let mut i = 0;
        while i < tokens.len() {
            let end = i + tokens
                .get(i..)
                .unwrap_or_default()
                .iter()
                .take_while(|&&t| datelike(t))
                .count();
            if end == i {
                i += 1;
                continue;
            }
            let run = tokens.get_mut(i..end).unwrap_or_default();
            if run.iter().any(|&t| self.interner.has(t, CALENDAR))
                && run
                    .iter()
                    .any(|&t| t == WILD || self.interner.has(t, LOOSE))
            {
                for t in run.iter_mut().filter(|t| self.interner.has(**t, CALENDAR)) {
                    *t = WILD;
                }
            }
            i = end;
        }
    }

    /// Finds or creates the cluster for a masked line (cache miss path).
    fn place(&mut self, tokens: &[u32]) -> usize {
        let lead = tokens
            .first()
            .copied()
            .filter(|&t| self.interner.is_word(t))
            .unwrap_or(WILD);
        let key = (tokens.len(), lead);
        let cap = self.config.keyword_variety;
        let mut became_variable = false;
        for (pos, &t) in tokens.iter().enumerate() {
            if self.interner.is_keyword(t) {
                let seen = self
                    .variety
                    .entry(variety_key(key, tokens, pos))
                    .or_default();
                if seen.len() <= cap && !seen.contains(&t) {
                    seen.push(t);
                    became_variable |= seen.len() > cap;
                }
            }
        }
        if became_variable {
            self.regroup(key);
        }
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
            let Some(same) = self.agreement(key, &cluster.tokens, tokens) else {
                continue;
            };
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
                self.absorb(key, c);
                self.reshape(c);
            }
            return c;
        }
        let c = self.clusters.len();
        self.clusters.push(Cluster {
            tokens: tokens.to_vec(),
            parent: c,
            members: 1,
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
        let mut shown = Vec::with_capacity(cluster.tokens.len());
        for &t in &cluster.tokens {
            if !(t == WILD && shown.last() == Some(&WILD)) {
                shown.push(t);
            }
        }
        // The key for merging is looser than the text: a value keeps no
        // punctuation of its own and swallows a unit after it, so
        // `<*> bytes (<*> KB) sent` and `<*> bytes sent` share a shape.
        let mut shape = Vec::with_capacity(cluster.tokens.len());
        for &t in &cluster.tokens {
            let after_value = shape.last() == Some(&WILD);
            let value = t == WILD
                || self.interner.has(t, LOOSE)
                || (after_value && self.interner.has(t, UNIT));
            if !(value && after_value) {
                shape.push(if value { WILD } else { t });
            }
        }
        let own = self.find(c);
        let other = self.shapes.get(&shape).copied().map(|o| self.find(o));
        let root = match other {
            Some(o) if o != own => self.union(o, own),
            _ => own,
        };
        let render = |tokens: &[u32]| {
            tokens
                .iter()
                .map(|&t| self.interner.text(t))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut text = render(&shown);
        if let Some(r) = self.clusters.get(root)
            && r.members > 1
            && !r.template.text.is_empty()
            && r.template.text != text
        {
            // Members differ in how their values are punctuated; only the
            // shape describes them all.
            text = render(&shape);
        }
        self.shapes.insert(shape, root);
        if let Some(r) = self.clusters.get_mut(root) {
            r.template.text = text;
        }
    }

    /// Positions on which `a` and `b` agree, or `None` when they differ in
    /// a keyword at a position that has not proved variable.
    fn agreement(&self, key: (usize, u32), a: &[u32], b: &[u32]) -> Option<usize> {
        let cap = self.config.keyword_variety;
        let mut same = 0;
        for (pos, (&x, &y)) in a.iter().zip(b).enumerate() {
            if x == y {
                same += 1;
            } else if self.interner.is_keyword(x)
                && self.interner.is_keyword(y)
                && [a, b].iter().all(|t| {
                    self.variety
                        .get(&variety_key(key, t, pos))
                        .is_none_or(|v| v.len() <= cap)
                })
            {
                return None;
            }
        }
        Some(same)
    }

    /// Once a position of bucket `key` proves variable, merges the
    /// templates of the bucket that it alone kept apart.
    fn regroup(&mut self, key: (usize, u32)) {
        let Some(members) = self.buckets.get(&key).cloned() else {
            return;
        };
        let needed = self.config.similarity * key.0 as f64;
        for (i, &a) in members.iter().enumerate() {
            for &b in members.iter().skip(i + 1) {
                if self.find(a) == self.find(b) {
                    continue;
                }
                let (Some(ta), Some(tb)) = (
                    self.clusters.get(a).map(|c| c.tokens.clone()),
                    self.clusters.get(b).map(|c| c.tokens.clone()),
                ) else {
                    continue;
                };
                if self
                    .agreement(key, &ta, &tb)
                    .is_some_and(|same| same as f64 >= needed)
                {
                    let mut joined = ta;
                    for (have, other) in joined.iter_mut().zip(&tb) {
                        if have != other {
                            *have = WILD;
                        }
                    }
                    for c in [a, b] {
                        if let Some(cluster) = self.clusters.get_mut(c) {
                            cluster.tokens.clone_from(&joined);
                        }
                        self.reshape(c);
                    }
                }
            }
        }
    }

    /// Merges into `c` every other template of its bucket that `c` now
    /// covers, i.e. equal wherever `c` is not a wildcard: lines kept apart
    /// before a position proved variable rejoin once it has.
    fn absorb(&mut self, key: (usize, u32), c: usize) {
        let Some(members) = self.buckets.get(&key).cloned() else {
            return;
        };
        let Some(pattern) = self.clusters.get(c).map(|x| x.tokens.clone()) else {
            return;
        };
        for o in members {
            if self.find(o) == self.find(c) {
                continue;
            }
            let covered = self.clusters.get(o).is_some_and(|other| {
                pattern
                    .iter()
                    .zip(&other.tokens)
                    .all(|(&p, &t)| p == WILD || p == t)
            });
            if covered {
                if let Some(other) = self.clusters.get_mut(o) {
                    other.tokens.clone_from(&pattern);
                }
                self.reshape(o);
            }
        }
    }

    /// Merges the template `from` into `into`; returns the survivor.
    fn union(&mut self, into: usize, from: usize) -> usize {
        let Some(moved) = self.clusters.get(from).map(|c| c.template.clone()) else {
            return into;
        };
        let mut members = 1;
        if let Some(f) = self.clusters.get_mut(from) {
            f.parent = into;
            members = f.members;
        }
        if let Some(i) = self.clusters.get_mut(into) {
            i.members += members;
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
        let a = m.add("timeout acquiring connection from pool db-1 after 5000 ms");
        let b = m.add("timeout acquiring connection from pool db-2 after 7000 ms");
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
    fn lines_differing_only_in_a_keyword_stay_apart() {
        let mut m = Miner::default();
        let get = m.add("10.0.0.1 \"GET /v2/9/servers HTTP/1.1\" status: 200");
        let post = m.add("10.0.0.2 \"POST /v2/9/servers HTTP/1.1\" status: 202");
        let get2 = m.add("10.0.0.3 \"GET /v2/7/servers HTTP/1.1\" status: 404");
        assert_ne!(m.template_of(get), m.template_of(post));
        assert_eq!(m.template_of(get), m.template_of(get2));
        assert!(m.template_of(post).unwrap().text.contains("\"POST"));
    }

    #[test]
    fn a_position_with_many_keywords_becomes_a_variable() {
        let mut m = Miner::default();
        let names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"];
        let ids: Vec<_> = names
            .iter()
            .map(|n| m.add(&format!("accepted login for user {n} from host")))
            .collect();
        let first = m.template_of(ids[0]).unwrap().id;
        assert!(ids.iter().all(|&i| m.template_of(i).unwrap().id == first));
        assert_eq!(
            m.template_of(first).unwrap().text,
            "accepted login for user <*> from host"
        );
        assert_eq!(m.template_of(first).unwrap().count, 7);
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
    fn values_with_and_without_units_share_a_template() {
        let mut m = Miner::default();
        let a = m.add("conn close, 850 bytes sent, lifetime 00:02");
        let b = m.add("conn close, 1190 bytes (1.16 KB) sent, lifetime <1 sec");
        let c = m.add("conn close, 12 bytes (1.2 MB) sent, lifetime 01:10");
        assert_eq!(m.template_of(a), m.template_of(b));
        assert_eq!(m.template_of(a), m.template_of(c));
        assert_eq!(
            m.template_of(a).unwrap().text,
            "conn close, <*> sent, lifetime <*>"
        );
    }

    #[test]
    fn dates_are_values_and_hosts_before_ports_too() {
        let mut m = Miner::default();
        let a = m.add("connection from 10.0.0.1 at Fri Jun 17 07:07:00 2005");
        let b = m.add("connection from 10.0.0.2 at Sat Jul  2 17:00:01 2005");
        assert_eq!(m.template_of(a), m.template_of(b));
        let c = m.add("db.example.org:5432 open through proxy");
        let d = m.add("10.1.2.3:80 open through proxy");
        assert_eq!(m.template_of(c), m.template_of(d));
        assert_eq!(m.template_of(c).unwrap().text, "<*>:<*> open through proxy");
    }

    #[test]
    fn keys_with_word_values_and_names_with_digits_are_keywords() {
        let mut m = Miner::default();
        let root = m.add("auth failure; uid=0 rhost=10.0.0.1 user=root");
        let guest = m.add("auth failure; uid=0 rhost=10.0.0.2 user=guest");
        let root2 = m.add("auth failure; uid=5 rhost=10.0.0.3 user=root");
        assert_ne!(m.template_of(root), m.template_of(guest));
        assert_eq!(m.template_of(root), m.template_of(root2));
        let https = m.add("10.0.0.1:22 open through proxy 10.0.0.9:80 HTTPS");
        let socks = m.add("10.0.0.2:22 open through proxy 10.0.0.9:80 SOCKS5");
        assert_ne!(m.template_of(https), m.template_of(socks));
    }

    #[test]
    fn different_kinds_of_line_stay_apart() {
        let mut m = Miner::default();
        let a = m.add("Connection closed by 1.2.3.4 [preauth]");
        let b = m.add("Failed password for root from 1.2.3.4 port 22 ssh2");
        assert_ne!(m.template_of(a), m.template_of(b));
    }
}
