//! VoipNow Call Event callbacks exactly as the seed documents them: one script URL per event
//! type, parameters in the query (GET) or the body (POST, form or JSON), none guaranteed.

use serde_json::{Map, Value};

/// The five Call Event types; each has its own hook path, because the callback itself does not
/// say which event fired (an Answer and a Hangup can both carry `ANSWER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallEventType {
    DialIn,
    DialOut,
    Hangup,
    AnswerIn,
    AnswerOut,
}

impl CallEventType {
    pub const ALL: [CallEventType; 5] = [Self::DialIn, Self::DialOut, Self::Hangup, Self::AnswerIn, Self::AnswerOut];

    /// The last segment of the hook path.
    pub fn path(self) -> &'static str {
        match self {
            Self::DialIn => "dial-in",
            Self::DialOut => "dial-out",
            Self::Hangup => "hangup",
            Self::AnswerIn => "answer-in",
            Self::AnswerOut => "answer-out",
        }
    }

    pub fn from_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.path() == path)
    }

    /// The UnifiedAPI PhoneCallEvents `type` code: 0, 1 and 2 are documented; the two Answer
    /// codes are not (providers.md 3.1), 3 and 4 are the inferred ones.
    pub fn type_code(self) -> &'static str {
        match self {
            Self::DialIn => "0",
            Self::DialOut => "1",
            Self::Hangup => "2",
            Self::AnswerIn => "3",
            Self::AnswerOut => "4",
        }
    }

    pub fn from_type_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.type_code() == code.trim())
    }
}

/// The parameters of one callback. Every one may be missing (older revisions say "not
/// required"); values are trimmed and cut to a sane length, empty ones count as missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallParams {
    pub call_id: Option<String>,
    pub caller_id_num: Option<String>,
    /// `CallerIDName`, or the misspelt `CallerIDNam` of an older revision.
    pub caller_id_name: Option<String>,
    pub called_did: Option<String>,
    /// Extended form `yyyy*zzz`.
    pub called_extension: Option<String>,
    /// CALLING on Dial events; ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL or
    /// UNKNOWN on Hangup.
    pub call_status: Option<String>,
    /// `IN` or `OUT`.
    pub call_flow: Option<String>,
    /// Extended form `yyyy*zzz`.
    pub caller_extension: Option<String>,
    pub called_number: Option<String>,
    /// The conversation key that survives transfers.
    pub call_api_id: Option<String>,
}

/// The longest parameter value kept; anything longer is cut, as no real one comes close.
const MAX_VALUE_CHARS: usize = 256;
/// The most parameters read from one callback.
const MAX_PARAMS: usize = 64;

impl CallParams {
    /// Reads the parameters from name/value pairs; unknown names are ignored.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut params = CallParams::default();
        for (name, value) in pairs.into_iter().take(MAX_PARAMS) {
            let value: String = value.trim().chars().take(MAX_VALUE_CHARS).collect();
            if value.is_empty() {
                continue;
            }
            let slot = match name.trim() {
                "CallID" => &mut params.call_id,
                "CallerIDNum" => &mut params.caller_id_num,
                "CallerIDName" | "CallerIDNam" => &mut params.caller_id_name,
                "CalledDID" => &mut params.called_did,
                "CalledExtension" => &mut params.called_extension,
                "CallStatus" => &mut params.call_status,
                "CallFlow" => &mut params.call_flow,
                "CallerExtension" => &mut params.caller_extension,
                "CalledNumber" => &mut params.called_number,
                "CallAPIID" => &mut params.call_api_id,
                _ => continue,
            };
            // The first value of a repeated name wins, as most form parsers do.
            slot.get_or_insert(value);
        }
        params
    }

    /// Reads `a=1&b=2` (a query string or a form body).
    pub fn from_form(text: &[u8]) -> Self {
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(text).take(MAX_PARAMS).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        Self::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// Reads a JSON object whose values are strings (numbers are taken as their digits).
    pub fn from_json(body: &[u8]) -> Result<Self, String> {
        let value: Value =
            serde_json::from_slice(body).map_err(|error| format!("the JSON body is not valid: {error}"))?;
        let Value::Object(object) = value else { return Err("the JSON body is not an object".into()) };
        let pairs: Vec<(String, String)> = object
            .into_iter()
            .filter_map(|(name, value)| match value {
                Value::String(text) => Some((name, text)),
                Value::Number(number) => Some((name, number.to_string())),
                _ => None,
            })
            .collect();
        Ok(Self::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
    }

    /// The parameters as VoipNow names them, for sending (the simulator's face) and for keeping
    /// as the event's raw payload.
    pub fn to_pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("CallID", &self.call_id),
            ("CallerIDNum", &self.caller_id_num),
            ("CallerIDName", &self.caller_id_name),
            ("CalledDID", &self.called_did),
            ("CalledExtension", &self.called_extension),
            ("CallStatus", &self.call_status),
            ("CallFlow", &self.call_flow),
            ("CallerExtension", &self.caller_extension),
            ("CalledNumber", &self.called_number),
            ("CallAPIID", &self.call_api_id),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|value| (name, value)))
        .collect()
    }

    pub fn to_json(&self) -> Value {
        let map: Map<String, Value> =
            self.to_pairs().into_iter().map(|(name, value)| (name.to_owned(), Value::from(value))).collect();
        Value::Object(map)
    }

    pub fn to_form(&self) -> String {
        form_urlencoded::Serializer::new(String::new()).extend_pairs(self.to_pairs()).finish()
    }
}

/// Provider text as it may appear in an error or a log line: cut short.
pub fn shown(text: &str) -> String {
    text.chars().take(80).collect()
}

/// The short extension number of an extended `yyyy*zzz` one (`0003*210` is `210`).
pub fn short_extension(extended: &str) -> &str {
    extended.rsplit('*').next().unwrap_or(extended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_json_and_the_misspelt_name_read_alike() {
        let form =
            CallParams::from_form(b"CallID=17&CallerIDNam=Ann+Lee&CallFlow=IN&CalledExtension=0003%2A210&Extra=1");
        assert_eq!(form.call_id.as_deref(), Some("17"));
        assert_eq!(form.caller_id_name.as_deref(), Some("Ann Lee"));
        assert_eq!(form.called_extension.as_deref(), Some("0003*210"));
        let json = CallParams::from_json(
            br#"{"CallID":17,"CallerIDName":"Ann Lee","CallFlow":"IN","CalledExtension":"0003*210"}"#,
        )
        .unwrap();
        assert_eq!(form, json);
        assert_eq!(CallParams::from_form(form.to_form().as_bytes()), form);
        assert!(CallParams::from_json(b"[1,2]").is_err());
        assert!(CallParams::from_json(b"{not json").is_err());
    }

    #[test]
    fn values_are_trimmed_bounded_and_empty_ones_missing() {
        let long = "9".repeat(10_000);
        let params = CallParams::from_pairs([("CallID", " 5 "), ("CallerIDNum", long.as_str()), ("CallFlow", "  ")]);
        assert_eq!(params.call_id.as_deref(), Some("5"));
        assert_eq!(params.caller_id_num.as_ref().map(String::len), Some(MAX_VALUE_CHARS));
        assert_eq!(params.call_flow, None);
        assert_eq!(short_extension("0003*210"), "210");
        assert_eq!(short_extension("210"), "210");
    }
}
