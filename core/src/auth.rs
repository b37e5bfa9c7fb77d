//! Who is calling: users with argon2id passwords and server-side sessions for the dashboard,
//! and API keys for REST. Session tokens and API keys are 32 random bytes, so a SHA-256 of
//! them is what the database keeps; passwords are low-entropy and get argon2id.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use sha2::{Digest, Sha256};

use crate::entities::{api_key, session, user};
use crate::error::{Error, Result};
use crate::{Services, new_id, now_ms};
use hookline_domain::{Page, PageRequest, Role, Scope, human_duration};

pub const API_KEY_PREFIX: &str = "hkl_";
const MIN_PASSWORD_LEN: usize = 10;
/// Longer passwords are refused rather than hashed: hashing cost grows with the input.
const MAX_PASSWORD_LEN: usize = 1024;

/// The user behind a valid session.
#[derive(Clone, Debug)]
pub struct SessionUser {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub store_id: Option<String>,
}

impl SessionUser {
    pub fn scope(&self) -> Scope {
        match (&self.role, &self.store_id) {
            (Role::Admin, _) => Scope::Admin,
            (Role::Merchant, Some(store)) => Scope::Store(store.clone()),
            // A merchant without a store reaches nothing: an impossible store id.
            (Role::Merchant, None) => Scope::Store(String::new()),
        }
    }

    fn from_model(u: user::Model) -> Self {
        SessionUser { id: u.id, email: u.email, role: u.role, store_id: u.store_id }
    }
}

pub struct ApiKeyCreated {
    pub id: String,
    /// The key itself: shown once, never stored.
    pub key: String,
    pub scope: Scope,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Where password hashes are computed: a few threads of their own, one per core. Argon2 is
/// slow and takes about 19 MiB per hash on purpose; unbounded, a burst of sign-ins would take
/// every core and hundreds of megabytes, and starve the server. Threads of their own (not
/// tokio's blocking pool, which starts new threads at will) also keep the allocator from
/// holding a hash's worth of memory in each of many threads. Waiting here costs only the
/// request; a queue too long answers 503.
async fn on_hashing_pool<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
    use std::sync::{Arc, Mutex, OnceLock};
    type Job = Box<dyn FnOnce() + Send>;
    /// Hashes waiting at most; a burst beyond this is refused at once.
    const QUEUE: usize = 256;
    static POOL: OnceLock<SyncSender<Job>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("password-hash-{i}")).spawn(move || {
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        tx
    });
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = reply.send(work());
    });
    pool.try_send(job).map_err(|e| match e {
        TrySendError::Full(_) => {
            Error::Unavailable("Too many sign-ins at once; try again in a few seconds.".into())
        }
        TrySendError::Disconnected(_) => Error::Unavailable("Password hashing stopped.".into()),
    })?;
    answer.await.map_err(|_| Error::Unavailable("Password hashing stopped.".into()))
}

async fn hash_password_pooled(password: &str) -> Result<String> {
    let password = password.to_string();
    on_hashing_pool(move || hash_password(&password)).await?
}

fn check_new_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::invalid(
            "password",
            format!("A password has at least {MIN_PASSWORD_LEN} characters."),
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::invalid("password", format!("A password has at most {MAX_PASSWORD_LEN} bytes.")));
    }
    Ok(())
}

fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::invalid("password", format!("The password could not be hashed: {e}")))
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
        .unwrap_or(false)
}

/// Used when the email is unknown, so a failed login costs the same either way.
fn dummy_hash() -> &'static str {
    use std::sync::OnceLock;
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password("not-a-real-password").unwrap_or_default())
}

fn normalize_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(|c| c.is_whitespace() || crate::error::is_hidden_control(c));
    if valid { Ok(email) } else { Err(Error::invalid("email", "Enter a valid email address.")) }
}

