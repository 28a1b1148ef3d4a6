//! Phone numbers and the people behind them: one normal form so the same caller matches
//! however a provider or a contact list wrote the number.

use serde::{Deserialize, Serialize};

/// A number in E.164 when it can be made so (Australian national numbers get +61, `0011` is
/// the international prefix); `None` for extensions and fragments.
pub fn e164(number: &str) -> Option<String> {
    let trimmed = number.trim();
    let digits: String = trimmed.chars().filter(|c| c.is_ascii_digit()).collect();
    let international = if trimmed.starts_with('+') {
        digits
    } else if let Some(international) = digits.strip_prefix("0011") {
        international.to_owned()
    } else if let Some(national) = digits.strip_prefix('0') {
        format!("61{national}")
    } else {
        return None;
    };
    (8..=15).contains(&international.len()).then(|| format!("+{international}"))
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
}
