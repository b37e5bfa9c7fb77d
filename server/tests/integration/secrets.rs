//! Secrets at rest: a new API key waiting in a session, and webhook signing secrets under
//! `HOOKLINE_SECRET_KEY`, are never in the database in a form that works if copied from it.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use hookline::Application;
use hookline_core::entities::{attempt, session, webhook, webhook_secret};
use hookline_core::{AttemptErrorClass, Scope, SecretKey, Services};
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use test_receiver::Receiver;

use crate::common::*;

/// Two keys as operators give them: hex, and base64.
const FIRST_KEY: &str = "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a7988";
const SECOND_KEY: &str = "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=";

fn key_id(key: &str) -> String {
    SecretKey::parse(key).expect("a valid key").id().to_string()
}

async fn stored_secrets(services: &Services) -> Vec<String> {
    webhook_secret::Entity::find()
        .all(services.database())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.secret)
        .collect()
}

/// One Hookline process on a database that outlives it, so the next can start with other keys.
struct Process {
    addr: SocketAddr,
    services: Services,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Process {
    async fn start(database_url: &str, extra: &[(&str, &str)]) -> Process {
        let app = Application::build(test_config(database_url, extra)).await.expect("Hookline starts");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let addr = app.local_addr();
        let services = app.services().clone();
        let running = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Process { addr, services, stop, running }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.running.await.expect("the process stops").expect("it served");
    }

    async fn api(&self, method: &str, path: &str, key: &str, body: Value) -> (u16, Value) {
        let res = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("http://{}/api/v1{path}", self.addr))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("the API answers");
        let status = res.status().as_u16();
        (status, serde_json::from_str(&res.text().await.unwrap_or_default()).unwrap_or(Value::Null))
    }

    async fn publish(&self, key: &str) {
        let event = json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-created", "payload": {"id": 1}});
        let (status, body) = self.api("POST", "/events", key, event).await;
        assert_eq!(status, 202, "{body}");
    }
}

/// `hookline reencrypt-secrets` on the database, with the given key settings.
fn reencrypt(database_url: &str, keys: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookline"));
    cmd.arg("reencrypt-secrets")
        .env("HOOKLINE_DATABASE_URL", database_url)
        .env_remove("HOOKLINE_CONFIG")
        .env_remove("HOOKLINE_SECRET_KEY")
        .env_remove("HOOKLINE_SECRET_KEY_FILE")
        .env_remove("HOOKLINE_PREVIOUS_SECRET_KEYS");
    for (k, v) in keys {
        cmd.env(k, v);
    }
    cmd.output().expect("the hookline binary runs")
}

