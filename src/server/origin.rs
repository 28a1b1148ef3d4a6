//! Which browsers may reach the live state and the commands: the one gate `/ws` and `/api/v1`
//! pass through, before any sign-in exists and under it once it does.
//!
//! Two attacks reach a Callboard on a private network from any web page an agent opens:
//! - **Cross-site requests.** A websocket is not bound by the same-origin rule, so a foreign
//!   page could read every caller live; a foreign form could post commands. A browser always
//!   names the page's origin (`Origin`) on a websocket and on a POST, so a request whose
//!   origin is not the site it is sent to is refused.
//! - **DNS rebinding.** The attacker's own host name is pointed at Callboard's address, so the
//!   page is same-origin by the browser's rules. Its requests still carry the attacker's name in
//!   `Host`, so only names Callboard is known by are answered: IP addresses, `localhost`, the
//!   providers' `public_url` hosts, and `server.allowed_hosts`.
//!
//! Webhooks are not gated here: providers are not browsers, and each hook checks its secret.

use super::config::Config;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::net::IpAddr;
use std::sync::Arc;

/// The host names this Callboard answers browsers by, beyond IP addresses and `localhost`.
#[derive(Debug, Clone, Default)]
pub struct HostGate {
    /// Lower-case names, no port; `*` lets every name in.
    names: Vec<String>,
}

impl HostGate {
    /// The names from `server.allowed_hosts` and every provider's `public_url`.
    pub fn from_config(config: &Config) -> Self {
        let public_hosts = config
            .providers
            .iter()
            .filter_map(|provider| provider.settings.get("public_url").and_then(toml::Value::as_str))
            .filter_map(|url| url.parse::<Uri>().ok())
            .filter_map(|uri| uri.host().map(str::to_owned));
        let names =
            config.server.allowed_hosts.iter().cloned().chain(public_hosts).map(|name| normal_host(&name)).collect();
        Self { names }
    }

    /// A gate that knows these names (tests and tools).
    pub fn with_names(names: impl IntoIterator<Item = String>) -> Self {
        Self { names: names.into_iter().map(|name| normal_host(&name)).collect() }
    }

    /// Whether a browser may reach us by `host` (no port): an IP address cannot be rebound,
    /// and `localhost` names only ever resolve to this machine.
    fn knows(&self, host: &str) -> bool {
        let host = normal_host(host);
        host.parse::<IpAddr>().is_ok()
            || host == "localhost"
            || host.ends_with(".localhost")
            || self.names.iter().any(|name| name == "*" || *name == host)
    }

