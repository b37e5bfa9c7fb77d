//! Connections: a client that opens connections and never finishes a request is dropped, and
//! the bound on open connections still leaves room for everyone else.

use std::net::SocketAddr;
use std::time::Duration;

use hookline::Application;
use hookline_core::Scope;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use crate::common::{Backend, TempDir, fresh_database, spawn_with, test_config};

/// A request line and one header, and never the blank line that ends the headers.
const HALF_SENT: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n";

async fn open_half_sent(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("Hookline accepts connections");
    stream.write_all(HALF_SENT).await.expect("the request line is sent");
    stream
}

/// `GET /healthz` on a new connection; returns the status line, empty if the server closed
/// the connection without answering.
async fn healthz(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("Hookline accepts connections");
    // A refused connection may be closed before the request is written or read.
    let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).lines().next().unwrap_or_default().to_string()
}

/// Sends `GET /healthz` on a kept-alive connection and reads the whole response.
async fn healthz_keep_alive(stream: &mut TcpStream) {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("the request is sent");
    let mut response = Vec::new();
    let mut buf = [0; 1024];
    while !response.ends_with(b"ok") {
        let n = stream.read(&mut buf).await.expect("the response arrives");
        assert!(n > 0, "the connection closed before the response: {}", String::from_utf8_lossy(&response));
        response.extend_from_slice(&buf[..n]);
    }
    assert!(response.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&response));
}

/// Whether the server closes the connection before `deadline` (after whatever it answers).
async fn closed_by(stream: &mut TcpStream, deadline: Instant) -> bool {
    let mut answer = Vec::new();
    // End of stream and a reset both mean closed.
    tokio::time::timeout_at(deadline, stream.read_to_end(&mut answer)).await.is_ok()
}

/// Starts a publish with a body of 1,000 bytes and sends only the first 10.
async fn start_slow_publish(addr: SocketAddr, key: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("Hookline accepts connections");
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"tenant_t"
    );
    stream.write_all(head.as_bytes()).await.expect("the headers are sent");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_neither_stall_healthz_nor_stay_open() {
    // This process holds both ends of every connection.
    let limit = hookline::serve::raise_open_file_limit().expect("the open-file limit can be read");
    assert!(limit >= 3_500, "the open-file hard limit ({limit}) is too low for this test");
    let app = spawn_with(Backend::Sqlite, &[]).await;

    let opened = Instant::now();
    let mut half_sent = Vec::new();
    for _ in 0..1_500 {
        half_sent.push(open_half_sent(app.addr).await);
    }
    let status = timeout(Duration::from_secs(2), healthz(app.addr))
        .await
        .expect("/healthz answers within 2 s while 1,500 half-sent requests are open");
    assert_eq!(status, "HTTP/1.1 200 OK");

    let deadline = opened + Duration::from_secs(45);
    for (i, stream) in half_sent.iter_mut().enumerate() {
        assert!(closed_by(stream, deadline).await, "half-sent request {i} is still open after 45 s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_idle_connection_makes_room_when_the_bound_is_reached() {
    let app = spawn_with(Backend::Sqlite, &[("HOOKLINE_MAX_CONNECTIONS", "32")]).await;
    // The longest idle: a kept-alive connection whose request was answered first.
    let mut longest_idle = TcpStream::connect(app.addr).await.unwrap();
    healthz_keep_alive(&mut longest_idle).await;
    let mut others = Vec::new();
    for _ in 0..31 {
        others.push(open_half_sent(app.addr).await);
    }

    let status = timeout(Duration::from_secs(2), healthz(app.addr)).await.expect("/healthz answers");
    assert_eq!(status, "HTTP/1.1 200 OK");
    // Long before the 10 s header timeout would close it.
    let soon = Instant::now() + Duration::from_secs(2);
    assert!(closed_by(&mut longest_idle, soon).await, "the longest idle connection is still open");
    let a_moment = Instant::now() + Duration::from_millis(300);
    assert!(!closed_by(&mut others[0], a_moment).await, "a newer idle connection was closed too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_whose_connections_all_have_requests_in_progress_refuses_newcomers_at_once() {
    let app = spawn_with(Backend::Sqlite, &[("HOOKLINE_MAX_CONNECTIONS", "16")]).await;
    let mut busy = Vec::new();
    for _ in 0..16 {
        busy.push(start_slow_publish(app.addr, &app.admin_key).await);
    }
    // Lets the server read every request's headers.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let status = timeout(Duration::from_secs(1), healthz(app.addr))
        .await
        .expect("the newcomer is closed at once, not left waiting");
    assert_eq!(status, "", "the newcomer was answered beyond the bound");
    let a_moment = Instant::now() + Duration::from_millis(300);
    assert!(!closed_by(&mut busy[0], a_moment).await, "a request in progress was closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_stops_half_way_is_dropped() {
    let app = spawn_with(Backend::Sqlite, &[("HOOKLINE_BODY_TIMEOUT", "2s")]).await;
    let mut stream = start_slow_publish(app.addr, &app.admin_key).await;
    let deadline = Instant::now() + Duration::from_secs(2 + 3);
    assert!(closed_by(&mut stream, deadline).await, "the connection is still open after the body timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let app = spawn_with(Backend::Sqlite, &[]).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    healthz_keep_alive(&mut stream).await;
    let deadline = Instant::now() + hookline::serve::HEADER_READ_TIMEOUT + Duration::from_secs(3);
    assert!(closed_by(&mut stream, deadline).await, "the idle connection is still open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_the_request_in_progress_and_closes_idle_connections() {
    hookline::install_tls_provider();
    let dir = TempDir::new();
    let database_url = fresh_database(Backend::Sqlite, &dir).await;
    let app = Application::build(test_config(&database_url, &[])).await.expect("Hookline starts");
    let addr = app.local_addr();
    let key = app.services().create_api_key(&Scope::Admin, "test").await.unwrap().key;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let mut idle = TcpStream::connect(addr).await.unwrap();
    healthz_keep_alive(&mut idle).await;
    let mut in_progress = start_slow_publish(addr, &key).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();

    let soon = Instant::now() + Duration::from_secs(1);
    assert!(closed_by(&mut idle, soon).await, "the idle connection is still open after shutdown");
    assert!(TcpStream::connect(addr).await.is_err(), "a new connection was accepted after shutdown");
    assert!(!server.is_finished(), "the server stopped before answering the request in progress");

    let rest = format!("{:<990}", "ype\": \"store\"}");
    in_progress.write_all(rest.as_bytes()).await.expect("the rest of the body is sent");
    let mut response = Vec::new();
    timeout(Duration::from_secs(5), in_progress.read_to_end(&mut response))
        .await
        .expect("the request in progress is answered")
        .expect("the response is read");
    assert!(response.starts_with(b"HTTP/1.1 "), "{}", String::from_utf8_lossy(&response));
    timeout(Duration::from_secs(2), server)
        .await
        .expect("the server stops once the request is answered")
        .expect("the server task ends")
        .expect("the server stops cleanly");
}
