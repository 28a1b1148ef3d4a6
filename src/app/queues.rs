//! What a supervisor watches: a card per queue with today's figures, amber and red from the
//! queue's thresholds, the callers waiting now with live timers, and each figure's formula.

use super::clock::{duration_text, Clock};
use super::format;
use super::http::{encode, get_json};
use super::live::LiveStore;
use super::wallboard::{queue_chosen, queue_filter};
use crate::model::{Action, Command, ExtensionId, HourFigures, Queue, QueueDay, QueueEntry, QueueSettings, Timestamp};
use leptos::prelude::*;

/// A figure's level against its amber and red limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Normal,
    Amber,
    Red,
}

impl Level {
    /// `higher_is_worse`: waiting and waits; otherwise lower is worse (service level).
    pub fn of(value: f64, amber: f64, red: f64, higher_is_worse: bool) -> Self {
        let past = |limit: f64| if higher_is_worse { value >= limit } else { value < limit };
        if past(red) {
            Level::Red
        } else if past(amber) {
            Level::Amber
        } else {
            Level::Normal
        }
    }

    fn class(self) -> &'static str {
        match self {
            Level::Normal => "text-slate-100",
            Level::Amber => "text-amber-300",
            Level::Red => "text-rose-400",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Normal => "normal",
            Level::Amber => "amber",
            Level::Red => "red",
        }
    }
}

/// The formulas, as the help popovers show them (and `src/model/queue.rs` documents them).
fn formula(figure: &str, settings: &QueueSettings) -> String {
    match figure {
        "waiting" => "Callers in the queue now.".into(),
        "longest" => "Now minus the join time of the caller waiting longest.".into(),
        "sl" => format!(
            "Answered within {} s ÷ (answered + abandoned − short abandons), since the daily reset at {} {}. \
             An answer whose wait is not known (its joining was not seen) is not counted as within \
             the threshold; an abandon among them counts as short.",
            settings.service_level_s, settings.reset_time, settings.time_zone
        ),
        "offered" => "Answered + abandoned + other + waiting, since the daily reset.".into(),
        "answered" => "Callers who left the queue answered by an agent, joining seen or not.".into(),
        "abandoned" => format!(
            "Callers who hung up while waiting; short abandons (under {} s) are counted apart and left out of the service level.",
            settings.short_abandon_s
        ),
        "short" => format!(
            "Abandons under {} s, before anyone could have answered, and those whose wait is not known.",
            settings.short_abandon_s
        ),
        "wait" => "Mean wait of answered callers whose joining was seen (average speed of answer).".into(),
        "talk" => "Mean talk time of answered calls that have ended.".into(),
        _ => "Agents who serve this queue, by what they are doing now: the members the provider lists, else those set in the configuration ([queues.by_id.\"<id>\"] members).".into(),
    }
}

#[component]
pub fn Queues() -> impl IntoView {
    let store = expect_context::<LiveStore>();
    // `?queues=sales,support` shows the same queues here as on the wallboard.
    let filter = queue_filter();
    let cards = Memo::new(move |_| {
        let filter = filter.get();
        store.queues.with(|map| {
            map.iter()
                .filter(|(_, queue)| filter.is_none() || queue.with(|queue| queue_chosen(queue, &filter)))
                .map(|(id, queue)| (id.clone(), *queue))
                .collect::<Vec<_>>()
        })
    });
    view! {
        <section data-page="queues">
            <h1 class="text-xl font-semibold">"Queues"</h1>
            <Show when=move || store.queues.with(|map| map.is_empty())>
                <p class="mt-2 text-slate-400">"No queues yet: this provider reports none, or no event has arrived."</p>
            </Show>
            <div class="mt-2 grid grid-cols-[repeat(auto-fill,minmax(22rem,1fr))] gap-3">
                <For each=move || cards.get() key=|(id, _)| id.clone() let((_, queue))>
                    <QueueCard queue/>
                </For>
            </div>
        </section>
    }
}

