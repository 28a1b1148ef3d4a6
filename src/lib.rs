//! Callboard: one provider-neutral live model of a call center, fed by a connector per hosted
//! PBX, shown as a wallboard, queue panels and an agent desk.
//!
//! Data flows one way (provider, connector, hub, websocket, browser) and commands the other.
//! `model` and `app` compile for both sides; everything else is server-only.

#![recursion_limit = "256"]

pub mod app;
pub mod model;

#[cfg(feature = "ssr")]
pub mod bench;
#[cfg(feature = "ssr")]
pub mod clock;
#[cfg(feature = "ssr")]
pub mod connectors;
#[cfg(feature = "ssr")]
pub mod hub;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod sim;
#[cfg(feature = "ssr")]
pub mod store;

/// Browser entry point: attaches the server-rendered page to the reactive app.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
