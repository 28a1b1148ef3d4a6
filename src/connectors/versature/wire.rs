//! Versature Integrate webhook messages exactly as the seed shows them: call messages (one
//! object per call with its `from` and `to` endpoints), CDR lists, and the two subscription
//! messages. Two of those are not quite JSON in the seed (Python-dict text with single quotes;
//! RFC 2822 dates without quotes), so a body that strict JSON refuses is read once more leniently.

use crate::model::Timestamp;
use serde_json::Value;

/// The longest text value kept; anything longer is cut, as no real one comes close.
const MAX_VALUE_CHARS: usize = 256;
/// The most CDRs read from one delivery (a 16 KiB body holds far fewer).
const MAX_CDRS: usize = 500;

/// One webhook delivery, read.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `{'msg': ..., 'state': 'preparing' | 'ready'}` while a subscription is set up.
    Subscription {
        state: String,
        msg: String,
    },
    Call(Box<CallMessage>),
    Cdrs(Vec<Cdr>),
}

/// One end of a call: a Versature user (extension) or an outside number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// The unique id of this endpoint's channel: our leg id.
    pub call_id: Option<String>,
    /// The Versature extension, when the endpoint is one.
    pub user: Option<String>,
    /// The phone number (E.164) or SIP address.
    pub id: Option<String>,
    pub name: Option<String>,
    pub domain: Option<String>,
    /// `progressing`, `ringing`, `active` or `ended`, lower-cased.
    pub state: Option<String>,
}

/// A call message: both endpoints as they are now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallMessage {
    pub on_net: Option<bool>,
    pub from: Endpoint,
    pub to: Endpoint,
    pub time_start: Option<Timestamp>,
    pub time_answer: Option<Timestamp>,
    /// Semantics undocumented (providers.md 2.3); kept in the raw payload only.
    pub by_call_id: Option<String>,
}

/// One Call Detail Record, sent shortly after a call ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cdr {
    pub from: Endpoint,
    pub to: Endpoint,
    pub start_time: Option<Timestamp>,
    pub answer_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
    /// Seconds.
    pub duration: Option<u64>,
}

/// Reads a delivery body: the message and the JSON it was read as (kept raw on events).
pub fn parse(body: &[u8]) -> Result<(Message, Value), String> {
    let value = match serde_json::from_slice::<Value>(body) {
        Ok(value) => value,
        Err(strict) => {
            let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text".to_owned())?;
            serde_json::from_str(&relaxed_json(text))
                .map_err(|_| format!("the body is not JSON, nor the seed's relaxed form of it: {strict}"))?
        }
    };
    let message = match &value {
        Value::Object(object) if object.contains_key("calls") => match object.get("calls") {
            Some(Value::Object(_)) => Message::Call(Box::new(call_message(&value["calls"])?)),
            _ => return Err("\"calls\" is not an object".into()),
        },
        Value::Object(object) if object.contains_key("state") || object.contains_key("msg") => Message::Subscription {
            state: text(&value, "state").unwrap_or_default().to_lowercase(),
            msg: text(&value, "msg").unwrap_or_default(),
        },
        Value::Array(records) => {
            if records.len() > MAX_CDRS {
                return Err(format!("{} CDRs in one delivery, more than {MAX_CDRS}", records.len()));
            }
            Message::Cdrs(
                records
                    .iter()
                    .enumerate()
                    .map(|(index, record)| cdr(record).map_err(|e| format!("CDR {index}: {e}")))
                    .collect::<Result<_, _>>()?,
            )
        }
        _ => return Err("neither a call message, a CDR list nor a subscription message".into()),
    };
    Ok((message, value))
}

fn call_message(calls: &Value) -> Result<CallMessage, String> {
    Ok(CallMessage {
        on_net: calls.get("on_net").and_then(Value::as_bool),
        from: endpoint(calls, "from")?,
        to: endpoint(calls, "to")?,
        time_start: time(calls, "time_start")?,
        time_answer: time(calls, "time_answer")?,
        by_call_id: text(calls, "by_call_id"),
    })
}

fn cdr(record: &Value) -> Result<Cdr, String> {
    if !record.is_object() {
        return Err("not an object".into());
    }
    let duration = match record.get("duration") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| format!("duration {value} is not a number of seconds"))?,
        ),
    };
    Ok(Cdr {
        from: endpoint(record, "from")?,
        to: endpoint(record, "to")?,
        start_time: time(record, "start_time")?,
        answer_time: time(record, "answer_time")?,
        end_time: time(record, "end_time")?,
        duration,
    })
}

fn endpoint(parent: &Value, key: &str) -> Result<Endpoint, String> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(Endpoint::default()),
        Some(value @ Value::Object(_)) => Ok(Endpoint {
            call_id: text(value, "call_id"),
            user: text(value, "user"),
            id: text(value, "id"),
            name: text(value, "name"),
            domain: text(value, "domain"),
            state: text(value, "state").map(|state| state.to_lowercase()),
        }),
        Some(_) => Err(format!("\"{key}\" is not an object")),
    }
}

