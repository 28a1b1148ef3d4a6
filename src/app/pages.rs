//! The three screens. Their live content arrives with the live store.

use leptos::prelude::*;

/// What a wall TV shows all day: a tile per extension and the queue summary.
#[component]
pub fn Wallboard() -> impl IntoView {
    view! {
        <section data-page="wallboard">
            <h1 class="text-xl font-semibold">"Wallboard"</h1>
        </section>
    }
}

/// What a supervisor watches: one card per queue.
#[component]
pub fn Queues() -> impl IntoView {
    view! {
        <section data-page="queues">
            <h1 class="text-xl font-semibold">"Queues"</h1>
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