fn printed(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A store with a webhook to `receiver` whose secret was rotated once (two secrets sign);
/// answers the admin key and the current secret.
async fn webhook_with_two_secrets(process: &Process, receiver: &Receiver) -> (String, String) {
    let services = &process.services;
    services.create_store("store-a", "Store A").await.unwrap();
    let admin = services.create_api_key(&Scope::Admin, "test").await.unwrap().key;
    let (status, created) = process
        .api(
            "POST",
            "/webhooks",
            &admin,
            json!({"tenant_type": "store", "tenant_id": "store-a", "url": receiver.url("/hooks")}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, rotated) =
        process.api("POST", &format!("/webhooks/{id}/rotate-secret"), &admin, json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    (admin, rotated["secret"].as_str().unwrap().to_string())
}

/// Publishes one event and checks that it arrives signed with `secret`.
async fn delivery_verifies(process: &Process, admin: &str, receiver: &Receiver, secret: &str) {
    let before = receiver.received().len();
    receiver.set_secret(secret);
    process.publish(admin).await;
    let got = receiver.wait_for(before + 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), before + 1, "the event arrives");
    let last = &got[before];
    assert!(last.verified, "standardwebhooks rejected the signature: {:?}", last.verify_error);
}

on_both_databases! {
    async fn a_key_created_by_a_form_post_is_not_stored_in_clear(backend: Backend) {
        let app = spawn(backend).await;
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.expect("signed in");
        // A plain form post: the key waits in the session for the page after the redirect.
        let res = app.http.post(app.url("/ui/create_api_key"))
            .header("cookie", &cookie)
            .header("accept", "text/html")
            .header("referer", app.url("/settings/api"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("name=Plain+form")
            .send().await.unwrap();
        assert!(res.status().is_redirection(), "{}", res.status());

        let flashes: Vec<String> =
            session::Entity::find().all(app.services.database()).await.unwrap().into_iter().filter_map(|s| s.flash).collect();
        assert_eq!(flashes.len(), 1, "the key waits in the session");
        let stored = &flashes[0];
        assert!(!stored.contains("hkl_"), "the key is stored in clear: {stored}");
        for copied in [stored.as_str(), stored.trim_start_matches("api-key ")] {
            let (status, _) = app.api("GET", "/webhooks", Some(copied), None).await;
            assert_eq!(status, 401, "what the database holds works as a key");
        }

        let page = || {
            let req = app.http.get(app.url("/settings/api")).header("cookie", &cookie);
            async move { req.send().await.unwrap().text().await.unwrap() }
        };
        let first = page().await;
        let banner = first.find("id=\"new-api-key\"").expect("the new key is on the page");
        let start = banner + first[banner..].find("hkl_").expect("the key");
        let key: String =
            first[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
        assert!(!stored.contains(&key[4..]));
        let (status, _) = app.api("GET", "/webhooks", Some(&key), None).await;
        assert_eq!(status, 200, "the key shown works");
        assert!(!page().await.contains(&key), "a key is shown once");
    }

    async fn signing_secrets_are_encrypted_at_rest_and_deliveries_verify(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_SECRET_KEY", FIRST_KEY)]).await;
        let receiver = Receiver::start().await.unwrap();
        let (id, secret) = app.create_webhook("store-a", &receiver.url("/hooks"), None).await;
        let (status, rotated) =
            app.api("POST", &format!("/webhooks/{id}/rotate-secret"), Some(&app.store_a_key), None).await;
        assert_eq!(status, 200, "{rotated}");
        let current = rotated["secret"].as_str().unwrap().to_string();

        let stored = stored_secrets(&app.services).await;
        assert_eq!(stored.len(), 2);
        for row in &stored {
            assert!(row.starts_with(&format!("enc:v1:{}:", key_id(FIRST_KEY))), "{row}");
            for plain in [&secret, &current] {
                assert!(!row.contains(plain.trim_start_matches("whsec_")), "a secret is stored in clear");
            }
        }
        // What the dashboard reveals is the secret itself.
        assert_eq!(app.services.current_secret(&Scope::Admin, &id).await.unwrap(), current);

        // Both secrets sign: the receiver verifies with either.
        receiver.set_secret(&secret);
        app.publish("store-a", "review-created", json!({"id": 1})).await;
        let got = receiver.wait_for(1, Duration::from_secs(10)).await;
        assert!(got[0].verified, "standardwebhooks rejected the signature: {:?}", got[0].verify_error);
        assert_eq!(got[0].header("webhook-signature").unwrap().split(' ').count(), 2);
        receiver.set_secret(&current);
        app.publish("store-a", "review-created", json!({"id": 2})).await;
        let got = receiver.wait_for(2, Duration::from_secs(10)).await;
        assert!(got[1].verified, "standardwebhooks rejected the signature: {:?}", got[1].verify_error);
    }

    async fn reencrypt_moves_secrets_to_the_new_key(backend: Backend) {
        let dir = TempDir::new();
        let url = fresh_database(backend, &dir).await;
        let receiver = Receiver::start().await.unwrap();

        // Written before any key was set: plain secrets.
        let plain = Process::start(&url, &[]).await;
        let (admin, secret) = webhook_with_two_secrets(&plain, &receiver).await;
        assert!(stored_secrets(&plain.services).await.iter().all(|s| s.starts_with("whsec_")));
        plain.stop().await;

        let out = reencrypt(&url, &[]);
        assert!(!out.status.success(), "it ran without a key");
        assert!(printed(&out).contains("HOOKLINE_SECRET_KEY"), "{}", printed(&out));

        let out = reencrypt(&url, &[("HOOKLINE_SECRET_KEY", FIRST_KEY)]);
        assert!(out.status.success(), "{}", printed(&out));
        assert!(printed(&out).contains("Re-encrypted 2 signing secrets"), "{}", printed(&out));
        let first = Process::start(&url, &[("HOOKLINE_SECRET_KEY", FIRST_KEY)]).await;
        let stored = stored_secrets(&first.services).await;
        assert!(stored.iter().all(|s| s.starts_with(&format!("enc:v1:{}:", key_id(FIRST_KEY)))), "{stored:?}");
        assert!(stored.iter().all(|s| !s.contains(secret.trim_start_matches("whsec_"))));
        delivery_verifies(&first, &admin, &receiver, &secret).await;
        first.stop().await;

        // Rotation: the new key current, the old one previous, until re-encrypted.
        let rotation = [("HOOKLINE_SECRET_KEY", SECOND_KEY), ("HOOKLINE_PREVIOUS_SECRET_KEYS", FIRST_KEY)];
        let out = reencrypt(&url, &rotation);
        assert!(out.status.success(), "{}", printed(&out));
        assert!(printed(&out).contains("Re-encrypted 2 signing secrets"), "{}", printed(&out));
        let out = reencrypt(&url, &rotation);
        assert!(printed(&out).contains("Re-encrypted 0 signing secrets"), "a second run changes nothing: {}", printed(&out));

        // The old key can go.
        let second = Process::start(&url, &[("HOOKLINE_SECRET_KEY", SECOND_KEY)]).await;
        let stored = stored_secrets(&second.services).await;
        assert!(stored.iter().all(|s| s.starts_with(&format!("enc:v1:{}:", key_id(SECOND_KEY)))), "{stored:?}");
        delivery_verifies(&second, &admin, &receiver, &secret).await;
        second.stop().await;
    }

    async fn a_secret_under_an_unknown_key_fails_its_delivery_with_a_clear_reason(backend: Backend) {
        let dir = TempDir::new();
        let url = fresh_database(backend, &dir).await;
        let receiver = Receiver::start().await.unwrap();
        let first = Process::start(&url, &[("HOOKLINE_SECRET_KEY", FIRST_KEY)]).await;
        let (admin, _) = webhook_with_two_secrets(&first, &receiver).await;
        first.stop().await;

        // Started with another key and without the old one: nothing opens the secrets.
        let wrong = Process::start(&url, &[("HOOKLINE_SECRET_KEY", SECOND_KEY)]).await;
        wrong.publish(&admin).await;
        let db = wrong.services.database().clone();
        let failed = async || {
            attempt::Entity::find().all(&db).await.unwrap().iter().any(|a| a.error_class == Some(AttemptErrorClass::SigningSecret))
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !failed().await && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let attempts = attempt::Entity::find().all(&db).await.unwrap();
        let message = attempts[0].error_message.clone().unwrap_or_default();
        assert_eq!(attempts[0].error_class, Some(AttemptErrorClass::SigningSecret), "{attempts:?}");
        assert!(message.contains("HOOKLINE_SECRET_KEY"), "{message}");
        assert!(receiver.received().is_empty(), "an unsigned request went out");
        // The endpoint did nothing wrong: its health is untouched.
        let hook = &webhook::Entity::find().all(&db).await.unwrap()[0];
        assert!(hook.enabled);
        assert_eq!(hook.consecutive_failures, 0);

        // re-encrypting under the wrong key leaves them and says why.
        let out = reencrypt(&url, &[("HOOKLINE_SECRET_KEY", SECOND_KEY)]);
        assert!(!out.status.success());
        assert!(printed(&out).contains(&key_id(FIRST_KEY)), "{}", printed(&out));
        wrong.stop().await;
    }
}
