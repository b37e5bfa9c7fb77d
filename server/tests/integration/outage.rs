//! The database goes away and comes back: PostgreSQL is stopped and started under load. While
//! it is away, publishing and the API answer 503 with `Retry-After` within 5 s and `/readyz`
//! says so; within 5 s of its return everything resumes by itself; nothing answered 202 is
//! lost. A cluster of the test's own, so no other test sees it go.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use hookline::Application;
use serde_json::json;
use test_receiver::Receiver;

use crate::common::test_config;

#[path = "../support/own_postgres.rs"]
mod own_postgres;
use own_postgres::{Durability, OwnPostgres};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_and_loses_nothing_accepted() {
    hookline::install_tls_provider();
    let pg = OwnPostgres::start_new(Durability { durable: false, tls: false })
        .expect("PostgreSQL is installed (scripts/hookline test installs it)");
    let app = Application::build(test_config(&pg.url(), &[("HOOKLINE_METRICS_TOKEN", "scrape-me")]))
        .await
        .expect("Hookline starts");
    let addr = app.local_addr();
    let services = app.services().clone();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    services.create_store("store-a", "Store A").await.unwrap();
    let key = services.create_api_key(&hookline_core::Scope::Admin, "producer").await.unwrap().key;
    let receiver = Receiver::start().await.unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let (status, body) = {
        let res = http
            .post(format!("http://{addr}/api/v1/webhooks"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(
                json!({"tenant_type": "store", "tenant_id": "store-a", "url": receiver.url("/r")})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    };
    assert_eq!(status, 201, "{body}");

    // Producers publish all along: (status, retry-after, event id, how long the answer took).
    let producer = {
        let (http, key) = (http.clone(), key.clone());
        tokio::spawn(async move {
            let mut answers = Vec::new();
            let started = Instant::now();
            let mut i = 0;
            while started.elapsed() < Duration::from_secs(16) {
                let asked = Instant::now();
                let res = http
                    .post(format!("http://{addr}/api/v1/events"))
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-created", "payload": {"i": i}}).to_string())
                    .send()
                    .await;
                i += 1;
                let Ok(res) = res else { continue };
                let status = res.status().as_u16();
                let retry_after = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
                let body: serde_json::Value =
                    serde_json::from_str(&res.text().await.unwrap_or_default()).unwrap_or_default();
                answers.push((
                    status,
                    retry_after,
                    body["id"].as_str().map(str::to_string),
                    asked.elapsed(),
                    started.elapsed(),
                ));
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            answers
        })
    };

    tokio::time::sleep(Duration::from_secs(3)).await;
    pg.stop();
    let stopped_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let asked = Instant::now();
    let ready = http.get(format!("http://{addr}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(asked.elapsed() < Duration::from_secs(5));
    let asked = Instant::now();
    let res = http
        .get(format!("http://{addr}/api/v1/webhooks?tenant_type=store&tenant_id=store-a"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert!(asked.elapsed() < Duration::from_secs(5), "{:?}", asked.elapsed());
    assert!(matches!(res.status().as_u16(), 503), "an API call while the database is away: {}", res.status());
    assert!(res.headers().contains_key("retry-after"));
    // Metrics are read from memory: they answer while the database is away.
    let metrics = http.get(format!("http://{addr}/metrics")).bearer_auth("scrape-me").send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    // The pool's figures too: the pool counts its connections in memory.
    assert!(metrics.text().await.unwrap().contains("hookline_db_pool_max_connections"));
    assert_eq!(http.get(format!("http://{addr}/metrics")).send().await.unwrap().status(), 401);

    tokio::time::sleep(Duration::from_secs(4).saturating_sub(stopped_at.elapsed())).await;
    pg.start();
    let back_at = stopped_at.elapsed();
    let answers = producer.await.unwrap();

    let slowest = answers.iter().map(|a| a.3).max().unwrap();
    assert!(
        slowest < Duration::from_secs(5) + Duration::from_millis(500),
        "every answer within 5 s: {slowest:?}"
    );
    let refused: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
    assert!(!refused.is_empty(), "publishing answered 503 while the database was away");
    assert!(refused.iter().all(|a| a.1.is_some()), "every 503 has Retry-After");
    assert!(
        answers.iter().all(|a| a.0 == 202 || a.0 == 503),
        "only 202 or 503: {:?}",
        answers.iter().map(|a| a.0).collect::<HashSet<_>>()
    );
    // Within 5 s of the database's return, publishing is accepted again.
    let resumed = answers
        .iter()
        .find(|a| a.0 == 202 && a.4 > Duration::from_secs(3) + back_at)
        .map(|a| a.4)
        .expect("publishing resumed");
    assert!(resumed < Duration::from_secs(3) + back_at + Duration::from_secs(5), "resumed after {resumed:?}");

    // Every event answered 202 arrives.
    let accepted: HashSet<String> =
        answers.iter().filter(|a| a.0 == 202).filter_map(|a| a.2.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: HashSet<String> =
            receiver.received().iter().filter_map(|r| r.header("webhook-id").map(str::to_string)).collect();
        let missing = accepted.difference(&got).count();
        if missing == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{missing} of {} accepted events never arrived", accepted.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
