//! The three screens, fed by the live store.

use super::live::LiveStore;
use crate::model::{Extension, Presence};
use leptos::prelude::*;

/// What a wall TV shows all day: a tile per extension.
#[component]
pub fn Wallboard() -> impl IntoView {
    let store = expect_context::<LiveStore>();
    let tiles =
        move || store.extensions.with(|map| map.iter().map(|(id, tile)| (id.clone(), *tile)).collect::<Vec<_>>());
    view! {
        <section data-page="wallboard">
            <h1 class="sr-only">"Wallboard"</h1>
            <Show when=move || store.extensions.with(|map| map.is_empty())>
                <p class="text-slate-400">"No extensions yet: waiting for the first event from a provider."</p>
            </Show>
            <div class="grid grid-cols-[repeat(auto-fill,minmax(11rem,1fr))] gap-2">
                <For each=tiles key=|(id, _)| id.clone() let((_, extension))>
                    <ExtensionTile extension/>
                </For>
            </div>
        </section>
    }
}

/// One extension; only this tile re-renders when its extension changes.
#[component]
fn ExtensionTile(extension: RwSignal<Extension>) -> impl IntoView {
    let presence = move || extension.with(|e| e.presence);
    let colour = move || match presence() {
        Presence::Idle => "border-emerald-500/60 bg-emerald-500/10",
        Presence::Ringing => "border-amber-400 bg-amber-400/20",
        Presence::Busy => "border-rose-500/70 bg-rose-500/15",
        Presence::OnHold => "border-sky-400/70 bg-sky-400/15",
    };
    view! {
        <div
            data-extension=move || extension.with(|e| e.number.clone())
            data-state=move || presence().as_str()
            class=move || format!("rounded-lg border-2 p-2 {}", colour())
        >
            <div class="text-lg font-semibold">{move || extension.with(|e| e.name.clone().unwrap_or_else(|| e.number.clone()))}</div>
            <div class="text-sm text-slate-300">{move || extension.with(|e| e.number.clone())}</div>
        </div>
    }
}

/// What a supervisor watches: one card per queue.
#[component]
pub fn Queues() -> impl IntoView {
    let store = expect_context::<LiveStore>();
    let cards = move || store.queues.with(|map| map.iter().map(|(id, queue)| (id.clone(), *queue)).collect::<Vec<_>>());
    view! {
        <section data-page="queues">
            <h1 class="text-xl font-semibold">"Queues"</h1>
            <div class="mt-2 grid grid-cols-[repeat(auto-fill,minmax(16rem,1fr))] gap-3">
                <For each=cards key=|(id, _)| id.clone() let((id, queue))>
                    <div data-queue=id.to_string() class="rounded-lg border border-slate-700 bg-slate-900 p-3">
                        <div class="font-semibold">{move || queue.with(|q| q.name.clone())}</div>
                        <div class="text-sm text-slate-300">
                            "Waiting " {move || queue.with(|q| q.figures.waiting)}
                            " · Answered " {move || queue.with(|q| q.figures.answered)}
                            " · Abandoned " {move || queue.with(|q| q.figures.abandoned)}
                        </div>
                    </div>
                </For>
            </div>
        </section>
    }
}

/// What an agent works in: screen pop and call control for their extension.
#[component]
pub fn AgentDesk() -> impl IntoView {
    view! {
        <section data-page="desk">
            <h1 class="text-xl font-semibold">"Agent desk"</h1>
        </section>
    }
}