/// A text field: strings trimmed and bounded, numbers as their digits; null and empty are none.
fn text(parent: &Value, key: &str) -> Option<String> {
    let text = match parent.get(key)? {
        Value::String(text) => text.trim().to_owned(),
        Value::Number(number) => number.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then(|| text.chars().take(MAX_VALUE_CHARS).collect())
}

fn time(parent: &Value, key: &str) -> Result<Option<Timestamp>, String> {
    match text(parent, key) {
        None => Ok(None),
        Some(value) => parse_time(&value).map(Some).ok_or_else(|| format!("{key} {value:?} is not a time")),
    }
}

pub use crate::connectors::time::parse_time;

/// The format Versature gives call times in, for the simulator's face.
pub fn format_time(at: Timestamp) -> String {
    jiff::Timestamp::from_millisecond(at).map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

/// The format of the seed's CDR times (RFC 2822), for the simulator's face.
pub fn format_cdr_time(at: Timestamp) -> String {
    jiff::Timestamp::from_millisecond(at)
        .map(|t| t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string())
        .unwrap_or_default()
}

/// Rewrites the seed's near-JSON as JSON: single-quoted strings double-quoted, Python's `True`,
/// `False` and `None` as JSON's literals, and a bare value after a colon (the CDR dates) quoted
/// up to the end of its line. Anything else is left for the JSON parser to refuse.
pub fn relaxed_json(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 32);
    let mut after_colon = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' => {
                let quote = c;
                let mut value = String::new();
                i += 1;
                while i < chars.len() && chars[i] != quote {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                        match chars[i] {
                            'n' => value.push('\n'),
                            't' => value.push('\t'),
                            other => value.push(other),
                        }
                    } else {
                        value.push(chars[i]);
                    }
                    i += 1;
                }
                out.push_str(&Value::String(value).to_string());
                after_colon = false;
                i += 1;
            }
            ':' => {
                out.push(':');
                after_colon = true;
                i += 1;
            }
            c if c.is_alphabetic() => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                match word.as_str() {
                    "True" | "true" => out.push_str("true"),
                    "False" | "false" => out.push_str("false"),
                    "None" | "null" => out.push_str("null"),
                    _ if after_colon => {
                        // To the end of the line, or to a comma that a next key follows (the
                        // comma after a weekday is followed by a digit).
                        let next_key = |at: usize| {
                            chars[at] == ','
                                && chars[at + 1..]
                                    .iter()
                                    .find(|c| !c.is_whitespace())
                                    .is_some_and(|c| matches!(c, '"' | '\''))
                        };
                        while i < chars.len() && !matches!(chars[i], '\n' | '}' | ']') && !next_key(i) {
                            i += 1;
                        }
                        let line: String = chars[start..i].iter().collect();
                        let line = line.trim_end();
                        let (value, comma) = match line.strip_suffix(',') {
                            Some(value) => (value.trim_end(), ","),
                            None => (line, ""),
                        };
                        out.push_str(&Value::String(value.to_owned()).to_string());
                        out.push_str(comma);
                    }
                    _ => out.push_str(&word),
                }
                after_colon = false;
            }
            c => {
                out.push(c);
                if !c.is_whitespace() {
                    after_colon = false;
                }
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_times_read_as_utc() {
        assert_eq!(parse_time("2016-11-24 15:53:12"), Some(1_480_002_792_000));
        assert_eq!(parse_time("Fri, 03 Mar 2017 18:47:50 +0000"), Some(1_488_566_870_000));
        assert_eq!(parse_time("2016-03-28T16:15:50.488920"), Some(1_459_181_750_488));
        assert_eq!(parse_time("2016-11-24T15:53:12Z"), Some(1_480_002_792_000));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time(&format_time(1_480_002_792_000)), Some(1_480_002_792_000));
        assert_eq!(parse_time(&format_cdr_time(1_488_566_870_000)), Some(1_488_566_870_000));
    }

    #[test]
    fn python_dict_text_and_bare_dates_become_json() {
        let init = "{'msg': 'Preparing subscription for: calls', 'state': 'preparing'}";
        let (message, _) = parse(init.as_bytes()).unwrap();
        assert_eq!(
            message,
            Message::Subscription { state: "preparing".into(), msg: "Preparing subscription for: calls".into() }
        );
        assert_eq!(relaxed_json("{'a': True, 'b': None, 'c': 'it\\'s'}"), r#"{"a": true, "b": null, "c": "it's"}"#);
        assert_eq!(
            relaxed_json("{\n  \"end_time\": Fri, 03 Mar 2017 18:48:26 +0000,\n  \"duration\": 20\n}"),
            "{\n  \"end_time\": \"Fri, 03 Mar 2017 18:48:26 +0000\",\n  \"duration\": 20\n}"
        );
        let one_line = r#"[{"from": {"user": "100", "call_id": "a"}, "start_time": Fri, 03 Mar 2017 18:47:39 +0000, "end_time": Fri, 03 Mar 2017 18:48:26 +0000, "duration": 20}]"#;
        let (Message::Cdrs(cdrs), _) = parse(one_line.as_bytes()).unwrap() else { panic!("a CDR list") };
        assert_eq!((cdrs[0].end_time, cdrs[0].duration), (Some(1_488_566_906_000), Some(20)));
    }

    #[test]
    fn odd_values_are_read_or_refused_clearly() {
        let (message, _) =
            parse(br#"{"calls": {"from": {"user": 126, "call_id": "a", "state": "RINGING"}, "to": null}}"#).unwrap();
        let Message::Call(call) = message else { panic!() };
        assert_eq!((call.from.user.as_deref(), call.from.state.as_deref()), (Some("126"), Some("ringing")));
        assert_eq!(call.to, Endpoint::default());
        assert!(parse(br#"{"calls": 5}"#).unwrap_err().contains("not an object"));
        assert!(parse(br#"{"calls": {"time_start": "soon"}}"#).unwrap_err().contains("time_start"));
        assert!(parse(b"[1]").unwrap_err().contains("CDR 0"));
        assert!(parse(b"{\"calls\": ").unwrap_err().contains("not JSON"));
        assert!(parse(b"42").unwrap_err().contains("neither"));
    }
}
