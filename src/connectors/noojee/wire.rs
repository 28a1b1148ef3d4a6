//! Noojee CallManagementAPI messages exactly as the seed shows them, parsed leniently: every
//! field may be missing, unknown fields are kept, one bad entry does not spoil its response.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One extension's view of one channel (`CallData`), with the envelope fields beside it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallData {
    /// Whether the API may answer this call; `None` when the server did not say (an older
    /// server leaving the field out must not make every Answer refused).
    #[serde(default, deserialize_with = "lenient_opt_bool", skip_serializing_if = "Option::is_none")]
    pub can_answer: Option<bool>,
    /// The other party's number (empty while dialling out).
    #[serde(default, deserialize_with = "lenient_string")]
    pub caller_id: String,
    /// The channel's identity (Asterisk `epoch.seq`); answer and hang up by it.
    #[serde(default, deserialize_with = "lenient_string")]
    pub unique_call_id: String,
    /// `""` until connected, then `yyyy/MM/dd HH:mm:ss` in the PBX's local time.
    #[serde(default, deserialize_with = "lenient_string")]
    pub call_start_time: String,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub is_queue_call: bool,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub is_click_to_dial_call: bool,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub inbound: bool,
    /// `Dialing Out`, `Connected`, `Ringing` or `Hungup`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub status: String,
    /// With `Hungup` when the call did not connect: DISCONNECTED, NO_ANSWER, CONGESTION, BUSY.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_optional_string")]
    pub hangup_cause: Option<String>,
    /// Extra fields some servers send (providers.md 1.4).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_optional_string")]
    pub other_party_caller_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_optional_string")]
    pub connected_caller_id_num: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_optional_string")]
    pub outbound_destination: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_optional_string")]
    pub secondary_unique_call_id: Option<String>,
    /// Anything else, kept so nothing is lost.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One element of an extension's array: `{"CallData": {...}, "CallID": 10, "Code": 0}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(rename = "CallData")]
    pub call_data: CallData,
    /// A per-server counter, not the call's identity.
    #[serde(rename = "CallID", default, deserialize_with = "lenient_i64")]
    pub call_id: i64,
    #[serde(rename = "Code", default, deserialize_with = "lenient_i64")]
    pub code: i64,
}

/// A string that may come as `null` (empty) or as a number (its digits).
fn lenient_string<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => text,
        Value::Number(number) => number.to_string(),
        _ => String::new(),
    })
}

/// An optional string that may come as a number (its digits); `null`, or anything else that
/// is no string, is absent rather than a reason to refuse the whole entry.
fn lenient_optional_string<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => Some(text),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    })
}

/// A flag that may come as `"true"`/`"false"`, 1/0, or `null` (false).
/// `lenient_bool`, with a null or a missing field read as "not said".
fn lenient_opt_bool<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        value => lenient_bool(value).map(Some).map_err(serde::de::Error::custom),
    }
}

fn lenient_bool<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Bool(flag) => flag,
        Value::String(text) => matches!(text.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"),
        Value::Number(number) => number.as_i64().is_some_and(|n| n != 0),
        _ => false,
    })
}

/// Provider text in an error or log line is cut to this many characters.
const SHOWN_CHARS: usize = 200;

/// Provider text cut to a length fit for a log line or the admin's screen.
pub fn shorten(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// A number that some servers send as a string (`"CallID":"7"`); anything else reads as 0.
fn lenient_i64<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    Ok(code_of(Some(&Value::deserialize(deserializer)?)).unwrap_or(0))
}

/// A parsed `subscribe` response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subscribe {
    /// `(extension, entry, raw entry)` in the order received.
    pub entries: Vec<(String, Entry, Value)>,
    pub seq: u64,
    /// Entries that could not be read, with why; the rest of the response still counts.
    pub rejected: Vec<String>,
    /// The body was the seed's truncated form (no `{"Data":{` opening) and was repaired.
    pub repaired: bool,
}

/// Why a response could not be used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("the response is not JSON: {0}")]
    NotJson(String),
    #[error("the provider answered Code {code}: {message}")]
    Refused { code: i64, message: String },
    #[error("the response has no {0}")]
    Missing(&'static str),
}

/// The envelope of every other method: `{"Message": "...", "Code": 0}` (+ `SessionID` for dial).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    #[serde(rename = "Message", default)]
    pub message: String,
    #[serde(rename = "Code", default)]
    pub code: i64,
    #[serde(rename = "SessionID", default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Value>,
}

impl Reply {
    pub fn ok(message: &str) -> Self {
        Self { message: message.to_owned(), code: 0, session_id: None }
    }

    pub fn refused(message: &str) -> Self {
        Self { message: message.to_owned(), code: -1, session_id: None }
    }
}

/// Reads a `Code` that may be a number or a string holding one.
fn code_of(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// Reads a `{"Message","Code"}` reply; a negative Code is a refusal in the provider's words.
pub fn parse_reply(text: &str) -> Result<Reply, WireError> {
    let value: Value =
        serde_json::from_str(&plain_spaces(text)).map_err(|error| WireError::NotJson(error.to_string()))?;
    let code = code_of(value.get("Code")).ok_or(WireError::Missing("Code"))?;
    let message = shorten(value.get("Message").and_then(Value::as_str).unwrap_or_default());
    if code < 0 {
        return Err(WireError::Refused { code, message });
    }
    Ok(Reply { message, code, session_id: value.get("SessionID").cloned() })
}

/// Replaces no-break spaces (U+00A0) between JSON tokens with plain ones: the seed's samples
/// are indented with them, which JSON does not allow. Inside strings they are left alone.
fn plain_spaces(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\u{a0}') {
        return std::borrow::Cow::Borrowed(text);
    }
    let (mut out, mut in_string, mut escaped) = (String::with_capacity(text.len()), false, false);
    for c in text.chars() {
        match c {
            '\u{a0}' if !in_string => out.push(' '),
            '"' if !escaped => {
                in_string = !in_string;
                out.push(c);
            }
            _ => out.push(c),
        }
        escaped = in_string && c == '\\' && !escaped;
    }
    std::borrow::Cow::Owned(out)
}