    /// Why this request may not pass, in words for the client; `None` lets it through.
    pub fn refusal(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<String> {
        // HTTP/1.1 names the host in `Host`, HTTP/2 in the URI's authority.
        let authority = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .or_else(|| uri.authority().map(|authority| authority.as_str().to_owned()));
        // A rebinding page is a browser's: its requests say so (`Origin`, the `Sec-Fetch-*`
        // headers every current browser sends, a websocket key). Scripts reaching Callboard by
        // a host name of their own are left alone.
        let upgrade = headers.contains_key(header::SEC_WEBSOCKET_KEY);
        let from_browser = upgrade
            || headers.contains_key(header::ORIGIN)
            || headers.contains_key("sec-fetch-site")
            || headers.contains_key("sec-fetch-mode");
        if let Some(authority) = authority.as_ref().filter(|_| from_browser) {
            let host = host_of(authority);
            if !self.knows(&host) {
                return Some(format!(
                    "Callboard does not answer browsers by the name {host:?}; add it to server.allowed_hosts"
                ));
            }
        }
        // A websocket is opened with GET, so it is checked whatever its method; reads over
        // plain HTTP are kept from foreign pages by the browser itself.
        if !upgrade && (method == Method::GET || method == Method::HEAD) {
            return None;
        }
        let origin = headers.get(header::ORIGIN)?;
        let origin = origin.to_str().ok().and_then(|text| text.parse::<Uri>().ok());
        let Some(origin_authority) = origin.as_ref().and_then(Uri::authority) else {
            return Some("a request from a page with no usable origin is refused".into());
        };
        let same_site =
            authority.as_deref().is_some_and(|authority| authority.eq_ignore_ascii_case(origin_authority.as_str()));
        // Behind a reverse proxy `Host` may be the proxy's upstream; a page served from one of
        // our own configured names is ours all the same.
        let named = self.names.iter().any(|name| *name == normal_host(origin_authority.host()));
        if same_site || named {
            return None;
        }
        Some(format!(
            "a request from a page of {origin_authority} is refused: only Callboard's own pages may send it (behind a \
             proxy, pass the Host header on, as nginx's `proxy_set_header Host $host` does, or list {} in \
             server.allowed_hosts)",
            normal_host(origin_authority.host())
        ))
    }
}

/// The axum middleware: refuses, with 403 and the reason, what [`HostGate::refusal`] refuses.
pub async fn guard(State(gate): State<Arc<HostGate>>, request: Request, next: Next) -> Response {
    match gate.refusal(request.method(), request.uri(), request.headers()) {
        None => next.run(request).await,
        Some(error) => {
            tracing::warn!(path = %request.uri().path(), %error, "request refused by the origin check");
            (StatusCode::FORBIDDEN, Json(serde_json::json!({ "error": error }))).into_response()
        }
    }
}

/// The host of `host[:port]`, IPv6 brackets removed.
fn host_of(authority: &str) -> String {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    normal_host(host)
}

/// Host names compare case-blind and without a trailing dot (`example.com.` is `example.com`).
fn normal_host(host: &str) -> String {
    host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (name.clone(), value.parse().unwrap())).collect()
    }

    #[test]
    fn names_a_rebinding_page_cannot_have_are_let_in() {
        let gate = HostGate::with_names(["board.example.com".to_owned()]);
        let get = |host: &str| {
            let browser =
                headers(&[(header::HOST, host), (header::HeaderName::from_static("sec-fetch-site"), "same-origin")]);
            gate.refusal(&Method::GET, &"/api/v1/snapshot".parse().unwrap(), &browser)
        };
        for host in [
            "127.0.0.1:3000",
            "[::1]:3000",
            "10.1.2.3",
            "localhost:3000",
            "wall.localhost",
            "Board.Example.com:443",
            "board.example.com.",
        ] {
            assert_eq!(get(host), None, "{host}");
        }
        for host in ["evil.example:3000", "board.example.com.evil.example", "localhost.evil.example"] {
            assert!(get(host).is_some_and(|error| error.contains("allowed_hosts")), "{host}");
        }
        // Tools are not browsers: with no host, or by a name of their own, they pass.
        assert_eq!(gate.refusal(&Method::GET, &"/api/v1/snapshot".parse().unwrap(), &HeaderMap::new()), None);
        let script = headers(&[(header::HOST, "callboard.lan:3000")]);
        assert_eq!(gate.refusal(&Method::GET, &"/api/v1/snapshot".parse().unwrap(), &script), None);
        assert!(HostGate::with_names(["*".to_owned()]).knows("anything.example"));
    }

    #[test]
    fn commands_and_websockets_from_foreign_pages_are_refused() {
        let gate = HostGate::with_names(["board.example.com".to_owned()]);
        let post = |origin: &str| {
            gate.refusal(
                &Method::POST,
                &"/api/v1/commands".parse().unwrap(),
                &headers(&[(header::HOST, "10.0.0.5:3000"), (header::ORIGIN, origin)]),
            )
        };
        assert_eq!(post("http://10.0.0.5:3000"), None);
        assert_eq!(post("https://board.example.com"), None, "our own name behind a proxy");
        assert!(post("http://10.0.0.5:3001").is_some(), "another port is another site");
        assert!(post("https://evil.example").is_some());
        assert!(post("null").is_some());
        let upgrade = |origin: &str| {
            gate.refusal(
                &Method::GET,
                &"/ws".parse().unwrap(),
                &headers(&[
                    (header::HOST, "10.0.0.5:3000"),
                    (header::ORIGIN, origin),
                    (header::SEC_WEBSOCKET_KEY, "x"),
                ]),
            )
        };
        assert_eq!(upgrade("http://10.0.0.5:3000"), None);
        assert!(upgrade("https://evil.example").is_some_and(|error| error.contains("evil.example")));
        // A plain read from a foreign page is kept from it by the browser; no origin, no browser.
        let read = headers(&[(header::HOST, "10.0.0.5:3000"), (header::ORIGIN, "https://evil.example")]);
        assert_eq!(gate.refusal(&Method::GET, &"/api/v1/snapshot".parse().unwrap(), &read), None);
        let tool = headers(&[(header::HOST, "10.0.0.5:3000")]);
        assert_eq!(gate.refusal(&Method::POST, &"/api/v1/commands".parse().unwrap(), &tool), None);
    }
}