#[component]
fn QueueCard(queue: RwSignal<Queue>) -> impl IntoView {
    let clock = expect_context::<Clock>();
    let id = queue.with_untracked(|queue| queue.id.to_string());
    let slug = StoredValue::new(id.replace(['/', '.', ' '], "-"));
    let settings = move || queue.with(|queue| queue.settings.clone());
    let figures = move || queue.with(|queue| queue.figures.clone());
    let waiting_level = move || {
        let (figures, settings) = (figures(), settings());
        let limits = settings.thresholds.waiting;
        Level::of(f64::from(figures.waiting), limits.amber, limits.red, true)
    };
    let longest_ms = move || figures().longest_waiting_since.map(|since| clock.now.get() - since);
    let longest_level = move || {
        let limits = settings().thresholds.longest_wait_s;
        longest_ms().map_or(Level::Normal, |ms| Level::of(ms as f64 / 1000.0, limits.amber, limits.red, true))
    };
    let service_level = move || figures().service_level_pct;
    let service_level_level = move || {
        let limits = settings().thresholds.service_level_pct;
        service_level().map_or(Level::Normal, |level| Level::of(level, limits.amber, limits.red, false))
    };
    let help = move |figure: &'static str| {
        let popover = format!("help-{}-{figure}", slug.get_value());
        view! {
            <button
                type="button"
                popovertarget=popover.clone()
                class="ml-1 inline-flex h-4 w-4 items-center justify-center rounded-full bg-slate-700 text-[10px] text-slate-200"
                aria-label="How this is counted"
            >
                "?"
            </button>
            // `whitespace-normal`: a figure's label does not wrap, its formula must.
            <div
                popover="auto"
                id=popover
                class="max-w-xs whitespace-normal rounded-lg bg-slate-800 p-3 text-sm text-slate-100 shadow-xl"
                data-help=figure
            >
                {move || formula(figure, &settings())}
            </div>
        }
    };
    let stat = move |label: &'static str, figure: &'static str, value: Signal<String>| {
        view! {
            <div>
                <div class="whitespace-nowrap text-[11px] text-slate-400">{label}{help(figure)}</div>
                <div class="whitespace-nowrap text-base font-semibold tabular-nums" data-figure=figure>{value}</div>
            </div>
        }
    };
    let optional_ms = |value: Option<i64>| value.map_or_else(|| "—".to_owned(), duration_text);
    view! {
        <div data-queue=id class="rounded-lg border border-slate-700 bg-slate-900 p-3">
            <div class="flex items-baseline justify-between">
                <div class="text-lg font-semibold">{move || queue.with(|q| q.name.clone())}</div>
                <div class="text-xs text-slate-400">
                    <span data-agents>
                        {move || {
                            // Zeros would read as "nobody is logged in": say what is not known.
                            if queue.with(|queue| queue.members.is_empty()) {
                                return "agents not reported by the provider".to_owned();
                            }
                            let agents = figures().agents;
                            format!("{} available · {} busy · {} break · {} out", agents.available, agents.busy, agents.on_break, agents.logged_out)
                        }}
                    </span>
                    {help("agents")}
                </div>
            </div>
            <div class="mt-2 grid grid-cols-3 gap-2">
                <div>
                    <div class="text-xs text-slate-400">"Waiting"{help("waiting")}</div>
                    <div
                        class=move || format!("text-4xl font-bold tabular-nums {}", waiting_level().class())
                        data-figure="waiting"
                        data-level=move || waiting_level().name()
                    >
                        {move || figures().waiting}
                    </div>
                </div>
                <div>
                    <div class="text-xs text-slate-400">"Longest wait"{help("longest")}</div>
                    <div
                        class=move || format!("text-2xl font-semibold tabular-nums {}", longest_level().class())
                        data-figure="longest"
                        data-level=move || longest_level().name()
                    >
                        {move || optional_ms(longest_ms())}
                    </div>
                </div>
                <div>
                    <div class="text-xs text-slate-400">"Service level"{help("sl")}</div>
                    <div
                        class=move || format!("text-2xl font-semibold tabular-nums {}", service_level_level().class())
                        data-figure="sl"
                        data-level=move || service_level_level().name()
                    >
                        {move || service_level().map_or_else(|| "—".to_owned(), |level| format!("{level:.0}%"))}
                    </div>
                    <div class="mt-1 h-1.5 rounded bg-slate-700" role="meter" aria-label="Service level">
                        <div
                            class="h-1.5 rounded bg-emerald-400"
                            style=move || format!("width: {:.0}%", service_level().unwrap_or(0.0).clamp(0.0, 100.0))
                        ></div>
                    </div>
                </div>
            </div>
            <div class="mt-3 grid grid-cols-3 gap-x-3 gap-y-2">
                {stat("Offered", "offered", Signal::derive(move || figures().offered.to_string()))}
                {stat("Answered", "answered", Signal::derive(move || figures().answered.to_string()))}
                {stat("Abandoned", "abandoned", Signal::derive(move || figures().abandoned.to_string()))}
                {stat("Short", "short", Signal::derive(move || figures().abandoned_short.to_string()))}
                {stat("Avg wait", "wait", Signal::derive(move || optional_ms(figures().avg_wait_ms)))}
                {stat("Avg talk", "talk", Signal::derive(move || optional_ms(figures().avg_talk_ms)))}
            </div>
            <TodayChart queue/>
            <ul class="mt-3 space-y-1 text-sm" aria-label="Callers waiting">
                <For
                    each=move || queue.with(|queue| queue.waiting.clone())
                    // The caller's name and join time are part of the key: a provider may name
                    // the caller, or correct the join time, after the caller joined.
                    key=|entry| (entry.call.clone(), entry.caller.clone(), entry.joined_at)
                    let(entry)
                >
                    <li class="flex justify-between rounded bg-slate-800 px-2 py-1" data-waiting=entry.call.to_string()>
                        <span>{format::party(&entry.caller)}</span>
                        <span class="tabular-nums">
                            {move || entry.joined_at.map_or_else(String::new, |joined| duration_text(clock.now.get() - joined))}
                        </span>
                    </li>
                </For>
            </ul>
        </div>
    }
}

