//! What a wall TV shows all day: a summary strip of the queues and a tile per extension.
//!
//! Kiosk mode comes from the URL (`?kiosk&columns=8&queues=sales,support&theme=light`): no
//! chrome, a fixed number of columns, only the chosen queues and their members, and the app's
//! light theme (see `Themed`).

use super::clock::{duration_text, Clock};
use super::format;
use super::live::{LiveStore, Signals};
use crate::model::{AgentStatus, Call, Extension, ExtensionId, Presence, Queue, QueueId, Timestamp};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// The queues a URL asks for (`?queues=sales,support`, by id or name, any case); `None` means
/// all. Shared by the wallboard and the queues screen, so one link shows the same queues on both.
pub fn queue_filter() -> Memo<Option<BTreeSet<String>>> {
    let query = use_query_map();
    Memo::new(move |_| {
        query.with(|query| {
            query.get("queues").filter(|list| !list.trim().is_empty()).map(|list| {
                list.split(',').map(|name| name.trim().to_lowercase()).filter(|name| !name.is_empty()).collect()
            })
        })
    })
}

/// Whether `queue` is one the URL's `filter` (from `queue_filter`) asks for.
pub fn queue_chosen(queue: &Queue, filter: &Option<BTreeSet<String>>) -> bool {
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
        let lists = filter
            .with(Option::is_some)
            .then(|| chosen_queues.get().iter().map(|queue| queue.with(|queue| queue.members.clone())).collect());
        shown_members(lists)
    });
    let unknown = unknown_queues(store.queues, filter);
    // A chosen queue whose members are not known shows every tile: say why, and what to set.
    let members_unknown = Memo::new(move |_| {
        if filter.with(Option::is_none) {
            return None;
        }
        let queues: Vec<(String, String)> = chosen_queues
            .get()
            .iter()
            .filter_map(|queue| {
                queue.with(|queue| queue.members.is_empty().then(|| (queue.name.clone(), queue.id.to_string())))
            })
            .collect();
        members_unknown_line(&queues)
    });
    let tiles = move || members.with(|members| store.extensions.with(|map| visible_tiles(members.as_ref(), map)));
    let columns = move || query.with(|query| grid_columns(query.get_str("columns")));
    view! {
        <section data-page="wallboard">
            <h1 class="sr-only">"Wallboard"</h1>
            {move || unknown.get().map(|words| view! { <p class="mb-2 text-amber-300" data-unknown-queues="">{words}</p> })}
            {move || {
                members_unknown
                    .get()
                    .map(|words| view! { <p class="mb-2 text-amber-300" data-unknown-members="">{words}</p> })
            }}
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

/// A URL naming a queue that does not exist would show an empty board all day: the words that
/// say so, with the queues there are. Tracks each queue's name, so the line goes when a queue
/// first listed by its number gets its name.
fn unknown_queues(queues: Signals<QueueId, Queue>, filter: Memo<Option<BTreeSet<String>>>) -> Memo<Option<String>> {
    Memo::new(move |_| {
        let filter = filter.get()?;
        let queues: Vec<RwSignal<Queue>> = queues.with(|queues| queues.values().copied().collect());
        let missing: Vec<String> = filter
            .iter()
            .filter(|name| !queues.iter().any(|queue| queue.with(|queue| queue_named(queue, name))))
            .map(|name| format!("“{name}”"))
            .collect();
        if queues.is_empty() || missing.is_empty() {
            return None;
        }
        let known: Vec<String> = queues.iter().map(|queue| queue.with(|queue| queue.name.clone())).collect();
        Some(format!("No queue named {}. Queues here: {}.", missing.join(", "), known.join(", ")))
    })
}

/// The extensions a board chosen by queue shows, from the chosen queues' member lists (`None`
/// when no queue is chosen): their members, or every extension (`None`) when a chosen queue's
/// members are not known. Only the simulator lists members; a real provider's queue has none
/// unless configured, and filtering by an empty list would leave the board blank.
fn shown_members(chosen: Option<Vec<Vec<ExtensionId>>>) -> Option<BTreeSet<ExtensionId>> {
    let lists = chosen?;
    if lists.iter().any(Vec::is_empty) {
        return None;
    }
    Some(lists.into_iter().flatten().collect())
}

/// The line above a board whose chosen queues (name, id) include some without known members,
/// saying where to name them.
fn members_unknown_line(queues: &[(String, String)]) -> Option<String> {
    if queues.is_empty() {
        return None;
    }
    let names: Vec<&str> = queues.iter().map(|(name, _)| name.as_str()).collect();
    let settings: Vec<String> = queues.iter().map(|(_, id)| format!("[queues.by_id.\"{id}\"] members")).collect();
    let (names, settings) = (names.join(", "), settings.join(" and "));
    Some(format!("Members of {names} are not known, so every extension shows: set {settings}."))
}

/// The tiles to show (every extension when `members` is `None`), in dialling order.
fn visible_tiles<T: Copy>(
    members: Option<&BTreeSet<ExtensionId>>,
    extensions: &BTreeMap<ExtensionId, T>,
) -> Vec<(ExtensionId, T)> {
    let mut tiles: Vec<(ExtensionId, T)> = extensions
        .iter()
        .filter(|(id, _)| members.is_none_or(|members| members.contains(*id)))
        .map(|(id, tile)| (id.clone(), *tile))
        .collect();
    tiles.sort_by(|(a, _), (b, _)| tile_order(a, b));
    tiles
}

/// Tiles read in dialling order, not text order (where 1000 sits between 100 and 101): per
/// provider and account, numbers as numbers (then as text, so `0100` and `100` keep an order),
/// then the extensions that are not numbers, as text.
fn tile_order(a: &ExtensionId, b: &ExtensionId) -> Ordering {
    fn key(id: &ExtensionId) -> (&str, &str, bool, Option<u64>, &str) {
        let native = id.native();
        let number = native.parse::<u64>().ok().filter(|_| native.bytes().all(|byte| byte.is_ascii_digit()));
        (id.provider(), id.account(), number.is_none(), number, native)
    }
    key(a).cmp(&key(b))
}

/// The grid's columns: `?columns=8` (1 to 24, spaces around it allowed) fixes them for a wall;
/// otherwise as many 10rem tiles as fit.
fn grid_columns(value: Option<&str>) -> String {
    match value.and_then(|value| value.trim().parse::<u32>().ok()).filter(|columns| (1..=24).contains(columns)) {
        Some(columns) => format!("grid-template-columns: repeat({columns}, minmax(0, 1fr))"),
        None => "grid-template-columns: repeat(auto-fill, minmax(10rem, 1fr))".to_owned(),
    }
}

/// When an idle tile's timer starts. An available agent (or one whose provider reports no
/// status) is idle since their last call ended, if that came after the status change: the
/// wall shows how long they have waited for a call. A break or a log-out times the status.
fn idle_since(extension: &Extension) -> Timestamp {
    match (&extension.agent_status, extension.last_hangup_at) {
        (AgentStatus::Available | AgentStatus::Unknown, Some(hangup)) => hangup.max(extension.status_since),
        _ => extension.status_since,
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
        // The queues' own formula over their summed counts (`QueueFigures::service_level_pct`).
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
    // Talk time once answered, ringing time before; idle, the time since `idle_since`.
    let timer = move || {
        let now = clock.now.get();
        match call.get() {
            Some(call) => call.with(|call| {
                let number = extension.with(|e| e.id.clone());
                let leg = call.legs.iter().rev().find(|leg| leg.extension.as_ref() == Some(&number));
                let since = leg.and_then(|leg| leg.answered_at).or(leg.map(|leg| leg.state_since)).unwrap_or(now);
                duration_text(now - since)
            }),
            None => duration_text(now - extension.with(idle_since)),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(number: &str) -> ExtensionId {
        ExtensionId::new("p", "a", number)
    }

    fn extension(status: AgentStatus, status_since: Timestamp, last_hangup_at: Option<Timestamp>) -> Extension {
        Extension {
            id: id("100"),
            number: "100".into(),
            name: None,
            sip_user: None,
            online_user: None,
            agent_status: status,
            raw_status: None,
            status_since,
            presence: Presence::Idle,
            last_call_at: None,
            last_answered_at: None,
            last_hangup_at,
        }
    }

    #[test]
    fn a_chosen_queue_without_known_members_shows_every_tile_and_says_why() {
        let extensions: BTreeMap<ExtensionId, u8> =
            [("100", 0), ("101", 1), ("102", 2)].into_iter().map(|(number, tile)| (id(number), tile)).collect();
        // A real provider's queue, members not configured: all three tiles, not none.
        let members = shown_members(Some(vec![Vec::new()]));
        assert_eq!(visible_tiles(members.as_ref(), &extensions).len(), 3);
        assert_eq!(
            members_unknown_line(&[("Sales".to_owned(), "p/a/5001".to_owned())]).as_deref(),
            Some("Members of Sales are not known, so every extension shows: set [queues.by_id.\"p/a/5001\"] members.")
        );
        assert_eq!(members_unknown_line(&[]), None);
        // Known members filter; no queue chosen shows all; a name that matched no queue, none.
        let members = shown_members(Some(vec![vec![id("101")]]));
        assert_eq!(visible_tiles(members.as_ref(), &extensions), vec![(id("101"), 1)]);
        assert_eq!(visible_tiles(shown_members(None).as_ref(), &extensions).len(), 3);
        assert!(visible_tiles(shown_members(Some(Vec::new())).as_ref(), &extensions).is_empty());
    }

    #[test]
    fn tiles_sort_by_number_then_by_text() {
        let numbers = ["1000", "101", "100", "99", "0100", "reception", "2a"];
        let extensions: BTreeMap<ExtensionId, ()> = numbers.into_iter().map(|number| (id(number), ())).collect();
        let order: Vec<String> =
            visible_tiles(None, &extensions).into_iter().map(|(id, _)| id.native().to_owned()).collect();
        assert_eq!(order, ["99", "0100", "100", "101", "1000", "2a", "reception"]);
    }

    #[test]
    fn an_available_agent_is_idle_since_their_last_call_ended() {
        let at = |hours: i64, minutes: i64| (hours * 60 + minutes) * 60_000;
        // Available since 08:00, hung up at 10:03: at 10:05 the tile says 2:00, not 2:05:00.
        let available = extension(AgentStatus::Available, at(8, 0), Some(at(10, 3)));
        assert_eq!(duration_text(at(10, 5) - idle_since(&available)), "2:00");
        // A call that ended before the status changed, or no call at all: the status's time.
        assert_eq!(idle_since(&extension(AgentStatus::Available, at(9, 0), Some(at(8, 30)))), at(9, 0));
        assert_eq!(idle_since(&extension(AgentStatus::Available, at(9, 0), None)), at(9, 0));
        // A break is timed from its start, whatever calls came before.
        let lunch = AgentStatus::Break(crate::model::BreakReason::Lunch);
        assert_eq!(idle_since(&extension(lunch, at(9, 0), Some(at(10, 3)))), at(9, 0));
    }

    #[test]
    fn columns_read_as_typed_with_spaces() {
        assert_eq!(grid_columns(Some(" 8 ")), "grid-template-columns: repeat(8, minmax(0, 1fr))");
        assert_eq!(grid_columns(Some("8")), "grid-template-columns: repeat(8, minmax(0, 1fr))");
        let auto = "grid-template-columns: repeat(auto-fill, minmax(10rem, 1fr))";
        assert_eq!(grid_columns(Some("30")), auto);
        assert_eq!(grid_columns(Some("eight")), auto);
        assert_eq!(grid_columns(None), auto);
    }

    #[test]
    fn the_unknown_queue_line_goes_when_the_queue_gets_its_name() {
        // Signals live in an owner's arena, as they do inside the app.
        Owner::new().with(|| {
            // Listed by its number first; its name comes with a later event.
            let queue_id = QueueId::new("p", "a", "5001");
            let queue = RwSignal::new(Queue {
                id: queue_id.clone(),
                name: "5001".into(),
                members: Vec::new(),
                waiting: Vec::new(),
                figures: Default::default(),
                settings: Default::default(),
            });
            let queues: Signals<QueueId, Queue> = RwSignal::new(BTreeMap::from([(queue_id, queue)]));
            let filter = Memo::new(|_| Some(BTreeSet::from(["sales".to_owned()])));
            let unknown = unknown_queues(queues, filter);
            assert_eq!(unknown.get_untracked().as_deref(), Some("No queue named “sales”. Queues here: 5001."));
            queue.update(|queue| queue.name = "Sales".into());
            assert_eq!(unknown.get_untracked(), None);
        });
    }
}
