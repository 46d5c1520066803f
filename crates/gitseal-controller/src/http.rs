//! The controller's one small HTTP server: public keys for `gitseal
//! fetch-key` (`GET /v1/keys`, `GET /v1/key`), health (`/healthz`,
//! `/readyz`) and Prometheus metrics (`/metrics`). Every replica serves it,
//! leader or not. Nothing secret is reachable here.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

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
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    resp
}

/// Answers one request. Public so tests can call it without a socket.
pub fn handle(state: &HttpState, method: &Method, path: &str) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, PLAIN, "only GET\n".into());
    }
    match path {
        p if crate::web::is_page(p) => crate::web::page(),
        "/healthz" => text(StatusCode::OK, PLAIN, "ok\n".into()),
        "/readyz" => {
            if state.keys.is_ready() {
                text(StatusCode::OK, PLAIN, "ready\n".into())
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    PLAIN,
                    "sealing keys not loaded yet\n".into(),
                )
            }
        }
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

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).await.map_err(|source| Error::Io {
        context: format!("listening on {addr}"),
        source,
    })
}

/// Serves connections on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, state: HttpState) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accepting an HTTP connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let resp = handle(&state, req.method(), req.uri().path());
                async move { Ok::<_, Infallible>(resp) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
}
