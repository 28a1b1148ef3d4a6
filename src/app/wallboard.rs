//! What a wall TV shows all day: a summary strip of the queues and a tile per extension.
//!
//! Kiosk mode comes from the URL (`?kiosk&columns=8&queues=sales,support&theme=light`): no
//! chrome, a fixed number of columns, only the chosen queues and their members, and the app's
//! light theme (see `Themed`).

use super::clock::{duration_text, Clock};
use super::format;
use super::live::LiveStore;
use crate::model::{AgentStatus, Call, Extension, Presence, Queue, QueueId};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use std::collections::BTreeSet;

/// The queues a kiosk URL asks for (by id or name, any case); `None` means all.
fn queue_filter() -> Memo<Option<BTreeSet<String>>> {
    let query = use_query_map();
    Memo::new(move |_| {
        query.with(|query| {
            query.get("queues").filter(|list| !list.trim().is_empty()).map(|list| {
                list.split(',').map(|name| name.trim().to_lowercase()).filter(|name| !name.is_empty()).collect()
            })
        })
    })
}

fn queue_chosen(queue: &Queue, filter: &Option<BTreeSet<String>>) -> bool {
    filter.as_ref().is_none_or(|names| names.iter().any(|name| queue_named(queue, name)))
}

/// Whether a lower-cased name from the URL names `queue`, by id or by name.
fn queue_named(queue: &Queue, name: &str) -> bool {
    queue.id.native().to_lowercase() == name || queue.name.to_lowercase() == name
}

#[component]
pub fn Wallboard() -> impl IntoView {
    let store = expect_context::<LiveStore>();
    let query = use_query_map();
    let filter = queue_filter();
    let chosen_queues = Memo::new(move |_| {
        let filter = filter.get();
        store.queues.with(|queues| {
            queues
                .values()
                .filter(|queue| queue.with(|queue| queue_chosen(queue, &filter)))
                .copied()
                .collect::<Vec<_>>()
        })
    });
    let members = Memo::new(move |_| {
        filter.get().map(|_| {
            chosen_queues
                .get()
                .iter()
                .flat_map(|queue| queue.with(|queue| queue.members.clone()))
                .collect::<BTreeSet<_>>()
        })
    });
    // A kiosk URL naming a queue that does not exist would show an empty board all day: say so.
    let unknown = Memo::new(move |_| {
        let filter = filter.get()?;
        let queues: Vec<RwSignal<Queue>> = store.queues.with(|queues| queues.values().copied().collect());
        let missing: Vec<String> = filter
            .iter()
            .filter(|name| !queues.iter().any(|queue| queue.with_untracked(|queue| queue_named(queue, name))))
            .map(|name| format!("“{name}”"))
            .collect();
        if queues.is_empty() || missing.is_empty() {
            return None;
        }
        let known: Vec<String> = queues.iter().map(|queue| queue.with_untracked(|queue| queue.name.clone())).collect();
        Some(format!("No queue named {}. Queues here: {}.", missing.join(", "), known.join(", ")))
    });
    let tiles = move || {
        let members = members.get();
        store.extensions.with(|map| {
            map.iter()
                .filter(|(id, _)| members.as_ref().is_none_or(|members| members.contains(*id)))
                .map(|(id, tile)| (id.clone(), *tile))
                .collect::<Vec<_>>()
        })
    };
    let columns = move || {
        let columns = query.with(|query| query.get("columns").and_then(|value| value.parse::<u32>().ok()));
        match columns.filter(|columns| (1..=24).contains(columns)) {
            Some(columns) => format!("grid-template-columns: repeat({columns}, minmax(0, 1fr))"),
            None => "grid-template-columns: repeat(auto-fill, minmax(10rem, 1fr))".to_owned(),
        }
    };
    view! {
        <section data-page="wallboard">
            <h1 class="sr-only">"Wallboard"</h1>
            {move || unknown.get().map(|words| view! { <p class="mb-2 text-amber-300" data-unknown-queues="">{words}</p> })}
            <SummaryStrip queues=chosen_queues/>
            <Show when=move || store.extensions.with(|map| map.is_empty())>
                <p class="text-slate-400">"No extensions yet: waiting for the first event from a provider."</p>
            </Show>
            <div class="grid gap-1.5" style=columns>
                <For each=tiles key=|(id, _)| id.clone() let((id, extension))>
                    <ExtensionTile extension call=store.current_call(&id)/>
                </For>
            </div>
        </section>
    }
}

