//! The `attempts` table.
use hookline_domain::{AttemptErrorClass, AttemptTrigger};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub delivery_id: String,
    pub webhook_id: String,
    pub trigger: AttemptTrigger,
    pub started_at: i64,
    pub duration_ms: i32,
    pub url: String,
    pub request_headers: String,
    pub response_status: Option<i32>,
    pub response_headers: Option<String>,
    pub response_body: Option<String>,
    pub error_class: Option<AttemptErrorClass>,
    pub error_message: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
