//! Voicenter's Real Time API events as the seed documents them, read leniently: numbers that
//! come as strings, epoch seconds beside milliseconds, the call id under three spellings, a
//! `userStatusUpdate` whose fields sit beside `data` instead of in it.
//!
//! Nothing here trusts the provider: a field of the wrong type is absent, and an event without
//! what identifies it (an extension number, a call id) is refused with the event named.

use crate::model::Timestamp;
use serde_json::Value;

/// Why an event could not be read; the connector counts and logs it and goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{event}: {problem}")]
    Unusable { event: String, problem: String },
}

fn unusable(event: &str, problem: impl Into<String>) -> WireError {
    WireError::Unusable { event: event.to_owned(), problem: problem.into() }
}

/// One server-to-client event, read.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    LoginSuccess {
        servertime: Option<Timestamp>,
    },
    /// The monitored queues with their waiting calls: a full statement of every queue listed.
    LoginStatus {
        servertime: Option<Timestamp>,
        queues: Vec<QueueView>,
    },
    /// Every monitored extension with its live calls: a full statement.
    AllExtensions {
        servertime: Option<Timestamp>,
        extensions: Vec<ExtensionView>,
    },
    Extension(Box<ExtensionEvent>),
    Queue(QueueEvent),
    /// `ExtensionsUpdated`, `QueuesUpdated`, `DialersUpdated`: what is monitored changed; the
    /// client answers with `resync`.
    Updated(String),
    KeepaliveResponse {
        ok: bool,
    },
    /// A login that failed (`errorCode` other than 0 in a login event), in Voicenter's words.
    LoginRefused(String),
    /// An event this connector has no use for (legacy `loginResponse`, new ones).
    Ignored(String),
}

/// An extension as AllExtensionsStatus and every ExtensionEvent describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtensionView {
    /// `number`, the extension: what ids are keyed by.
    pub number: String,
    pub user_name: Option<String>,
    /// `summery.representative` (sic): who works at the extension now.
    pub representative_name: Option<String>,
    pub exten_user: Option<String>,
    /// `representativeStatus`, 1 to 13.
    pub status: Option<u64>,
    /// `representativeUpdated`, in milliseconds on the wire (0 = never).
    pub status_updated: Option<Timestamp>,
    /// The live calls, each a full statement of that call at this extension.
    pub calls: Vec<CallView>,
}

/// One call at one extension, from `calls[]` or `currentCall`.
#[derive(Debug, Clone, PartialEq)]
pub struct CallView {
    /// `ivrid`, else `IvrUniqueID`, else `ivruniqueid`.
    pub ivrid: String,
    /// `callstatus`: Ringing, Dialing, Talking, Spying.
    pub status: String,
    /// `direction`: Incoming, Outgoing, Click2Call (also spelled Click2call), Spy.
    pub direction: String,
    /// `c2cdirection`, 1 or 2, given as a string or a number.
    pub c2c: Option<u8>,
    pub started: Option<Timestamp>,
    /// `callAnswered`, 0 until answered.
    pub answered_at: Option<Timestamp>,
    pub answered: bool,
    pub caller_name: Option<String>,
    pub caller_phone: Option<String>,
    pub did: Option<String>,
    pub raw: Value,
}

/// An `ExtensionEvent`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtensionEvent {
    /// NEWCALL, ANSWER, HOLD, UNHOLD, HANGUP, userStatusUpdate.
    pub reason: String,
    pub servertime: Option<Timestamp>,
    /// With HANGUP: Normal hangup, Answered elsewhere, Call Rejected.
    pub cause: Option<String>,
    pub extension: ExtensionView,
    /// The call the event is about; for HANGUP the call that ended.
    pub current: Option<CallView>,
    /// `ivruniqueid` beside `currentCall` (HANGUP gives it).
    pub ivrid: Option<String>,
    pub queue_id: Option<String>,
    pub campaign_id: Option<String>,
}

/// A queue and its waiting calls.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueView {
    pub id: String,
    pub name: Option<String>,
    pub waiting: Vec<Waiting>,
}

/// A call waiting in a queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub ivrid: String,
    pub caller_id: Option<String>,
    pub caller_name: Option<String>,
    pub joined: Option<Timestamp>,
}

/// A `QueueEvent`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEvent {
    /// JOIN, EXIT, ABANDONED.
    pub reason: String,
    pub servertime: Option<Timestamp>,
    /// The call the event is about (`ivruniqueid`).
    pub ivrid: Option<String>,
    /// The queue with its waiting list after the event.
    pub queue: QueueView,
}

/// A socket.io event's JSON, forgiving the typographic quotes some of Voicenter's documented
/// payloads carry (the seed's JOIN example closes a string with `”`): only tried when the text
/// is not JSON as it stands, so a name that contains such a quote keeps it.
pub fn lenient_json(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str(text).or_else(|error| {
        let repaired = text.replace(['\u{201c}', '\u{201d}'], "\"");
        if repaired == text {
            return Err(error);
        }
        serde_json::from_str(&repaired).map_err(|_| error)
    })
}

