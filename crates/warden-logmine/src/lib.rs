//! Log template mining: turning a stream of log lines into the few hundred
//! *kinds* of line that produced them.
//!
//! The miner is Drain-class (He et al., ICWS 2017): variable fields are
//! masked first, lines are bucketed by token count and a leading token, and
//! a line joins the most similar template of its bucket or starts a new one.
//! Several things differ from textbook Drain, all to work with one global
//! configuration instead of per-system tuning:
//!
//! - masking is structural (any sub-token carrying digits is a value, and
//!   so is a host name before `:port` or a number behind `<`/`>`), so the
//!   similarity threshold no longer has to compensate for ids;
//! - a run of month/weekday names and numbers is a date, hence a value;
//! - templates whose shape becomes identical once runs of values are
//!   collapsed are merged, which rejoins lines whose variable parts have a
//!   varying number of words; for this, a value's own brackets and a unit
//!   after it (`(1.2 KB)`, `<1 sec`) count as part of the value;
//! - a position where lines differ only in plain words (or `key=word`, or
//!   names such as `SOCKS5`) stays constant until it has shown more than a
//!   handful of distinct words after the same preceding token, so
//!   `GET`/`POST` lines stay apart while user names become `<*>`.
//!
//! [`format::LogFormat`] strips headers described in Loghub's format
//! language; [`eval`] scores a miner against the Loghub-2k labels.

pub mod eval;
pub mod format;
pub mod mask;
pub mod miner;

pub use format::{FormatError, LogFormat};
pub use miner::{Miner, MinerConfig, Template, TemplateId, WILDCARD};

use std::io::BufRead;

/// Errors while reading a log stream.
#[derive(Debug, thiserror::Error)]
pub enum MineError {
    /// The input could not be read.
    #[error("reading line {line}: {source}")]
    Read {
        line: u64,
        #[source]
        source: std::io::Error,
    },
}

/// Mines every line of `input` (headers stripped with `format` when given),
/// calling `on_line(line_number, template)` for each. Memory stays bounded
/// by the number of templates, not lines. Returns the number of lines.
pub fn mine_reader<R: BufRead>(
    mut input: R,
    format: Option<&LogFormat>,
    miner: &mut Miner,
    mut on_line: impl FnMut(u64, TemplateId),
) -> Result<u64, MineError> {
    let mut buf = Vec::with_capacity(512);
    let mut n = 0u64;
    loop {
        buf.clear();
        let read = input
            .read_until(b'\n', &mut buf)
            .map_err(|source| MineError::Read {
                line: n + 1,
                source,
            })?;
        if read == 0 {
            return Ok(n);
        }
        n += 1;
        let text = String::from_utf8_lossy(&buf);
        let line = text.trim_end_matches(['\n', '\r']);
        let content = match format {
            Some(f) => f.content(line).unwrap_or(line),
            None => line,
        };
        let id = miner.add(content);
        on_line(n, id);
    }
}
