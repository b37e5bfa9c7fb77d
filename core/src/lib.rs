//! Hookline's domain and storage, shared by the REST API (`server`) and the dashboard's server
//! functions (`app`): tenants, webhooks and their secrets, events, deliveries and attempts,
//! users, sessions and API keys. Every function that reads or writes a tenant's data takes the
//! caller's [`Scope`] or the [`Tenant`], so a handler cannot forget whose data it touches.

pub mod entities;
pub mod slots;
pub mod store;

mod access;
mod auth;
mod cache;
mod catalog;
mod conditions;
mod crypto;
mod db;
mod dispatch;
mod error;
mod events;
mod explain;
mod listeners;
mod maintenance;
pub mod ordering;
mod overview;
mod portal;
mod receivable;
mod recipients;
mod replays;
mod retention;
mod secrets;
mod signature_check;
mod subscriptions;
mod tenants;
mod throttle;
mod time;
mod webhooks;

pub use auth::{ApiKeyCreated, SessionUser};
pub use catalog::{
    MAX_SCHEMA, NewEventType, SchemaChange, SchemaSource, event_schema, example_payload, matches_search,
};
pub use conditions::{BENCH_EVENTS, BenchResult, DeliveryControl, DeliveryControlPatch, MAX_RATE_LIMIT};
pub use crypto::{Keyring, SecretKey, UnreadableSecret};
pub use db::{
    DEFAULT_POOL_SIZE, DEFAULT_SQLITE_POOL_SIZE, connect, connect_with_pool_size, default_pool_size, migrate,
};
pub use dispatch::{AttemptResult, BoxFuture, ClaimedDelivery, Dispatcher, Handoff, Reservation};
pub use error::{Error, HIDDEN_MESSAGE, NUL_MESSAGE, Result, UNAVAILABLE_RETRY_SECS, is_unavailable};
pub use events::{Audience, OPERATIONAL_PREFIX, PublishRequest, Published};
pub use explain::{Explanation, KeyTimelineEvent, Outcome, WebhookOutcome};
pub use listeners::{
    LISTENER_EXPIRY, LISTENER_HEARTBEAT, Listener, ListenerFeed, ListenerView, MAX_LISTENERS_PER_TENANT,
};
pub use overview::{EndpointStat, OVERVIEW_DUE_CAP, OVERVIEW_LIST_LEN, Overview, OverviewPeriod};
pub use portal::{
    MAX_PORTAL_ORIGINS, PORTAL_LINK_TTL, PORTAL_SESSION_TTL, PortalAccess, PortalEnded, PortalLink,
    parse_portal_origin,
};
pub use replays::{
    REPLAY_LEASE_MS, REPLAY_PAGE, REPLAY_SAMPLE, ReplayPreview, ReplayRequest, ReplayStep, Replayer,
    parse_rfc3339_ms,
};
pub use retention::{PruneReport, Pruner, format_retention, parse_retention};
pub use secrets::Reencrypted;
pub use signature_check::SignatureMaterial;
pub use throttle::{ClientAddress, client_behind};
pub use time::now_ms;
pub use webhooks::{
    DeliveryFilter, DeliveryTotals, DeliveryView, HOUR_MS, NewWebhook, SECRET_PREFIX, TOTALS_WINDOW,
    WebhookPatch, WebhookWithSecret, generate_secret,
};
// The vocabulary lives in `hookline-domain` (it builds for the browser too); these are the
// names it always had here.
pub use hookline_domain::{
    AddressPolicy, AttemptErrorClass, AttemptTrigger, DeliveryStatus, DisabledReason, EventFilter, Health,
    InputError, Page, PageRequest, PauseReason, Role, Scope, Tenant, TenantType, UrlPolicy, WebhookUrl,
    human_duration, human_time, is_public_ip, iso8601, parse_date_ms,
};
pub use hookline_domain::{ApiKeyId, ApplicationId, AttemptId, DeliveryId, EventId, StoreId, WebhookId};

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::Notify;

/// What the services need to know of the operator's configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub url_policy: UrlPolicy,
    /// Largest event payload accepted, in bytes.
    pub max_payload: usize,
    /// How long a signed-in session lasts.
    pub session_ttl: Duration,
    /// How long a rotated-out signing secret keeps signing deliveries.
    pub secret_grace: Duration,
    /// The keys signing secrets are encrypted with at rest; without a current key they are
    /// stored as they are.
    pub keyring: Keyring,
    /// Most webhooks (subscriptions included) one tenant may have: one event fans out to
    /// at most this many requests.
    pub max_webhooks_per_tenant: u32,
    /// How long events, deliveries and attempts are kept (`HOOKLINE_RETENTION`); an admin
    /// may shorten it per store.
    pub retention: Duration,
    /// How long payloads and response bodies are kept (`HOOKLINE_PAYLOAD_RETENTION`, at most
    /// `retention`): past it they are cleared and the rows keep the rest.
    pub payload_retention: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            url_policy: UrlPolicy::default(),
            max_payload: 256 * 1024,
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            secret_grace: Duration::from_secs(24 * 3600),
            keyring: Keyring::default(),
            max_webhooks_per_tenant: 50,
            retention: retention::DEFAULT_RETENTION,
            payload_retention: retention::DEFAULT_RETENTION,
        }
    }
}

