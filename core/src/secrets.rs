//! Webhook signing secrets at rest: sealed under the operator's key when written, opened when
//! read, and moved to a new key by `hookline reencrypt-secrets`. The sealing itself is
//! [`crate::crypto`]'s; this module owns what the services do with a secret that will not open.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait};

use crate::Services;
use crate::crypto::UnreadableSecret;
use crate::entities::webhook_secret;
use crate::error::{Error, Result};

/// Rows `hookline reencrypt-secrets` reads and writes per transaction.
pub const REENCRYPT_BATCH: u64 = 500;

/// What [`Services::reencrypt_secrets`] did.
#[derive(Debug, Default)]
pub struct Reencrypted {
    /// Secrets now sealed under the current key that were plain or under another key.
    pub changed: u64,
    /// Secrets already sealed under the current key.
    pub unchanged: u64,
    /// (webhook id, why) of each secret that could not be read, and so was left as it is.
    pub unreadable: Vec<(String, UnreadableSecret)>,
}

impl Services {
    /// The text stored for a webhook's new signing secret.
    pub(crate) fn seal_secret(&self, webhook_id: &str, secret: &str) -> String {
        self.settings.keyring.seal(secret, webhook_id)
    }

    /// The stored secrets, in the order given, per webhook. A webhook with a secret that will
    /// not open gets none at all, rather than a set missing its current secret: its
    /// deliveries then fail with a clear reason instead of carrying signatures that no longer
    /// verify.
    pub(crate) fn open_secrets<'a>(
        &self,
        rows: impl IntoIterator<Item = &'a webhook_secret::Model>,
    ) -> HashMap<String, Vec<String>> {
        let mut by_webhook: HashMap<String, Vec<String>> = HashMap::new();
        let mut unreadable = HashSet::new();
        for row in rows {
            match self.settings.keyring.open(&row.secret, &row.webhook_id) {
                Ok(secret) => by_webhook.entry(row.webhook_id.clone()).or_default().push(secret),
                Err(e) => {
                    report_once(&row.webhook_id, &e);
                    unreadable.insert(row.webhook_id.clone());
                }
            }
        }
        by_webhook.retain(|id, _| !unreadable.contains(id));
        by_webhook
    }

    /// Seals every webhook secret (current, rotated, expired) under the current key, opening
    /// it with the current key, a previous one, or as the plain secret it may still be. Reads
    /// and writes [`REENCRYPT_BATCH`] rows at a time; a secret that will not open is left as
    /// it is and reported.
    pub async fn reencrypt_secrets(&self) -> Result<Reencrypted> {
        let keyring = &self.settings.keyring;
        if keyring.current.is_none() {
            return Err(Error::Conflict(
                "set the key to encrypt with in HOOKLINE_SECRET_KEY (and the keys it replaces in \
                 HOOKLINE_PREVIOUS_SECRET_KEYS)"
                    .into(),
            ));
        }
        let mut done = Reencrypted::default();
        let mut after: Option<String> = None;
        loop {
            let mut query = webhook_secret::Entity::find()
                .order_by_asc(webhook_secret::Column::Id)
                .limit(REENCRYPT_BATCH);
            if let Some(id) = &after {
                query = query.filter(webhook_secret::Column::Id.gt(id));
            }
            let rows = query.all(&self.db).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id.clone());
            let _turn = self.write_turn().await;
            let txn = self.db.begin().await?;
            for row in &rows {
                let plain = match keyring.open(&row.secret, &row.webhook_id) {
                    Ok(plain) => plain,
                    Err(e) => {
                        done.unreadable.push((row.webhook_id.clone(), e));
                        continue;
                    }
                };
                if keyring.is_sealed_under_current(&row.secret) {
                    done.unchanged += 1;
                    continue;
                }
                // Only if still the value read: a webhook deleted meanwhile changes nothing.
                let written = webhook_secret::Entity::update_many()
                    .col_expr(
                        webhook_secret::Column::Secret,
                        Expr::value(keyring.seal(&plain, &row.webhook_id)),
                    )
                    .filter(webhook_secret::Column::Id.eq(&row.id))
                    .filter(webhook_secret::Column::Secret.eq(&row.secret))
                    .exec(&txn)
                    .await?;
                done.changed += written.rows_affected;
            }
            txn.commit().await?;
            if (rows.len() as u64) < REENCRYPT_BATCH {
                break;
            }
        }
        Ok(done)
    }
}

/// Logs a webhook's unreadable secret the first time this process meets it: deliveries read
/// secrets over and over, and one line per attempt would bury everything else. Webhook ids are
/// unique across databases, so one set serves every `Services` of the process.
fn report_once(webhook_id: &str, e: &UnreadableSecret) {
    static REPORTED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let first = REPORTED
        .get_or_init(Default::default)
        .lock()
        .map(|mut seen| seen.insert(webhook_id.to_string()))
        .unwrap_or(true);
    if first {
        tracing::error!(
            webhook = %webhook_id,
            "a signing secret of this webhook cannot be read, so its deliveries fail: {e}"
        );
    }
}