impl Services {
    /// A page of users by email (for the admin's users page); the cursor is the last email.
    pub async fn users_page(&self, page: &PageRequest) -> Result<Page<user::Model>> {
        let mut query = user::Entity::find().order_by_asc(user::Column::Email).limit(page.limit() + 1);
        if let Some(cursor) = &page.cursor {
            query = query.filter(user::Column::Email.gt(cursor));
        }
        Ok(Page::from_rows(query.all(&self.db).await?, page.limit(), |u| u.email.clone()))
    }

    /// The users of these stores, by email (for a page of the admin's stores page).
    pub async fn users_of_stores(&self, store_ids: &[String]) -> Result<Vec<user::Model>> {
        Ok(user::Entity::find()
            .filter(user::Column::StoreId.is_in(store_ids.iter().cloned()))
            .order_by_asc(user::Column::Email)
            .all(&self.db)
            .await?)
    }

    pub async fn user_count(&self) -> Result<u64> {
        Ok(user::Entity::find().count(&self.db).await?)
    }

    pub async fn create_admin(&self, email: &str, password: &str) -> Result<user::Model> {
        self.create_user(email, password, Role::Admin, None).await
    }

    pub async fn create_merchant(&self, email: &str, password: &str, store_id: &str) -> Result<user::Model> {
        if self.live_store(store_id).await?.is_none() {
            return Err(Error::unprocessable("store", format!("No store has id {store_id}.")));
        }
        self.create_user(email, password, Role::Merchant, Some(store_id.to_string())).await
    }

    async fn create_user(
        &self,
        email: &str,
        password: &str,
        role: Role,
        store_id: Option<String>,
    ) -> Result<user::Model> {
        let email = normalize_email(email)?;
        check_new_password(password)?;
        if user::Entity::find().filter(user::Column::Email.eq(&email)).one(&self.db).await?.is_some() {
            return Err(Error::Conflict(format!("A user with email {email} already exists.")));
        }
        let model = user::ActiveModel {
            id: Set(new_id()),
            email: Set(email),
            password_hash: Set(hash_password_pooled(password).await?),
            role: Set(role),
            store_id: Set(store_id),
            created_at: Set(now_ms()),
            disabled_at: Set(None),
        };
        Ok(model.insert(&self.db).await?)
    }

    /// Checks an email and password; `None` for either being wrong (or the user disabled),
    /// without saying which.
    pub async fn authenticate_user(&self, email: &str, password: &str) -> Result<Option<SessionUser>> {
        let email = email.trim().to_lowercase();
        if password.len() > MAX_PASSWORD_LEN {
            return Ok(None);
        }
        let found = user::Entity::find().filter(user::Column::Email.eq(&email)).one(&self.db).await?;
        let password = password.to_string();
        let hash = found.as_ref().map(|u| u.password_hash.clone());
        // An unknown email costs a hash too, so the answer takes as long either way.
        let ok = on_hashing_pool(move || match hash {
            Some(hash) => verify_password(&password, &hash),
            None => {
                verify_password(&password, dummy_hash());
                false
            }
        })
        .await?;
        Ok(match found {
            Some(u) if ok && u.disabled_at.is_none() => Some(SessionUser::from_model(u)),
            _ => None,
        })
    }

