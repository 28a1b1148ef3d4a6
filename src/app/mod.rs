//! The Leptos app: the page shell, the top bar and the three screens.

pub mod clock;
pub mod connection;
pub mod desk;
pub mod format;
pub mod http;
pub mod live;
pub mod providers;
pub mod queues;
pub mod wallboard;

use connection::{provide_connection, ConnectionBadge};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes, A},
    StaticSegment,
};
use live::LiveStore;

/// The HTML document the server renders around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en" class="dark">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="dark light"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body class="min-h-screen bg-slate-950 text-slate-100 antialiased">
                <App/>
            </body>
        </html>
    }
}

/// The root component: live connection, top bar and routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let store = LiveStore::new();
    provide_context(store);
    provide_connection(store);
    clock::provide_clock(store);

    view! {
        <Stylesheet id="leptos" href="/pkg/callboard.css"/>
        <Title text="Callboard"/>
        <Router>
            <Themed>
                <TopBar/>
                <main class="p-4">
                    <providers::ProviderAlerts/>
                    <Routes fallback=|| view! { <p class="text-slate-400">"Page not found."</p> }>
                        <Route path=StaticSegment("") view=wallboard::Wallboard/>
                        <Route path=StaticSegment("queues") view=queues::Queues/>
                        <Route path=StaticSegment("desk") view=desk::AgentDesk/>
                    </Routes>
                </main>
            </Themed>
        </Router>
    }
}

/// The page's colours: dark by default, light with `?theme=light` (a wall in a bright room). The
/// light palette is the dark one swapped shade for shade (style/tailwind.css), and the page
/// fills the screen, so no dark edge is left around a light board.
#[component]
fn Themed(children: Children) -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let theme =
        move || query.with(|query| if query.get("theme").as_deref() == Some("light") { "light" } else { "dark" });
    view! { <div data-theme=theme class="min-h-screen bg-slate-950 text-slate-100">{children()}</div> }
}

/// Navigation between the screens, and the connection badge always in sight; hidden in kiosk
/// mode (`?kiosk`), where a wall screen shows nothing but the board.
#[component]
fn TopBar() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let kiosk = move || query.with(|query| query.get("kiosk").is_some());
    let link = "whitespace-nowrap rounded px-3 py-1.5 text-slate-300 hover:bg-slate-800 hover:text-white aria-[current=page]:bg-slate-800 aria-[current=page]:text-white";
    view! {
        <header class=move || if kiosk() { "hidden" } else { "flex flex-wrap items-center gap-x-4 gap-y-1 border-b border-slate-800 bg-slate-900 px-4 py-2" }>
            <span class="flex items-center gap-2 font-semibold tracking-tight text-white">
                <img src="/favicon.svg" alt="" class="h-6 w-6"/>
                "Callboard"
            </span>
            <nav class="flex gap-1 text-sm">
                <A href="/" attr:class=link>"Wallboard"</A>
                <A href="/queues" attr:class=link>"Queues"</A>
                <A href="/desk" attr:class=link>"Agent desk"</A>
            </nav>
            <div class="ml-auto">
                <ConnectionBadge/>
            </div>
        </header>
    }
}
