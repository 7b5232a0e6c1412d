//! Masking of variable fields before clustering.
//!
//! A whitespace token is cut into segments at punctuation that separates
//! values from names (`=`, `:`, `,`, brackets, quotes, `/`, ...). A segment
//! is a value when it carries digits — numbers, IPs, hex ids, UUIDs, block
//! ids, versions and paths with numbers all do — unless it is a word
//! followed by one digit (`ssh2`, `SOCKS5`, `ipv6`), which is usually part of
//! a name. Value segments become `<*>`; the rest of the token is kept, so
//! `uid=0` becomes `uid=<*>` and `/10.0.0.1:50010` becomes `/<*>:<*>`.
//!
//! Deciding per segment rather than per token keeps key names and
//! punctuation in the template, which is what makes lines of one kind
//! identical after masking even when their values differ in shape.

/// The placeholder for a variable field.
pub const WILDCARD: &str = "<*>";

fn is_separator(b: u8) -> bool {
    matches!(
        b,
        b'=' | b':'
            | b','
            | b';'
            | b'('
            | b')'
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'"'
            | b'\''
            | b'/'
            | b'|'
            | b'<'
            | b'>'
            | b'@'
            | b'#'
            | b'&'
            | b'!'
            | b'?'
            | b'$'
    )
}

/// A segment with digits is a value, except a word with one trailing digit.
fn is_value(segment: &[u8]) -> bool {
    let digits = segment.iter().filter(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return false;
    }
    let name_with_digit = digits == 1
        && segment.len() >= 3
        && segment.last().is_some_and(u8::is_ascii_digit)
        && segment
            .iter()
            .take(segment.len() - 1)
            .all(u8::is_ascii_alphabetic);
    !name_with_digit
}

/// Whether `token` would change under [`mask_token`]; most tokens do not,
/// and the caller can then use the token as is without copying.
pub fn needs_mask(token: &str) -> bool {
    token.bytes().any(|b| b.is_ascii_digit())
}

/// A host name: dotted, letters/digits/`-`/`_` only (`proxy.example.org`).
fn is_host(segment: &[u8]) -> bool {
    segment.contains(&b'.')
        && segment.first().is_some_and(u8::is_ascii_alphanumeric)
        && segment
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Whether the segment starting at `start` is a host followed by `:port`:
/// the host is then as variable as the port (`db.example.org:5432`).
fn is_host_before_port(bytes: &[u8], start: usize, end: usize) -> bool {
    if bytes.get(end) != Some(&b':') {
        return false;
    }
    let port = bytes
        .get(end + 1..)
        .unwrap_or_default()
        .iter()
        .take_while(|b| !is_separator(**b))
        .collect::<Vec<_>>();
    !port.is_empty()
        && port.iter().all(|b| b.is_ascii_digit())
        && is_host(bytes.get(start..end).unwrap_or_default())
}

/// Appends the masked form of `token` to `out`.
pub fn mask_token(token: &str, out: &mut String) {
    // A comparison or sign glued to a number (`<1`, `>=10`, `~5`) is part of
    // the value, so `<1 sec` and `00:01` are both one value.
    let digits_from = token
        .bytes()
        .position(|b| !matches!(b, b'<' | b'>' | b'=' | b'~' | b'+'))
        .unwrap_or(token.len());
    if digits_from > 0
        && !token.starts_with('=')
        && token
            .as_bytes()
            .get(digits_from..)
            .is_some_and(|rest| !rest.is_empty() && !rest.iter().any(|&b| is_separator(b)))
        && token
            .as_bytes()
            .get(digits_from)
            .is_some_and(u8::is_ascii_digit)
    {
        out.push_str(WILDCARD);
        return;
    }
    let bytes = token.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i <= bytes.len() {
        let at_end = i == bytes.len();
        if at_end || bytes.get(i).copied().is_some_and(is_separator) {
            let segment = bytes.get(start..i).unwrap_or_default();
            if is_value(segment) || (!at_end && is_host_before_port(bytes, start, i)) {
                // Collapse `<*><*>`-like runs that separators did not split.
                if !out.ends_with(WILDCARD) {
                    out.push_str(WILDCARD);
                }
            } else {
                out.push_str(token.get(start..i).unwrap_or_default());
            }
            if !at_end {
                out.push_str(token.get(i..=i).unwrap_or_default());
            }
            start = i + 1;
        }
        i += 1;
    }
}

/// The masked form of `token` as a new string (convenience for callers
/// outside the hot path).
pub fn masked(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    mask_token(token, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_masked_and_names_kept() {
        assert_eq!(masked("uid=0"), "uid=<*>");
        assert_eq!(masked("/10.251.43.191:50010"), "/<*>:<*>");
        assert_eq!(masked("blk_-1608999687919862906"), "<*>");
        assert_eq!(masked("123e4567-e89b-12d3-a456-426614174000"), "<*>");
        assert_eq!(masked("0xdeadbeef,"), "<*>,");
        assert_eq!(masked("ssh2"), "ssh2");
        assert_eq!(masked("SOCKS5"), "SOCKS5");
        assert_eq!(masked("logname="), "logname=");
        assert_eq!(masked("mice.c(1234)]:"), "mice.c(<*>)]:");
        assert_eq!(masked("orders"), "orders");
        assert_eq!(masked("db.example.org:5432"), "<*>:<*>");
        assert_eq!(masked("org.example.Foo:"), "org.example.Foo:");
        assert_eq!(masked("<1"), "<*>");
        assert_eq!(masked(">=10ms"), "<*>");
    }

    #[test]
    fn only_tokens_with_digits_need_masking() {
        assert!(!needs_mask("connection"));
        assert!(needs_mask("port=80"));
    }
}
