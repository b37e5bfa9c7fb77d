//! The `stores` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stores")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub created_at: i64,
    /// How long this store's events, deliveries and attempts are kept, when an admin made it
    /// shorter than `HOOKLINE_RETENTION`.
    pub retention_ms: Option<i64>,
    /// When an admin deleted the store: it is gone from every list, and its rows are being
    /// removed in the background.
    pub deleted_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
