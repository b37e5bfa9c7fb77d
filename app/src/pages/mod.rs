//! The dashboard's pages. Each page's view is `<page>.rs`; the server functions it calls,
//! with the data they answer, live beside it in `<page>/server.rs`.

mod admin;
mod catalog;
mod event;
pub(crate) mod login;
mod not_found;
mod overview;
mod portal;
pub(crate) mod settings;
mod users;
pub(crate) mod webhook;

pub use admin::{AdminDeliveriesPage, AdminStoresPage, AdminWebhooksPage};
pub use catalog::{EventCatalogPage, PublicEventCatalogPage};
pub use event::EventPage;
pub use login::LoginPage;
pub use not_found::NotFound;
pub use overview::AdminOverviewPage;
pub use portal::{PortalWebhookPage, PortalWebhooksPage};
pub use settings::SettingsApiPage;
pub use users::{AccountPage, AdminUsersPage};
pub use webhook::WebhookPage;
