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

/// Whether a command's ids fit together and fit the board: all of one provider, the leg one of
/// the call's, and the extension one the call is still live at. A desk whose pop is a moment
/// behind (the agent's leg already transferred away) must not hang up the caller now talking
/// to a colleague, and no client acts on a call through an extension that is not on it.
fn check_target(command: &Command, call: Option<&crate::model::Call>) -> Result<(), String> {
    let providers = [
        command.call.as_ref().map(|id| id.provider()),
        command.leg.as_ref().map(|id| id.provider()),
        command.extension.as_ref().map(|id| id.provider()),
    ];
    let mut named = providers.iter().flatten();
    if let Some(first) = named.next() {
        if let Some(other) = named.find(|provider| *provider != first) {
            return Err(format!("the command names ids of two providers ({first:?} and {other:?})"));
        }
    }
    let Some(id) = &command.call else { return Ok(()) };
    let Some(call) = call.filter(|call| call.ended_at.is_none()) else {
        return Err(format!("call {id} is not live any more (ended, or not known)"));
    };
    if let Some(leg) = &command.leg {
        if !call.legs.iter().any(|own| own.id == *leg) {
            return Err(format!("leg {leg} is not a leg of call {id}"));
        }
    }
    if let Some(extension) = &command.extension {
        let live_here = call.legs.iter().any(|leg| leg.extension.as_ref() == Some(extension) && !leg.state.is_ended());
        if !live_here {
            return Err(format!("call {id} is not at extension {extension} any more"));
        }
    }
    Ok(())
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
    if let Some(id) = &command.call {
        let call = state.hub.call(id.clone()).await?;
        check_target(&command, call.as_ref()).map_err(ApiError::Refused)?;
    } else {
        check_target(&command, None).map_err(ApiError::Refused)?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, Call, CallId, ExtensionId, Leg, LegId, LegState};

    fn leg(id: &str, extension: &str, state: LegState) -> Leg {
        let leg = serde_json::json!({
            "id": format!("p/a/{id}"), "call": "p/a/c", "extension": format!("p/a/{extension}"),
            "state": state, "direction": "inbound", "local": {}, "remote": {}, "created_at": 0,
            "raw_state": "", "state_since": 0,
        });
        serde_json::from_value(leg).unwrap()
    }

    fn call(legs: Vec<Leg>) -> Call {
        let call = serde_json::json!({
            "id": "p/a/c", "direction": "inbound", "origin": crate::model::Origin::Normal, "caller": {}, "started_at": 0,
            "legs": legs,
        });
        serde_json::from_value(call).unwrap()
    }

    fn hangup(extension: &str) -> Command {
        Command {
            action: Action::Hangup,
            call: Some(CallId::new("p", "a", "c")),
            leg: None,
            extension: Some(ExtensionId::new("p", "a", extension)),
            number: None,
        }
    }

    #[test]
    fn a_command_acts_only_through_an_extension_the_call_is_live_at() {
        // 201 blind-transferred the caller to 202: 201's leg has ended, 202 talks.
        let transferred = call(vec![leg("l1", "201", LegState::Ended), leg("l2", "202", LegState::Active)]);
        assert!(check_target(&hangup("202"), Some(&transferred)).is_ok());
        let refused = check_target(&hangup("201"), Some(&transferred)).unwrap_err();
        assert!(refused.contains("not at extension"), "{refused}");
        assert!(check_target(&hangup("203"), Some(&transferred)).is_err());
        // A call no longer on the board.
        assert!(check_target(&hangup("202"), None).unwrap_err().contains("not live"));
        // A leg of another call.
        let other_leg = Command { leg: Some(LegId::new("p", "a", "l9")), ..hangup("202") };
        assert!(check_target(&other_leg, Some(&transferred)).is_err());
        // Ids of two providers.
        let mixed = Command { extension: Some(ExtensionId::new("q", "a", "202")), ..hangup("202") };
        assert!(check_target(&mixed, Some(&transferred)).unwrap_err().contains("two providers"));
        // A dial names no call: nothing to check against the board.
        let dial = Command::dial(ExtensionId::new("p", "a", "201"), "0299990000".into());
        assert!(check_target(&dial, None).is_ok());
    }
}
