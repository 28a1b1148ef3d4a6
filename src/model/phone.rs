//! Phone numbers and the people behind them: one normal form so the same caller matches
//! however a provider or a contact list wrote the number.

use serde::{Deserialize, Serialize};

/// A number in E.164 when it can be made so (Australian national numbers get +61, `0011` is
/// the international prefix, and the `(0)` of `+61 (0)2 ...` is dropped as `dialable` drops
/// it, so both spellings match); `None` for extensions and fragments.
pub fn e164(number: &str) -> Option<String> {
    let trimmed = number.trim();
    let digits = |text: &str| text.chars().filter(|c| c.is_ascii_digit()).collect::<String>();
    let international = if let Some(rest) = trimmed.strip_prefix('+') {
        digits(&rest.replacen("(0)", "", 1))
    } else {
        let written = digits(trimmed);
        if let Some(international) = written.strip_prefix("0011") {
            international.to_owned()
        } else if let Some(national) = written.strip_prefix('0') {
            format!("61{national}")
        } else {
            return None;
        }
    };
    (8..=15).contains(&international.len()).then(|| format!("+{international}"))
}

/// The number as a PBX dials it: its digits (after a leading `+`, with `*` and `#` for feature
/// codes) without the spaces, dashes, dots and brackets people write between them, and without
/// the `(0)` of `+61 (0)2 ...`. `None` when anything else is left, or no digit.
pub fn dialable(number: &str) -> Option<String> {
    let trimmed = number.trim();
    let (mut dial, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => (String::from("+"), rest.replacen("(0)", "", 1)),
        None => (String::new(), trimmed.to_owned()),
    };
    for c in rest.chars() {
        match c {
            '0'..='9' | '*' | '#' => dial.push(c),
            ' ' | '\u{a0}' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    dial.chars().any(|c| c.is_ascii_digit()).then_some(dial)
}

/// Someone in the contact list, looked up by number for the screen pop and dialled from the
/// desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    #[serde(default)]
    pub id: i64,
    pub name: String,
    pub number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalize_to_e164() {
        assert_eq!(e164("02 9999 0000").as_deref(), Some("+61299990000"));
        assert_eq!(e164("+61 2 9999 0000").as_deref(), Some("+61299990000"));
        assert_eq!(e164("(02) 9999-0000").as_deref(), Some("+61299990000"));
        assert_eq!(e164("0011 44 20 7946 0000").as_deref(), Some("+442079460000"));
        assert_eq!(e164("201"), None);
        assert_eq!(e164("1234567"), None);
    }

    #[test]
    fn the_trunk_zero_written_after_the_country_code_is_dropped() {
        assert_eq!(e164("+61 (0)2 9999 0000").as_deref(), Some("+61299990000"));
        assert_eq!(e164("+61(0)412 345 678").as_deref(), Some("+61412345678"));
        // The same caller however written, as `dialable` reads it.
        assert_eq!(e164("+61 (0)2 9999 0000"), e164(&dialable("+61 (0)2 9999 0000").unwrap()));
    }

    #[test]
    fn numbers_are_dialled_without_what_people_write_between_digits() {
        assert_eq!(dialable("02 9999 5678").as_deref(), Some("0299995678"));
        assert_eq!(dialable(" (02) 9999-5678 ").as_deref(), Some("0299995678"));
        assert_eq!(dialable("+61 (0)2 9999.5678").as_deref(), Some("+61299995678"));
        assert_eq!(dialable("201").as_deref(), Some("201"));
        assert_eq!(dialable("*97").as_deref(), Some("*97"));
        assert_eq!(dialable("0299995678 ext 12"), None);
        assert_eq!(dialable("++61299995678"), None);
        assert_eq!(dialable("- ( )"), None);
        assert_eq!(dialable(""), None);
    }
}
