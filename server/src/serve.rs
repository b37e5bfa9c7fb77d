//! Serving HTTP/1.1 on the listener: Hookline's own accept loop, so that no client can hold the
//! server with connections that never finish a request. This module owns the connection bound
//! (`HOOKLINE_MAX_CONNECTIONS`), the header, idle keep-alive and body timeouts, the client
//! address the router reads (`ConnectInfo`), graceful shutdown, and the open-file limit.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::{BoxError, Router};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

use crate::config::Config;

/// How long a client has to send a request's headers. Hyper starts this clock when a
/// connection opens and again when it goes idle after a response, so it is also how long an
/// idle keep-alive connection stays open.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How often, at most, the log says that connections are being refused.
const REFUSAL_WARNING_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most connections open at once (`HOOKLINE_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// How long a request's whole body may take to arrive after its headers
    /// (`HOOKLINE_BODY_TIMEOUT`).
    pub body_timeout: Duration,
}

impl Limits {
    pub fn from_config(cfg: &Config) -> Self {
        Limits { max_connections: cfg.max_connections, body_timeout: cfg.body_timeout }
    }
}

/// Raises this process's open-file soft limit to its hard limit, and returns the limit now in
/// force: every connection holds a file descriptor, and the usual soft limit (1,024) is below
/// `HOOKLINE_MAX_CONNECTIONS`.
pub fn raise_open_file_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, closes idle
/// connections, and returns once the requests in progress have been answered.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let connections = Arc::new(Connections::new(limits.max_connections));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT).keep_alive(true);
    // Every connection task holds a receiver: `closed()` then tells when the last one ended.
    let (stop_tx, stop_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    let mut last_refusal_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                on_accept_error(e, &connections).await;
                continue;
            }
        };
        let Some(connection) = connections.admit() else {
            // Every connection has a request in progress. Closing the newcomer at once keeps
            // the kernel's backlog from filling with connections nobody will answer.
            drop(stream);
            if last_refusal_warning.is_none_or(|at| at.elapsed() >= REFUSAL_WARNING_INTERVAL) {
                last_refusal_warning = Some(Instant::now());
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "every connection has a request in progress: refusing new connections"
                );
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = ConnectionService {
            router: router.clone(),
            connection: connection.clone(),
            peer,
            body_timeout: limits.body_timeout,
        };
        let conn = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(run_connection(conn, connection, connections.clone(), stop_rx.clone()));
    }
    drop(listener);
    let _ = stop_tx.send(());
    drop(stop_rx);
    stop_tx.closed().await;
    Ok(())
}

async fn on_accept_error(e: io::Error, connections: &Connections) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    // Most likely out of file descriptors (EMFILE): closing the longest idle connection frees
    // one, and the pause keeps this loop from spinning until it is closed.
    tracing::error!(error = %e, "cannot accept a connection");
    connections.evict_longest_idle();
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn run_connection(
    conn: http1::Connection<TokioIo<TcpStream>, ConnectionService>,
    connection: Arc<Connection>,
    connections: Arc<Connections>,
    mut stop: watch::Receiver<()>,
) {
    let mut conn = pin!(conn);
    let mut stopping = false;
    // Returning drops `conn`, which closes the socket.
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            () = connection.evicted.notified() => {
                tracing::debug!("closed an idle connection to make room for a new one");
                break;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                if connection.is_idle() {
                    break;
                }
                // Answer the request in progress, then close.
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    connections.remove(connection.id);
}

/// The open connections, so that the bound can be kept by closing the longest idle one.
struct Connections {
    max: usize,
    open: Mutex<OpenConnections>,
}

#[derive(Default)]
struct OpenConnections {
    next_id: u64,
    by_id: HashMap<u64, Arc<Connection>>,
}

impl Connections {
    fn new(max: usize) -> Self {
        Connections { max, open: Mutex::default() }
    }

    fn open(&self) -> MutexGuard<'_, OpenConnections> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a new connection in, closing the longest idle one if the bound is reached;
    /// `None` when every open connection has a request in progress.
    fn admit(&self) -> Option<Arc<Connection>> {
        let mut open = self.open();
        if open.by_id.len() >= self.max && !evict_longest_idle(&mut open) {
            return None;
        }
        open.next_id += 1;
        let connection = Arc::new(Connection::new(open.next_id));
        open.by_id.insert(connection.id, connection.clone());
        Some(connection)
    }

    fn evict_longest_idle(&self) -> bool {
        evict_longest_idle(&mut self.open())
    }

    fn remove(&self, id: u64) {
        self.open().by_id.remove(&id);
    }
}

/// Closes the connection that has waited longest without a request in progress: an idle
/// keep-alive connection, or one whose request headers have not all arrived.
fn evict_longest_idle(open: &mut OpenConnections) -> bool {
    let longest_idle =
        open.by_id.values().filter_map(|c| c.idle_since().map(|since| (since, c.id))).min().map(|(_, id)| id);
    let Some(connection) = longest_idle.and_then(|id| open.by_id.remove(&id)) else {
        return false;
    };
    connection.evicted.notify_one();
    true
}

struct Connection {
    id: u64,
    activity: Mutex<Activity>,
    /// Told when the connection must close to make room for another.
    evicted: Notify,
}

struct Activity {
    requests_in_progress: u32,
    /// Since when no request has been in progress (meaningless while one is).
    idle_since: Instant,
}

impl Connection {
    fn new(id: u64) -> Self {
        Connection {
            id,
            activity: Mutex::new(Activity { requests_in_progress: 0, idle_since: Instant::now() }),
            evicted: Notify::new(),
        }
    }

    fn activity(&self) -> MutexGuard<'_, Activity> {
        self.activity.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn idle_since(&self) -> Option<Instant> {
        let activity = self.activity();
        (activity.requests_in_progress == 0).then_some(activity.idle_since)
    }

    fn is_idle(&self) -> bool {
        self.idle_since().is_some()
    }

    fn request_started(self: &Arc<Self>) -> RequestInProgress {
        self.activity().requests_in_progress += 1;
        RequestInProgress(self.clone())
    }
}

/// A request counts as in progress from its headers until its response is sent: dropping
/// this marks the connection idle again.
struct RequestInProgress(Arc<Connection>);

impl Drop for RequestInProgress {
    fn drop(&mut self) {
        let mut activity = self.0.activity();
        activity.requests_in_progress = activity.requests_in_progress.saturating_sub(1);
        if activity.requests_in_progress == 0 {
            activity.idle_since = Instant::now();
        }
    }
}

/// Runs the router for one connection's requests.
#[derive(Clone)]
struct ConnectionService {
    router: Router,
    connection: Arc<Connection>,
    peer: SocketAddr,
    body_timeout: Duration,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_progress = self.connection.request_started();
        let deadline = tokio::time::Instant::now() + self.body_timeout;
        let mut request =
            request.map(|body| BodyWithDeadline { body, deadline, timeout: self.body_timeout, sleep: None });
        // The sign-in throttle and the logs read the client's address from here.
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let router = self.router.clone();
        Box::pin(async move {
            let response = router.oneshot(request).await?;
            Ok(response.map(|body| ResponseBody { body, _in_progress: in_progress }))
        })
    }
}

/// A request body that fails once its deadline passes, so a client that stops sending half way
/// is answered and dropped instead of holding the connection.
struct BodyWithDeadline {
    body: Incoming,
    deadline: tokio::time::Instant,
    timeout: Duration,
    /// Started on the first wait, so that bodies nobody reads cost no timer.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for BodyWithDeadline {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(BoxError::from)));
        }
        let deadline = this.deadline;
        let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            let message = format!("the request body did not arrive within {:?}", this.timeout);
            return Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::TimedOut, message).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The router's response body, holding the request in progress until it has been sent.
struct ResponseBody {
    body: axum::body::Body,
    _in_progress: RequestInProgress,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn the_router_reads_the_clients_address() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new()
            .route("/", get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }));
        let limits = Limits { max_connections: 16, body_timeout: Duration::from_secs(30) };
        tokio::spawn(serve(listener, router, limits, std::future::pending()));

        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut response = String::new();
        client.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with(&client.local_addr().unwrap().to_string()), "{response}");
    }
}
