//! Hookline's server: hosts the dashboard, serves the REST API and runs the delivery workers,
//! all in one process. [`Application::build`] then [`Application::run_until_stopped`] is the
//! whole program; tests do the same on port 0.

pub mod alerts;
pub mod api;
mod browser;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod ops;
pub mod plumbing;
mod portal;
pub mod serve;
pub mod telemetry;
mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use hookline_core::Services;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::delivery::{Engine, EngineConfig, RetryPolicy, WebhookClient};
use crate::ops::Metrics;

/// What every handler is given. axum clones it for each request (and each layer that holds
/// it), so it is one `Arc`: one reference count to move, not one per field, on a counter both
/// cores touch (BENCHMARKS.md, Change 12).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub services: Services,
    pub metrics: Arc<Metrics>,
    /// `HOOKLINE_HEADER_PREFIX`, for what is signed outside the engine (`hookline listen`).
    pub header_prefix: Arc<str>,
    /// Turns true when the process stops: endless answers (listen streams) end then.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database: {0}")]
    Database(sea_orm::DbErr),
    #[error("cannot migrate the database: {0}")]
    Migration(sea_orm::DbErr),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("cannot create the first admin: {0}")]
    Bootstrap(hookline_core::Error),
}

/// Installs the TLS implementation outgoing requests use; harmless when called twice.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Connects to the configured database and brings its schema up to date.
pub async fn open_services(cfg: &Config) -> Result<Services, StartError> {
    let db = hookline_core::connect_with_pool_size(&cfg.database_url, cfg.database_pool_size)
        .await
        .map_err(StartError::Database)?;
    hookline_core::migrate(&db).await.map_err(StartError::Migration)?;
    Ok(Services::new(db, cfg.settings()))
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    engine: Option<Engine>,
    /// Alerts before turn-off, in processes that deliver.
    alerts: Option<alerts::Alerts>,
    /// The engine as the services reach it for resends and test events; they hold it only
    /// weakly, so it lives here as long as the application serves.
    dispatcher: Arc<dyn hookline_core::Dispatcher>,
    services: Services,
    limits: serve::Limits,
    stopping: tokio::sync::watch::Sender<bool>,
}

impl Application {
    pub async fn build(cfg: Config) -> Result<Self, StartError> {
        install_tls_provider();
        let services = open_services(&cfg).await?;
        Self::build_with(cfg, services).await
    }

    pub async fn build_with(cfg: Config, services: Services) -> Result<Self, StartError> {
        let metrics = Arc::new(Metrics::new(cfg.metrics_token.clone()));
        let stopping = tokio::sync::watch::Sender::new(false);
        let state = AppState(Arc::new(Shared {
            services: services.clone(),
            metrics,
            header_prefix: cfg.header_prefix.as_str().into(),
            stopping: stopping.subscribe(),
        }));
        let timeout = plumbing::request_timeout(cfg.body_timeout);
        // A worker process serves only what operations need of it; the others serve all.
        let router = if cfg.role == config::Role::Worker {
            let ops = Router::new().merge(ops::router()).with_state(state).fallback(|| async {
                (
                    axum::http::StatusCode::NOT_FOUND,
                    "This Hookline process only delivers (HOOKLINE_ROLE=worker).",
                )
            });
            plumbing::with_timeout(ops, timeout)
        } else {
            // The API answers its timeouts and panics in JSON; the rest in plain text.
            let rest = Router::new()
                .merge(ops::router())
                .route(
                    "/docs/api",
                    axum::routing::get(|| async { axum::response::Html(api::openapi::reference_html()) }),
                )
                .with_state(state.clone())
                .merge(web::router(services.clone(), &cfg));
            Router::new()
                .nest("/api/v1", plumbing::api(api::router(cfg.max_payload), timeout))
                .with_state(state)
                .merge(plumbing::with_timeout(rest, timeout))
        };
        let router = plumbing::around_everything(browser::protect(router, &cfg));
        let engine = engine(&cfg, services.clone());
        // Resends and test events go through this process's engine even when it runs no
        // workers.
        let dispatcher: Arc<dyn hookline_core::Dispatcher> = Arc::new(engine.clone());
        services.set_dispatcher(&dispatcher);
        let engine = cfg.workers.then_some(engine);
        let alerts = cfg.workers.then(|| alerts::Alerts::from_config(&cfg));
        let listener = TcpListener::bind(cfg.listen).await.map_err(|e| StartError::Listen(cfg.listen, e))?;
        let limits = serve::Limits::from_config(&cfg);
        Ok(Application { listener, router, engine, alerts, dispatcher, services, limits, stopping })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves and delivers until `shutdown` resolves.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = (self.stopping.clone(), self.stopping.subscribe());
        let workers = self.engine.map(|engine| {
            let mut rx = stop_rx.clone();
            tokio::spawn(engine.run(async move {
                let _ = rx.wait_for(|stopped| *stopped).await;
            }))
        });
        let alerts = self.alerts.map(|alerts| tokio::spawn(alerts.run(self.services.clone())));
        let serve = serve::serve(self.listener, self.router, self.limits, async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let result = serve.await;
        if let Some(alerts) = alerts {
            alerts.abort();
        }
        if let Some(workers) = workers {
            let _ = workers.await;
        }
        drop(self.dispatcher);
        result
    }
}

pub fn engine(cfg: &Config, services: Services) -> Engine {
    let client = WebhookClient::new(
        cfg.address_policy(),
        cfg.allow_http,
        cfg.delivery_timeout,
        cfg.delivery_concurrency,
    );
    Engine::new(
        services,
        client,
        EngineConfig {
            retry: RetryPolicy { schedule: cfg.retry_schedule.clone() },
            timeout: cfg.delivery_timeout,
            header_prefix: cfg.header_prefix.clone(),
            disable_after_failures: cfg.disable_after_failures,
            disable_after_span: cfg.disable_after_span,
            concurrency: cfg.delivery_concurrency,
            per_webhook: cfg.per_webhook_concurrency,
            record_linger: cfg.record_linger,
            steer: cfg.steer.clone(),
        },
    )
}