/// Resends and test sends a tenant may make: a burst, then this many per second.
const ON_REQUEST_BURST: u32 = 20;
const ON_REQUEST_PER_SECOND: u32 = 2;

type OnRequestLimiter = governor::DefaultKeyedRateLimiter<Tenant>;

/// The handle every service call goes through: the database, the settings, and the signal
/// that wakes the delivery workers when new work is written. One reference to what they
/// share: every request and every delivery task clones it.
#[derive(Clone)]
pub struct Services(Arc<Shared>);

/// What every clone of [`Services`] shares (reached through it by `Deref`).
pub struct Shared {
    db: DatabaseConnection,
    pub settings: Arc<Settings>,
    new_work: Arc<Notify>,
    /// Held weakly: the engine holds the services, and a strong link both ways would keep
    /// the database pool open after the process's server is gone (tests start hundreds).
    dispatcher: OnceLock<std::sync::Weak<dyn Dispatcher>>,
    publisher: OnceLock<tokio::sync::mpsc::Sender<events::PublishJob>>,
    cache: cache::Caches,
    /// Each tenant's recipients as publishing last read them ([`recipients`]).
    recipient_cache: recipients::RecipientCache,
    throttle: throttle::SignInThrottle,
    /// Manual resends and test sends per tenant: each is a request to a receiver that no
    /// event caused, so a caller may not make many.
    on_request_limit: OnRequestLimiter,
    write_gate: store::WriteGate,
    /// Moves on every publish: wakes this process's `hookline listen` feeds at once.
    published: tokio::sync::watch::Sender<u64>,
}

impl std::ops::Deref for Services {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Services {
    /// The database itself, for tests and benchmarks that seed or inspect rows directly
    /// (the `test-support` feature); everything else goes through the services.
    #[cfg(feature = "test-support")]
    pub fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn new(db: DatabaseConnection, settings: Settings) -> Self {
        let write_gate = store::WriteGate::new(&db);
        Self(Arc::new(Shared {
            db,
            settings: Arc::new(settings),
            new_work: Arc::new(Notify::new()),
            dispatcher: OnceLock::new(),
            publisher: OnceLock::new(),
            cache: cache::Caches::default(),
            recipient_cache: recipients::RecipientCache::default(),
            throttle: throttle::SignInThrottle::default(),
            on_request_limit: governor::RateLimiter::keyed(
                governor::Quota::per_second(
                    std::num::NonZeroU32::new(ON_REQUEST_PER_SECOND).expect("non-zero"),
                )
                .allow_burst(std::num::NonZeroU32::new(ON_REQUEST_BURST).expect("non-zero")),
            ),
            write_gate,
            published: tokio::sync::watch::Sender::new(0),
        }))
    }

    /// Registers what makes attempts on request (the delivery engine); the first one stays.
    /// The caller keeps `dispatcher` alive for as long as it should serve.
    pub fn set_dispatcher(&self, dispatcher: &Arc<dyn Dispatcher>) {
        let _ = self.dispatcher.set(Arc::downgrade(dispatcher));
    }

    /// Resolves when deliveries may have become due (an event was published, a resend asked).
    pub fn new_work(&self) -> Arc<Notify> {
        self.new_work.clone()
    }

    /// On SQLite, the turn of one of the busy writers (publishing, claiming, recording): they
    /// queue here instead of in SQLite's busy handler, which sleeps. Hold it across the
    /// transaction. PostgreSQL has row locks and needs no turn.
    pub async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, store::Writer>> {
        self.store().write_turn().await
    }

    /// The store's typed functions over this database and write turn (what the delivery
    /// engine reads and writes).
    pub fn store(&self) -> store::Store<'_> {
        store::Store::new(&self.db, &self.write_gate)
    }

    pub(crate) fn wake_workers(&self) {
        self.new_work.notify_waiters();
        self.new_work.notify_one();
    }
}

/// Rows per multi-row statement on this backend. Small on SQLite, which looks up each
/// parameter's name by a linear scan, so binding costs grow with the square of a statement's
/// parameters; larger on PostgreSQL, where each statement is a round trip.
pub fn rows_per_statement(backend: sea_orm::DatabaseBackend) -> usize {
    match backend {
        sea_orm::DatabaseBackend::Sqlite => 32,
        _ => 256,
    }
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
