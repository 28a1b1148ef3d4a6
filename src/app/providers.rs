//! Which provider feeds are not delivering. The browser's own link can be fine while a
//! connector is down: the board then shows old news, and the people watching it must know.

use super::clock::{duration_text, Clock};
use super::live::LiveStore;
use crate::model::ConnectorHealth;
use leptos::prelude::*;

/// A line per connector that is not `ready`, above every screen (kiosk mode too).
#[component]
pub fn ProviderAlerts() -> impl IntoView {
    let store = expect_context::<LiveStore>();
    let unhealthy = move || {
        store.connectors.with(|connectors| {
            connectors
                .iter()
                .filter(|(_, health)| health.with(|health| health.state != "ready"))
                .map(|(name, health)| (name.clone(), *health))
                .collect::<Vec<_>>()
        })
    };
    view! {
        <For each=unhealthy key=|(name, _)| name.clone() let((name, health))>
            <ProviderAlert name health/>
        </For>
    }
}

#[component]
fn ProviderAlert(name: String, health: RwSignal<ConnectorHealth>) -> impl IntoView {
    let clock = expect_context::<Clock>();
    let state = move || health.with(|health| health.state.clone());
    let colour = move || {
        let tone =
            if state() == "down" { "border-rose-500/70 bg-rose-500/15" } else { "border-amber-400/60 bg-amber-400/15" };
        format!("mb-2 rounded border px-3 py-1 text-sm {tone}")
    };
    let words = move || {
        health.with(|health| {
            let provider = format!("{} ({})", health.name, health.provider_kind);
            let why = health.last_error.as_deref().map(|error| format!(": {error}")).unwrap_or_default();
            let heard = health
                .last_event_at
                .map(|at| format!(" Last event {} ago.", duration_text(clock.now.get() - at)))
                .unwrap_or_default();
            match health.state.as_str() {
                "down" => format!("{provider} is down{why}. What the board shows may be out of date.{heard}"),
                "degraded" => format!("{provider} is having trouble{why}. The board may lag.{heard}"),
                _ => format!("Connecting to {provider}…"),
            }
        })
    };
    view! {
        <p data-connector-alert=name data-connector-state=state class=colour role="status">
            {words}
        </p>
    }
}
