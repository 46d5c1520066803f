//! A man in the middle between one controller (or one replica) and the fake
//! API: it tags each client, records every request with the Lease holder at
//! the moment the fake handled it, and can hold a request forever (an API
//! server or proxy that never answers), answer it with a status
//! (e.g. 404 for a CRD that is not installed, 409 on a Lease renewal), or
//! end the open watches. Used in-process (a kube client per replica) and
//! over HTTP for the real binary.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use gitseal_crypto::Identity;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, BodyStream, Full, StreamBody};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::common::{add_key, ready, sealed_secret};
use crate::fake_api::{FakeApi, FakeBody};
use crate::process::{serve_http_with, write_kubeconfig};

/// Namespace and name of the Lease whose holder is recorded.
pub const LEASE_NS: &str = "gitseal-system";
/// Name of the Lease.
pub const LEASE_NAME: &str = "gitseal-controller";

/// What to do with a matching request.
#[derive(Clone, Copy, Debug)]
pub enum Action {
    /// Never answer (the client has to give up).
    Hold,
    /// Answer with this status (a Kubernetes `Status` body).
    Status(u16),
}

/// One rule: requests of `tag` (any when None) with `method` (any when
/// None) whose `METHOD path?query` line contains `contains`.
#[derive(Clone, Debug)]
pub struct Rule {
    pub tag: Option<&'static str>,
    pub method: Option<Method>,
    pub contains: &'static str,
    pub action: Action,
    /// How many requests it applies to; None = until removed.
    pub times: Option<u32>,
}

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub tag: String,
    pub method: Method,
    /// `path?query`.
    pub line: String,
    /// The Lease's holder when the fake handled it (after any delay).
    pub holder: Option<String>,
    /// Which action applied, if any.
    pub action: Option<Action>,
    pub at: Instant,
}

impl Seen {
    /// A write to anything but the Lease.
    pub fn is_work_write(&self) -> bool {
        self.method != Method::GET && !self.line.contains("/leases")
    }

    /// A LIST (not a WATCH) of `plural`.
    pub fn is_list_of(&self, plural: &str) -> bool {
        self.method == Method::GET
            && self.line.contains(&format!("/{plural}?"))
            && !self.line.contains("watch=true")
    }

    /// A WATCH of anything.
    pub fn is_watch(&self) -> bool {
        self.method == Method::GET && self.line.contains("watch=true")
    }
}

#[derive(Default)]
struct Inner {
    rules: Vec<(u64, Rule)>,
    next_id: u64,
    seen: Vec<Seen>,
}

/// The interposer. Cheap to clone.
#[derive(Clone)]
pub struct Interposer {
    fake: FakeApi,
    inner: Arc<Mutex<Inner>>,
    /// Bumped to end every open watch.
    cut: Arc<watch::Sender<u64>>,
}

