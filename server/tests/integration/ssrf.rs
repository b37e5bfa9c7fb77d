//! The outgoing client's guard: deliveries never reach loopback, private, link-local or other
//! non-public addresses unless the operator allowlists them, whatever form the address takes.

use std::time::Duration;

use hookline::delivery::{ErrorClass, WebhookClient};
use hookline_core::AddressPolicy;
use test_receiver::{Behaviour, Receiver};

fn guarded() -> WebhookClient {
    hookline::install_tls_provider();
    WebhookClient::new(AddressPolicy::default(), true, Duration::from_secs(2), 64)
}

fn allowlisted() -> WebhookClient {
    hookline::install_tls_provider();
    let policy = AddressPolicy { allowed_networks: vec!["127.0.0.0/8".parse().unwrap()] };
    WebhookClient::new(policy, true, Duration::from_secs(2), 64)
}

#[tokio::test]
async fn non_public_addresses_are_blocked_in_every_form() {
    let receiver = Receiver::start().await.unwrap();
    let port = receiver.addr().port();
    let client = guarded();
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://127.1.2.3:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("https://[::ffff:7f00:1]:{port}/hook"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/".to_string(),
        "http://0.0.0.0/".to_string(),
    ] {
        let outcome = client.post(&url, &[], b"{}".to_vec()).await;
        let (class, message) = outcome.error.expect("blocked");
        assert_eq!(class, ErrorClass::Blocked, "{url}: {message}");
    }
    assert!(receiver.received().is_empty(), "a blocked request got through");
}

#[tokio::test]
async fn an_allowlisted_network_is_reachable() {
    let receiver = Receiver::start().await.unwrap();
    let client = allowlisted();
    let outcome = client.post(&receiver.url("/ok"), &[], b"{}".to_vec()).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    let via_name =
        client.post(&format!("http://localhost:{}/ok", receiver.addr().port()), &[], b"{}".to_vec()).await;
    assert!(via_name.succeeded(), "{:?}", via_name.error);
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn a_redirect_to_a_private_address_is_not_followed() {
    use axum::http::{StatusCode, header};
    let app = axum::Router::new().fallback(|| async {
        (StatusCode::FOUND, [(header::LOCATION, "http://169.254.169.254/latest/meta-data/")], "")
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let outcome = allowlisted().post(&format!("http://{addr}/hook"), &[], b"{}".to_vec()).await;
    assert_eq!(outcome.status, Some(302));
    assert!(!outcome.succeeded());
    assert_eq!(outcome.error.map(|e| e.0), Some(ErrorClass::HttpStatus));
}

#[tokio::test]
async fn errors_are_classified() {
    let client = allowlisted();
    // Nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let outcome = client.post(&format!("http://{closed}/"), &[], b"{}".to_vec()).await;
    assert_eq!(outcome.error.map(|e| e.0), Some(ErrorClass::Connect));

    let outcome = client.post("http://no-such-host.invalid/", &[], b"{}".to_vec()).await;
    let class = outcome.error.map(|e| e.0);
    assert!(matches!(class, Some(ErrorClass::Dns) | Some(ErrorClass::Blocked)), "{class:?}");

    let slow = Receiver::start().await.unwrap();
    slow.configure(Behaviour { secret: None, status: None, delay_ms: Some(5_000), retry_after: None });
    let quick = WebhookClient::new(
        AddressPolicy { allowed_networks: vec!["127.0.0.0/8".parse().unwrap()] },
        true,
        Duration::from_millis(300),
        64,
    );
    let outcome = quick.post(&slow.url("/slow"), &[], b"{}".to_vec()).await;
    assert_eq!(outcome.error.map(|e| e.0), Some(ErrorClass::Timeout));
    assert!(outcome.duration < Duration::from_secs(2));
}

#[tokio::test]
async fn response_bodies_are_capped_at_64_kib() {
    let app = axum::Router::new().fallback(|| async { "x".repeat(200_000) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let outcome = allowlisted().post(&format!("http://{addr}/"), &[], b"{}".to_vec()).await;
    assert!(outcome.succeeded());
    assert_eq!(outcome.body.unwrap().len(), hookline::delivery::MAX_RESPONSE_BODY);
}
