use std::process::ExitCode;

use clap::Parser;
use hookline::cli::{Cli, Command, read_password};
use hookline::config::Config;
use hookline::{Application, install_tls_provider, open_services};
use hookline_core::{Scope, Services};

/// mimalloc rather than the system allocator: a delivery makes a few hundred short-lived
/// allocations across the runtime's and the database's threads, and glibc's malloc spent
/// about a fifth of the server's CPU in them (BENCHMARKS.md, "Change 4"). It costs about
/// 20 MiB of resident memory, the same at any load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Read once, here: nothing else reads the environment.
    let cfg = match Config::from_env() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("hookline: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let _telemetry = hookline::telemetry::init_logging(&cfg.log);
    match run(cli.command.unwrap_or(Command::Serve), cfg).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("hookline: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, cfg: Config) -> Result<(), String> {
    install_tls_provider();
    let command = match command {
        Command::Serve => return serve(cfg).await,
        // Clients of the REST API: no database.
        Command::Listen(args) => return hookline::cli::listen::listen(args).await,
        Command::Trigger(args) => return hookline::cli::listen::trigger(args).await,
        other => other,
    };
    let services = open_services(&cfg).await.map_err(|e| e.to_string())?;
    let fail = |e: hookline_core::Error| e.to_string();
    match command {
        Command::Serve | Command::Listen(_) | Command::Trigger(_) => unreachable!("handled above"),
        Command::Migrate => println!("The database is up to date."),
        Command::CreateAdmin { email } => {
            let user = services.create_admin(&email, &read_password(&cfg)?).await.map_err(fail)?;
            println!("Created admin {}.", user.email);
        }
        Command::CreateStore { id, name } => {
            let store = services.create_store(&id, &name).await.map_err(fail)?;
            println!("Created store {} ({}).", store.id, store.name);
        }
        Command::CreateApplication { id, name } => {
            let app = services.create_application(&id, &name).await.map_err(fail)?;
            println!("Created application {} ({}).", app.id, app.name);
        }
        Command::CreateUser { email, store } => {
            let user = services.create_merchant(&email, &read_password(&cfg)?, &store).await.map_err(fail)?;
            println!("Created merchant {} of store {store}.", user.email);
        }
        Command::CreateApiKey { scope, name } => {
            // As the API does it: the scope must parse and its tenant must exist.
            if Scope::parse(&scope).is_none() {
                return Err(format!("{scope:?} is not a scope: use admin, store:ID or application:ID"));
            }
            let created =
                services.create_api_key_as(&Scope::Admin, Some(&scope), &name).await.map_err(fail)?;
            // The key alone on stdout, so scripts can capture it; the note goes to stderr.
            println!("{}", created.key);
            eprintln!("API key {} for {}: shown once, store it now.", created.id, created.scope);
        }
        Command::Prune { dry_run } => {
            let done = services.prune(dry_run).await.map_err(fail)?;
            print!("{}", hookline::cli::prune_report(&cfg, &done, dry_run));
        }
        Command::Backup { path } => {
            services.backup_sqlite(&path).await.map_err(fail)?;
            println!("Copied the database to {}.", path.display());
        }
        Command::DisableUser { email } => {
            let user = services.set_user_disabled(&Scope::Admin, &email, true).await.map_err(fail)?;
            println!("Disabled {}; their sessions have ended.", user.email);
        }
        Command::EnableUser { email } => {
            let user = services.set_user_disabled(&Scope::Admin, &email, false).await.map_err(fail)?;
            println!("Enabled {}.", user.email);
        }
        Command::DeleteUser { email } => {
            services.delete_user(&Scope::Admin, &email).await.map_err(fail)?;
            println!("Deleted {}.", email.trim().to_lowercase());
        }
        Command::EndSessions { email } => {
            let ended = services.end_user_sessions(&Scope::Admin, &email).await.map_err(fail)?;
            println!("Ended {ended} sessions of {}.", email.trim().to_lowercase());
        }
        Command::ReencryptSecrets => reencrypt_secrets(&services, &cfg).await?,
    }
    Ok(())
}

async fn serve(cfg: Config) -> Result<(), String> {
    if cfg.secret_key.is_none() {
        tracing::warn!("signing secrets are stored unencrypted; set HOOKLINE_SECRET_KEY");
    }
    raise_open_file_limit(&cfg);
    let services = open_services(&cfg).await.map_err(|e| e.to_string())?;
    bootstrap_admin(&services, &cfg).await?;
    let app = Application::build_with(cfg, services).await.map_err(|e| e.to_string())?;
    println!("Hookline is listening on http://{}", app.local_addr());
    app.run_until_stopped(shutdown_signal()).await.map_err(|e| e.to_string())
}

/// Every client connection, outgoing delivery and database connection holds a file
/// descriptor; the usual soft limit (1,024) would stop the server answering long before
/// `HOOKLINE_MAX_CONNECTIONS`.
fn raise_open_file_limit(cfg: &Config) {
    match hookline::serve::raise_open_file_limit() {
        Ok(limit) => {
            tracing::info!(limit, "open-file limit");
            // Room for the deliveries in flight and the database pool besides the clients.
            let needed =
                (cfg.max_connections + cfg.delivery_concurrency + cfg.database_pool_size as usize + 56)
                    as u64;
            if limit < needed {
                tracing::warn!(
                    limit,
                    needed,
                    "the open-file limit is below HOOKLINE_MAX_CONNECTIONS plus \
                     HOOKLINE_DELIVERY_CONCURRENCY: raise the hard limit (ulimit -Hn) or lower them"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

/// `hookline reencrypt-secrets`: every signing secret under the current key (see its help for
/// the rotation procedure). Fails when a secret could not be read, after moving the others.
async fn reencrypt_secrets(services: &Services, cfg: &Config) -> Result<(), String> {
    let Some(key) = &cfg.secret_key else {
        return Err("reencrypt-secrets needs the key to encrypt with in HOOKLINE_SECRET_KEY (and the \
                    keys it replaces in HOOKLINE_PREVIOUS_SECRET_KEYS)"
            .into());
    };
    let done = services.reencrypt_secrets().await.map_err(|e| e.to_string())?;
    println!(
        "Re-encrypted {} signing secrets under key {}; {} already were.",
        done.changed,
        key.id(),
        done.unchanged
    );
    for (webhook, why) in &done.unreadable {
        eprintln!("hookline: the signing secret of webhook {webhook} was left as it is: {why}");
    }
    if !done.unreadable.is_empty() {
        return Err(format!("{} signing secrets could not be read", done.unreadable.len()));
    }
    Ok(())
}

/// The first start creates an admin: the configured one, or one with a generated password
/// that is printed once.
async fn bootstrap_admin(services: &Services, cfg: &Config) -> Result<(), String> {
    if services.user_count().await.map_err(|e| e.to_string())? > 0 {
        println!("Sign in with your Hookline user.");
        return Ok(());
    }
    let (email, password, generated) = match (&cfg.admin_email, &cfg.admin_password) {
        (Some(e), Some(p)) => (e.clone(), p.clone(), false),
        (Some(e), None) => (e.clone(), generate_password(), true),
        _ => ("admin@hookline.local".to_string(), generate_password(), true),
    };
    services
        .create_admin(&email, &password)
        .await
        .map_err(|e| format!("cannot create the first admin: {e}"))?;
    if generated {
        println!("Created the first admin. Sign in as {email} with password {password}");
        println!("(the password is shown only this once).");
    } else {
        println!("Created the first admin {email} from HOOKLINE_ADMIN_EMAIL and HOOKLINE_ADMIN_PASSWORD.");
    }
    Ok(())
}

fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
