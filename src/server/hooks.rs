//! Inbound webhooks: `/hooks/{provider}/{secret}[/{event}]`. Every provider that calls us comes
//! through here, so the secret check (constant time, 404 when wrong), the method check and the
//! body bound are in one place; the provider's receiver only parses and maps.

use super::AppState;
use crate::connectors::{secret_matches, Delivery, HookRefusal};
use axum::extract::{Path, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;

/// The largest webhook body taken in: provider callbacks are a few hundred bytes.
pub const HOOK_BODY_LIMIT: usize = 16 * 1024;

/// The webhook routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/hooks/{provider}/{secret}", any(deliver))
        .route("/hooks/{provider}/{secret}/{event}", any(deliver_event))
}

async fn deliver(
    State(state): State<AppState>,
    Path((provider, secret)): Path<(String, String)>,
    request: Request,
) -> Response {
    take(state, provider, secret, None, request).await
}

async fn deliver_event(
    State(state): State<AppState>,
    Path((provider, secret, event)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    take(state, provider, secret, Some(event), request).await
}

async fn take(state: AppState, provider: String, secret: String, event: Option<String>, request: Request) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "not found").into_response();
    let Some(receiver) = state.connectors.hook(&provider).cloned() else { return not_found() };
    if !secret_matches(&secret, receiver.secret()) {
        // Counted apart from the errors, so a stranger probing the path cannot hide the
        // provider's last error; the secret given is not logged either.
        receiver.turned_away();
        tracing::warn!(provider = %provider, "webhook with a wrong secret refused");
        return not_found();
    }
    let method = request.method().clone();
    if method != Method::GET && method != Method::POST {
        receiver.refused("a webhook with a method other than GET or POST");
        return (StatusCode::METHOD_NOT_ALLOWED, "GET or POST").into_response();
    }
    let content_type =
        request.headers().get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let query = request.uri().query().unwrap_or_default().to_owned();
    let body = match axum::body::to_bytes(request.into_body(), HOOK_BODY_LIMIT).await {
        Ok(body) => body,
        Err(_) => {
            receiver.refused("a webhook body over 16 KiB (or cut short)");
            tracing::warn!(provider = %provider, "webhook body over the limit refused");
            return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response();
        }
    };
    match receiver.receive(Delivery { event, method, content_type, query, body }).await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(refusal @ HookRefusal::UnknownEvent(_)) => {
            tracing::warn!(provider = %provider, %refusal, "webhook refused");
            not_found()
        }
        Err(refusal @ HookRefusal::Malformed(_)) => {
            tracing::warn!(provider = %provider, %refusal, "webhook refused");
            (StatusCode::BAD_REQUEST, refusal.to_string()).into_response()
        }
        Err(refusal @ HookRefusal::Unavailable) => {
            (StatusCode::SERVICE_UNAVAILABLE, refusal.to_string()).into_response()
        }
    }
}

/// Prints, for each provider that calls us, the URLs to register there: with the configured
/// webhook secret, or the one Callboard generated and stored (generating it now if need be).
pub async fn print_urls(config: &super::config::Config) -> Result<(), String> {
    use super::config::ProviderKind;
    use crate::connectors::versature::VersatureConfig;
    use crate::connectors::voipnow::{wire::CallEventType, VoipNowConfig};
    let store = crate::store::Store::open(&config.store.path).await.map_err(|error| error.to_string())?;
    let mut out = String::new();
    for provider in &config.providers {
        let invalid = |error: String| format!("provider {:?}: {error}", provider.name);
        if provider.kind == ProviderKind::Versature {
            let mut versature = VersatureConfig::from_table(&provider.settings).map_err(invalid)?;
            versature.resolve_secret(&store, &provider.name).await?;
            let kept = if versature.has_api() { "Callboard subscribes it itself" } else { "subscribe it by hand" };
            out.push_str(&format!("{} (Versature Integrate subscription post_uri; {kept}):\n", provider.name));
            out.push_str(&format!("  {}\n", versature.hook_url(&provider.name)));
            continue;
        }
        if provider.kind != ProviderKind::Voipnow {
            continue;
        }
        let mut voipnow = VoipNowConfig::from_table(&provider.settings)
            .map_err(|error| format!("provider {:?}: {error}", provider.name))?;
        voipnow.resolve_secret(&store, &provider.name).await?;
        out.push_str(&format!("{} (VoipNow Call Events, GET or POST):\n", provider.name));
        for event in CallEventType::ALL {
            out.push_str(&format!("  {:<10} {}\n", event.path(), voipnow.hook_url(&provider.name, event)));
        }
    }
    if out.is_empty() {
        out.push_str("no configured provider calls Callboard by webhook\n");
    }
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
    Ok(())
}

/// The path as it may be logged: a hook's secret and query replaced, so no secret and no
/// caller data reach the request log.
pub fn loggable_path(uri: &axum::http::Uri) -> String {
    let path = uri.path();
    let mut segments: Vec<&str> = path.split('/').collect();
    if segments.get(1) == Some(&"hooks") {
        if let Some(secret) = segments.get_mut(3) {
            *secret = "(secret)";
        }
        return segments.join("/");
    }
    uri.path_and_query().map_or_else(|| path.to_owned(), |pq| pq.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_secrets_and_queries_never_reach_the_log() {
        let uri: axum::http::Uri = "/hooks/vn/abc123/hangup?CallerIDNum=0722".parse().unwrap();
        assert_eq!(loggable_path(&uri), "/hooks/vn/(secret)/hangup");
        let uri: axum::http::Uri = "/api/v1/calls?number=1".parse().unwrap();
        assert_eq!(loggable_path(&uri), "/api/v1/calls?number=1");
    }
}
