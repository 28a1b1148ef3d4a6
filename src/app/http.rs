//! The browser's JSON requests to the API; on the server (rendering) they are never sent.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// GETs `url` and reads its JSON.
pub async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, String> {
    #[cfg(feature = "hydrate")]
    {
        let response = gloo_net::http::Request::get(url).send().await.map_err(|error| error.to_string())?;
        if !response.ok() {
            return Err(error_text(response).await);
        }
        response.json().await.map_err(|error| error.to_string())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = url;
        Err("requests are made from the browser".into())
    }
}

/// Sends `body` as JSON (or as text, for CSV) with `method`, and reads the JSON answer; an error
/// status gives the API's `error` words.
pub async fn send<T: DeserializeOwned>(method: &str, url: &str, body: Body<'_, impl Serialize>) -> Result<T, String> {
    #[cfg(feature = "hydrate")]
    {
        use gloo_net::http::RequestBuilder;
        let builder = RequestBuilder::new(url).method(match method {
            "DELETE" => gloo_net::http::Method::DELETE,
            "PUT" => gloo_net::http::Method::PUT,
            _ => gloo_net::http::Method::POST,
        });
        let request = match body {
            Body::Json(value) => builder.json(value).map_err(|error| error.to_string())?,
            Body::Text(text) => {
                builder.header("content-type", "text/csv").body(text).map_err(|error| error.to_string())?
            }
            Body::Empty => builder.build().map_err(|error| error.to_string())?,
        };
        let response = request.send().await.map_err(|error| format!("Callboard could not be reached: {error}"))?;
        if !response.ok() {
            return Err(error_text(response).await);
        }
        response.json().await.map_err(|error| error.to_string())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (method, url, body);
        Err("requests are made from the browser".into())
    }
}

/// A request body.
pub enum Body<'a, T> {
    Json(&'a T),
    Text(String),
    Empty,
}

#[cfg(feature = "hydrate")]
async fn error_text(response: gloo_net::http::Response) -> String {
    let status = response.status();
    if status == 413 {
        return "too large for the server: it takes bodies up to its [server] body_limit_bytes".into();
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    body.get("error").and_then(serde_json::Value::as_str).map_or_else(|| format!("HTTP {status}"), str::to_owned)
}

/// Percent-encodes a value for a URL's query or path.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_are_percent_encoded() {
        assert_eq!(super::encode("+61 2/9?x=y&z"), "%2B61%202%2F9%3Fx%3Dy%26z");
        assert_eq!(super::encode("Jane_Doe-1.~"), "Jane_Doe-1.~");
    }
}
