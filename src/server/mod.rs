//! Everything that runs only on the server: configuration, the HTTP router, the websocket
//! endpoint, logging and the process lifecycle.

pub mod api;
pub mod cli;
pub mod config;
pub mod contacts;
pub mod hooks;
pub mod origin;
pub mod router;
pub mod shutdown;
pub mod telemetry;
pub mod ws;

use crate::hub::Hub;
use crate::store::Store;
use leptos::config::LeptosOptions;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What every request handler can reach; cheap to clone.
#[derive(Clone, axum::extract::FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub hub: Hub,
    pub store: Store,
    /// The running connectors, for call-control commands.
    pub connectors: Arc<crate::connectors::Connectors>,
    pub config: Arc<config::Config>,
    /// Cancelled when the process is asked to stop, so long-lived websockets close and the
    /// graceful shutdown does not wait on them forever.
    pub shutdown: CancellationToken,
}

/// Starts Callboard with a loaded configuration and serves until SIGTERM or Ctrl-C.
pub async fn serve(config: config::Config) -> Result<(), ServeError> {
    let leptos_options =
        leptos::config::get_configuration(None).map_err(|error| ServeError::Leptos(error.to_string()))?.leptos_options;
    let addr = config.server.addr;
    if config.is_demo() {
        tracing::info!("no [[provider]] configured: demo mode");
    }
    for provider in &config.providers {
        tracing::info!(name = %provider.name, kind = ?provider.kind, "provider configured");
    }
    let shutdown = CancellationToken::new();
    let store = Store::open(&config.store.path).await.map_err(ServeError::Store)?;
    tracing::info!(path = %config.store.path.display(), "store open");
    let hub =
        Hub::start(store.clone(), config.queues.hub_settings(), shutdown.clone()).await.map_err(ServeError::Store)?;
    let mut connectors = crate::connectors::Connectors::default();
    let mut finishing = Vec::new();
    if config.is_demo() {
        let demo = crate::sim::demo::start(&config.demo, &hub, shutdown.clone()).await.map_err(ServeError::Demo)?;
        connectors.insert(demo);
    }
    for provider in &config.providers {
        let started = crate::connectors::start(provider, hub.clone(), &store, shutdown.clone())
            .await
            .map_err(ServeError::Provider)?;
        connectors.insert(started.connector);
        if let Some(hook) = started.hook {
            connectors.insert_hook(hook);
        }
        finishing.extend(started.finishing);
    }
    let connectors = Arc::new(connectors);
    let hub_stopped = hub.clone();
    let state =
        AppState { leptos_options, hub, store, connectors, config: Arc::new(config), shutdown: shutdown.clone() };
    let app = router::router(state);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?;
    tracing::info!("listening on http://{addr}");
    axum::serve(listener, app).with_graceful_shutdown(shutdown::on_signal(shutdown)).await.map_err(ServeError::Io)?;
    // Connectors tidy up at the provider (a subscription deleted) within a bound.
    let tidied = tokio::time::timeout(std::time::Duration::from_secs(10), futures::future::join_all(finishing)).await;
    if tidied.is_err() {
        tracing::warn!("connectors did not finish within 10 s of shutdown");
    }
    // Then the hub journals what it was handed.
    if tokio::time::timeout(std::time::Duration::from_secs(10), hub_stopped.stopped()).await.is_err() {
        tracing::warn!("the hub did not journal its last events within 10 s of shutdown");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("leptos configuration: {0}")]
    Leptos(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("store: {0}")]
    Store(crate::store::StoreError),
    #[error("server: {0}")]
    Io(std::io::Error),
    #[error("demo: {0}")]
    Demo(crate::sim::demo::DemoError),
    #[error("{0}")]
    Provider(String),
}
