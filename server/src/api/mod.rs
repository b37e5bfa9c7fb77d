//! The REST API under `/api/v1`: JSON in and out, bearer API keys, one error shape. Each
//! resource module owns its handlers, their request and response types and its routes; the
//! OpenAPI document ([`openapi`]) is generated from them, so it cannot drift from the code.

mod conditions;
mod error;
mod event_types;
mod events;
mod explain;
mod extract;
mod keys;
mod listen;
pub mod openapi;
mod ordering;
mod portal;
mod replays;
mod subscriptions;
mod tenants;
mod webhooks;

use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

pub use error::{ApiError, ErrorBody};

use crate::AppState;
use vocabulary::TenantType;

pub fn router(max_payload: usize) -> Router<AppState> {
    let (router, _) = routes(max_payload).split_for_parts();
    router
        .fallback(|| async { ApiError::not_found("route") })
        .layer(axum::middleware::from_fn(extract::refuse_nul_in_uri))
}

/// Every route of the API with its documentation; [`openapi::document`] reads the same list.
fn routes(max_payload: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(events::router(max_payload))
        .merge(explain::router())
        .merge(webhooks::router())
        .merge(ordering::router())
        .merge(subscriptions::router())
        .merge(tenants::router())
        .merge(event_types::router())
        .merge(keys::router())
        .merge(listen::router())
        .merge(portal::router())
        .merge(replays::router())
        .merge(openapi::router())
}

/// Unix milliseconds as the API shows them: RFC 3339, UTC.
pub(crate) fn time(ms: i64) -> String {
    hookline_core::iso8601(ms)
}

/// One page of a list, in the order of the list.
#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

impl<T> Page<T> {
    fn of<U>(page: hookline_core::Page<U>, view: impl FnMut(U) -> T) -> Self {
        Page { items: page.items.into_iter().map(view).collect(), next_cursor: page.next_cursor }
    }
}

/// `limit` and `cursor`, which every list takes.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items to answer: 50 by default; below 1 counts as 1 and above 250 as 250.
    limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl PageQuery {
    fn page(&self) -> hookline_core::PageRequest {
        hookline_core::PageRequest { limit: self.limit, cursor: self.cursor.clone() }
    }
}

/// A tenant's list: the tenant (a store's or application's key may leave it out for its own),
/// then `limit` and `cursor` as in [`PageQuery`].
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantPageQuery {
    /// `store` or `application`; required with an admin key.
    #[param(value_type = TenantType, required = false)]
    tenant_type: Option<String>,
    /// Required with an admin key.
    tenant_id: Option<String>,
    /// How many items to answer: 50 by default; below 1 counts as 1 and above 250 as 250.
    limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl TenantPageQuery {
    fn page(&self) -> hookline_core::PageRequest {
        hookline_core::PageRequest { limit: self.limit, cursor: self.cursor.clone() }
    }

    fn tenant(&self, caller: &extract::Caller) -> Result<hookline_core::Tenant, ApiError> {
        caller.tenant(self.tenant_type.as_deref(), self.tenant_id.as_deref())
    }
}

/// The domain's closed sets as the document shows them: string enums listed from the
/// domain's own `ALL`, so the document names exactly the values the API writes.
pub(crate) mod vocabulary {
    macro_rules! closed_set {
        ($(#[doc = $doc:literal] $name:ident = $domain:ty;)*) => {$(
            #[doc = $doc]
            pub(crate) struct $name;

            impl utoipa::PartialSchema for $name {
                fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
                    let values = <$domain>::ALL.map(|v| v.as_str());
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::schema::Type::String)
                        .description(Some($doc.trim()))
                        .enum_values(Some(values))
                        .build()
                        .into()
                }
            }

            impl utoipa::ToSchema for $name {
                fn name() -> std::borrow::Cow<'static, str> {
                    stringify!($name).into()
                }
            }
        )*};
    }

    closed_set! {
        /// Whose a webhook, target, filter or event is: a store's or an application's.
        TenantType = hookline_core::TenantType;
        /// Where a delivery stands.
        DeliveryStatus = hookline_core::DeliveryStatus;
        /// What made an attempt: the retry schedule, a resend, or a test send.
        AttemptTrigger = hookline_core::AttemptTrigger;
        /// Why an attempt failed, for programs.
        AttemptErrorClass = hookline_core::AttemptErrorClass;
        /// Why a webhook is off.
        DisabledReason = hookline_core::DisabledReason;
    }
}
