//! The `hookline` command line (SPEC section 6).

use std::io::BufRead;

use clap::{Parser, Subcommand};

pub mod listen;

#[derive(Parser, Debug)]
#[command(name = "hookline", version, about = "Self-hosted webhooks: signed, retried and logged")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the dashboard, the REST API and the delivery workers (the default).
    Serve,
    /// Bring the database schema up to date, then exit.
    Migrate,
    /// Create an admin; the password comes from HOOKLINE_ADMIN_PASSWORD or standard input.
    CreateAdmin {
        #[arg(long)]
        email: String,
    },
    /// Create a store (a tenant).
    CreateStore {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
    },
    /// Create an application (a tenant for partner apps).
    CreateApplication {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
    },
    /// Create a merchant of a store; the password as for create-admin.
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        store: String,
    },
    /// Delete what is past HOOKLINE_RETENTION (and stores' own retentions) and clear payloads
    /// past HOOKLINE_PAYLOAD_RETENTION, now, to the end; prints how many rows of each table.
    /// Deliveries still retrying and their events are kept.
    Prune {
        /// Only count what would be deleted and cleared; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Copy a SQLite database to PATH, consistently, while Hookline runs.
    Backup {
        /// Where the copy goes (a new file).
        path: std::path::PathBuf,
    },
    /// Disable a user: they cannot sign in, and their sessions end at once.
    DisableUser {
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled user again.
    EnableUser {
        #[arg(long)]
        email: String,
    },
    /// Delete a user and their sessions.
    DeleteUser {
        #[arg(long)]
        email: String,
    },
    /// End every session of a user (they sign in again).
    EndSessions {
        #[arg(long)]
        email: String,
    },
    /// Create an API key and print it once.
    CreateApiKey {
        /// admin, store:ID or application:ID
        #[arg(long)]
        scope: String,
        #[arg(long)]
        name: String,
    },
    /// Encrypt every webhook signing secret under HOOKLINE_SECRET_KEY; prints how many changed.
    ///
    /// Secrets are read with HOOKLINE_SECRET_KEY, any key in HOOKLINE_PREVIOUS_SECRET_KEYS, or
    /// as the plain secrets written before a key was set. To move to a new key: set the new key
    /// as HOOKLINE_SECRET_KEY and the old one in HOOKLINE_PREVIOUS_SECRET_KEYS, restart every
    /// Hookline process, run `hookline reencrypt-secrets`, then drop the old key from
    /// HOOKLINE_PREVIOUS_SECRET_KEYS and restart again. A key is 32 random bytes as base64 or
    /// 64 hex characters: `openssl rand -base64 32`.
    ReencryptSecrets,
    /// Forward a tenant's events to a local URL, signed as deliveries are; no public URL needed.
    Listen(listen::ListenArgs),
    /// Publish an event type's example payload from the catalog; prints the event's id.
    Trigger(listen::TriggerArgs),
}

/// What `hookline prune` prints: per table, the rows deleted and the payloads or response
/// bodies cleared (or in a dry run, those that would be).
pub fn prune_report(cfg: &crate::config::Config, done: &hookline_core::PruneReport, dry_run: bool) -> String {
    use hookline_core::format_retention;
    let (delete, clear) = if dry_run { ("would delete", "would clear") } else { ("deleted", "cleared") };
    let mut out = format!(
        "{} (retention {}, payload retention {}):\n",
        if dry_run { "Dry run, nothing was changed" } else { "Pruned" },
        format_retention(cfg.retention),
        format_retention(cfg.payload_retention)
    );
    let rows = [
        ("events", done.events, Some(("payloads", done.payloads))),
        ("deliveries", done.deliveries, None),
        ("attempts", done.attempts, Some(("response bodies", done.response_bodies))),
        ("webhook_hours", done.webhook_hours, None),
    ];
    for (table, deleted, cleared) in rows {
        out.push_str(&format!("{table:<14} {delete} {deleted}"));
        if let Some((what, n)) = cleared {
            out.push_str(&format!(", {clear} {n} {what}"));
        }
        out.push('\n');
    }
    out
}

/// The password for a new user: `HOOKLINE_ADMIN_PASSWORD` (as the configuration read it),
/// else the first line of stdin.
pub fn read_password(cfg: &crate::config::Config) -> Result<String, String> {
    if let Some(p) = &cfg.admin_password {
        return Ok(p.clone());
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err("give the password in HOOKLINE_ADMIN_PASSWORD or on standard input".into());
    }
    Ok(password)
}
