//! Hookline's domain and storage, shared by the REST API (`server`) and the dashboard's server
//! functions (`app`): tenants, webhooks and their secrets, events, deliveries and attempts,
//! users, sessions and API keys. Every function that reads or writes a tenant's data takes the
//! caller's [`Scope`] or the [`Tenant`], so a handler cannot forget whose data it touches.

pub mod entities;

mod access;
mod auth;
mod cache;
mod db;
mod dispatch;
mod error;
mod events;
mod net;
mod page;
mod scope;
mod subscriptions;
mod tenants;
mod time;
mod url;
mod webhooks;

pub use auth::{ApiKeyCreated, Role, SessionUser};
pub use db::{connect, migrate};
pub use dispatch::{AttemptResult, AttemptTrigger, BoxFuture, Dispatcher};
pub use error::{Error, Result};
pub use events::{DeliveryStatus, PublishRequest, Published};
pub use net::{AddressPolicy, is_public_ip};
pub use page::{Page, PageRequest};
pub use scope::Scope;
pub use tenants::{Tenant, TenantType};
pub use time::{iso8601, now_ms};
pub use url::{UrlPolicy, WebhookUrl};
pub use webhooks::{
    DeliveryView, NewEventType, NewWebhook, SECRET_PREFIX, WebhookPatch, WebhookWithSecret, generate_secret,
};

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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            url_policy: UrlPolicy::default(),
            max_payload: 256 * 1024,
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            secret_grace: Duration::from_secs(24 * 3600),
        }
    }
}

/// The handle every service call goes through: the database, the settings, and the signal
/// that wakes the delivery workers when new work is written.
#[derive(Clone)]
pub struct Services {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    new_work: Arc<Notify>,
    dispatcher: Arc<OnceLock<Arc<dyn Dispatcher>>>,
    publisher: Arc<OnceLock<tokio::sync::mpsc::UnboundedSender<events::PublishJob>>>,
    cache: Arc<cache::Caches>,
}

impl Services {
    pub fn new(db: DatabaseConnection, settings: Settings) -> Self {
        Self {
            db,
            settings: Arc::new(settings),
            new_work: Arc::new(Notify::new()),
            dispatcher: Arc::new(OnceLock::new()),
            publisher: Arc::new(OnceLock::new()),
            cache: Arc::new(cache::Caches::default()),
        }
    }

    /// Registers what makes attempts on request (the delivery engine); the first one stays.
    pub fn set_dispatcher(&self, dispatcher: Arc<dyn Dispatcher>) {
        let _ = self.dispatcher.set(dispatcher);
    }

    /// Resolves when deliveries may have become due (an event was published, a resend asked).
    pub fn new_work(&self) -> Arc<Notify> {
        self.new_work.clone()
    }

    pub(crate) fn wake_workers(&self) {
        self.new_work.notify_waiters();
        self.new_work.notify_one();
    }
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