/// Calls per hour (answered green, abandoned red, the rest grey) and the service level per hour
/// (dots), drawn as SVG; below, today's abandoned callers with a call-back button.
#[component]
fn TodayChart(queue: RwSignal<Queue>) -> impl IntoView {
    let clock = expect_context::<Clock>();
    let id = queue.with_untracked(|queue| queue.id.to_string());
    // Fetched again whenever the day's counts move.
    let counts = Memo::new(move |_| {
        queue.with(|queue| (queue.figures.offered, queue.figures.answered, queue.figures.abandoned))
    });
    let day = LocalResource::new(move || {
        counts.track();
        let url = format!("/api/v1/queues/today?queue={}", encode(&id));
        async move { get_json::<QueueDay>(&url).await.ok() }
    });
    // The day as last fetched: a fetch that brings the same day changes nothing on screen.
    let today = Memo::new(move |_| day.get().flatten());
    let message = RwSignal::new(String::new());
    // The agent's extension from the desk: its provider must be able to place the call. With
    // none chosen yet the button stays, and says where to choose one.
    let store = expect_context::<LiveStore>();
    let can_dial = move || {
        super::desk::saved_extension()
            .is_none_or(|extension| store.can(ExtensionId(extension).provider(), Action::Dial))
    };
    let call_back = move |number: String| {
        let saved = super::desk::saved_extension();
        let Some(extension) = saved else {
            message.set("Choose your extension on the agent desk first.".into());
            return;
        };
        let command = Command::dial(ExtensionId(extension), number);
        leptos::task::spawn_local(async move {
            message.set(match super::desk::send_command(command).await {
                Ok(outcome) => outcome,
                Err(words) => format!("Refused: {words}"),
            });
        });
    };
    // Only the chart, the summary's count and the rows follow the day. The <details> around them
    // is built once, so it stays open under a supervisor reading it as the figures move, and so
    // does the outcome of a call back below the list.
    view! {
        {move || {
            today.with(|day| day.as_ref().map(|day| chart_svg(&day.hours))).map(|chart| view! {
                <div class="mt-3" data-chart="">
                    <div class="text-[11px] text-slate-400">"Today by hour: calls and service level"</div>
                    <div class="text-slate-400" inner_html=chart></div>
                </div>
            })
        }}
        <details class="mt-2 text-sm" class:hidden=move || today.with(Option::is_none)>
            <summary class="cursor-pointer text-slate-300" data-abandoned-summary="">
                {move || today.with(|day| day.as_ref().map(abandoned_summary)).unwrap_or_default()}
            </summary>
            // Every caller, however many (the summary counts them all), in a box that scrolls.
            <ul class="max-h-64 overflow-y-auto pr-1" data-abandoned-list="">
                {move || today.with(|day| day.as_ref().map(abandoned_rows)).unwrap_or_default().into_iter().map(|(entry, reached_at)| {
                    // Withheld and anonymous callers have nothing to call back.
                    let number = entry.caller.number.clone().filter(|number| crate::model::phone::dialable(number).is_some()).unwrap_or_default();
                    let dial = number.clone();
                    let left = entry.left_at.unwrap_or_default();
                    view! {
                        <li
                            class="flex items-center justify-between gap-2 py-0.5"
                            class:text-slate-500=reached_at.is_some()
                            data-abandoned=entry.call.to_string()
                            data-reached=reached_at.map(|_| "")
                        >
                            <span>{format::party(&entry.caller)}</span>
                            <span class="tabular-nums text-slate-400">{move || format!("{} ago", duration_text(clock.now.get() - left))}</span>
                            {match reached_at {
                                // Reached since, by a call back or by calling again: nothing left to do.
                                Some(at) => view! {
                                    <span class="text-xs text-emerald-300">{move || format!("✓ reached {} ago", duration_text(clock.now.get() - at))}</span>
                                }.into_any(),
                                None => view! {
                                    <Show when={let number = number.clone(); move || !number.is_empty() && can_dial()}>
                                        <button type="button" class="rounded bg-emerald-800 px-2 text-xs" data-action="call_back" on:click={let dial = dial.clone(); move |_| call_back(dial.clone())}>"Call back"</button>
                                    </Show>
                                }.into_any(),
                            }}
                        </li>
                    }
                }).collect_view()}
            </ul>
            <p class="text-xs text-slate-300">{move || message.get()}</p>
        </details>
    }
}

