//! The axum router: pages, the websocket, the JSON API and the layers every request passes.

use super::{api, hooks, origin, ws, AppState};
use crate::app::{shell, App};
use axum::{extract::DefaultBodyLimit, response::IntoResponse, routing::get, Json, Router};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::{compression::CompressionLayer, limit::RequestBodyLimitLayer, trace::TraceLayer};

/// Builds the whole application; tests drive it in-process with `oneshot`.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let body_limit = state.config.server.body_limit_bytes;
    // Everything a browser page reads live or commands with passes the one origin gate.
    let gate = std::sync::Arc::new(origin::HostGate::from_config(&state.config));
    let browser_facing = Router::new()
        .route("/ws", get(ws::upgrade))
        .nest("/api/v1", api::routes())
        .route_layer(axum::middleware::from_fn_with_state(gate, origin::guard));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(browser_facing)
        .merge(hooks::routes())
        .leptos_routes(&state, routes, {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// Liveness for load balancers and scripts: answers as soon as the server accepts requests.
async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The request span: method and path, with webhook secrets left out (`DefaultMakeSpan` would
/// log the whole URI).
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::info_span!("request", method = %request.method(), path = %hooks::loggable_path(request.uri()))
}
