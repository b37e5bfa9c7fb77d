//! The `hookline` binary's subcommands, as scripts use them.

use std::process::Command;

use crate::common::{Backend, TempDir, fresh_database};

fn hookline(database_url: &str, args: &[&str], password: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookline"));
    cmd.args(args).env("HOOKLINE_DATABASE_URL", database_url).env_remove("HOOKLINE_CONFIG");
    match password {
        Some(p) => cmd.env("HOOKLINE_ADMIN_PASSWORD", p),
        None => cmd.env_remove("HOOKLINE_ADMIN_PASSWORD"),
    };
    cmd.output().expect("the hookline binary runs")
}

#[tokio::test]
async fn subcommands_create_what_they_say() {
    let dir = TempDir::new();
    let url = fresh_database(Backend::Sqlite, &dir).await;

    let out = hookline(&url, &["migrate"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = hookline(&url, &["create-admin", "--email", "ops@example.com"], Some("a long password"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = hookline(&url, &["create-store", "--id", "shop-1", "--name", "Shop One"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = hookline(
        &url,
        &["create-user", "--email", "m@shop.test", "--store", "shop-1"],
        Some("another long one"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = hookline(&url, &["create-api-key", "--scope", "store:shop-1", "--name", "producer"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("hkl_") && key.len() > 40, "{key}");

    // The printed key works, and it is stored only as a hash.
    hookline::install_tls_provider();
    let db = hookline_core::connect(&url).await.unwrap();
    let services = hookline_core::Services::new(db, hookline_core::Settings::default());
    assert_eq!(
        services.authenticate_api_key(&key).await.unwrap(),
        Some(hookline_core::Scope::Store("shop-1".into()))
    );
    use sea_orm::EntityTrait;
    let stored = hookline_core::entities::api_key::Entity::find().all(services.database()).await.unwrap();
    assert!(stored.iter().all(|k| k.key_hash != key && !k.key_hash.contains(&key[4..])));
    let users = hookline_core::entities::user::Entity::find().all(services.database()).await.unwrap();
    assert!(users.iter().all(|u| u.password_hash.starts_with("$argon2id$")));
}

#[tokio::test]
async fn bad_arguments_fail_with_a_message() {
    let dir = TempDir::new();
    let url = fresh_database(Backend::Sqlite, &dir).await;
    let out = hookline(&url, &["create-api-key", "--scope", "root", "--name", "x"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a scope"));

    let out =
        hookline(&url, &["create-user", "--email", "m@x.test", "--store", "missing"], Some("long enough pw"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No store has id missing"));

    let out = Command::new(env!("CARGO_BIN_EXE_hookline"))
        .arg("serve")
        .env("HOOKLINE_DATABASE_URL", &url)
        .env("HOOKLINE_DELIVERY_TIMEOUT", "45s")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOOKLINE_DELIVERY_TIMEOUT"));
}

#[tokio::test]
async fn the_first_start_creates_an_admin_and_prints_its_password_once() {
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new();
    let url = fresh_database(Backend::Sqlite, &dir).await;
    let start = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookline"))
            .arg("serve")
            .env("HOOKLINE_DATABASE_URL", &url)
            .env("HOOKLINE_LISTEN", "127.0.0.1:0")
            .env_remove("HOOKLINE_ADMIN_EMAIL")
            .env_remove("HOOKLINE_ADMIN_PASSWORD")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = Vec::new();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            let done = line.contains("listening on http://127.0.0.1:");
            lines.push(line);
            if done {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        lines.join("")
    };
    let first = start();
    assert!(first.contains("Sign in as admin@hookline.local with password "), "{first}");
    let password = first
        .split("with password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    let second = start();
    assert!(!second.contains(&password), "the password was printed twice");
    assert!(second.contains("listening on"));

    let db = hookline_core::connect(&url).await.unwrap();
    let services = hookline_core::Services::new(db, hookline_core::Settings::default());
    let user = services.authenticate_user("admin@hookline.local", &password).await.unwrap().unwrap();
    assert_eq!(user.role, hookline_core::Role::Admin);
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_several_connections() {
    use sea_orm::ConnectionTrait;
    let dir = TempDir::new();
    let url = fresh_database(Backend::Sqlite, &dir).await;
    let db = hookline_core::connect(&url).await.unwrap();
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), "PRAGMA journal_mode"))
        .await
        .unwrap()
        .unwrap();
    let mode: String = row.try_get_by_index(0).unwrap();
    assert_eq!(mode, "wal");
    // Two transactions open at once: a reader is not blocked by a writer.
    use sea_orm::TransactionTrait;
    let writer = db.begin().await.unwrap();
    writer.execute_unprepared("CREATE TABLE t (x INTEGER)").await.unwrap();
    let reader = db.begin().await.unwrap();
    reader.execute_unprepared("SELECT 1").await.unwrap();
    reader.commit().await.unwrap();
    writer.commit().await.unwrap();
}

#[tokio::test]
async fn users_are_disabled_and_deleted_from_the_command_line() {
    let dir = TempDir::new();
    let url = fresh_database(Backend::Sqlite, &dir).await;
    assert!(
        hookline(&url, &["create-admin", "--email", "ops@example.com"], Some("a long password"))
            .status
            .success()
    );
    assert!(
        hookline(&url, &["create-admin", "--email", "two@example.com"], Some("a long password"))
            .status
            .success()
    );

    // A key for a tenant that does not exist is refused, with a non-zero exit.
    let out = hookline(&url, &["create-api-key", "--scope", "store:nowhere", "--name", "k"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No tenant"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "no key printed");

    hookline::install_tls_provider();
    let db = hookline_core::connect(&url).await.unwrap();
    let services = hookline_core::Services::new(db, hookline_core::Settings::default());
    let user = services.authenticate_user("two@example.com", "a long password").await.unwrap().unwrap();
    let token = services.create_session(&user.id).await.unwrap();

    let out = hookline(&url, &["disable-user", "--email", "two@example.com"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(services.session_user(&token).await.unwrap().is_none(), "the session ended at once");
    assert!(services.authenticate_user("two@example.com", "a long password").await.unwrap().is_none());
    assert!(hookline(&url, &["enable-user", "--email", "two@example.com"], None).status.success());
    assert!(services.authenticate_user("two@example.com", "a long password").await.unwrap().is_some());

    assert!(hookline(&url, &["delete-user", "--email", "two@example.com"], None).status.success());
    assert!(services.user_by_email("two@example.com").await.is_err());
    // The last admin stays.
    let out = hookline(&url, &["delete-user", "--email", "ops@example.com"], None);
    assert!(!out.status.success());
    let out = hookline(&url, &["disable-user", "--email", "nobody@example.com"], None);
    assert!(!out.status.success());
}

#[tokio::test]
async fn a_database_a_newer_version_migrated_still_opens() {
    let dir = TempDir::new();
    let url = fresh_database(Backend::Sqlite, &dir).await;
    assert!(hookline(&url, &["migrate"], None).status.success());
    // A migration this version does not know, as a newer release would leave it.
    let db = hookline_core::connect(&url).await.unwrap();
    use sea_orm::ConnectionTrait;
    db.execute_unprepared(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m29991231_000099_future', 0)",
    )
    .await
    .unwrap();
    let out = hookline(&url, &["migrate"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = hookline(&url, &["create-store", "--id", "after-upgrade", "--name", "Still works"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