/// The figures across the chosen queues that a room watches: waiting, longest wait (live),
/// service level, answered and abandoned today.
#[component]
fn SummaryStrip(queues: Memo<Vec<RwSignal<Queue>>>) -> impl IntoView {
    let clock = expect_context::<Clock>();
    let totals = Memo::new(move |_| {
        let (mut waiting, mut longest, mut answered, mut abandoned, mut within, mut short) = (0, None, 0, 0, 0, 0);
        for queue in queues.get() {
            queue.with(|queue| {
                let figures = &queue.figures;
                waiting += figures.waiting;
                answered += figures.answered;
                abandoned += figures.abandoned;
                within += figures.answered_within_sl;
                short += figures.abandoned_short;
                if let Some(since) = figures.longest_waiting_since {
                    longest = Some(longest.map_or(since, |longest: i64| longest.min(since)));
                }
            });
        }
        let denominator = answered + abandoned - short;
        let service_level = (denominator > 0).then(|| 100.0 * f64::from(within) / f64::from(denominator));
        (waiting, longest, answered, abandoned, service_level)
    });
    let figure = |label: &'static str, value: Signal<String>, id: &'static str| {
        view! {
            <div class="rounded-lg bg-slate-900 px-4 py-1 ring-1 ring-slate-800" data-summary=id>
                <div class="text-xs uppercase tracking-wide text-slate-400">{label}</div>
                <div class="text-2xl font-semibold tabular-nums">{value}</div>
            </div>
        }
    };
    let waiting = Signal::derive(move || totals.get().0.to_string());
    let longest = Signal::derive(move || {
        totals.get().1.map_or_else(|| "—".to_owned(), |since| duration_text(clock.now.get() - since))
    });
    let service_level =
        Signal::derive(move || totals.get().4.map_or_else(|| "—".to_owned(), |level| format!("{level:.0}%")));
    let answered = Signal::derive(move || totals.get().2.to_string());
    let abandoned = Signal::derive(move || totals.get().3.to_string());
    view! {
        <div class="mb-2 grid grid-cols-5 gap-2">
            {figure("Waiting", waiting, "waiting")}
            {figure("Longest wait", longest, "longest-wait")}
            {figure("Service level", service_level, "service-level")}
            {figure("Answered", answered, "answered")}
            {figure("Abandoned", abandoned, "abandoned")}
        </div>
    }
}

/// One extension: who, what they are doing and for how long. Fixed height, so tiles never move.
#[component]
fn ExtensionTile(extension: RwSignal<Extension>, call: Signal<Option<RwSignal<Call>>>) -> impl IntoView {
    let clock = expect_context::<Clock>();
    let store = expect_context::<LiveStore>();
    let presence = move || extension.with(|e| e.presence);
    let colour = move || {
        let status = extension.with(|e| e.agent_status.clone());
        match (presence(), status) {
            (Presence::Ringing, _) => "border-amber-400 bg-amber-400/20",
            (Presence::Busy, _) => "border-rose-500/70 bg-rose-500/15",
            (Presence::OnHold, _) => "border-sky-400/70 bg-sky-400/15",
            (Presence::Idle, AgentStatus::Break(_)) => "border-violet-400/60 bg-violet-500/10",
            (Presence::Idle, AgentStatus::LoggedOut) => "border-slate-700 bg-slate-900 opacity-60",
            (Presence::Idle, _) => "border-emerald-500/60 bg-emerald-500/10",
        }
    };
    // The call line: direction, the other party, the queue it came from.
    let call_line = move || {
        let call = call.get()?;
        let number = extension.with(|e| e.id.clone());
        Some(call.with(|call| {
            let leg =
                call.legs.iter().rev().find(|leg| leg.extension.as_ref() == Some(&number) && !leg.state.is_ended());
            let other = leg.map(|leg| format::party(&leg.remote)).unwrap_or_else(|| format::party(&call.caller));
            let queue = call.queue.as_ref().map(|queue| queue_name(store, queue)).map(|name| format!(" · {name}"));
            format!("{} {other}{}", format::direction_arrow(call.direction), queue.unwrap_or_default())
        }))
    };
    // Talk time once answered, ringing time before; time in status when idle.
    let timer = move || {
        let now = clock.now.get();
        match call.get() {
            Some(call) => call.with(|call| {
                let number = extension.with(|e| e.id.clone());
                let leg = call.legs.iter().rev().find(|leg| leg.extension.as_ref() == Some(&number));
                let since = leg.and_then(|leg| leg.answered_at).or(leg.map(|leg| leg.state_since)).unwrap_or(now);
                duration_text(now - since)
            }),
            None => duration_text(now - extension.with(|e| e.status_since)),
        }
    };
    view! {
        <div
            data-extension=move || extension.with(|e| e.number.clone())
            data-state=move || presence().as_str()
            class=move || format!("flex h-20 flex-col justify-between rounded-lg border-2 px-2 py-1 {}", colour())
            // Each tile is its own layout and paint island: a timer ticking repaints one tile.
            style="contain: strict"
        >
            <div class="flex items-baseline justify-between gap-2">
                <span class="truncate text-base font-semibold leading-tight">
                    {move || extension.with(|e| e.name.clone().unwrap_or_else(|| e.number.clone()))}
                </span>
                <span class="text-sm tabular-nums text-slate-300">{move || extension.with(|e| e.number.clone())}</span>
            </div>
            <div class="truncate text-sm text-slate-200" data-tile-line="">
                {move || call_line().unwrap_or_else(|| extension.with(|e| format::agent_status(&e.agent_status)))}
            </div>
            <div class="text-right text-xl font-semibold tabular-nums leading-none" data-timer="">{timer}</div>
        </div>
    }
}

/// A queue's display name, from the store when it is known.
pub fn queue_name(store: LiveStore, id: &QueueId) -> String {
    store
        .queues
        .with_untracked(|queues| queues.get(id).map(|queue| queue.with_untracked(|queue| queue.name.clone())))
        .unwrap_or_else(|| id.native().to_owned())
}
