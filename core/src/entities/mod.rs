//! One sea-orm entity per table. Queries that must respect a tenant go through the services,
//! which take the tenant as an argument; nothing here is tenant-aware on purpose.

pub mod api_key;
pub mod application;
pub mod attempt;
pub mod delivery;
pub mod event;
pub mod event_type;
pub mod filter;
pub mod hour_total;
pub mod installation;
pub mod listener;
pub mod portal_origin;
pub mod portal_session;
pub mod recipient_version;
pub mod replay;
pub mod rollup_day;
pub mod sequence;
pub mod session;
pub mod store;
pub mod target;
pub mod user;
pub mod webhook;
pub mod webhook_day;
pub mod webhook_hour;
pub mod webhook_purge;
pub mod webhook_secret;
