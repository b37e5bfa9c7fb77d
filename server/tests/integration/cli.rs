//! The `hookline` binary's subcommands, as scripts use them.

use std::process::Command;

use crate::common::{Backend, TempDir, fresh_database};

fn hookline(database_url: &str, args: &[&str], password: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookline"));
    cmd.args(args)
        .env("HOOKLINE_DATABASE_URL", database_url)
        .env_remove("HOOKLINE_CONFIG");
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = hookline(
        &url,
        &["create-admin", "--email", "ops@example.com"],
        Some("a long password"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = hookline(
        &url,
        &["create-store", "--id", "shop-1", "--name", "Shop One"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = hookline(
        &url,
        &["create-user", "--email", "m@shop.test", "--store", "shop-1"],
        Some("another long one"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = hookline(
        &url,
        &[
            "create-api-key",
            "--scope",
            "store:shop-1",
            "--name",
            "producer",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    let stored = hookline_core::entities::api_key::Entity::find()
        .all(&services.db)
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|k| k.key_hash != key && !k.key_hash.contains(&key[4..]))
    );
    let users = hookline_core::entities::user::Entity::find()
        .all(&services.db)
        .await
        .unwrap();
    assert!(
        users
            .iter()
            .all(|u| u.password_hash.starts_with("$argon2id$"))
    );
}

#[tokio::test]
async fn bad_arguments_fail_with_a_message() {
    let dir = TempDir::new();
    let url = fresh_database(Backend::Sqlite, &dir).await;
    let out = hookline(
        &url,
        &["create-api-key", "--scope", "root", "--name", "x"],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a scope"));

    let out = hookline(
        &url,
        &["create-user", "--email", "m@x.test", "--store", "missing"],
        Some("long enough pw"),
    );
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
