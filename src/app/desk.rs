//! What an agent works in: their extension, the screen pop of the call at it, and the call
//! controls its provider allows (with keyboard shortcuts for answer and hang up).

use super::clock::{duration_text, Clock};
use super::format;
use super::live::LiveStore;
use super::wallboard::{calls_by_extension, queue_name};
use crate::model::{Action, Call, CallId, Command, ExtensionId, LegState};
use leptos::prelude::*;

/// Where the browser remembers the agent's extension until sign-in exists.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
const STORAGE_KEY: &str = "callboard.extension";

/// A command on its way, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Idle,
    Working(Action),
    Done(String),
    Refused(String),
}

/// Sends a command to `/api/v1/commands`; the result comes back as the provider's words.
pub async fn send_command(command: Command) -> Result<String, String> {
    #[cfg(feature = "hydrate")]
    {
        let request = gloo_net::http::Request::post("/api/v1/commands").json(&command).map_err(|e| e.to_string())?;
        let response = request.send().await.map_err(|error| format!("Callboard could not be reached: {error}"))?;
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let text = |key: &str| body.get(key).and_then(serde_json::Value::as_str).map(str::to_owned);
        if response.ok() {
            Ok(text("outcome").unwrap_or_else(|| "done".into()))
        } else {
            Err(text("error").unwrap_or_else(|| format!("HTTP {}", response.status())))
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = command;
        Err("commands are sent from the browser".into())
    }
}

fn load_extension() -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()?.local_storage().ok()??.get_item(STORAGE_KEY).ok()?
    }
    #[cfg(not(feature = "hydrate"))]
    {
        None
    }
}

