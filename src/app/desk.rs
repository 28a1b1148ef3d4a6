//! What an agent works in: their extension, the screen pop of the call at it, and the call
//! controls its provider allows (with keyboard shortcuts for answer and hang up).

use super::clock::{duration_text, Clock};
use super::format;
use super::http::{encode, get_json, send, Body};
use super::live::LiveStore;
use super::wallboard::queue_name;
use crate::model::phone::{dialable, e164};
use crate::model::{
    Action, Call, CallId, Command, Contact, Direction, EndCause, ExtensionId, LegState, Party, RecordingState,
    Timestamp,
};
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

impl Progress {
    /// Whether a command is under way: `run` sends no other meanwhile and the buttons that send
    /// one are disabled, so a double click (on Dial, say) sends one command, not two.
    pub fn is_working(&self) -> bool {
        matches!(self, Progress::Working(_))
    }
}

/// Sends a command to `/api/v1/commands`; the result comes back as the provider's words.
pub async fn send_command(command: Command) -> Result<String, String> {
    let answer: serde_json::Value = send("POST", "/api/v1/commands", Body::Json(&command)).await?;
    Ok(answer.get("outcome").and_then(serde_json::Value::as_str).unwrap_or("done").to_owned())
}

/// The extension the agent chose on the desk, for calling back from other screens.
pub fn saved_extension() -> Option<String> {
    load_extension()
}

fn load_extension() -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        remembered(web_sys::window()?.local_storage().ok()??.get_item(STORAGE_KEY).ok()?)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        None
    }
}

fn save_extension(id: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(storage) = web_sys::window().and_then(|window| window.local_storage().ok().flatten()) {
        // "Choose…" forgets the extension rather than remembering an empty one.
        let _ = match remembered(Some(id.to_owned())) {
            Some(id) => storage.set_item(STORAGE_KEY, &id),
            None => storage.remove_item(STORAGE_KEY),
        };
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = id;
}

/// The extension a stored value names: none for an empty one (what "Choose…" left behind before
/// it removed the item), which the desk would otherwise point out as an extension gone.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
fn remembered(stored: Option<String>) -> Option<String> {
    stored.filter(|id| !id.trim().is_empty())
}

/// A call the agent brought into the pop with Show, and the newest call at the extension when
/// they did. The pick holds only while that is still the newest call: when another call rings
/// there, the pop shows it (and `a` answers it) instead of staying on the call picked before.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pick {
    call: CallId,
    newest: Option<CallId>,
}

impl Pick {
    /// Whether the pick still holds now that `newest` is the newest call at the extension.
    fn holds(&self, newest: Option<&CallId>) -> bool {
        self.newest.as_ref() == newest
    }
}

/// A consultation the desk itself started: the call its consult command put on hold, the
/// number it consulted, and the call to that colleague once it shows. Only that call offers
/// "Complete transfer": an agent who holds one caller and answers an unrelated call must not be
/// offered to join two strangers, so a call is taken for the consultation only when the agent
/// placed it (not inbound) to the number consulted, and the consultation is over once the held
/// call is taken off hold or ends, or the call to the colleague ends.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Consultation {
    held: CallId,
    /// The number consulted as a PBX dials it (the colleague's extension or number).
    to: String,
    /// The held call has been seen on hold since the consult: from then on, the agent's leg
    /// there leaving hold means they went back to the caller. (The consult asks for the hold,
    /// so the call is still active when the consultation starts.)
    held_seen: bool,
    call: Option<CallId>,
}

impl Consultation {
    /// The consultation a consult command starts on `held` to `number`; none for a number that
    /// cannot be dialled, which no call could be recognised as reaching.
    fn started(held: CallId, number: &str) -> Option<Self> {
        let to = dialable(number)?;
        Some(Self { held, to, held_seen: false, call: None })
    }

    /// Whether `call` is the one the consult placed: not the held call, still up, and the
    /// agent's live leg in it one the agent placed (not inbound, and not ringing at the agent:
    /// a colleague calling in shows as internal too) with a remote party whose number or
    /// extension is the number consulted.
    fn is_to(&self, call: &Call, me: &ExtensionId) -> bool {
        let mine = call.legs.iter().rev().find(|leg| leg.extension.as_ref() == Some(me) && !leg.state.is_ended());
        call.id != self.held
            && call.ended_at.is_none()
            && mine.is_some_and(|leg| {
                leg.direction != Direction::Inbound
                    && leg.state != LegState::Ringing
                    && [&leg.remote.number, &leg.remote.extension]
                        .into_iter()
                        .flatten()
                        .any(|number| same_number(number, &self.to))
            })
    }

    /// The consultation after a change at the extension `me`, given the held call, the newest
    /// call there and the call bound as the consultation (as the live state has them, `None`
    /// for a call it no longer has); `None` once it is over. The first newest call that
    /// `is_to` the number consulted becomes the consultation's call.
    fn follow(
        self,
        me: &ExtensionId,
        held: Option<&Call>,
        newest: Option<&Call>,
        bound: Option<&Call>,
    ) -> Option<Self> {
        // The held call hung up or went elsewhere: there is no one left to transfer.
        let held = held.filter(|call| call.id == self.held && is_live_at(call, me))?;
        let on_hold = is_held_at(held, me);
        // Taken off hold after the consult held it: the agent went back to the caller.
        if self.held_seen && !on_hold {
            return None;
        }
        // The call to the colleague ended (not answered, hung up): nothing to complete.
        if let Some(call) = &self.call {
            if !bound.is_some_and(|bound| bound.id == *call && is_live_at(bound, me)) {
                return None;
            }
        }
        let call = self
            .call
            .clone()
            .or_else(|| newest.filter(|newest| self.is_to(newest, me)).map(|newest| newest.id.clone()));
        Some(Self { held_seen: self.held_seen || on_hold, call, ..self })
    }

    /// Whether the pop of `shown` is this consultation, its held call still on hold
    /// (`held_still`): then the transfer row offers only to complete the transfer.
    fn is_on(&self, shown: &CallId, held_still: bool) -> bool {
        held_still && self.call.as_ref() == Some(shown)
    }
}

/// Whether two numbers name the same party, however written: the same in E.164 when both read
/// so (`+61 2 9999 0088` and `02 9999 0088`), else the same digits (an extension). No looser: an
/// extension 205 is not the direct number 02 9999 0205.
fn same_number(a: &str, b: &str) -> bool {
    if let (Some(a), Some(b)) = (e164(a), e164(b)) {
        return a == b;
    }
    let digits = |number: &str| number.chars().filter(char::is_ascii_digit).collect::<String>();
    let (a, b) = (digits(a), digits(b));
    !a.is_empty() && a == b
}

