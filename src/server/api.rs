//! The JSON API under `/api/v1`.

use super::AppState;
use crate::connectors::CommandError;
use crate::hub::HubError;
use crate::model::Command;
use crate::store::CallQuery;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

/// The `/api/v1` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/snapshot", get(snapshot))
        .route("/calls", get(calls))
        .route("/connectors", get(connectors))
        .route("/commands", post(command))
        .route("/desk", get(desk))
        .route("/queues/today", get(queue_today))
        .merge(super::contacts::routes())
}

#[derive(serde::Deserialize)]
struct QueueParam {
    queue: String,
}

/// A queue's day so far: figures per hour and today's abandoned callers.
async fn queue_today(State(state): State<AppState>, Query(param): Query<QueueParam>) -> Result<Response, ApiError> {
    match state.hub.queue_day(crate::model::QueueId(param.queue.clone())).await? {
        Some(mut day) => {
            let since = day.abandoned.iter().filter_map(|entry| entry.left_at).min();
            if let Some(since) = since {
                let answered = state.store.answered_calls_with(&day.abandoned_numbers(), since).await?;
                day.mark_reached(&answered);
            }
            Ok(Json(day).into_response())
        }
        None => Err(ApiError::NotFound(format!("there is no queue {:?}", param.queue))),
    }
}

/// What the desk needs from the configuration: the CRM link template.
async fn desk(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "crm_url": state.config.desk.crm_url }))
}

/// An API failure; the client sees clear text, the log sees the details.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    NotFound(String),
    /// A body of a type the endpoint does not take: 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the live state is not available right now")]
    Unavailable,
    #[error("call history is not available right now")]
    Store(#[from] crate::store::StoreError),
}

impl From<HubError> for ApiError {
    fn from(_: HubError) -> Self {
        ApiError::Unavailable
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable | ApiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        if let ApiError::Store(error) = &self {
            tracing::error!(%error, "api store error");
        }
        (status, Json(serde_json::json!({ "error": self.to_string() }))).into_response()
    }
}

/// The same JSON the websocket's first frame carries (`type`, `seq`, extensions, calls, queues,
/// connectors), served from the hub's cached copy.
async fn snapshot(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (_, text) = state.hub.snapshot().await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text.as_str().to_owned()).into_response())
}

async fn calls(State(state): State<AppState>, Query(query): Query<CallQuery>) -> Result<Response, ApiError> {
    Ok(Json(state.store.calls(&query).await?).into_response())
}

async fn connectors(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(state.hub.connectors().await?).into_response())
}

/// Routes a call-control command to the connector of the provider that owns its target, if
/// that provider can do it. Success is only reported when the provider said it was done.
async fn command(
    State(state): State<AppState>,
    body: Result<Json<Command>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(mut command) = body.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    // A contact's "02 9999 5678" is dialled as 0299995678: PBXs take digits, people write blocks.
    if let Some(number) = &command.number {
        let dial = crate::model::phone::dialable(number)
            .ok_or_else(|| ApiError::BadRequest(format!("{number:?} is not a number to dial")))?;
        command.number = Some(dial);
    }
    let provider = command
        .call
        .as_ref()
        .map(|id| id.provider().to_owned())
        .or_else(|| command.leg.as_ref().map(|id| id.provider().to_owned()))
        .or_else(|| command.extension.as_ref().map(|id| id.provider().to_owned()))
        .ok_or_else(|| ApiError::BadRequest("a command names a call, a leg or an extension".into()))?;
    let Some(connector) = state.connectors.get(&provider) else {
        let known = state.config.providers.iter().any(|p| p.name == provider);
        return Err(ApiError::Refused(if known {
            format!("provider {provider:?} has no running connector")
        } else {
            format!("no provider is named {provider:?}")
        }));
    };
    if !connector.capabilities().contains(&command.action) {
        return Err(ApiError::Refused(format!("provider {provider:?} does not allow {:?}", command.action)));
    }
    let action = command.action;
    tracing::info!(%provider, ?action, "command");
    match connector.control(command).await {
        Ok(outcome) => Ok(Json(serde_json::json!({ "outcome": outcome })).into_response()),
        Err(CommandError::Refused(words)) => Err(ApiError::Refused(words)),
        Err(CommandError::Unreachable(reason)) => Err(ApiError::Upstream(reason)),
    }
}
