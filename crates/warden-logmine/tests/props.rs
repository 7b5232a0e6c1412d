#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Properties of the format parser and of the miner's templates.

use proptest::prelude::*;
use regex::Regex;
use warden_logmine::{LogFormat, Miner, WILDCARD};

/// A regex that matches exactly the texts a template describes, with each
/// `<*>` standing for any text.
fn template_regex(template: &str) -> Regex {
    let parts: Vec<String> = template
        .split_whitespace()
        .map(|tok| {
            tok.split(WILDCARD)
                .map(regex::escape)
                .collect::<Vec<_>>()
                .join(".*?")
        })
        .collect();
    Regex::new(&format!(r"^\s*{}\s*$", parts.join(r"\s+"))).unwrap()
}

fn field_name() -> impl Strategy<Value = String> {
    "[A-Z][a-z]{1,6}"
}

proptest! {
    #[test]
    fn every_line_matches_the_expansion_of_its_template(
        lines in prop::collection::vec(
            prop::collection::vec(
                prop_oneof![
                    "[a-z]{1,6}",
                    "[0-9]{1,5}",
                    "[a-z]{1,3}=[0-9a-f]{1,4}",
                    "/[a-z]{1,3}/[0-9]{1,3}",
                    "[a-z]{2}[0-9]",
                    "\\(?[A-Za-z.]{1,4}[:,)]?",
                    "[0-9]{1,4} (KB|ms|sec|bytes)\\)?",
                    "\\([0-9.]{1,4}",
                    "<[0-9]",
                    "(Jun|Fri|user=root|user=guest|SOCKS5)",
                    "[a-z]{1,3}\\.[a-z]{1,3}:[0-9]{1,4}",
                ],
                0..8,
            ).prop_map(|t| t.join(" ")),
            1..60,
        )
    ) {
        let mut miner = Miner::default();
        let ids: Vec<_> = lines.iter().map(|l| miner.add(l)).collect();
        for (line, id) in lines.iter().zip(ids) {
            let template = miner.template_of(id).unwrap();
            prop_assert!(
                template_regex(&template.text).is_match(line),
                "{line:?} does not fit {:?}", template.text
            );
        }
        let total: u64 = miner.templates().map(|t| t.count).sum();
        prop_assert_eq!(total, lines.len() as u64);
    }

    #[test]
    fn a_format_splits_back_the_line_it_describes(
        names in prop::collection::btree_set(field_name(), 1..5),
        values in prop::collection::vec("[A-Za-z0-9_.-]{1,10}", 5),
        separators in prop::collection::vec(prop_oneof![Just(" "), Just("  "), Just(" - "), Just("|"), Just("] [")], 5),
        content in "([!-~][ -~]{0,39})?",
    ) {
        let names: Vec<String> = names.into_iter().filter(|n| n != "Content").collect();
        let mut format = String::new();
        let mut line = String::new();
        for (i, name) in names.iter().enumerate() {
            format.push('<');
            format.push_str(name);
            format.push('>');
            line.push_str(&values[i]);
            let sep = separators[i];
            format.push_str(&sep.replace('|', r"\|").replace('[', r"\[").replace(']', r"\]"));
            line.push_str(sep);
        }
        format.push_str("<Content>");
        line.push_str(&content);
        let parsed = LogFormat::parse(&format).unwrap();
        prop_assert_eq!(parsed.content(&line), Some(content.as_str()));
        let fields = parsed.fields_of(&line).unwrap();
        for (i, name) in names.iter().enumerate() {
            prop_assert_eq!(fields[i], (name.as_str(), values[i].as_str()));
        }
    }

    #[test]
    fn the_parser_never_panics_on_arbitrary_formats(format in "[ -~]{0,40}") {
        let _ = LogFormat::parse(&format);
    }
}
