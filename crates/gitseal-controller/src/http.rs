//! The controller's small HTTP servers. The public one serves the public keys
//! for `gitseal fetch-key` (`GET /v1/keys`, `GET /v1/key`), health
//! (`/healthz`, `/readyz`) and Prometheus metrics (`/metrics`); every
//! replica serves it, leader or not. Nothing secret is reachable here.
//!
//! It is reachable by anything that can reach the pod, so it is hardened
//! against clients that hold connections or send too much ([`Limits`]): a
//! cap on open connections (excess connections wait in the kernel's accept
//! queue), a deadline for each request's headers that also closes idle
//! keep-alive connections, a maximum connection age, a header size cap, and
//! no request bodies at all. Because one client can still fill the public
//! listener's connection cap, the kubelet's probes get their own listener
//! ([`Surface::Probes`], `--probe-listen`) serving `/healthz` and `/readyz`
//! only, with its own cap.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::health::Health;
use crate::keys::KeyStore;
use crate::metrics::Metrics;
use crate::Error;

/// What the handlers read.
#[derive(Clone, Debug)]
pub struct HttpState {
    /// The keys.
    pub keys: Arc<KeyStore>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Readiness.
    pub health: Arc<Health>,
}

/// Which routes a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// Keys, metrics and health: the Service's port.
    Public,
    /// `/healthz` and `/readyz` only: the kubelet's port.
    Probes,
}

/// Per-listener limits. Every route is a small GET, so they are tight.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, counted from the
    /// moment the server waits for them: on a new connection, and on a
    /// keep-alive connection after each response (so it is also the idle
    /// timeout).
    pub header_read_timeout: Duration,
    /// A connection is closed this long after it was accepted, whatever it
    /// does (bounds a client that stops reading a response).
    pub max_connection_age: Duration,
    /// Largest request head (request line and headers) in bytes; larger
    /// heads get `431`. hyper's minimum is 8192.
    pub max_header_bytes: usize,
}

impl Limits {
    /// Limits of the public listener.
    pub const PUBLIC: Limits = Limits {
        max_connections: 256,
        header_read_timeout: Duration::from_secs(5),
        max_connection_age: Duration::from_secs(60),
        max_header_bytes: 16 * 1024,
    };
    /// Limits of the probe listener (the kubelet makes one probe at a time).
    pub const PROBES: Limits = Limits {
        max_connections: 16,
        ..Limits::PUBLIC
    };
}

type Resp = Response<Full<Bytes>>;

const PLAIN: &str = "text/plain; charset=utf-8";

fn text(status: StatusCode, content_type: &'static str, body: String) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// Answers one request of the public surface. Public so tests can call it
/// without a socket. One match arm per route.
pub fn handle(state: &HttpState, method: &Method, path: &str) -> Resp {
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, PLAIN, "only GET\n".into());
    }
    match path {
        p if crate::web::is_page(p) => crate::web::page(),
        "/healthz" | "/readyz" => health(state, path),
        "/v1/keys" => {
            let keys = state.keys.current();
            match serde_json::to_string_pretty(&keys.public_keys()) {
                Ok(json) => text(StatusCode::OK, "application/json", json + "\n"),
                Err(_) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    PLAIN,
                    "encoding failed\n".into(),
                ),
            }
        }
        "/v1/key" => match state.keys.current().active() {
            Some(k) => text(
                StatusCode::OK,
                PLAIN,
                format!("{}\n", k.identity.recipient()),
            ),
            None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                PLAIN,
                "no sealing key yet\n".into(),
            ),
        },
        "/metrics" => text(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            state.metrics.render(),
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            PLAIN,
            "not found; try /v1/keys, /v1/key, /healthz, /readyz, /metrics\n".into(),
        ),
    }
}

/// Answers one request of the probe surface.
pub fn handle_probe(state: &HttpState, method: &Method, path: &str) -> Resp {
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, PLAIN, "only GET\n".into());
    }
    match path {
        "/healthz" | "/readyz" => health(state, path),
        _ => text(
            StatusCode::NOT_FOUND,
            PLAIN,
            "not found; this port serves /healthz and /readyz\n".into(),
        ),
    }
}

fn health(state: &HttpState, path: &str) -> Resp {
    if path == "/healthz" {
        return text(StatusCode::OK, PLAIN, "ok\n".into());
    }
    let reasons = state.health.not_ready();
    if reasons.is_empty() {
        text(StatusCode::OK, PLAIN, "ready\n".into())
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            PLAIN,
            format!("not ready:\n{}\n", reasons.join("\n")),
        )
    }
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).await.map_err(|source| Error::Io {
        context: format!("listening on {addr}"),
        source,
    })
}

/// Serves connections on `listener` with `limits` until the task is dropped.
pub async fn serve(listener: TcpListener, state: HttpState, surface: Surface, limits: Limits) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut warned_full: Option<tokio::time::Instant> = None;
    loop {
        // Take a slot before accepting: past the cap, clients wait in the
        // kernel's accept queue instead of costing a task each.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if warned_full.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!(
                        ?surface,
                        max_connections = limits.max_connections,
                        "HTTP connection limit reached; new connections wait"
                    );
                    warned_full = Some(tokio::time::Instant::now());
                }
                match permits.clone().acquire_owned().await {
                    Ok(p) => p,
                    // The semaphore is never closed.
                    Err(_) => return,
                }
            }
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accepting an HTTP connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc = service_fn(move |req: Request<Incoming>| {
                let resp = if !req.body().is_end_stream() {
                    // No route takes a body: refuse it unread; hyper closes
                    // the connection instead of draining it.
                    text(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        PLAIN,
                        "request bodies are not accepted\n".into(),
                    )
                } else {
                    match surface {
                        Surface::Public => handle(&state, req.method(), req.uri().path()),
                        Surface::Probes => handle_probe(&state, req.method(), req.uri().path()),
                    }
                };
                async move { Ok::<_, Infallible>(resp) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(limits.max_header_bytes.max(8192))
                .max_headers(64)
                .serve_connection(TokioIo::new(stream), svc);
            match tokio::time::timeout(limits.max_connection_age, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "HTTP connection ended with an error"),
                Err(_) => tracing::debug!("HTTP connection closed at its maximum age"),
            }
        });
    }
}