fn save_extension(id: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(storage) = web_sys::window().and_then(|window| window.local_storage().ok().flatten()) {
        let _ = storage.set_item(STORAGE_KEY, id);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = id;
}

#[component]
pub fn AgentDesk() -> impl IntoView {
    let store = expect_context::<LiveStore>();
    let chosen: RwSignal<Option<ExtensionId>> = RwSignal::new(None);
    Effect::new(move |_| {
        if let Some(saved) = load_extension() {
            chosen.set(Some(ExtensionId(saved)));
        }
    });
    let by_extension = calls_by_extension(store);
    let call = Memo::new(move |_| chosen.get().and_then(|id| by_extension.with(|map| map.get(&id).copied())));
    let progress = RwSignal::new(Progress::Idle);
    let options = move || {
        store.extensions.with(|map| {
            map.iter()
                .map(|(id, extension)| {
                    let label = extension.with(|e| format!("{} {}", e.number, e.name.clone().unwrap_or_default()));
                    (id.to_string(), label)
                })
                .collect::<Vec<_>>()
        })
    };
    let run = move |command: Command| {
        let action = command.action;
        progress.set(Progress::Working(action));
        leptos::task::spawn_local(async move {
            progress.set(match send_command(command).await {
                Ok(outcome) => Progress::Done(outcome),
                Err(words) => Progress::Refused(words),
            });
        });
    };
    let act_on_call = move |action: Action| {
        let (Some(call), Some(extension)) = (call.get_untracked(), chosen.get_untracked()) else { return };
        let id = call.with_untracked(|call| call.id.clone());
        run(Command { action, call: Some(id), leg: None, extension: Some(extension), number: None });
    };
    // Keyboard: `a` answers, `h` hangs up, unless the agent is typing.
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let handle = window_event_listener(leptos::ev::keydown, move |event| {
            let typing = event
                .target()
                .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
                .is_some_and(|element| matches!(element.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"));
            if typing || event.ctrl_key() || event.meta_key() || event.alt_key() {
                return;
            }
            match event.key().as_str() {
                "a" => act_on_call(Action::Answer),
                "h" => act_on_call(Action::Hangup),
                _ => {}
            }
        });
        on_cleanup(move || handle.remove());
    }
    view! {
        <section data-page="desk" class="mx-auto max-w-3xl">
            <h1 class="text-xl font-semibold">"Agent desk"</h1>
            <label class="mt-3 block text-sm text-slate-300">
                "My extension "
                <select
                    data-extension-picker=""
                    class="ml-2 rounded bg-slate-800 px-2 py-1 text-slate-100"
                    on:change=move |event| {
                        let value = event_target_value(&event);
                        save_extension(&value);
                        progress.set(Progress::Idle);
                        chosen.set((!value.is_empty()).then_some(ExtensionId(value)));
                    }
                    prop:value=move || chosen.get().map(|id| id.to_string()).unwrap_or_default()
                >
                    <option value="">"Choose…"</option>
                    <For each=options key=|(id, _)| id.clone() let((id, label))>
                        <option
                            value=id.clone()
                            selected=move || chosen.with(|chosen| chosen.as_ref().is_some_and(|c| c.as_str() == id))
                        >
                            {label}
                        </option>
                    </For>
                </select>
            </label>
            <Show when=move || chosen.get().is_some()>
                {move || match call.get() {
                    Some(call) => view! { <ScreenPop call chosen act_on_call progress/> }.into_any(),
                    None => view! { <p class="mt-4 text-slate-400" data-no-call="">"No call at this extension."</p> }.into_any(),
                }}
                <DialPad chosen run/>
                <ProgressLine progress/>
            </Show>
        </section>
    }
}

/// The call at the agent's extension: who, from which queue, and the controls for it.
#[component]
fn ScreenPop(
    call: RwSignal<Call>,
    chosen: RwSignal<Option<ExtensionId>>,
    act_on_call: impl Fn(Action) + Copy + Send + Sync + 'static,
    progress: RwSignal<Progress>,
) -> impl IntoView {
    let store = expect_context::<LiveStore>();
    let clock = expect_context::<Clock>();
    let my_leg_state = move || {
        let me = chosen.get();
        call.with(|call| {
            call.legs.iter().rev().find(|leg| leg.extension == me && !leg.state.is_ended()).map(|leg| leg.state)
        })
    };
    let other = move || {
        let me = chosen.get();
        call.with(|call| {
            let leg = call.legs.iter().rev().find(|leg| leg.extension == me);
            leg.map(|leg| leg.remote.clone())
                .filter(|party| party.number.is_some())
                .unwrap_or_else(|| call.caller.clone())
        })
    };
    let capabilities = move || {
        let provider = call.with(|call| call.id.provider().to_owned());
        store.connectors.with(|connectors| {
            connectors
                .get(&provider)
                .map(|health| health.with(|health| health.capabilities.clone()))
                .unwrap_or_default()
        })
    };
    let can = move |action: Action| capabilities().contains(&action);
    let button = move |action: Action, label: &'static str, shown: Signal<bool>| {
        view! {
            <Show when=move || shown.get() && can(action)>
                <button
                    type="button"
                    data-action=format!("{action:?}").to_lowercase()
                    class="rounded bg-slate-700 px-3 py-1.5 text-sm hover:bg-slate-600 disabled:opacity-50"
                    disabled=move || matches!(progress.get(), Progress::Working(_))
                    on:click=move |_| act_on_call(action)
                >
                    {label}
                </button>
            </Show>
        }
    };
    let state_is =
        move |states: &'static [LegState]| Signal::derive(move || my_leg_state().is_some_and(|s| states.contains(&s)));
    let live = Signal::derive(move || call.with(|call| call.ended_at.is_none()));
    let id: CallId = call.with_untracked(|call| call.id.clone());
    view! {
        <div data-call=id.to_string() class="mt-4 rounded-lg border border-amber-400/60 bg-slate-900 p-4">
            <div class="flex items-baseline justify-between">
                <div>
                    <div class="text-2xl font-semibold tabular-nums" data-pop-number="">
                        {move || other().number.map(|number| format::phone_number(&number)).unwrap_or_else(|| "Unknown number".into())}
                    </div>
                    <div class="text-lg text-slate-300" data-pop-party="">
                        {move || other().name.unwrap_or_default()}
                    </div>
                </div>
                <div class="text-right text-sm text-slate-300">
                    <div>{move || call.with(|call| format!("{} {:?}", format::direction_arrow(call.direction), call.direction))}</div>
                    <div data-pop-queue="">{move || call.with(|call| call.queue.as_ref().map(|queue| queue_name(store, queue)))}</div>
                    <div class="tabular-nums">
                        {move || {
                            let since = call.with(|call| call.answered_at.unwrap_or(call.started_at));
                            duration_text(clock.now.get() - since)
                        }}
                    </div>
                    <div data-pop-state="">{move || my_leg_state().map(|state| format!("{state:?}")).unwrap_or_default()}</div>
                </div>
            </div>
            <div class="mt-3 flex flex-wrap gap-2">
                {button(Action::Answer, "Answer (a)", state_is(&[LegState::Ringing]))}
                {button(Action::Hangup, "Hang up (h)", live)}
                {button(Action::Hold, "Hold", state_is(&[LegState::Active]))}
                {button(Action::Resume, "Resume", state_is(&[LegState::Held]))}
                {button(Action::RecordStart, "Record", state_is(&[LegState::Active, LegState::Held]))}
                {button(Action::RecordPause, "Pause recording", state_is(&[LegState::Active, LegState::Held]))}
                {button(Action::RecordResume, "Resume recording", state_is(&[LegState::Active, LegState::Held]))}
                {button(Action::RecordStop, "Stop recording", state_is(&[LegState::Active, LegState::Held]))}
            </div>
        </div>
    }
}

/// Dialling out from the agent's extension.
#[component]
fn DialPad(
    chosen: RwSignal<Option<ExtensionId>>,
    run: impl Fn(Command) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let number = RwSignal::new(String::new());
    let dial = move || {
        let Some(extension) = chosen.get_untracked() else { return };
        let digits = number.get_untracked();
        if digits.trim().is_empty() {
            return;
        }
        run(Command { action: Action::Dial, call: None, leg: None, extension: Some(extension), number: Some(digits) });
    };
    view! {
        <form class="mt-4 flex gap-2" on:submit=move |event| { event.prevent_default(); dial(); }>
            <input
                data-dial-number=""
                class="rounded bg-slate-800 px-2 py-1 tabular-nums"
                placeholder="Number to call"
                prop:value=move || number.get()
                on:input=move |event| number.set(event_target_value(&event))
            />
            <button type="submit" data-action="dial" class="rounded bg-emerald-700 px-3 py-1 text-sm hover:bg-emerald-600">"Dial"</button>
        </form>
    }
}

/// What became of the last command: progress, the provider's outcome, or its refusal.
#[component]
fn ProgressLine(progress: RwSignal<Progress>) -> impl IntoView {
    view! {
        <p class="mt-3 min-h-6 text-sm" data-progress=move || match progress.get() {
            Progress::Idle => "idle",
            Progress::Working(_) => "working",
            Progress::Done(_) => "done",
            Progress::Refused(_) => "refused",
        } role="status" aria-live="polite">
            {move || match progress.get() {
                Progress::Idle => String::new(),
                Progress::Working(action) => format!("{action:?}…"),
                Progress::Done(outcome) => outcome,
                Progress::Refused(words) => format!("Refused: {words}"),
            }}
        </p>
    }
}
