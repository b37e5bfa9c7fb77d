//! The engine's own errors: what the store answered, and the states a delivery can be found
//! in that allow no attempt. Turned into the services' error only where the engine answers
//! them (an attempt on request, [`hookline_core::Dispatcher::attempt_now`]).

use hookline_core::Error as CoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Reading or writing the queue failed.
    #[error(transparent)]
    Store(#[from] CoreError),
    /// The delivery asked for does not exist (removed since it was looked up).
    #[error("delivery {0} not found")]
    DeliveryNotFound(String),
    /// The delivery's webhook was deleted; its rows are being removed.
    #[error("the webhook of delivery {0} was deleted")]
    WebhookDeleted(String),
    /// A delivery without its event: a broken invariant (events outlive their deliveries).
    #[error("delivery {delivery} has no event {event}")]
    EventMissing { delivery: String, event: String },
}

impl From<EngineError> for CoreError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(e) => e,
            EngineError::DeliveryNotFound(_) => CoreError::NotFound("delivery"),
            EngineError::WebhookDeleted(_) => CoreError::NotFound("webhook"),
            // Not the caller's doing, and not a 404: a storage fault, logged and answered as one.
            broken @ EngineError::EventMissing { .. } => {
                CoreError::Db(sea_orm::DbErr::RecordNotFound(broken.to_string()))
            }
        }
    }
}