    /// A dashboard sign-in: [`Services::authenticate_user`], throttled per account and per
    /// client address. Too many failures answer [`Error::TooManyRequests`] with the wait.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        client: Option<std::net::IpAddr>,
    ) -> Result<Option<SessionUser>> {
        let account = email.trim().to_lowercase();
        let attempt = self.throttle.begin(&account, client).map_err(|wait| Error::TooManyRequests {
            message: format!("Too many failed sign-ins. Try again in {}.", human_duration(wait)),
            retry_after_secs: wait.as_secs().max(1),
        })?;
        let result = self.authenticate_user(&account, password).await;
        let succeeded = matches!(result, Ok(Some(_)));
        // A storage failure is not the guesser's failure.
        if result.is_ok() {
            self.throttle.finish(attempt, succeeded);
        } else {
            self.throttle.finish(attempt, true);
        }
        result
    }

    /// Changes the signed-in user's own password, after checking the current one; every
    /// other session of the user ends.
    pub async fn change_password(
        &self,
        user_id: &str,
        keep_session_token: Option<&str>,
        current: &str,
        new: &str,
    ) -> Result<()> {
        let found = user::Entity::find_by_id(user_id).one(&self.db).await?.ok_or(Error::NotFound("user"))?;
        let attempt = self.throttle.begin(&found.email, None).map_err(|wait| Error::TooManyRequests {
            message: format!("Too many wrong passwords. Try again in {}.", human_duration(wait)),
            retry_after_secs: wait.as_secs().max(1),
        })?;
        let (hash, typed) = (found.password_hash.clone(), current.to_string());
        let ok = current.len() <= MAX_PASSWORD_LEN
            && on_hashing_pool(move || verify_password(&typed, &hash)).await?;
        self.throttle.finish(attempt, ok);
        if !ok {
            return Err(Error::invalid("current_password", "The current password is not right."));
        }
        check_new_password(new)?;
        let hash = hash_password_pooled(new).await?;
        let txn = sea_orm::TransactionTrait::begin(&self.db).await?;
        user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(hash))
            .filter(user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        let mut others = session::Entity::delete_many().filter(session::Column::UserId.eq(user_id));
        if let Some(token) = keep_session_token {
            others = others.filter(session::Column::Id.ne(sha256_hex(token)));
        }
        others.exec(&txn).await?;
        txn.commit().await?;
        Ok(())
    }

    /// A user by email, for admins (the CLI and the admin pages).
    pub async fn user_by_email(&self, email: &str) -> Result<user::Model> {
        let email = email.trim().to_lowercase();
        user::Entity::find()
            .filter(user::Column::Email.eq(&email))
            .one(&self.db)
            .await?
            .ok_or(Error::NotFound("user"))
    }

    /// Disables (or enables again) a user: a disabled user cannot sign in, and their sessions
    /// end at once. The last enabled admin cannot be disabled.
    pub async fn set_user_disabled(&self, scope: &Scope, email: &str, disabled: bool) -> Result<user::Model> {
        if !scope.is_admin() {
            return Err(Error::Forbidden("Only admins manage users.".into()));
        }
        let found = self.user_by_email(email).await?;
        if disabled {
            self.keep_one_admin(&found).await?;
        }
        let txn = sea_orm::TransactionTrait::begin(&self.db).await?;
        user::Entity::update_many()
            .col_expr(user::Column::DisabledAt, Expr::value(disabled.then(now_ms)))
            .filter(user::Column::Id.eq(&found.id))
            .exec(&txn)
            .await?;
        if disabled {
            session::Entity::delete_many().filter(session::Column::UserId.eq(&found.id)).exec(&txn).await?;
        }
        txn.commit().await?;
        self.user_by_email(email).await
    }

    /// Deletes a user and their sessions. The last enabled admin cannot be deleted.
    pub async fn delete_user(&self, scope: &Scope, email: &str) -> Result<()> {
        if !scope.is_admin() {
            return Err(Error::Forbidden("Only admins manage users.".into()));
        }
        let found = self.user_by_email(email).await?;
        self.keep_one_admin(&found).await?;
        let txn = sea_orm::TransactionTrait::begin(&self.db).await?;
        session::Entity::delete_many().filter(session::Column::UserId.eq(&found.id)).exec(&txn).await?;
        user::Entity::delete_by_id(&found.id).exec(&txn).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Ends every session of a user (they must sign in again); answers how many ended.
    pub async fn end_user_sessions(&self, scope: &Scope, email: &str) -> Result<u64> {
        if !scope.is_admin() {
            return Err(Error::Forbidden("Only admins manage users.".into()));
        }
        let found = self.user_by_email(email).await?;
        let done = session::Entity::delete_many()
            .filter(session::Column::UserId.eq(&found.id))
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected)
    }

    async fn keep_one_admin(&self, leaving: &user::Model) -> Result<()> {
        if leaving.role != Role::Admin || leaving.disabled_at.is_some() {
            return Ok(());
        }
        let admins = user::Entity::find()
            .filter(user::Column::Role.eq(Role::Admin))
            .filter(user::Column::DisabledAt.is_null())
            .count(&self.db)
            .await?;
        if admins <= 1 {
            return Err(Error::Conflict(
                "This is the last admin who can sign in; create another admin first.".into(),
            ));
        }
        Ok(())
    }

    /// Starts a session and returns the token for the cookie.
    pub async fn create_session(&self, user_id: &str) -> Result<String> {
        let token = random_token();
        let now = now_ms();
        session::ActiveModel {
            id: Set(sha256_hex(&token)),
            user_id: Set(user_id.to_string()),
            created_at: Set(now),
            expires_at: Set(now + self.settings.session_ttl.as_millis() as i64),
            flash: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok(token)
    }

    pub async fn session_user(&self, token: &str) -> Result<Option<SessionUser>> {
        let Some(s) = session::Entity::find_by_id(sha256_hex(token)).one(&self.db).await? else {
            return Ok(None);
        };
        if s.expires_at <= now_ms() {
            session::Entity::delete_by_id(s.id).exec(&self.db).await?;
            return Ok(None);
        }
        let found = user::Entity::find_by_id(s.user_id).one(&self.db).await?;
        Ok(found.filter(|u| u.disabled_at.is_none()).map(SessionUser::from_model))
    }

    /// Keeps a one-time message with the session, for the next page it renders. It may be a
    /// new API key, so it is stored encrypted under the session's token, which the database
    /// does not hold.
    pub async fn set_session_flash(&self, token: &str, message: &str) -> Result<()> {
        session::Entity::update_many()
            .col_expr(session::Column::Flash, Expr::value(crate::crypto::seal_flash(token, message)))
            .filter(session::Column::Id.eq(sha256_hex(token)))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The session's one-time message, if it has one; it is cleared, so it is shown once.
    pub async fn take_session_flash(&self, token: &str) -> Result<Option<String>> {
        let id = sha256_hex(token);
        let Some(sealed) = session::Entity::find_by_id(&id).one(&self.db).await?.and_then(|s| s.flash) else {
            return Ok(None);
        };
        // Cleared only if still the same message: of two pages racing, one shows it.
        let cleared = session::Entity::update_many()
            .col_expr(session::Column::Flash, Expr::value(Option::<String>::None))
            .filter(session::Column::Id.eq(&id))
            .filter(session::Column::Flash.eq(&sealed))
            .exec(&self.db)
            .await?;
        Ok((cleared.rows_affected == 1).then(|| crate::crypto::open_flash(token, &sealed)).flatten())
    }

    pub async fn end_session(&self, token: &str) -> Result<()> {
        session::Entity::delete_by_id(sha256_hex(token)).exec(&self.db).await?;
        Ok(())
    }

    pub async fn create_api_key(&self, scope: &Scope, name: &str) -> Result<ApiKeyCreated> {
        if name.trim().is_empty() || name.len() > 200 {
            return Err(Error::invalid("name", "An API key's name is 1 to 200 characters."));
        }
        Error::refuse_hidden("name", name)?;
        let key = format!("{API_KEY_PREFIX}{}", random_token());
        let id = new_id();
        api_key::ActiveModel {
            id: Set(id.clone()),
            name: Set(name.trim().to_string()),
            scope: Set(scope.to_string()),
            key_hash: Set(sha256_hex(&key)),
            key_prefix: Set(key.chars().take(API_KEY_PREFIX.len() + 6).collect()),
            created_at: Set(now_ms()),
            last_used_at: Set(None),
            revoked_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok(ApiKeyCreated { id, key, scope: scope.clone() })
    }

    /// The API keys a caller may see: every key for an admin, its own scope's keys otherwise.
    pub async fn list_api_keys(&self, scope: &Scope, page: &PageRequest) -> Result<Page<api_key::Model>> {
        let mut query = api_key::Entity::find().order_by_asc(api_key::Column::Id).limit(page.limit() + 1);
        if !scope.is_admin() {
            query = query.filter(api_key::Column::Scope.eq(scope.to_string()));
        }
        if let Some(cursor) = &page.cursor {
            query = query.filter(api_key::Column::Id.gt(cursor));
        }
        Ok(Page::from_rows(query.all(&self.db).await?, page.limit(), |k| k.id.clone()))
    }

    /// Creates a key for `wanted` (default: the caller's own scope). Only an admin makes keys
    /// for another scope.
    pub async fn create_api_key_as(
        &self,
        caller: &Scope,
        wanted: Option<&str>,
        name: &str,
    ) -> Result<ApiKeyCreated> {
        let scope = match wanted {
            None => caller.clone(),
            Some(s) => Scope::parse(s).ok_or_else(|| {
                Error::invalid("scope", "A scope is \"admin\", \"store:ID\" or \"application:ID\".")
            })?,
        };
        if !caller.is_admin() && &scope != caller {
            return Err(Error::Forbidden("This key can only create keys of its own scope.".into()));
        }
        let tenant = match &scope {
            Scope::Admin => None,
            Scope::Store(id) => Some(crate::Tenant::store(id.clone())),
            Scope::Application(id) => Some(crate::Tenant::application(id.clone())),
        };
        if let Some(tenant) = tenant
            && !self.tenant_exists(&tenant).await?
        {
            return Err(Error::unprocessable("scope", format!("No tenant {tenant} exists.")));
        }
        self.create_api_key(&scope, name).await
    }

    pub async fn api_key(&self, caller: &Scope, id: &str) -> Result<api_key::Model> {
        match api_key::Entity::find_by_id(id).one(&self.db).await? {
            Some(k) if caller.is_admin() || k.scope == caller.to_string() => Ok(k),
            _ => Err(Error::NotFound("API key")),
        }
    }

    /// Revokes a key: it stops working at once and stays listed, revoked, for the record.
    pub async fn revoke_api_key(&self, caller: &Scope, id: &str) -> Result<api_key::Model> {
        let found = self.api_key(caller, id).await?;
        if found.revoked_at.is_some() {
            return Ok(found);
        }
        let hash = found.key_hash.clone();
        let mut model = found.into_active_model();
        model.revoked_at = Set(Some(now_ms()));
        let revoked = model.update(&self.db).await?;
        self.cache.forget_key(&hash);
        Ok(revoked)
    }

    /// The scope of a valid, unrevoked API key; records when it was last used.
    pub async fn authenticate_api_key(&self, key: &str) -> Result<Option<Scope>> {
        let hash = sha256_hex(key);
        if let Some(scope) = self.cache.key(&hash) {
            return Ok(Some(scope));
        }
        let Some(found) =
            api_key::Entity::find().filter(api_key::Column::KeyHash.eq(&hash)).one(&self.db).await?
        else {
            return Ok(None);
        };
        if found.revoked_at.is_some() {
            return Ok(None);
        }
        let now = now_ms();
        // One write a minute per key at most: a busy producer must not turn reads into writes.
        if found.last_used_at.is_none_or(|t| now - t > 60_000) {
            api_key::Entity::update_many()
                .col_expr(api_key::Column::LastUsedAt, Expr::value(now))
                .filter(api_key::Column::Id.eq(&found.id))
                .exec(&self.db)
                .await?;
        }
        let scope = Scope::parse(&found.scope);
        if let Some(scope) = &scope {
            self.cache.remember_key(&hash, scope);
        }
        Ok(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong horse battery", &hash));
        assert!(!verify_password("anything", "not a phc string"));
    }
}