/// Epoch time as Voicenter gives it, seconds or milliseconds, number or string; 0 means none.
pub fn epoch(value: Option<&Value>) -> Option<Timestamp> {
    let value = value?;
    let number = value
        .as_i64()
        .or_else(|| value.as_f64().map(|float| float as i64))
        .or_else(|| value.as_str().and_then(|text| text.trim().parse::<i64>().ok()))?;
    match number {
        n if n <= 0 => None,
        // Anything past the year 5138 in seconds is milliseconds.
        n if n >= 100_000_000_000 => Some(n),
        n => n.checked_mul(1000),
    }
}

/// A string or a number as text; empty and anything else are none.
fn text(value: Option<&Value>) -> Option<String> {
    crate::connectors::rest::text(value).map(|text| text.trim().to_owned()).filter(|text| !text.is_empty())
}

fn count(value: Option<&Value>) -> Option<u64> {
    value.and_then(crate::connectors::rest::lenient_u64)
}

/// The call id under any of its three spellings.
fn ivrid_of(object: &Value) -> Option<String> {
    ["ivrid", "IvrUniqueID", "ivruniqueid", "IvrUniqueId"].iter().find_map(|key| text(object.get(*key)))
}

/// Reads one event by name; `payload` is the event's first argument.
pub fn parse(name: &str, payload: &Value) -> Result<Message, WireError> {
    match name {
        "loginSuccess" => login_error(name, payload)
            .map_or_else(|| Ok(Message::LoginSuccess { servertime: epoch(payload.get("servertime")) }), Ok),
        "loginStatus" => {
            if let Some(refused) = login_error(name, payload) {
                return Ok(refused);
            }
            let queues = list(payload, &["queues", "Queues"])
                .ok_or_else(|| unusable(name, "no queues list"))?
                .iter()
                .map(|queue| queue_view(name, queue))
                .collect::<Result<_, _>>()?;
            Ok(Message::LoginStatus { servertime: epoch(payload.get("servertime")), queues })
        }
        "AllExtensionsStatus" | "AllExtensionStatus" => {
            let extensions = list(payload, &["extensions", "Extensions"])
                .ok_or_else(|| unusable(name, "no extensions list"))?
                .iter()
                .map(|extension| extension_view(name, extension))
                .collect::<Result<_, _>>()?;
            Ok(Message::AllExtensions { servertime: epoch(payload.get("servertime")), extensions })
        }
        "ExtensionEvent" => extension_event(payload).map(|event| Message::Extension(Box::new(event))),
        "QueueEvent" => queue_event(payload).map(Message::Queue),
        "ExtensionsUpdated" | "QueuesUpdated" | "DialersUpdated" => Ok(Message::Updated(name.to_owned())),
        "keepaliveResponse" => {
            let code = payload.get("errorCode").and_then(crate::connectors::rest::lenient_u64);
            Ok(Message::KeepaliveResponse { ok: code.unwrap_or(0) == 0 })
        }
        other => Ok(Message::Ignored(other.to_owned())),
    }
}

/// A login event with a non-zero `errorCode`, as a refusal in Voicenter's words.
fn login_error(name: &str, payload: &Value) -> Option<Message> {
    let code = payload.get("errorCode").and_then(|value| value.as_i64().or_else(|| value.as_str()?.parse().ok()))?;
    (code != 0).then(|| {
        let words = text(payload.get("errorDesc")).unwrap_or_else(|| "no reason given".into());
        Message::LoginRefused(format!("{name}: {words} (errorCode {code})"))
    })
}

fn list<'a>(object: &'a Value, keys: &[&str]) -> Option<&'a Vec<Value>> {
    keys.iter().find_map(|key| object.get(*key)?.as_array())
}

fn queue_view(event: &str, queue: &Value) -> Result<QueueView, WireError> {
    let id = text(queue.get("QueueID").or_else(|| queue.get("queueID")))
        .ok_or_else(|| unusable(event, "a queue without QueueID"))?;
    let waiting =
        list(queue, &["Calls", "calls"]).map(|calls| calls.iter().filter_map(waiting).collect()).unwrap_or_default();
    Ok(QueueView { id, name: text(queue.get("QueueName")), waiting })
}

fn waiting(call: &Value) -> Option<Waiting> {
    Some(Waiting {
        ivrid: ivrid_of(call)?,
        caller_id: text(call.get("CallerID")),
        caller_name: text(call.get("CallerName")),
        joined: epoch(call.get("JoinTimeStamp")),
    })
}

fn extension_view(event: &str, extension: &Value) -> Result<ExtensionView, WireError> {
    if !extension.is_object() {
        return Err(unusable(event, "an extension that is not an object"));
    }
    let number = text(extension.get("number")).ok_or_else(|| unusable(event, "an extension without its number"))?;
    let calls = list(extension, &["calls", "Calls"])
        .map(|calls| calls.iter().map(|call| call_view(event, &number, call)).collect::<Result<Vec<_>, _>>())
        .transpose()?
        .unwrap_or_default();
    Ok(ExtensionView {
        user_name: text(extension.get("userName")),
        representative_name: extension.get("summery").and_then(|summery| text(summery.get("representative"))),
        exten_user: text(extension.get("extenUser")),
        status: count(extension.get("representativeStatus")),
        status_updated: epoch(extension.get("representativeUpdated")),
        calls,
        number,
    })
}