/// Whether the pop moving from the call `before` to `now` (the agent's leg there in `state`)
/// retires the last command's outcome, which was about the call before: another call coming
/// up (one ringing, one brought in with Show) clears it, so it is not read as news of that
/// call. The call the agent is placing (the dial or consultation just asked for) and an empty
/// pop (the call transferred away) keep it, being what that command did.
fn retires_outcome(before: Option<&CallId>, now: Option<&CallId>, state: Option<LegState>) -> bool {
    now.is_some() && now != before && !matches!(state, Some(LegState::Initiating | LegState::RemoteRinging))
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
    // The newest live call at the extension, which the pop shows unless the agent picked
    // another of their live calls (the one they put on hold, a call waiting).
    let newest = Memo::new(move |_| chosen.get().and_then(|id| store.current_call(&id).get()));
    // The id of the newest call at the extension: the recent calls are read again when it
    // changes, and a pick made before gives way to it.
    let current = Memo::new(move |_| newest.get().map(|call| call.with(|call| call.id.clone())));
    let picked: RwSignal<Option<Pick>> = RwSignal::new(None);
    let call = Memo::new(move |_| {
        let newest = newest.get();
        let me = chosen.get()?;
        let picked = picked.get().filter(|pick| pick.holds(current.get().as_ref())).and_then(|pick| {
            newest?; // none live at all: nothing to pick from
            store.calls_at(&me).into_iter().find(|call| call.with(|call| call.id == pick.call && is_live_at(call, &me)))
        });
        picked.or(newest)
    });
    // The consultation the desk started, if any: its call to the colleague is the first call the
    // agent places to the number consulted that becomes the newest at the extension; it is over
    // when the held call is taken off hold or ends, or the call to the colleague ends.
    let consultation: RwSignal<Option<Consultation>> = RwSignal::new(None);
    Effect::new(move |_| {
        let (Some(before), Some(me)) = (consultation.get(), chosen.get()) else { return };
        // Each call as the live state has it now (tracked): none once it is gone from it.
        let look = |id: &CallId| store.calls.with(|calls| calls.get(id).copied()).and_then(|call| call.try_get());
        let held = look(&before.held);
        let bound = before.call.as_ref().and_then(look);
        let newest = newest.get().and_then(|call| call.try_get());
        let after = before.clone().follow(&me, held.as_ref(), newest.as_ref(), bound.as_ref());
        if after.as_ref() != Some(&before) {
            consultation.set(after);
        }
    });
    // Whether this extension's provider can place calls: the dial pad and every call-back
    // button depend on it (Voicenter's API only reports calls).
    let can_dial = Signal::derive(move || chosen.get().is_some_and(|id| store.can(id.provider(), Action::Dial)));
    // A remembered extension the live state no longer has (the provider was renamed, the
    // extension removed): say so, rather than wait for calls that cannot come.
    let stale = move || {
        let id = chosen.get()?;
        store.extensions.with(|map| (!map.is_empty() && !map.contains_key(&id)).then_some(id))
    };
    let progress = RwSignal::new(Progress::Idle);
    // The call in the pop: when another comes up, the last command's outcome is not left on it.
    let shown_id = Memo::new(move |_| call.get().map(|call| call.with_untracked(|call| call.id.clone())));
    Effect::new(move |before: Option<Option<CallId>>| {
        let now = shown_id.get();
        if let Some(before) = before {
            let state = untrack(|| {
                let (call, me) = (call.get()?, chosen.get()?);
                call.with(|call| {
                    let mine = |leg: &&crate::model::Leg| leg.extension.as_ref() == Some(&me) && !leg.state.is_ended();
                    call.legs.iter().rev().find(mine).map(|leg| leg.state)
                })
            });
            if retires_outcome(before.as_ref(), now.as_ref(), state) && !progress.get_untracked().is_working() {
                progress.set(Progress::Idle);
            }
        }
        now
    });
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
        // One command at a time: a second click while the first is under way sends nothing.
        if progress.get_untracked().is_working() {
            return;
        }
        let action = command.action;
        if action == Action::Consult {
            let (held, to) = (command.call.clone(), command.number.as_deref());
            consultation.set(held.zip(to).and_then(|(held, to)| Consultation::started(held, to)));
        }
        progress.set(Progress::Working(action));
        let from = chosen.get_untracked();
        leptos::task::spawn_local(async move {
            let result = send_command(command).await;
            // An agent who switched extension meanwhile is not told about the other one's call.
            if chosen.get_untracked() != from {
                return;
            }
            // A consultation refused holds nothing; one completed is over.
            if matches!((&result, action), (Err(_), Action::Consult) | (Ok(_), Action::CompleteTransfer)) {
                consultation.set(None);
            }
            progress.set(match result {
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
                        picked.set(None);
                        consultation.set(None);
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
            {move || stale().map(|id| view! {
                <p class="mt-3 text-amber-300" data-stale-extension="">
                    {format!("This browser remembered {id}, which is not here any more: choose your extension.")}
                </p>
            })}
            <Show when=move || chosen.get().is_some() && stale().is_none()>
                <MyStatus chosen/>
                {move || match call.get() {
                    Some(shown) => view! {
                        <ScreenPop call=shown chosen act_on_call run progress consultation/>
                        <OtherCalls chosen call newest picked/>
                    }.into_any(),
                    None => view! { <p class="mt-4 text-slate-400" data-no-call="">"No call at this extension."</p> }.into_any(),
                }}
                <Show when=move || can_dial.get()>
                    <DialPad chosen run progress/>
                </Show>
                <ProgressLine progress/>
                <RecentCalls chosen current run progress can_dial/>
                <Contacts chosen run progress can_dial/>
            </Show>
        </section>
    }
}

/// Whether `call` is still up with a leg of `me` in it.
fn is_live_at(call: &Call, me: &ExtensionId) -> bool {
    call.ended_at.is_none() && call.legs.iter().any(|leg| leg.extension.as_ref() == Some(me) && !leg.state.is_ended())
}

/// Whether `call` is up with a leg of `me` on hold in it.
fn is_held_at(call: &Call, me: &ExtensionId) -> bool {
    call.ended_at.is_none()
        && call.legs.iter().any(|leg| leg.extension.as_ref() == Some(me) && leg.state == LegState::Held)
}

/// The number to look up earlier calls by: only one that can be dialled. A withheld caller
/// ("anonymous", "Restricted", none) is no one in particular, and asking by that word would
/// list every other withheld call as this caller's.
fn history_number(number: Option<String>) -> Option<String> {
    number.filter(|number| dialable(number).is_some())
}

/// The caller's name on the pop: the provider's, unless it names nobody (empty, the number
/// itself, or a placeholder such as "Unknown" or "anonymous"); then the contact's, when the
/// number is a contact. A placeholder with no contact behind it is still shown: it says the
/// caller withheld their name.
fn caller_name(provided: Option<&str>, number: Option<&str>, contact: Option<String>) -> Option<String> {
    const PLACEHOLDERS: [&str; 5] = ["unknown", "anonymous", "restricted", "private", "withheld"];
    let provided = provided.map(str::trim).filter(|name| !name.is_empty());
    let Some(name) = provided else { return contact };
    let digits = |text: &str| text.chars().filter(char::is_ascii_digit).collect::<String>();
    // The number again, however written (digits compared, or the same in E.164).
    let is_the_number = |number: &str| {
        dialable(name).is_some()
            && (digits(name) == digits(number) || e164(name).is_some_and(|name| e164(number) == Some(name)))
    };
    if number.is_some_and(is_the_number) {
        return contact;
    }
    if PLACEHOLDERS.iter().any(|placeholder| name.eq_ignore_ascii_case(placeholder)) {
        return contact.or_else(|| Some(name.to_owned()));
    }
    Some(name.to_owned())
}

/// The agent's other live calls (the one on hold during a consultation, a call waiting), each
/// with a button that brings it into the pop, so every call at the desk can be worked.
#[component]
fn OtherCalls(
    chosen: RwSignal<Option<ExtensionId>>,
    call: Memo<Option<RwSignal<Call>>>,
    newest: Memo<Option<RwSignal<Call>>>,
    picked: RwSignal<Option<Pick>>,
) -> impl IntoView {
    let store = expect_context::<LiveStore>();
    let others = move || {
        newest.track();
        let me = chosen.get()?;
        let shown = call.get().map(|call| call.with_untracked(|call| call.id.clone()));
        let others: Vec<RwSignal<Call>> = store
            .calls_at(&me)
            .into_iter()
            .filter(|other| other.with(|other| Some(&other.id) != shown.as_ref() && is_live_at(other, &me)))
            .collect();
        (!others.is_empty()).then_some((me, others))
    };
    view! {
        {move || others().map(|(me, others)| view! {
            <ul class="mt-3 space-y-1 text-sm" data-other-calls="">
                {others.into_iter().map(|other| {
                    let id = other.with_untracked(|other| other.id.clone());
                    let hook = id.to_string();
                    let me = me.clone();
                    let line = move || other.with(|other| {
                        let leg = other.legs.iter().rev().find(|leg| leg.extension.as_ref() == Some(&me) && !leg.state.is_ended());
                        let party = leg.map(|leg| leg.remote.clone()).filter(|party| party.number.is_some()).unwrap_or_else(|| other.caller.clone());
                        format!("Also: {} · {}", format::party(&party), leg.map_or("", |leg| format::leg_state(leg.state)))
                    });
                    view! {
                        <li class="flex items-center justify-between gap-2 rounded bg-slate-800 px-2 py-1" data-other-call=hook>
                            <span>{line}</span>
                            <button
                                type="button"
                                class="rounded bg-slate-700 px-2 text-xs"
                                data-show-call=""
                                on:click=move |_| {
                                    let newest = newest.get_untracked().map(|newest| newest.with_untracked(|n| n.id.clone()));
                                    picked.set(Some(Pick { call: id.clone(), newest }));
                                }
                            >
                                "Show"
                            </button>
                        </li>
                    }
                }).collect_view()}
            </ul>
        })}
    }
}

/// The agent's own status and time in it, as the wallboard shows it: an agent on break or
/// logged out sees why no call comes.
#[component]
fn MyStatus(chosen: RwSignal<Option<ExtensionId>>) -> impl IntoView {
    let store = expect_context::<LiveStore>();
    let clock = expect_context::<Clock>();
    let extension = move || chosen.get().and_then(|id| store.extensions.with(|map| map.get(&id).copied()));
    let status = move || extension().map(|extension| extension.with(|e| e.agent_status.clone()));
    let since = move || {
        let since = extension()?.with(|e| e.status_since);
        Some(duration_text(clock.now.get() - since))
    };
    view! {
        <p class="mt-2 text-sm text-slate-300" data-agent-status=move || status().map(|status| status.as_str())>
            {move || status().map(|status| format::agent_status(&status))}
            <span class="ml-2 tabular-nums text-slate-400">{since}</span>
        </p>
    }
}

/// The call at the agent's extension: who, from which queue, and the controls for it.
#[component]
fn ScreenPop(
    call: RwSignal<Call>,
    chosen: RwSignal<Option<ExtensionId>>,
    act_on_call: impl Fn(Action) + Copy + Send + Sync + 'static,
    run: impl Fn(Command) + Copy + Send + Sync + 'static,
    progress: RwSignal<Progress>,
    consultation: RwSignal<Option<Consultation>>,
) -> impl IntoView {
    let store = expect_context::<LiveStore>();
    let clock = expect_context::<Clock>();
    let working = move || progress.get().is_working();
    // My live leg in this call: its state picks the buttons, and where the provider reports
    // recording, only the controls it allows now are offered.
    let my_leg = move || {
        let me = chosen.get();
        call.with(|call| {
            let leg = call.legs.iter().rev().find(|leg| leg.extension == me && !leg.state.is_ended());
            leg.map(|leg| (leg.state, leg.recording.clone()))
        })
    };
    let my_leg_state = move || my_leg().map(|(state, _)| state);
    let my_recording = move || my_leg().and_then(|(_, recording)| recording);
    let other = move || {
        let me = chosen.get();
        call.with(|call| {
            let leg = call.legs.iter().rev().find(|leg| leg.extension == me);
            leg.map(|leg| leg.remote.clone())
                .filter(|party| party.number.is_some())
                .unwrap_or_else(|| call.caller.clone())
        })
    };
    let can = move |action: Action| {
        let recording_control =
            matches!(action, Action::RecordStart | Action::RecordPause | Action::RecordResume | Action::RecordStop);
        let allowed_now =
            !recording_control || my_recording().is_none_or(|recording| recording.controls.contains(&action));
        allowed_now && call.with(|call| store.can(call.id.provider(), action))
    };
    let number = Memo::new(move |_| other().number);
    let contact = LocalResource::new(move || {
        let number = number.get();
        async move {
            let url = format!("/api/v1/contacts?number={}", encode(&number?));
            get_json::<Vec<Contact>>(&url).await.ok()?.into_iter().next()
        }
    });
    let id: CallId = call.with_untracked(|call| call.id.clone());
    let this_call = id.clone();
    let history = LocalResource::new(move || {
        let (number, this_call) = (number.get(), this_call.clone());
        async move {
            let Some(number) = history_number(number) else { return Vec::new() };
            let url = format!("/api/v1/calls?number={}&limit=6", encode(&number));
            let calls = get_json::<Vec<Call>>(&url).await.unwrap_or_default();
            calls.into_iter().filter(|call| call.id != this_call).take(5).collect::<Vec<_>>()
        }
    });
    let crm = LocalResource::new(|| async {
        let settings = get_json::<serde_json::Value>("/api/v1/desk").await.ok()?;
        settings.get("crm_url")?.as_str().filter(|url| !url.is_empty()).map(str::to_owned)
    });
    let name = move || {
        let other = other();
        let contact = contact.get().flatten().map(|contact| contact.name);
        caller_name(other.name.as_deref(), other.number.as_deref(), contact)
    };
    let call_id = id.clone();
    let crm_link = move || {
        let template = crm.get().flatten()?;
        let number = other().number.unwrap_or_default();
        Some(
            template
                .replace("{number}", &encode(&number))
                .replace("{name}", &encode(&name().unwrap_or_default()))
                .replace("{call_id}", &encode(call_id.as_str())),
        )
    };
    let target = RwSignal::new(String::new());
    let transfer = move |action: Action| {
        let (Some(extension), number) = (chosen.get_untracked(), target.get_untracked()) else { return };
        let call = Some(call.with_untracked(|call| call.id.clone()));
        let number = (!number.trim().is_empty()).then(|| number.trim().to_owned());
        run(Command { action, call, leg: None, extension: Some(extension), number });
    };
    let button = move |action: Action, label: &'static str, shown: Signal<bool>| {
        view! {
            <Show when=move || shown.get() && can(action)>
                <button
                    type="button"
                    data-action=action.as_str()
                    class="rounded bg-slate-700 px-3 py-1.5 text-sm hover:bg-slate-600 disabled:opacity-50"
                    disabled=working
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
    let answered = state_is(&[LegState::Active, LegState::Held]);
    let ringing = state_is(&[LegState::Ringing]);
    // Keyboard: `a` answers, `h` hangs up, when that button is offered and enabled and the agent
    // is not typing; a stray key on a call already answered sends nothing.
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
            let busy = progress.get_untracked().is_working();
            let offered =
                |action: Action, shown: Signal<bool>| !busy && shown.get_untracked() && untrack(|| can(action));
            match event.key().as_str() {
                "a" if offered(Action::Answer, ringing) => act_on_call(Action::Answer),
                "h" if offered(Action::Hangup, live) => act_on_call(Action::Hangup),
                _ => {}
            }
        });
        on_cleanup(move || handle.remove());
    }
    // Consulting: this call is the one to the colleague that the desk's consult command placed,
    // while the call it put on hold still waits there. Then the transfer row offers to complete
    // the transfer, and nothing else; a call merely held beside this one changes nothing.
    let this_pop = id.clone();
    let consulting = Signal::derive(move || {
        let (Some(me), Some(consultation)) = (chosen.get(), consultation.get()) else { return false };
        let held_still = store
            .calls_at(&me)
            .into_iter()
            .any(|other| other.with(|other| other.id == consultation.held && is_held_at(other, &me)));
        consultation.is_on(&this_pop, held_still)
    });
    view! {
        <div data-call=id.to_string() class="mt-4 rounded-lg border border-amber-400/60 bg-slate-900 p-4">
            <div class="flex items-baseline justify-between">
                <div>
                    <div class="text-2xl font-semibold tabular-nums" data-pop-number="">
                        {move || other().number.map(|number| format::phone_number(&number)).unwrap_or_else(|| "Unknown number".into())}
                    </div>
                    <div class="text-lg text-slate-300" data-pop-party="">{move || name().unwrap_or_default()}</div>
                    {move || crm_link().map(|href| view! {
                        <a href=href target="_blank" rel="noopener" class="text-sm text-sky-300 underline" data-crm="">"Open in CRM"</a>
                    })}
                </div>
                <div class="text-right text-sm text-slate-300">
                    <div>{move || call.with(|call| format!("{} {}", format::direction_arrow(call.direction), format::direction(call.direction)))}</div>
                    <div data-pop-queue="">{move || call.with(|call| call.queue.as_ref().map(|queue| queue_name(store, queue)))}</div>
                    <div class="tabular-nums">
                        {move || {
                            let since = call.with(|call| call.answered_at.unwrap_or(call.started_at));
                            duration_text(clock.now.get() - since)
                        }}
                    </div>
                    <div data-pop-state="">{move || my_leg_state().map(format::leg_state).unwrap_or_default()}</div>
                    {move || my_recording().filter(|recording| recording.state != RecordingState::Off).map(|recording| view! {
                        <div data-pop-recording=format!("{:?}", recording.state).to_lowercase() class="text-rose-300">
                            {format!("● {}", format::recording(recording.state))}
                        </div>
                    })}
                </div>
            </div>
            <div class="mt-3 flex flex-wrap gap-2">
                {button(Action::Answer, "Answer (a)", ringing)}
                {button(Action::Hangup, "Hang up (h)", live)}
                {button(Action::Hold, "Hold", state_is(&[LegState::Active]))}
                {button(Action::Resume, "Resume", state_is(&[LegState::Held]))}
                {button(Action::RecordStart, "Record", state_is(&[LegState::Active, LegState::Held]))}
                {button(Action::RecordPause, "Pause recording", state_is(&[LegState::Active, LegState::Held]))}
                {button(Action::RecordResume, "Resume recording", state_is(&[LegState::Active, LegState::Held]))}
                {button(Action::RecordStop, "Stop recording", state_is(&[LegState::Active, LegState::Held]))}
            </div>
            <Show when=move || answered.get() && !consulting.get() && [Action::BlindTransfer, Action::Consult].iter().any(|action| can(*action))>
                <div class="mt-3 flex flex-wrap items-center gap-2">
                    <input
                        data-transfer-number=""
                        class="w-36 rounded bg-slate-800 px-2 py-1 tabular-nums"
                        placeholder="Transfer to"
                        prop:value=move || target.get()
                        on:input=move |event| target.set(event_target_value(&event))
                    />
                    <Show when=move || can(Action::BlindTransfer)>
                        <button type="button" data-action="blind_transfer" class="rounded bg-slate-700 px-3 py-1.5 text-sm disabled:opacity-50" disabled=working on:click=move |_| transfer(Action::BlindTransfer)>"Blind transfer"</button>
                    </Show>
                    <Show when=move || can(Action::Consult)>
                        <button type="button" data-action="consult" class="rounded bg-slate-700 px-3 py-1.5 text-sm disabled:opacity-50" disabled=working on:click=move |_| transfer(Action::Consult)>"Consult"</button>
                    </Show>
                </div>
            </Show>
            <Show when=move || answered.get() && consulting.get() && can(Action::CompleteTransfer)>
                <div class="mt-3 flex flex-wrap items-center gap-2">
                    <span class="text-sm text-slate-300">"Your other call is on hold."</span>
                    <button type="button" data-action="complete_transfer" class="rounded bg-slate-700 px-3 py-1.5 text-sm disabled:opacity-50" disabled=working on:click=move |_| transfer(Action::CompleteTransfer)>"Complete transfer"</button>
                </div>
            </Show>
            <div class="mt-3 text-sm" data-previous-calls="">
                <div class="text-slate-400">"Previous calls with this number"</div>
                {move || {
                    let calls = history.get().unwrap_or_default();
                    if calls.is_empty() {
                        return view! { <p class="text-slate-500">"None."</p> }.into_any();
                    }
                    view! {
                        <ul>
                            {calls.into_iter().map(|call| view! { <PreviousCall call/> }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            </div>
        </div>
    }
}

/// One earlier call with the same number: when, and how it ended. Calling back is for after
/// this call, from the desk's recent calls.
#[component]
fn PreviousCall(call: Call) -> impl IntoView {
    let clock = expect_context::<Clock>();
    let ended = call.end_cause.map_or("in progress", format::end_cause);
    let answered = if call.answered_at.is_some() { "answered" } else { "not answered" };
    view! {
        <li class="flex justify-between border-b border-slate-800 py-0.5">
            <span>{move || format!("{} ago", duration_text(clock.now.get() - call.started_at))}</span>
            <span class="text-slate-400">{format!("{answered}, {ended}")}</span>
        </li>
    }
}

/// How many skipped rows of an import the desk names.
const SKIPPED_SHOWN: usize = 5;

/// How many of the agent's own finished calls the desk lists.
const RECENT_CALLS: usize = 8;

/// The agent's own latest finished calls, read from the call history again whenever the call
/// at the extension changes (the one that just ended is then among them): who, which way, how
/// it went, and a button to call back, which is how an agent dials from history.
#[component]
fn RecentCalls(
    chosen: RwSignal<Option<ExtensionId>>,
    current: Memo<Option<CallId>>,
    run: impl Fn(Command) + Copy + Send + Sync + 'static,
    progress: RwSignal<Progress>,
    can_dial: Signal<bool>,
) -> impl IntoView {
    let clock = expect_context::<Clock>();
    let recent = LocalResource::new(move || {
        current.track();
        let me = chosen.get();
        async move {
            let me = me?;
            let url = format!("/api/v1/calls?extension={}&limit={}", encode(me.as_str()), RECENT_CALLS + 2);
            let calls = get_json::<Vec<Call>>(&url).await.ok()?;
            Some((me, calls))
        }
    });
    let call_back = move |number: String| {
        if let Some(extension) = chosen.get_untracked() {
            run(Command::dial(extension, number));
        }
    };
    view! {
        <section class="mt-6 text-sm" data-recent-calls="">
            <h2 class="text-lg font-semibold">"My recent calls"</h2>
            {move || {
                let (me, calls) = recent.get().flatten()?;
                let rows = calls
                    .into_iter()
                    .filter_map(|call| RecentCall::of(&call, &me))
                    .take(RECENT_CALLS)
                    .collect::<Vec<_>>();
                if rows.is_empty() {
                    return Some(view! { <p class="text-slate-500">"None yet."</p> }.into_any());
                }
                Some(view! {
                    <ul class="mt-1">
                        {rows.into_iter().map(|row| {
                            let number = row.call_back.clone();
                            view! {
                                <li class="flex items-center gap-2 border-b border-slate-800 py-1" data-recent-call=row.call.to_string()>
                                    <span class="w-4 text-slate-400" title=format::direction(row.direction)>{format::direction_arrow(row.direction)}</span>
                                    <span class="min-w-0 flex-1 truncate">{format::party(&row.party)}</span>
                                    <span class="text-slate-400" data-recent-outcome="">{row.outcome}</span>
                                    <span class="tabular-nums text-slate-400">{move || format!("{} ago", duration_text(clock.now.get() - row.ended_at))}</span>
                                    {number.map(|number| view! {
                                        <Show when=move || can_dial.get()>
                                        <button
                                            type="button"
                                            class="rounded bg-emerald-800 px-2 text-xs disabled:opacity-50"
                                            data-action="call_back"
                                            disabled=move || progress.get().is_working()
                                            on:click={let number = number.clone(); move |_| call_back(number.clone())}
                                        >
                                            "Call back"
                                        </button>
                                        </Show>
                                    })}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any())
            }}
        </section>
    }
}

/// One line of the agent's recent calls, seen from their own leg.
struct RecentCall {
    call: CallId,
    direction: Direction,
    party: Party,
    outcome: String,
    ended_at: Timestamp,
    /// The number the Call back button dials; none for a withheld or anonymous caller, who has
    /// nothing to call back, and none for a call a colleague answered, which was not missed.
    call_back: Option<String>,
}

impl RecentCall {
    /// The line for `call` as the agent at `me` had it; `None` when no leg of it was theirs or
    /// theirs is still up (a call they transferred away is theirs no more, and listed).
    fn of(call: &Call, me: &ExtensionId) -> Option<Self> {
        let leg = call.legs.iter().rev().find(|leg| leg.extension.as_ref() == Some(me))?;
        let party = if leg.remote.number.is_some() { leg.remote.clone() } else { call.caller.clone() };
        let ended_at = leg.ended_at?;
        let elsewhere = leg.answered_at.is_none() && leg.end_cause == Some(EndCause::AnsweredElsewhere);
        let outcome = match leg.answered_at {
            Some(answered) => format!("answered, {}", duration_text(ended_at - answered)),
            None if elsewhere => format::end_cause(EndCause::AnsweredElsewhere).to_owned(),
            None if leg.direction == Direction::Inbound => "missed".to_owned(),
            None => "not answered".to_owned(),
        };
        let call_back = party.number.clone().filter(|number| !elsewhere && dialable(number).is_some());
        Some(Self { call: call.id.clone(), direction: leg.direction, party, outcome, ended_at, call_back })
    }
}

/// The contact list: dial from it, add to it, import a CSV into it.
#[component]
fn Contacts(
    chosen: RwSignal<Option<ExtensionId>>,
    run: impl Fn(Command) + Copy + Send + Sync + 'static,
    progress: RwSignal<Progress>,
    can_dial: Signal<bool>,
) -> impl IntoView {
    let version = RwSignal::new(0u32);
    let contacts = LocalResource::new(move || {
        version.track();
        async move { get_json::<Vec<Contact>>("/api/v1/contacts").await }
    });
    let (name, number, csv, message) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    // Why the last import skipped rows, line by line, so the file can be put right.
    let skipped_rows = RwSignal::new(Vec::<String>::new());
    let add = move || {
        let contact = Contact { id: 0, name: name.get_untracked(), number: number.get_untracked(), company: None };
        leptos::task::spawn_local(async move {
            match send::<Contact>("POST", "/api/v1/contacts", Body::Json(&contact)).await {
                Ok(saved) => {
                    message.set(format!("Saved {}", saved.name));
                    name.set(String::new());
                    number.set(String::new());
                    version.update(|v| *v += 1);
                }
                Err(words) => message.set(words),
            }
        });
    };
    let import = move || {
        let text = csv.get_untracked();
        leptos::task::spawn_local(async move {
            match send::<serde_json::Value>("POST", "/api/v1/contacts/import", Body::<()>::Text(text)).await {
                Ok(result) => {
                    let skipped: Vec<String> = result["skipped"]
                        .as_array()
                        .map(|rows| rows.iter().filter_map(|row| row.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default();
                    message.set(format!("Imported {}, skipped {}", result["imported"], skipped.len()));
                    skipped_rows.set(skipped);
                    csv.set(String::new());
                    version.update(|v| *v += 1);
                }
                Err(words) => {
                    message.set(words);
                    skipped_rows.set(Vec::new());
                }
            }
        });
    };
    let remove = move |id: i64| {
        leptos::task::spawn_local(async move {
            match send::<serde_json::Value>("DELETE", &format!("/api/v1/contacts/{id}"), Body::<()>::Empty).await {
                Ok(_) => version.update(|v| *v += 1),
                Err(words) => message.set(words),
            }
        });
    };
    let dial = move |to: String| {
        if let Some(extension) = chosen.get_untracked() {
            run(Command::dial(extension, to));
        }
    };
    let input = "min-w-0 rounded bg-slate-800 px-2 py-1";
    view! {
        <section class="mt-6" data-contacts="">
            <h2 class="text-lg font-semibold">"Contacts"</h2>
            <ul class="mt-2 text-sm">
                {move || contacts.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|contact| {
                    let (to, id) = (contact.number.clone(), contact.id);
                    view! {
                        <li class="flex items-center gap-2 border-b border-slate-800 py-1" data-contact=contact.number.clone()>
                            <span class="flex-1">{contact.name.clone()}</span>
                            <span class="tabular-nums text-slate-300">{format::phone_number(&contact.number)}</span>
                            <Show when=move || can_dial.get()>
                                <button
                                    type="button"
                                    class="rounded bg-emerald-800 px-2 text-xs disabled:opacity-50"
                                    disabled=move || progress.get().is_working()
                                    on:click={let to = to.clone(); move |_| dial(to.clone())}
                                >
                                    "Call"
                                </button>
                            </Show>
                            <button type="button" class="rounded bg-slate-700 px-2 text-xs" on:click=move |_| remove(id)>"Delete"</button>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <form class="mt-2 flex gap-2" on:submit=move |event| { event.prevent_default(); add(); }>
                <input class=input placeholder="Name" data-contact-name="" prop:value=move || name.get() on:input=move |e| name.set(event_target_value(&e))/>
                <input class=input placeholder="Number" data-contact-number="" prop:value=move || number.get() on:input=move |e| number.set(event_target_value(&e))/>
                <button type="submit" class="rounded bg-slate-700 px-3 text-sm">"Add"</button>
            </form>
            <details class="mt-2 text-sm">
                <summary class="cursor-pointer text-slate-300">"Import CSV (name, number, company)"</summary>
                <textarea class="mt-1 h-24 w-full rounded bg-slate-800 p-2 font-mono text-xs" data-contact-csv="" prop:value=move || csv.get() on:input=move |e| csv.set(event_target_value(&e))></textarea>
                <button type="button" class="rounded bg-slate-700 px-3 py-1 text-sm" on:click=move |_| import()>"Import"</button>
            </details>
            <p class="mt-1 text-sm text-slate-300" data-contacts-message="">{move || message.get()}</p>
            <ul class="text-xs text-amber-300" data-contacts-skipped="">
                {move || {
                    let rows = skipped_rows.get();
                    let more = rows.len().saturating_sub(SKIPPED_SHOWN);
                    let shown = rows.into_iter().take(SKIPPED_SHOWN).map(|why| view! { <li>{why}</li> }).collect_view();
                    view! { {shown} {(more > 0).then(|| view! { <li>{format!("and {more} more")}</li> })} }
                }}
            </ul>
        </section>
    }
}

/// Dialling out from the agent's extension.
#[component]
fn DialPad(
    chosen: RwSignal<Option<ExtensionId>>,
    run: impl Fn(Command) + Copy + Send + Sync + 'static,
    progress: RwSignal<Progress>,
) -> impl IntoView {
    let number = RwSignal::new(String::new());
    let dial = move || {
        let Some(extension) = chosen.get_untracked() else { return };
        let digits = number.get_untracked();
        if digits.trim().is_empty() {
            return;
        }
        run(Command::dial(extension, digits));
    };
    view! {
        <form class="mt-4 flex gap-2" on:submit=move |event| { event.prevent_default(); dial(); }>
            <input
                data-dial-number=""
                class="min-w-0 rounded bg-slate-800 px-2 py-1 tabular-nums"
                placeholder="Number to call"
                prop:value=move || number.get()
                on:input=move |event| number.set(event_target_value(&event))
            />
            <button
                type="submit"
                data-action="dial"
                class="rounded bg-emerald-700 px-3 py-1 text-sm hover:bg-emerald-600 disabled:opacity-50"
                disabled=move || progress.get().is_working()
            >
                "Dial"
            </button>
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
                Progress::Working(action) => format::action_in_progress(action).to_owned(),
                Progress::Done(outcome) => outcome,
                Progress::Refused(words) => format!("Refused: {words}"),
            }}
        </p>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call of one leg at extension `p/a/101`, from the wire shape.
    fn call(direction: &str, answered_at: Option<i64>, remote: Option<&str>) -> Call {
        let mut leg = serde_json::json!({
            "id": "p/a/l1", "call": "p/a/c1", "extension": "p/a/101", "state": "ended",
            "direction": direction, "local": {}, "remote": {}, "created_at": 1_000,
            "ended_at": 200_000, "raw_state": "", "state_since": 200_000,
        });
        if let Some(at) = answered_at {
            leg["answered_at"] = at.into();
        }
        if let Some(number) = remote {
            leg["remote"]["number"] = number.into();
        }
        serde_json::from_value(serde_json::json!({
            "id": "p/a/c1", "legs": [leg], "direction": direction, "origin": { "kind": "normal" },
            "started_at": 1_000, "ended_at": 200_000, "caller": { "number": "+61299990000", "name": "Ada" },
        }))
        .unwrap()
    }

    #[test]
    fn a_recent_call_reads_from_the_agents_own_leg() {
        let me = ExtensionId::new("p", "a", "101");
        let answered = RecentCall::of(&call("inbound", Some(80_000), None), &me).unwrap();
        assert_eq!(answered.outcome, "answered, 2:00");
        assert_eq!(answered.ended_at, 200_000);
        // Without a number on the leg, the call's outside party.
        assert_eq!(answered.party.name.as_deref(), Some("Ada"));
        let missed = RecentCall::of(&call("inbound", None, Some("0299990001")), &me).unwrap();
        assert_eq!((missed.outcome.as_str(), missed.party.number.as_deref()), ("missed", Some("0299990001")));
        let unanswered = RecentCall::of(&call("outbound", None, Some("0299990002")), &me).unwrap();
        assert_eq!((unanswered.outcome.as_str(), unanswered.direction), ("not answered", Direction::Outbound));
        // Someone else's call is not the agent's.
        assert!(RecentCall::of(&call("inbound", None, None), &ExtensionId::new("p", "a", "102")).is_none());
    }

    #[test]
    fn a_call_a_colleague_answered_is_not_missed_and_not_called_back() {
        let me = ExtensionId::new("p", "a", "101");
        let missed = RecentCall::of(&call("inbound", None, Some("0299990001")), &me).unwrap();
        assert_eq!(missed.call_back.as_deref(), Some("0299990001"));
        let mut taken = call("inbound", None, Some("0299990001"));
        taken.legs[0].end_cause = Some(EndCause::AnsweredElsewhere);
        let taken = RecentCall::of(&taken, &me).unwrap();
        assert_eq!((taken.outcome.as_str(), taken.call_back), ("answered elsewhere", None));
        // A withheld caller has nothing to call back either.
        let withheld = RecentCall::of(&call("inbound", None, Some("anonymous")), &me).unwrap();
        assert_eq!((withheld.outcome.as_str(), withheld.call_back), ("missed", None));
    }

    #[test]
    fn a_command_under_way_is_working() {
        assert!(Progress::Working(Action::Dial).is_working());
        for finished in [Progress::Idle, Progress::Done("done".into()), Progress::Refused("busy".into())] {
            assert!(!finished.is_working(), "{finished:?}");
        }
    }

    #[test]
    fn a_pick_gives_way_to_a_new_call() {
        let (held, talking, ringing) =
            (CallId::new("p", "a", "c1"), CallId::new("p", "a", "c2"), CallId::new("p", "a", "c3"));
        let pick = Pick { call: held, newest: Some(talking.clone()) };
        assert!(pick.holds(Some(&talking)));
        assert!(!pick.holds(Some(&ringing)), "a new call rings: the pop shows it");
        assert!(!pick.holds(None));
    }

    /// A live call `id` with one leg of the agent's at `p/a/101`, in `state`, to a remote party
    /// of `number` and `extension`.
    fn live(id: &str, direction: &str, state: LegState, number: Option<&str>, extension: Option<&str>) -> Call {
        let mut call = call(direction, Some(80_000), None);
        call.id = CallId::new("p", "a", id);
        call.ended_at = None;
        let leg = &mut call.legs[0];
        leg.call = call.id.clone();
        leg.ended_at = None;
        leg.state = state;
        leg.remote = Party { number: number.map(str::to_owned), name: None, extension: extension.map(str::to_owned) };
        call
    }

    #[test]
    fn only_the_consultation_the_desk_placed_offers_to_complete_the_transfer() {
        let me = ExtensionId::new("p", "a", "101");
        let held = live("c1", "inbound", LegState::Held, Some("0299990000"), None);
        let colleague = live("c2", "internal", LegState::RemoteRinging, Some("205"), Some("205"));
        let stranger = live("c3", "inbound", LegState::Ringing, Some("0299990077"), None);
        let asked = Consultation::started(held.id.clone(), "205").unwrap();
        assert_eq!((asked.to.as_str(), asked.held_seen, asked.call.as_ref()), ("205", false, None));
        // Before the call to the colleague shows, nothing is the consultation.
        assert!(!asked.is_on(&colleague.id, true));
        let waiting = asked.follow(&me, Some(&held), Some(&held), None).unwrap();
        assert!(waiting.held_seen);
        assert_eq!(waiting.call, None);
        assert_eq!(waiting.clone().follow(&me, Some(&held), None, None).as_ref(), Some(&waiting));
        let placed = waiting.follow(&me, Some(&held), Some(&colleague), None).unwrap();
        assert_eq!(placed.call.as_ref(), Some(&colleague.id));
        assert!(placed.is_on(&colleague.id, true));
        assert!(!placed.is_on(&colleague.id, false), "the held call was resumed or hung up");
        // A call that rings later is not the consultation, held call or not.
        let later = placed.clone().follow(&me, Some(&held), Some(&stranger), Some(&colleague)).unwrap();
        assert_eq!(later, placed);
        assert!(!later.is_on(&stranger.id, true));
        assert!(!later.is_on(&held.id, true));
        // A number no call could be recognised as reaching starts no consultation.
        assert_eq!(Consultation::started(held.id.clone(), "anonymous"), None);
    }

    #[test]
    fn an_unrelated_call_after_a_consult_is_not_taken_for_it() {
        let me = ExtensionId::new("p", "a", "101");
        let held = live("c1", "inbound", LegState::Held, Some("0299990000"), None);
        let consult = Consultation::started(held.id.clone(), "205").unwrap();
        let consult = consult.follow(&me, Some(&held), Some(&held), None).unwrap();
        // The consult's own call never showed (a busy colleague, a provider that polls); the
        // agent answers the next caller, or the colleague rings in, or the agent dials someone
        // else: none of these is the call to complete the transfer on.
        let unrelated = [
            live("c3", "inbound", LegState::Active, Some("0299990077"), None),
            // The colleague ringing in: providers report such a call as internal.
            live("c4", "internal", LegState::Ringing, Some("205"), Some("205")),
            live("c7", "outbound", LegState::RemoteRinging, Some("02 9999 0205"), None),
            live("c5", "outbound", LegState::RemoteRinging, Some("0299990206"), None),
            live("c6", "outbound", LegState::Active, None, None),
        ];
        for call in &unrelated {
            let after = consult.clone().follow(&me, Some(&held), Some(call), None).unwrap();
            assert_eq!(after.call, None, "{:?}", call.id);
            assert!(!after.is_on(&call.id, true));
        }
        // Nor is the held call itself, whoever it is with.
        let mut held_to_205 = held.clone();
        held_to_205.legs[0].direction = Direction::Outbound;
        held_to_205.legs[0].remote.number = Some("205".into());
        assert!(!consult.is_to(&held_to_205, &me));
    }

    #[test]
    fn a_call_the_agent_placed_to_the_number_consulted_is_the_consultation() {
        let me = ExtensionId::new("p", "a", "101");
        let held = live("c1", "inbound", LegState::Held, Some("0299990000"), None);
        // The colleague's extension, reported as the remote's extension or number.
        let to_extension = Consultation::started(held.id.clone(), "205").unwrap();
        for call in [
            live("c2", "internal", LegState::RemoteRinging, None, Some("205")),
            live("c2", "outbound", LegState::Initiating, Some("205"), None),
            live("c2", "unknown", LegState::Active, Some("205"), None),
        ] {
            let after = to_extension.clone().follow(&me, Some(&held), Some(&call), None).unwrap();
            assert_eq!(after.call.as_ref(), Some(&call.id), "{:?}", call.legs[0].remote);
        }
        // A number dialled nationally, reported internationally (and the other way round).
        let national = Consultation::started(held.id.clone(), "02 9999 0088").unwrap();
        let call = live("c2", "outbound", LegState::RemoteRinging, Some("+61299990088"), None);
        assert!(national.is_to(&call, &me));
        let international = Consultation::started(held.id.clone(), "+61 (0)2 9999 0088").unwrap();
        let call = live("c2", "outbound", LegState::RemoteRinging, Some("0299990088"), None);
        assert!(international.is_to(&call, &me));
        // Another extension's leg in the call is not the agent's.
        assert!(!national.is_to(&call, &ExtensionId::new("p", "a", "102")));
    }

    #[test]
    fn numbers_match_however_written() {
        assert!(same_number("205", "205"));
        assert!(same_number("0299990088", "+61 2 9999 0088"));
        assert!(same_number("+61 (0)2 9999 0088", "02 9999 0088"));
        assert!(!same_number("205", "206"));
        assert!(!same_number("0299990088", "0299990087"));
        assert!(!same_number("", "205"));
        assert!(!same_number("anonymous", "205"));
        // An extension is not a direct number that ends with it; zeros are digits.
        assert!(!same_number("205", "02 9999 0205"));
        assert!(!same_number("0", "000"));
    }

    #[test]
    fn a_consultation_ends_when_the_held_call_is_resumed_or_ends() {
        let me = ExtensionId::new("p", "a", "101");
        let mut held = live("c1", "inbound", LegState::Active, Some("0299990000"), None);
        let colleague = live("c2", "internal", LegState::Active, Some("205"), Some("205"));
        let asked = Consultation::started(held.id.clone(), "205").unwrap();
        // The consult's hold is not reported yet: the consultation waits for it.
        let asked = asked.follow(&me, Some(&held), Some(&held), None).unwrap();
        assert!(!asked.held_seen);
        held.legs[0].state = LegState::Held;
        let placed = asked.follow(&me, Some(&held), Some(&colleague), None).unwrap();
        assert!(placed.held_seen);
        assert_eq!(placed.call.as_ref(), Some(&colleague.id));
        assert!(placed.clone().follow(&me, Some(&held), Some(&colleague), Some(&colleague)).is_some());
        // The agent takes the caller off hold: the consultation is over.
        let mut resumed = held.clone();
        resumed.legs[0].state = LegState::Active;
        assert_eq!(placed.clone().follow(&me, Some(&resumed), Some(&resumed), Some(&colleague)), None);
        // The caller hangs up (or the live state drops the call).
        let mut hung_up = held.clone();
        hung_up.legs[0].state = LegState::Ended;
        assert_eq!(placed.clone().follow(&me, Some(&hung_up), Some(&colleague), Some(&colleague)), None);
        assert_eq!(placed.clone().follow(&me, None, Some(&colleague), Some(&colleague)), None);
        // The call to the colleague ends: nothing to complete the transfer on.
        let mut ended = colleague.clone();
        ended.ended_at = Some(300_000);
        assert_eq!(placed.clone().follow(&me, Some(&held), Some(&held), Some(&ended)), None);
        assert_eq!(placed.follow(&me, Some(&held), Some(&held), None), None);
    }

    #[test]
    fn a_held_call_is_held_by_the_agents_own_leg() {
        let me = ExtensionId::new("p", "a", "101");
        let mut held = call("inbound", Some(80_000), None);
        held.ended_at = None;
        held.legs[0].ended_at = None;
        held.legs[0].state = LegState::Held;
        assert!(is_held_at(&held, &me));
        assert!(!is_held_at(&held, &ExtensionId::new("p", "a", "102")));
        held.legs[0].state = LegState::Active;
        assert!(!is_held_at(&held, &me));
    }

    #[test]
    fn the_contacts_name_stands_in_for_a_provider_name_that_names_nobody() {
        let ada = || Some("Ada Lovelace".to_owned());
        let number = Some("+61299990000");
        assert_eq!(caller_name(Some("ACME Pty"), number, ada()).as_deref(), Some("ACME Pty"));
        let nobodies =
            ["", "  ", "+61299990000", "0299990000", "02 9999 0000", "Unknown", "ANONYMOUS", "restricted", "Private"];
        for nobody in nobodies {
            assert_eq!(caller_name(Some(nobody), number, ada()).as_deref(), Some("Ada Lovelace"), "{nobody:?}");
        }
        assert_eq!(caller_name(None, number, ada()).as_deref(), Some("Ada Lovelace"));
        // With no contact: a placeholder still says the name was withheld; the number is not
        // repeated as a name.
        assert_eq!(caller_name(Some("anonymous"), None, None).as_deref(), Some("anonymous"));
        assert_eq!(caller_name(Some("0299990000"), number, None), None);
        // A name with a digit in it is still a name.
        assert_eq!(caller_name(Some("Bay 2"), Some("2"), ada()).as_deref(), Some("Bay 2"));
    }

    #[test]
    fn only_a_dialable_number_has_previous_calls() {
        assert_eq!(history_number(Some("+61299990000".into())).as_deref(), Some("+61299990000"));
        assert_eq!(history_number(Some("201".into())).as_deref(), Some("201"));
        for withheld in [None, Some(""), Some("anonymous"), Some("Restricted")] {
            assert_eq!(history_number(withheld.map(str::to_owned)), None, "{withheld:?}");
        }
    }

    #[test]
    fn an_empty_extension_is_not_remembered() {
        assert_eq!(remembered(Some("p/a/101".into())).as_deref(), Some("p/a/101"));
        assert_eq!(remembered(Some(String::new())), None);
        assert_eq!(remembered(None), None);
    }

    #[test]
    fn an_outcome_is_not_left_on_the_next_calls_pop() {
        let (first, next) = (CallId::new("p", "a", "c1"), CallId::new("p", "a", "c2"));
        // A new call rings, or the agent brings another into the pop.
        assert!(retires_outcome(Some(&first), Some(&next), Some(LegState::Ringing)));
        assert!(retires_outcome(None, Some(&next), Some(LegState::Ringing)));
        assert!(retires_outcome(Some(&first), Some(&next), Some(LegState::Held)));
        // The call the agent's dial or consult placed, an empty pop, the same call: kept.
        assert!(!retires_outcome(Some(&first), Some(&next), Some(LegState::RemoteRinging)));
        assert!(!retires_outcome(Some(&first), Some(&next), Some(LegState::Initiating)));
        assert!(!retires_outcome(Some(&first), None, None));
        assert!(!retires_outcome(Some(&first), Some(&first), Some(LegState::Active)));
    }
}
