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
    let theme = move || query.with(|query| theme_of(query.get_str("theme")));
    view! { <div data-theme=theme class="min-h-screen bg-slate-950 text-slate-100">{children()}</div> }
}

/// The theme a `?theme=` value asks for, as typed into a TV's browser: `Light` and ` light ` are
/// light too; anything else is dark.
fn theme_of(value: Option<&str>) -> &'static str {
    if value.is_some_and(|value| value.trim().eq_ignore_ascii_case("light")) {
        "light"
    } else {
        "dark"
    }
}

/// Whether a `?kiosk` value turns kiosk mode on: a bare `?kiosk` or any value but an explicit
/// off (`0`, `false`, `no`, `off`), so a link can switch it off without removing it.
fn kiosk_on(value: Option<&str>) -> bool {
    value.is_some_and(|value| !matches!(value.trim().to_ascii_lowercase().as_str(), "0" | "false" | "no" | "off"))
}

/// The query parameters a link to another screen carries on, so the look a room chose (its
/// theme, its queues, its columns) survives moving between screens. `kiosk` is not among them:
/// the links show only when kiosk mode is off.
const CARRIED: [&str; 3] = ["theme", "queues", "columns"];

/// The href of a link to `path` that keeps the carried parameters of the current query (read
/// by `value`), percent-encoded the same way on the server and in the browser.
fn nav_href(path: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let pair = |key: &str| value(key).map(|value| format!("{key}={}", http::encode(&value)));
    let kept: Vec<String> = CARRIED.into_iter().filter_map(pair).collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// Navigation between the screens, and the connection badge always in sight; hidden in kiosk
/// mode (`?kiosk`), where a wall screen shows nothing but the board.
#[component]
fn TopBar() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let kiosk = move || query.with(|query| kiosk_on(query.get_str("kiosk")));
    let href = move |path: &'static str| move || query.with(|query| nav_href(path, |key| query.get(key)));
    let link = "whitespace-nowrap rounded px-3 py-1.5 text-slate-300 hover:bg-slate-800 hover:text-white aria-[current=page]:bg-slate-800 aria-[current=page]:text-white";
    view! {
        <header class=move || if kiosk() { "hidden" } else { "flex flex-wrap items-center gap-x-4 gap-y-1 border-b border-slate-800 bg-slate-900 px-4 py-2" }>
            <span class="flex items-center gap-2 font-semibold tracking-tight text-white">
                <img src="/favicon.svg" alt="" class="h-6 w-6"/>
                "Callboard"
            </span>
            <nav class="flex gap-1 text-sm">
                <A href=href("/") attr:class=link>"Wallboard"</A>
                <A href=href("/queues") attr:class=link>"Queues"</A>
                <A href=href("/desk") attr:class=link>"Agent desk"</A>
            </nav>
            <div class="ml-auto">
                <ConnectionBadge/>
            </div>
        </header>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_between_screens_keep_the_rooms_choices() {
        let query = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| pairs.iter().find(|(name, _)| *name == key).map(|(_, value)| (*value).to_owned())
        };
        let chosen = query(&[("kiosk", "0"), ("queues", "sales,support"), ("theme", "light"), ("x", "y")]);
        assert_eq!(nav_href("/queues", chosen), "/queues?theme=light&queues=sales%2Csupport");
        assert_eq!(nav_href("/", query(&[("columns", "8")])), "/?columns=8");
        assert_eq!(nav_href("/desk", query(&[])), "/desk");
    }

    #[test]
    fn theme_and_kiosk_read_as_typed() {
        assert_eq!(theme_of(Some("light")), "light");
        assert_eq!(theme_of(Some(" Light ")), "light");
        assert_eq!(theme_of(Some("dark")), "dark");
        assert_eq!(theme_of(None), "dark");
        assert!(kiosk_on(Some("")), "a bare ?kiosk");
        assert!(kiosk_on(Some("1")));
        assert!(kiosk_on(Some("true")));
        for off in ["0", "false", "FALSE", " no ", "off"] {
            assert!(!kiosk_on(Some(off)), "{off}");
        }
        assert!(!kiosk_on(None));
    }
}
