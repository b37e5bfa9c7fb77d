//! The users pages' server functions: every user a page at a time, disabling, ending
//! sessions and deleting (admins only), and a user changing their own password.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRow {
    pub email: String,
    pub role: String,
    pub store: Option<String>,
    pub created: String,
    /// When an admin disabled the user, if one did.
    pub disabled: Option<String>,
    /// Whether this is the admin looking at the page.
    pub is_me: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<UserRow>,
    /// The cursor of the page after this one, if there is one.
    pub next_cursor: Option<String>,
}

/// A page of every store's users, by email.
#[server(prefix = "/ui", endpoint = "admin_users")]
pub async fn users(cursor: Option<String>) -> Result<UserList, AppError> {
    use crate::format::human_time;
    use crate::session::{require_admin, services};
    let me = require_admin().await?;
    let page = hookline_core::PageRequest {
        limit: Some(crate::paging::PAGE_SIZE),
        cursor: cursor.filter(|c| !c.is_empty()),
    };
    let found = services()?.users_page(&page).await?;
    Ok(UserList {
        users: found
            .items
            .into_iter()
            .map(|u| UserRow {
                is_me: u.id == me.id,
                email: u.email,
                role: u.role.as_str().to_string(),
                store: u.store_id,
                created: human_time(u.created_at),
                disabled: u.disabled_at.map(human_time),
            })
            .collect(),
        next_cursor: found.next_cursor,
    })
}

/// Disables a user (their sessions end at once) or enables them again.
#[server(prefix = "/ui", endpoint = "admin_set_user_disabled")]
pub async fn set_user_disabled(email: String, disabled: bool) -> Result<(), AppError> {
    use crate::error::refused;
    use crate::session::{require_admin, services};
    let me = require_admin().await?;
    if disabled && me.email == email.trim().to_lowercase() {
        return Err(refused(AppError::Invalid {
            field: None,
            message: "You cannot disable yourself.".into(),
        }));
    }
    services()?.set_user_disabled(&me.scope(), &email, disabled).await?;
    Ok(())
}

/// Ends every session of a user.
#[server(prefix = "/ui", endpoint = "admin_end_sessions")]
pub async fn end_user_sessions(email: String) -> Result<u64, AppError> {
    use crate::session::{require_admin, services};
    let me = require_admin().await?;
    Ok(services()?.end_user_sessions(&me.scope(), &email).await?)
}

/// Deletes a user; `confirm` must be "yes" (the form's confirmation box).
#[server(prefix = "/ui", endpoint = "admin_delete_user")]
pub async fn delete_user(email: String, confirm: Option<String>) -> Result<(), AppError> {
    use crate::error::refused;
    use crate::session::{require_admin, services};
    let me = require_admin().await?;
    if confirm.as_deref() != Some("yes") {
        return Err(refused(AppError::Invalid {
            field: Some("confirm".into()),
            message: "Tick the box to confirm the deletion.".into(),
        }));
    }
    if me.email == email.trim().to_lowercase() {
        return Err(refused(AppError::Invalid {
            field: None,
            message: "You cannot delete yourself.".into(),
        }));
    }
    services()?.delete_user(&me.scope(), &email).await?;
    Ok(())
}

/// Changes the signed-in user's password; their other sessions end.
#[server(prefix = "/ui", endpoint = "change_password")]
pub async fn change_password(current_password: String, new_password: String) -> Result<String, AppError> {
    use crate::session::{services, session_token, signed_in};
    let me = signed_in().await?;
    services()?.change_password(&me.id, session_token().as_deref(), &current_password, &new_password).await?;
    Ok("Your password is changed. Your other sessions have ended.".into())
}
