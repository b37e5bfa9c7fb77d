//! The outgoing client keeps its connections: a receiver that many webhooks point at (a
//! partner app subscribed for every store) is not connected to again for each request.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use axum::serve::ListenerExt;
use hookline::delivery::WebhookClient;
use hookline_core::AddressPolicy;
use tokio::task::JoinSet;

/// More requests at once than the 64 idle connections per host the client used to keep.
const AT_ONCE: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_receiver_keeps_its_connections_from_one_round_to_the_next() {
    hookline::install_tls_provider();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = listener.tap_io(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    // Each answer waits long enough that a round's requests are all open at once.
    let app = Router::new().route(
        "/",
        post(|| async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            "ok"
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let policy = AddressPolicy { allowed_networks: vec!["127.0.0.0/8".parse().unwrap()] };
    let client = WebhookClient::new(policy, true, Duration::from_secs(10), AT_ONCE);
    let url = format!("http://{addr}/");
    for round in 1..=3 {
        let mut sends = JoinSet::new();
        for _ in 0..AT_ONCE {
            let (client, url) = (client.clone(), url.clone());
            sends.spawn(async move { client.post(&url, &[], b"{}".to_vec()).await });
        }
        while let Some(sent) = sends.join_next().await {
            let outcome = sent.unwrap();
            assert!(outcome.succeeded(), "round {round}: {:?}", outcome.error);
        }
    }
    // Keeping only 64 would have opened 150 + 86 + 86 = 322.
    let opened = accepted.load(Ordering::SeqCst);
    assert!(
        opened <= AT_ONCE + AT_ONCE / 10,
        "{opened} connections opened for three rounds of {AT_ONCE} requests"
    );
}