impl Interposer {
    pub fn new(fake: &FakeApi) -> Self {
        Interposer {
            fake: fake.clone(),
            inner: Arc::default(),
            cut: Arc::new(watch::Sender::new(0)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Adds a rule; returns its id for [`Interposer::remove`].
    pub fn add(&self, rule: Rule) -> u64 {
        let mut g = self.lock();
        g.next_id += 1;
        let id = g.next_id;
        g.rules.push((id, rule));
        id
    }

    /// Removes a rule.
    pub fn remove(&self, id: u64) {
        self.lock().rules.retain(|(i, _)| *i != id);
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// Ends every watch open now (as an API server does when a CRD is
    /// deleted or it restarts).
    pub fn cut_watches(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    fn holder(&self) -> Option<String> {
        self.fake
            .get("leases", LEASE_NS, LEASE_NAME)
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
    }

    /// Serves one request from `tag`.
    pub async fn handle<B>(&self, tag: &str, req: Request<B>) -> Response<FakeBody>
    where
        B: hyper::body::Body,
    {
        let method = req.method().clone();
        let line = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let full_line = format!("{method} {line}");
        let action = {
            let mut g = self.lock();
            let hit = g.rules.iter_mut().find(|(_, r)| {
                r.tag.is_none_or(|t| t == tag)
                    && r.method.as_ref().is_none_or(|m| *m == method)
                    && full_line.contains(r.contains)
                    && r.times != Some(0)
            });
            let action = hit.map(|(_, r)| {
                if let Some(n) = r.times.as_mut() {
                    *n -= 1;
                }
                r.action
            });
            g.rules.retain(|(_, r)| r.times != Some(0));
            action
        };
        let record = |this: &Self| {
            this.lock().seen.push(Seen {
                tag: tag.to_string(),
                method: method.clone(),
                line: line.clone(),
                holder: this.holder(),
                action,
                at: Instant::now(),
            });
        };
        match action {
            Some(Action::Hold) => {
                record(self);
                futures::future::pending::<()>().await;
                unreachable!("pending() never resolves")
            }
            Some(Action::Status(code)) => {
                record(self);
                return status(code);
            }
            None => {}
        }
        // The fake handles the request synchronously once called: the holder
        // recorded right before is the holder when it is handled.
        record(self);
        let watch = line.contains("watch=true");
        let resp = self.fake.handle(req).await;
        if !watch {
            return resp;
        }
        // Watches end when `cut_watches` is called.
        let mut cut = self.cut.subscribe();
        cut.mark_unchanged();
        let (parts, body) = resp.into_parts();
        let frames = BodyStream::new(body).take_until(async move {
            let _ = cut.changed().await;
        });
        Response::from_parts(parts, StreamBody::new(frames).boxed_unsync())
    }

    /// A kube client for replica `tag`, without any timeout of its own.
    pub fn client(&self, tag: &'static str) -> kube::Client {
        let this = self.clone();
        let svc = tower::service_fn(move |req: Request<kube::client::Body>| {
            let this = this.clone();
            async move { Ok::<_, Infallible>(this.handle(tag, req).await) }
        });
        kube::Client::new(svc, "default")
    }

    /// A kube client for replica `tag` whose requests are bounded by the
    /// controller's own timeout layer.
    pub fn client_with_timeout(&self, tag: &'static str, request: Duration) -> kube::Client {
        let this = self.clone();
        let svc = tower::service_fn(move |req: Request<kube::client::Body>| {
            let this = this.clone();
            async move { Ok::<_, Infallible>(this.handle(tag, req).await) }
        });
        let svc = tower::ServiceBuilder::new()
            .layer(gitseal_controller::kube_client::TimeoutLayer::new(request))
            .service(svc);
        kube::Client::new(svc, "default")
    }

    /// Serves the fake over HTTP/1.1 on 127.0.0.1 (requests tagged `http`)
    /// and writes a kubeconfig for it into `dir`; returns its path.
    pub async fn serve_http(&self, dir: &Path) -> PathBuf {
        let this = self.clone();
        let addr = serve_http_with(move |req| {
            let this = this.clone();
            async move { this.handle("http", req).await }
        })
        .await;
        write_kubeconfig(dir, addr)
    }
}

/// A fake API holding one sealing key, and an interposer in front of it.
pub fn keyed_fake() -> (FakeApi, Identity, Interposer) {
    let fake = FakeApi::new();
    let id = Identity::generate();
    add_key(&fake, &id, 60);
    let ip = Interposer::new(&fake);
    (fake, id, ip)
}

/// The first `times` writes (PATCH) whose path contains `path` are never answered.
#[allow(dead_code)]
pub fn hold_writes_of(path: &'static str, times: u32) -> Rule {
    Rule {
        tag: None,
        method: Some(Method::PATCH),
        contains: path,
        action: Action::Hold,
        times: Some(times),
    }
}

/// Holds (never answers) the first `times` creates whose request line
/// contains `path` (a new object's Secret is created, not applied).
pub fn hold_creates_of(path: &'static str, times: u32) -> Rule {
    Rule {
        tag: None,
        method: Some(Method::POST),
        contains: path,
        action: Action::Hold,
        times: Some(times),
    }
}

/// Stores SealedSecret `ns/name` with one item `k` = `v` sealed to `id`.
pub fn put_sealed(fake: &FakeApi, id: &Identity, ns: &str, name: &str) {
    fake.upsert(
        "sealedsecrets",
        ns,
        sealed_secret(ns, name, &[("k", b"v")], &[id.recipient().clone()]),
    );
}

/// `Some` once SealedSecret `ns/name` is Ready with reason Synced.
pub fn synced(fake: &FakeApi, ns: &str, name: &str) -> Option<()> {
    fake.get("sealedsecrets", ns, name)
        .and_then(|o| ready(&o))
        .filter(|r| r.1 == "Synced")
        .map(|_| ())
}

fn status(code: u16) -> Response<FakeBody> {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("injected {code}"),
        "reason": match code {
            403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            _ => "InternalError",
        },
        "code": code,
    });
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).boxed_unsync());
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// Prints a measured figure next to the test's output (`--nocapture`).
pub fn report(line: &str) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{line}");
    }
}