/// Parses a `subscribe` body. A negative `Code` (even inside a 200) is an error; entries that
/// cannot be read are listed in `rejected` and the others still count.
pub fn parse_subscribe(text: &str) -> Result<Subscribe, WireError> {
    let text = &*plain_spaces(text);
    let (value, repaired) = match serde_json::from_str::<Value>(text) {
        Ok(value) => (value, false),
        Err(error) => {
            // The seed prints one response without its opening `{"Data":{`; accept that shape.
            let trimmed = text.trim_start();
            let repaired = trimmed
                .starts_with('"')
                .then(|| serde_json::from_str::<Value>(&format!("{{\"Data\":{{{trimmed}")).ok())
                .flatten();
            (repaired.ok_or_else(|| WireError::NotJson(error.to_string()))?, true)
        }
    };
    let code = code_of(value.get("Code")).unwrap_or(0);
    if code < 0 {
        let message = shorten(value.get("Message").and_then(Value::as_str).unwrap_or_default());
        return Err(WireError::Refused { code, message });
    }
    let seq = match value.get("seq") {
        Some(Value::Number(number)) => number.as_u64(),
        Some(Value::String(text)) => text.trim().parse().ok(),
        _ => None,
    }
    .ok_or(WireError::Missing("seq"))?;
    let mut subscribe = Subscribe { seq, repaired, ..Subscribe::default() };
    let data = match value.get("Data") {
        Some(Value::Object(data)) => data.clone(),
        Some(Value::Null) | None => Map::new(),
        Some(other) => {
            return Err(WireError::NotJson(format!("Data is {}, not an object", shorten(&other.to_string()))))
        }
    };
    for (extension, list) in data {
        let Value::Array(list) = list else {
            subscribe.rejected.push(shorten(&format!("extension {extension}: not a list of calls")));
            continue;
        };
        for raw in list {
            match serde_json::from_value::<Entry>(raw.clone()) {
                Ok(entry) if entry.call_data.unique_call_id.is_empty() => {
                    subscribe.rejected.push(format!("extension {extension}: an entry without uniqueCallId"));
                }
                Ok(entry) => subscribe.entries.push((extension.clone(), entry, raw)),
                Err(error) => subscribe.rejected.push(shorten(&format!("extension {extension}: {error}"))),
            }
        }
    }
    Ok(subscribe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extra_fields_may_come_as_numbers_or_anything_else() {
        let text = r#"{"Data":{"400":[{"CallData":{"uniqueCallId":"1412750652.495","status":"Hungup",
            "secondaryUniqueCallId":1412750652.496,"connectedCallerIdNum":410,"otherPartyCallerId":null,
            "outboundDestination":{"odd":true},"hangupCause":7},"CallID":3,"Code":0}]},"seq":2,"Code":0}"#;
        let subscribe = parse_subscribe(text).unwrap();
        assert!(subscribe.rejected.is_empty(), "{:?}", subscribe.rejected);
        let data = &subscribe.entries[0].1.call_data;
        assert_eq!(data.secondary_unique_call_id.as_deref(), Some("1412750652.496"));
        assert_eq!(data.connected_caller_id_num.as_deref(), Some("410"));
        assert_eq!((data.other_party_caller_id.as_deref(), data.outbound_destination.as_deref()), (None, None));
        assert_eq!(data.hangup_cause.as_deref(), Some("7"));
    }

    #[test]
    fn no_break_spaces_are_whitespace_between_tokens_only() {
        let text = "{\u{a0}\"Data\":{},\u{a0}\"seq\":4,\"Code\":0,\"x\":\"a\u{a0}\\\"b\u{a0}\"}";
        let cleaned = plain_spaces(text);
        assert_eq!(cleaned, "{ \"Data\":{}, \"seq\":4,\"Code\":0,\"x\":\"a\u{a0}\\\"b\u{a0}\"}");
        assert_eq!(parse_subscribe(text).unwrap().seq, 4);
    }

    #[test]
    fn nulls_numbers_and_string_flags_are_read() {
        let body = r#"{"Data":{"500":[{"CallData":{"uniqueCallId":1234.5,"callStartTime":null,"callerId":null,
            "inbound":"true","isQueueCall":1,"status":"Ringing"},"CallID":"3","Code":0}]},"seq":2,"Code":0}"#;
        let parsed = parse_subscribe(body).unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        let data = &parsed.entries[0].1.call_data;
        assert_eq!(
            (data.unique_call_id.as_str(), data.call_start_time.as_str(), data.inbound, data.is_queue_call),
            ("1234.5", "", true, true)
        );
        assert_eq!(shorten(&"x".repeat(500)).chars().count(), 201);
    }

    #[test]
    fn a_negative_code_inside_a_200_is_an_error() {
        let error = parse_subscribe(r#"{"Message":"Expired TimeStamp","Code":-1}"#).unwrap_err();
        assert_eq!(error, WireError::Refused { code: -1, message: "Expired TimeStamp".into() });
        assert_eq!(parse_reply(r#"{"Message":"Channel Hungup","Code":0}"#).unwrap().message, "Channel Hungup");
        assert!(matches!(
            parse_reply(r#"{"Message":"No such channel","Code":"-2"}"#),
            Err(WireError::Refused { code: -2, .. })
        ));
    }
}