/// Today's abandoned callers as the list shows them, every one of them (the summary counts them
/// all): those still to call back first, each part latest first; with when each was reached
/// since, by a call back or by calling again.
fn abandoned_rows(day: &QueueDay) -> Vec<(QueueEntry, Option<Timestamp>)> {
    let mut rows: Vec<(QueueEntry, Option<Timestamp>)> =
        day.abandoned.iter().map(|entry| (entry.clone(), day.reached.get(&entry.call).copied())).collect();
    rows.sort_by_key(|(entry, reached_at)| (reached_at.is_some(), std::cmp::Reverse(entry.left_at)));
    rows
}

/// The list's summary: how many gave up today, and how many of them are not reached since.
fn abandoned_summary(day: &QueueDay) -> String {
    let abandoned = day.abandoned_count();
    let not_reached = abandoned.saturating_sub(day.reached.len());
    if abandoned == not_reached {
        format!("Abandoned today ({abandoned})")
    } else {
        format!("Abandoned today ({abandoned}, {not_reached} not reached since)")
    }
}

/// The hourly chart as an SVG document: a bar per hour at its place in the day (an hour
/// without callers leaves a gap), scaled to the busiest hour, a dot for its service level, the
/// local hour under it and its figures on hover. Text takes the page's colour (`currentColor`).
pub fn chart_svg(hours: &[HourFigures]) -> String {
    const HOUR_MS: i64 = 3_600_000;
    let (width, bars_height, label_height) = (336.0, 72.0, 11.0);
    let height = bars_height + label_height;
    let first = hours.first().map_or((0, 0), |hour| (hour.hour_start, hour.hour));
    let place = |hour: &HourFigures| usize::try_from((hour.hour_start - first.0).div_euclid(HOUR_MS)).unwrap_or(0);
    let slots = hours.iter().map(|hour| place(hour) + 1).max().unwrap_or(0).max(12);
    let peak = hours.iter().map(|hour| hour.offered).max().unwrap_or(0).max(1) as f64;
    let slot = width / slots as f64;
    let mut svg = format!(
        r#"<svg viewBox="0 0 {width} {height}" width="100%" height="{height}" role="img" aria-label="Calls and service level per hour">"#
    );
    for hour in hours {
        let x = place(hour) as f64 * slot + 1.0;
        let bar = |count: u32| f64::from(count) / peak * (bars_height - 8.0);
        let (answered, abandoned) = (bar(hour.answered), bar(hour.abandoned));
        let other = (bar(hour.offered) - answered - abandoned).max(0.0);
        let level = hour.service_level_pct();
        let level_text = level.map_or_else(String::new, |level| format!(", service level {level:.0}%"));
        svg.push_str(&format!(
            "<g><title>{:02}:00: {} offered, {} answered, {} abandoned{level_text}</title>",
            hour.hour, hour.offered, hour.answered, hour.abandoned
        ));
        let mut y = bars_height;
        for (size, colour) in [(answered, "#34d399"), (abandoned, "#fb7185"), (other, "#64748b")] {
            y -= size;
            svg.push_str(&format!(
                r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{size:.1}" fill="{colour}"/>"##,
                slot - 2.0
            ));
        }
        if let Some(level) = level {
            let cy = bars_height - level / 100.0 * (bars_height - 8.0);
            svg.push_str(&format!(
                r##"<circle cx="{:.1}" cy="{cy:.1}" r="2.5" fill="#fbbf24"/>"##,
                x + slot / 2.0 - 1.0
            ));
        }
        svg.push_str("</g>");
    }
    // The clock under the bars: every hour, or every second or third one on a long day.
    let every = slots.div_ceil(12);
    for index in (0..slots).step_by(every).filter(|_| !hours.is_empty()) {
        let label = (usize::from(first.1) + index) % 24;
        svg.push_str(&format!(
            r#"<text x="{:.1}" y="{height}" font-size="9" text-anchor="middle" fill="currentColor">{label:02}</text>"#,
            index as f64 * slot + slot / 2.0
        ));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_draws_a_bar_per_hour_and_a_dot_per_service_level() {
        let hours = vec![
            HourFigures {
                hour_start: 0,
                hour: 8,
                offered: 10,
                answered: 8,
                answered_within_sl: 6,
                answered_wait_unknown: 0,
                abandoned: 2,
                abandoned_short: 0,
            },
            HourFigures { hour_start: 3_600_000, hour: 9, offered: 0, ..HourFigures::default() },
        ];
        let svg = chart_svg(&hours);
        assert_eq!(svg.matches("<rect").count(), 6);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains("<title>08:00: 10 offered, 8 answered, 2 abandoned, service level 60%</title>"));
        assert!(svg.contains("<title>09:00: 0 offered, 0 answered, 0 abandoned</title>"));
    }

    #[test]
    fn an_hour_without_callers_leaves_a_gap_and_the_clock_runs_under_the_bars() {
        let hour = |index: i64, offered: u32| HourFigures {
            hour_start: 1_795_428_000_000 + index * 3_600_000,
            hour: (22 + index as u8) % 24,
            offered,
            answered: offered,
            answered_within_sl: offered,
            ..HourFigures::default()
        };
        // 22:00 and 01:00 had callers; 23:00 and midnight none.
        let svg = chart_svg(&[hour(0, 4), hour(3, 2)]);
        let bar_x = |svg: &str, title: &str| {
            let group = &svg[svg.find(title).unwrap()..];
            let x = &group[group.find("<rect x=\"").unwrap() + 9..];
            x[..x.find('"').unwrap()].parse::<f64>().unwrap()
        };
        let slot = 336.0 / 12.0;
        assert!((bar_x(&svg, "<title>01:00") - (3.0 * slot + 1.0)).abs() < 0.1);
        let labels: Vec<&str> = svg.split("fill=\"currentColor\">").skip(1).map(|rest| &rest[..2]).collect();
        assert_eq!(labels, ["22", "23", "00", "01", "02", "03", "04", "05", "06", "07", "08", "09"]);
        // A long day labels every second hour.
        let long: Vec<HourFigures> = (0..20).map(|index| hour(index, 1)).collect();
        assert_eq!(chart_svg(&long).matches("<text").count(), 10);
    }

    #[test]
    fn every_abandoned_caller_is_listed_those_still_to_call_first() {
        use crate::model::{CallId, Party, QueueId, QueueOutcome};
        let gave_up = |index: i64| QueueEntry {
            call: CallId(format!("c{index}")),
            caller: Party::default(),
            joined_at: Some(index * 1_000),
            left_at: Some(index * 1_000 + 500),
            outcome: Some(QueueOutcome::Abandoned),
            talk_ms: None,
        };
        let mut day = QueueDay {
            queue: QueueId("q".into()),
            hours: Vec::new(),
            abandoned: (0..12).map(gave_up).collect(),
            reached: Default::default(),
        };
        day.reached.insert(CallId("c11".into()), 99_000);
        let rows = abandoned_rows(&day);
        assert_eq!(rows.len(), 12, "all of them, not the first 8");
        let calls: Vec<&str> = rows.iter().map(|(entry, _)| entry.call.as_str()).collect();
        assert_eq!(calls[..3], ["c10", "c9", "c8"]);
        assert_eq!(rows.last().map(|(entry, reached)| (entry.call.as_str(), *reached)), Some(("c11", Some(99_000))));
        assert_eq!(abandoned_summary(&day), "Abandoned today (12, 11 not reached since)");
    }

    #[test]
    fn the_help_says_what_is_counted() {
        let settings = QueueSettings::default();
        // Short abandons are those under the limit (`wait < short_abandon_s`), not within it.
        assert!(formula("short", &settings).starts_with("Abandons under 5 s"), "{}", formula("short", &settings));
        // Callers whose joining was not seen have no wait to count.
        assert!(formula("sl", &settings).contains("not counted as within"));
        assert!(formula("wait", &settings).contains("whose joining was seen"));
    }

    #[test]
    fn levels_follow_the_thresholds_in_both_directions() {
        assert_eq!(Level::of(2.0, 3.0, 6.0, true), Level::Normal);
        assert_eq!(Level::of(3.0, 3.0, 6.0, true), Level::Amber);
        assert_eq!(Level::of(7.0, 3.0, 6.0, true), Level::Red);
        assert_eq!(Level::of(85.0, 80.0, 60.0, false), Level::Normal);
        assert_eq!(Level::of(70.0, 80.0, 60.0, false), Level::Amber);
        assert_eq!(Level::of(50.0, 80.0, 60.0, false), Level::Red);
    }
}
