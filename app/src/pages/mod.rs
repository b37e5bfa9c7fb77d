mod admin;
pub(crate) mod login;
mod not_found;
pub(crate) mod settings;
mod users;
mod webhook;

pub use admin::{AdminDeliveriesPage, AdminStoresPage, AdminWebhooksPage};
pub use login::LoginPage;
pub use not_found::NotFound;
pub use settings::SettingsApiPage;
pub use users::{AccountPage, AdminUsersPage};
pub use webhook::WebhookPage;