fn call_view(event: &str, extension: &str, call: &Value) -> Result<CallView, WireError> {
    let ivrid =
        ivrid_of(call).ok_or_else(|| unusable(event, format!("a call at extension {extension} without ivrid")))?;
    let c2c =
        count(call.get("c2cdirection")).and_then(|leg| u8::try_from(leg).ok()).filter(|leg| (1..=2).contains(leg));
    Ok(CallView {
        status: text(call.get("callstatus")).unwrap_or_default(),
        direction: text(call.get("direction")).unwrap_or_default(),
        c2c,
        started: epoch(call.get("callStarted")),
        answered_at: epoch(call.get("callAnswered")),
        answered: count(call.get("answered")).unwrap_or(0) != 0 || epoch(call.get("callAnswered")).is_some(),
        caller_name: text(call.get("callername").or_else(|| call.get("CallerName"))),
        caller_phone: text(call.get("callerphone").or_else(|| call.get("CallerID"))),
        did: text(call.get("did")),
        raw: call.clone(),
        ivrid,
    })
}

fn extension_event(payload: &Value) -> Result<ExtensionEvent, WireError> {
    const NAME: &str = "ExtensionEvent";
    let data = payload.get("data").filter(|data| data.is_object()).ok_or_else(|| unusable(NAME, "no data object"))?;
    // userStatusUpdate puts these beside `data`; every other reason puts them inside it.
    let field = |key: &str| data.get(key).or_else(|| payload.get(key));
    let reason = text(field("reason")).ok_or_else(|| unusable(NAME, "no reason"))?;
    let extension = extension_view(&format!("{NAME} {reason}"), data)?;
    let current = match data.get("currentCall").filter(|call| call.as_object().is_some_and(|c| !c.is_empty())) {
        Some(call) => Some(call_view(&format!("{NAME} {reason}"), &extension.number, call)?),
        None => None,
    };
    Ok(ExtensionEvent {
        servertime: epoch(field("servertime")),
        cause: text(field("cause")),
        ivrid: ivrid_of(data),
        queue_id: text(field("queueID")),
        campaign_id: text(field("campaignID")),
        current,
        extension,
        reason,
    })
}

fn queue_event(payload: &Value) -> Result<QueueEvent, WireError> {
    const NAME: &str = "QueueEvent";
    let data = payload.get("data").filter(|data| data.is_object()).ok_or_else(|| unusable(NAME, "no data object"))?;
    let reason =
        text(payload.get("reason").or_else(|| data.get("reason"))).ok_or_else(|| unusable(NAME, "no reason"))?;
    Ok(QueueEvent {
        servertime: epoch(payload.get("servertime")),
        ivrid: ivrid_of(payload).or_else(|| ivrid_of(data)),
        queue: queue_view(&format!("{NAME} {reason}"), data)?,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn epochs_in_seconds_or_milliseconds_numbers_or_strings() {
        assert_eq!(epoch(Some(&json!(1597930812))), Some(1_597_930_812_000));
        assert_eq!(epoch(Some(&json!(1597944933000i64))), Some(1_597_944_933_000));
        assert_eq!(epoch(Some(&json!("1606908123"))), Some(1_606_908_123_000));
        assert_eq!(epoch(Some(&json!(0))), None);
        assert_eq!(epoch(Some(&json!("soon"))), None);
        assert_eq!(epoch(None), None);
    }

    #[test]
    fn typographic_quotes_are_forgiven_only_when_needed() {
        assert_eq!(lenient_json(r#"{"a":"John Doe”,"b":1}"#).unwrap()["b"], 1);
        assert_eq!(lenient_json(r#"{"a":"say “hi”"}"#).unwrap()["a"], "say “hi”");
        assert!(lenient_json("{nope").is_err());
    }

    #[test]
    fn wrong_shapes_are_refused_with_the_event_named() {
        let error = parse("ExtensionEvent", &json!({"data": {"reason": "NEWCALL", "calls": []}})).unwrap_err();
        assert_eq!(error.to_string(), "ExtensionEvent NEWCALL: an extension without its number");
        let error = parse(
            "ExtensionEvent",
            &json!({"data": {"reason": "ANSWER", "number": 5, "calls": [{"callstatus": "Talking"}]}}),
        )
        .unwrap_err();
        assert!(error.to_string().contains("without ivrid"), "{error}");
        assert!(parse("QueueEvent", &json!("text")).is_err());
        assert!(parse("loginStatus", &json!({"errorCode": 0})).is_err());
        assert_eq!(
            parse("loginStatus", &json!({"errorCode": 3, "errorDesc": "Bad token"})).unwrap(),
            Message::LoginRefused("loginStatus: Bad token (errorCode 3)".into())
        );
        assert_eq!(parse("somethingNew", &json!({})).unwrap(), Message::Ignored("somethingNew".into()));
        assert_eq!(
            parse("keepaliveResponse", &json!({"errorCode": "1"})).unwrap(),
            Message::KeepaliveResponse { ok: false }
        );
    }
}
