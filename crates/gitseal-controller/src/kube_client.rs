//! The Kubernetes client the controller talks through, with every request
//! bounded in time.
//!
//! kube 5's `Config` has three socket-level timeouts (hyper-timeout's
//! connector): `connect_timeout` (30 s by default), `write_timeout` (295 s)
//! and `read_timeout`, which is off by default and must stay off here: it is
//! the longest a socket may go without receiving a byte, and a watch is a
//! long poll that can rightly be silent for its whole `timeoutSeconds` (290 s
//! by default); a short read timeout would tear every quiet watch down (and
//! with pooled connections it also counts the time a connection sat idle).
//! kube-runtime's watcher bounds a watch stream by its own idle timeout
//! (`timeoutSeconds` + 5 s) instead. With nothing else, a GET or a Lease
//! renewal that the API server (or a proxy) holds waits forever: one held GET
//! blocked an object for 60 s, a held renewal kept a stale leader.
//!
//! So [`client_from_config`] adds one tower layer ([`TimeoutLayer`]) in
//! front of kube's stack: every request must produce its response headers
//! within the request timeout; an ordinary request must also deliver its
//! whole body within it, and a watch (`watch=true`) its body within its own
//! `timeoutSeconds` plus the request timeout (the API server ends a watch
//! at `timeoutSeconds`). A timed-out request fails with [`TimedOut`] and the
//! caller retries as for any API error (reconcile backoff, watcher backoff,
//! the next lease attempt).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// Boxed error of the layer.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Timeouts of API requests.
#[derive(Clone, Copy, Debug)]
pub struct ApiTimeouts {
    /// Longest time for one request (headers and body; for a watch, the
    /// headers, and the body beyond its `timeoutSeconds`).
    pub request: Duration,
    /// Longest time to open a connection (capped by `request`).
    pub connect: Duration,
}

impl Default for ApiTimeouts {
    fn default() -> Self {
        ApiTimeouts {
            request: Duration::from_secs(30),
            connect: Duration::from_secs(10),
        }
    }
}

/// A kube client for `config` with every request bounded by `timeouts`.
pub fn client_from_config(
    mut config: kube::Config,
    timeouts: ApiTimeouts,
) -> Result<kube::Client, kube::Error> {
    config.connect_timeout = Some(timeouts.connect.min(timeouts.request));
    config.write_timeout = Some(timeouts.request);
    // Off on purpose (see the module docs): watches are long polls.
    config.read_timeout = None;
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&TimeoutLayer::new(timeouts.request))
        .build())
}

/// A request that did not finish in time.
#[derive(Debug, thiserror::Error)]
#[error("the Kubernetes API server did not send {part} within {:.1}s", .after.as_secs_f64())]
pub struct TimedOut {
    part: &'static str,
    after: Duration,
}

/// Adds [`Timeout`] to a service.
#[derive(Clone, Copy, Debug)]
pub struct TimeoutLayer {
    request: Duration,
}

impl TimeoutLayer {
    /// Bounds every request by `request` (watches: see the module docs).
    pub fn new(request: Duration) -> Self {
        TimeoutLayer { request }
    }
}

impl<S> tower::Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;
    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout {
            inner,
            request: self.request,
        }
    }
}

/// The service made by [`TimeoutLayer`].
#[derive(Clone, Debug)]
pub struct Timeout<S> {
    inner: S,
    request: Duration,
}

/// `Some(timeoutSeconds)` for a watch request (`None` inside when it has none).
fn watch_timeout(query: Option<&str>) -> Option<Option<u64>> {
    let mut watch = false;
    let mut secs = None;
    for pair in query.unwrap_or_default().split('&') {
        match pair.split_once('=') {
            Some(("watch", "true" | "1")) => watch = true,
            Some(("timeoutSeconds", v)) => secs = v.parse().ok(),
            _ => {}
        }
    }
    watch.then_some(secs)
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for Timeout<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    ResBody: Body + Unpin,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<DeadlineBody<ResBody>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let request = self.request;
        let start = Instant::now();
        let body_limit = match watch_timeout(req.uri().query()) {
            None => Some(request),
            Some(Some(secs)) => Some(Duration::from_secs(secs) + request),
            Some(None) => None,
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = match tokio::time::timeout_at(start + request, fut).await {
                Ok(r) => r.map_err(Into::into)?,
                Err(_) => {
                    return Err(TimedOut {
                        part: "response headers",
                        after: request,
                    }
                    .into())
                }
            };
            Ok(resp.map(|inner| DeadlineBody {
                inner,
                sleep: body_limit.map(|d| Box::pin(tokio::time::sleep_until(start + d))),
                after: body_limit.unwrap_or_default(),
                expired: false,
            }))
        })
    }
}

/// A response body that fails once its deadline passes.
pub struct DeadlineBody<B> {
    inner: B,
    sleep: Option<Pin<Box<Sleep>>>,
    after: Duration,
    expired: bool,
}

impl<B> std::fmt::Debug for DeadlineBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadlineBody")
            .field("after", &self.after)
            .field("expired", &self.expired)
            .finish_non_exhaustive()
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        if let Some(sleep) = this.sleep.as_mut() {
            if sleep.as_mut().poll(cx).is_ready() {
                this.expired = true;
                return Poll::Ready(Some(Err(TimedOut {
                    part: "the whole response body",
                    after: this.after,
                }
                .into())));
            }
        }
        Pin::new(&mut this.inner)
            .poll_frame(cx)
            .map(|f| f.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::watch_timeout;

    #[test]
    fn watches_are_told_apart_by_their_query() {
        assert_eq!(watch_timeout(None), None);
        assert_eq!(watch_timeout(Some("limit=500")), None);
        assert_eq!(
            watch_timeout(Some(
                "&watch=true&timeoutSeconds=290&allowWatchBookmarks=true"
            )),
            Some(Some(290))
        );
        assert_eq!(watch_timeout(Some("watch=1")), Some(None));
        assert_eq!(watch_timeout(Some("watch=false&timeoutSeconds=5")), None);
        // A list with a server-side timeout is still an ordinary request.
        assert_eq!(watch_timeout(Some("timeoutSeconds=5")), None);
    }
}
