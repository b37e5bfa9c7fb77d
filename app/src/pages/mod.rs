//! The dashboard's pages. Each page's view is `<page>.rs`; the server functions it calls,
//! with the data they answer, live beside it in `<page>/server.rs`.

mod admin;
pub(crate) mod login;
mod not_found;
pub(crate) mod settings;
mod users;
pub(crate) mod webhook;

pub use admin::{AdminDeliveriesPage, AdminStoresPage, AdminWebhooksPage};
pub use login::LoginPage;
pub use not_found::NotFound;
pub use settings::SettingsApiPage;
pub use users::{AccountPage, AdminUsersPage};
pub use webhook::WebhookPage;
