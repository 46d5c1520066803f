//! Wires the controller together: keys (load, watch, rotate, publish), the
//! HTTP servers, the CRD gate, leader election and the kube-runtime
//! `Controller`. Followers keep their key set current and serve HTTP; only
//! the leader reconciles, makes keys and publishes the ConfigMap, and only
//! once the SealedSecret CRD is served. On shutdown the leader's work stops
//! first, then the Lease is released, so the next replica leads at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use gitseal_manifest::SealedSecret;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::runtime::{reflector, Controller};
use kube::{Api, Client};
use tokio::sync::watch;

use crate::hash::DataHasher;
use crate::health::{self, Health};
use crate::http::{HttpState, Limits, Surface};
use crate::keys::{self, KeyStore};
use crate::leader::{Elector, LeaderConfig};
use crate::metrics::Metrics;
use crate::reconcile::{self, Context, Timing};
use crate::shard::{self, Scope};
use crate::sources::{NoVault, VaultResolver};
use crate::Error;

/// SealedSecrets per page of a (re)list. A page is read and decoded whole
/// before its objects are stripped for the cache, so with objects near the
/// 1 MiB limit the page size bounds the peak memory of a relist: 200 such
/// objects peaked at 337 MiB with pages of 100 and 74 MiB with pages of 10
/// (docs/performance.md); 10,000 small objects then take 1,000 list calls.
const LIST_PAGE: u32 = 10;

/// Controller settings (the `run` flags).
#[derive(Clone, Debug)]
pub struct Config {
    /// The controller's namespace (keys, hash key, ConfigMap, Lease).
    pub namespace: String,
    /// Where the HTTP server listens; `None` for no server.
    pub listen: Option<SocketAddr>,
    /// Where the probe-only HTTP server (`/healthz`, `/readyz`) listens;
    /// `None` for none.
    pub probe_listen: Option<SocketAddr>,
    /// Limits of the HTTP server.
    pub http_limits: Limits,
    /// Limits of the probe server.
    pub probe_limits: Limits,
    /// New key every period; zero = never.
    pub key_rotation_period: Duration,
    /// Lease-based leader election; `None` = always lead (single replica).
    pub leader: Option<LeaderConfig>,
    /// Retry timing.
    pub timing: Timing,
    /// Reconciles running at once (0 = unbounded).
    pub concurrency: u16,
    /// Reporting instance for Events (the pod name).
    pub instance: Option<String>,
    /// Restart opted-in workloads when a Secret's data changes
    /// ([`crate::rollout`]); off by default (it needs list, watch and patch on
    /// workloads).
    pub rollout: bool,
    /// Reconcile SealedSecrets in the controller's own namespace.
    pub allow_controller_namespace: bool,
    /// Write Secrets of type `kubernetes.io/service-account-token`.
    pub allow_service_account_tokens: bool,
    /// The SealedSecrets this instance owns ([`crate::shard`]).
    pub scope: Scope,
}

impl Config {
    /// Defaults for `namespace`.
    pub fn new(namespace: impl Into<String>) -> Self {
        Config {
            namespace: namespace.into(),
            listen: None,
            probe_listen: None,
            http_limits: Limits::PUBLIC,
            probe_limits: Limits::PROBES,
            key_rotation_period: Duration::from_secs(720 * 3600),
            leader: None,
            timing: Timing::default(),
            concurrency: 16,
            instance: None,
            rollout: false,
            allow_controller_namespace: false,
            allow_service_account_tokens: false,
            scope: Scope::All,
        }
    }
}

/// Handles to a running controller, for tests and the binary.
#[derive(Clone, Debug)]
pub struct Handles {
    /// The keys.
    pub keys: Arc<KeyStore>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Whether this replica leads.
    pub leading: watch::Receiver<bool>,
    /// Where the HTTP server listens, when it does.
    pub http_addr: Option<SocketAddr>,
    /// Where the probe server listens, when it does.
    pub probe_addr: Option<SocketAddr>,
    /// Readiness (what `/readyz` reports).
    pub health: Arc<Health>,
}

/// How long a shutting-down leader tries to release the Lease.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the controller; returns the handles and the future that runs it
/// until `shutdown` resolves.
pub async fn start(
    client: Client,
    config: Config,
    vault: Option<Arc<dyn VaultResolver>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(Handles, impl std::future::Future<Output = ()> + Send), Error> {
    crate::install_crypto_provider();
    let keys_store = Arc::new(KeyStore::new());
    let mut metrics = Metrics::new();
    if let Some(collector) = vault.as_ref().and_then(|v| v.metrics_collector()) {
        metrics.register_collector(collector);
    }
    let metrics = Arc::new(metrics);
    let secrets_ns: Api<Secret> = Api::namespaced(client.clone(), &config.namespace);
    let hasher = Arc::new(DataHasher::load_or_create(&secrets_ns).await?);

    let health = Arc::new(Health::new(keys_store.clone()));
    let state = HttpState {
        keys: keys_store.clone(),
        metrics: metrics.clone(),
        health: health.clone(),
    };
    let mut servers = Vec::new();
    let mut http_addr = None;
    let mut probe_addr = None;
    for (addr, surface, limits, bound) in [
        (
            config.listen,
            Surface::Public,
            config.http_limits,
            &mut http_addr,
        ),
        (
            config.probe_listen,
            Surface::Probes,
            config.probe_limits,
            &mut probe_addr,
        ),
    ] {
        if let Some(addr) = addr {
            let listener = crate::http::bind(addr).await?;
            *bound = listener.local_addr().ok();
            servers.push(crate::http::serve(listener, state.clone(), surface, limits));
        }
    }

    let (lead_tx, lead_rx) = watch::channel(config.leader.is_none());
    let handles = Handles {
        keys: keys_store.clone(),
        metrics: metrics.clone(),
        leading: lead_rx.clone(),
        http_addr,
        probe_addr,
        health: health.clone(),
    };

    let vault: Arc<dyn VaultResolver> = vault.unwrap_or_else(|| Arc::new(NoVault));
    let reporter = Reporter {
        controller: crate::FIELD_MANAGER.to_string(),
        instance: config.instance.clone(),
    };
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            keys_store.clone(),
            hasher,
            vault,
            reporter.clone(),
            metrics.clone(),
            config.timing,
        )
        .with_rollout(config.rollout)
        .allowing_service_account_tokens(config.allow_service_account_tokens)
        .refusing_namespace((!config.allow_controller_namespace).then(|| config.namespace.clone())),
    );

    let run = async move {
        let key_watch = keys::watch_keys(secrets_ns.clone(), keys_store.clone());
        let keys_gauge = announce_keys(
            keys_store.clone(),
            metrics.clone(),
            lead_rx.clone(),
            client.clone(),
            reporter,
            config.namespace.clone(),
        );
        // A shard with a namespace list may only read its namespaces (a
        // Role in each): probe in the first.
        let crd_probe = match &config.scope {
            Scope::Namespaces(set) => match set.iter().next() {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            },
            _ => Api::all(client.clone()),
        };
        let crd_gate = health.run_crd_gate(crd_probe);
        let election = async {
            match config.leader.clone() {
                Some(lc) => {
                    let api: Api<Lease> = Api::namespaced(client.clone(), &config.namespace);
                    Elector::new(api, lc).run(lead_tx).await;
                }
                None => futures::future::pending::<()>().await,
            }
        };
        let leader_work = lead_loop(client.clone(), config.clone(), ctx, health.clone(), lead_rx);
        // The servers run until dropped; with none, this never resolves either.
        let http = async {
            futures::future::join_all(servers).await;
            futures::future::pending::<()>().await
        };
        tokio::select! {
            () = shutdown => tracing::info!("shutting down"),
            () = key_watch => tracing::warn!("key watch ended"),
            () = keys_gauge => {},
            () = crd_gate => {},
            () = election => {},
            () = leader_work => {},
            () = http => {},
        }
        // Every future above is dropped now: reconciles have stopped and the
        // election no longer renews. Hand the Lease over.
        if let Some(lc) = config.leader.clone() {
            release_lease(Api::namespaced(client.clone(), &config.namespace), lc).await;
        }
    };
    Ok((handles, run))
}

/// Releases the Lease if this replica holds it, within [`RELEASE_TIMEOUT`].
async fn release_lease(api: Api<Lease>, lc: LeaderConfig) {
    let identity = lc.identity.clone();
    match tokio::time::timeout(RELEASE_TIMEOUT, Elector::new(api, lc).release()).await {
        Ok(Ok(true)) => tracing::info!(%identity, "released the Lease"),
        Ok(Ok(false)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "releasing the Lease failed; the next replica takes over when it expires")
        }
        Err(_) => tracing::warn!(
            after_secs = RELEASE_TIMEOUT.as_secs(),
            "releasing the Lease timed out; the next replica takes over when it expires"
        ),
    }
}

/// Keeps the keys gauge current and announces every change of the loaded
/// keys after the first load: an info log line with the key ids and the
/// `gitseal_sealing_key_changes_total` counter on every replica, and, from
/// the leader, an Event on each new key's Secret. A key that appears
/// without a planned rotation or import is how a planted key would show.
async fn announce_keys(
    store: Arc<KeyStore>,
    metrics: Arc<Metrics>,
    leading: watch::Receiver<bool>,
    client: Client,
    reporter: Reporter,
    namespace: String,
) {
    let mut rx = store.subscribe();
    let mut previous: Option<Arc<keys::KeySet>> = None;
    loop {
        let current = store.current();
        metrics.set_keys_loaded(current.len());
        // The first load is the baseline (a key generated on first start
        // is then announced too), kept by the store: a key added before
        // this task first looks is still announced.
        if previous.is_none() {
            previous = store.first_loaded();
        }
        if store.is_loaded() {
            if let Some(before) = previous.as_ref() {
                let changes = current.changes_from(before);
                if !changes.is_empty() {
                    metrics.key_changes(&changes);
                    let leads = *leading.borrow();
                    announce(&changes, leads, &client, &reporter, &namespace).await;
                }
            }
            previous = Some(current);
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn announce(
    changes: &keys::KeyChanges,
    leading: bool,
    client: &Client,
    reporter: &Reporter,
    namespace: &str,
) {
    let active = changes.activated.as_ref().map(|(_, now)| now.as_str());
    for (key_id, secret) in &changes.added {
        let is_active = active == Some(key_id.as_str());
        tracing::info!(key_id = %key_id, secret = %secret, active = is_active, "new sealing key loaded");
        if !leading || secret.is_empty() {
            continue;
        }
        let note = if is_active {
            format!("sealing key {key_id} was loaded and is now the active key: new values are sealed to it")
        } else {
            format!("sealing key {key_id} was loaded (for opening; not the active key)")
        };
        let event = kube::runtime::events::Event {
            type_: kube::runtime::events::EventType::Normal,
            reason: "SealingKeyAdded".to_string(),
            note: Some(note),
            action: "LoadKey".to_string(),
            secondary: None,
        };
        let reference = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some("v1".to_string()),
            kind: Some("Secret".to_string()),
            name: Some(secret.clone()),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        };
        let recorder = kube::runtime::events::Recorder::new(client.clone(), reporter.clone());
        if let Err(e) = recorder.publish(&event, &reference).await {
            tracing::warn!(error = %e, "publishing a key event failed");
        }
    }
    for key_id in &changes.removed {
        tracing::info!(key_id = %key_id, "sealing key no longer loaded");
    }
    if let Some((before, now)) = &changes.activated {
        tracing::info!(
            from = before.as_deref().unwrap_or("none"),
            to = %now,
            "active sealing key changed"
        );
    }
}

/// Runs the leader's work (controller, key rotation, publishing) whenever
/// `leading` is true; stops it when leadership is lost.
async fn lead_loop(
    client: Client,
    config: Config,
    ctx: Arc<Context>,
    health: Arc<Health>,
    mut leading: watch::Receiver<bool>,
) {
    loop {
        while !*leading.borrow_and_update() {
            if leading.changed().await.is_err() {
                return;
            }
        }
        ctx.metrics.set_leader(true);
        let work = leader_work(client.clone(), config.clone(), ctx.clone(), health.clone());
        let lost = async {
            loop {
                if leading.changed().await.is_err() {
                    futures::future::pending::<()>().await;
                }
                if !*leading.borrow() {
                    return;
                }
            }
        };
        tokio::select! {
            () = work => {},
            () = lost => tracing::info!("lost leadership; stopping reconciles"),
        }
        ctx.metrics.set_leader(false);
        // The next term starts afresh: retry counts, Event fingerprints and
        // the retired-key gauge describe this term only.
        ctx.forget_all();
        ctx.secrets.stop();
        ctx.workloads.stop();
    }
}

/// The watches behind the controller of one leadership term.
struct Watches {
    /// SealedSecrets that changed (into the cache as they arrive).
    sealed: BoxStream<'static, Result<SealedSecret, watcher::Error>>,
    /// Reconciles from the managed-Secret index.
    managed: BoxStream<'static, ObjectRef<SealedSecret>>,
    /// Reconciles from the metadata-only Secret watch.
    triggers: BoxStream<'static, ObjectRef<SealedSecret>>,
    /// What keeps a shard's namespace set current (polled with the rest).
    follow: BoxStream<'static, ()>,
}

/// The metadata-only Secret watch triggers on what the managed-Secret
/// index may not have seen (a Secret that vanished across its relist, an
/// owner reference or label removed): such a reconcile reads the Secret.
fn distrusting(
    ctx: &Arc<Context>,
    triggers: BoxStream<'static, ObjectRef<SealedSecret>>,
) -> BoxStream<'static, ObjectRef<SealedSecret>> {
    let index = ctx.secrets.clone();
    triggers
        .inspect(move |target| {
            index.distrust(
                target.namespace.as_deref().unwrap_or_default(),
                &target.name,
            );
        })
        .boxed()
}

fn watches(
    client: &Client,
    scope: &Scope,
    ctx: &Arc<Context>,
    writer: reflector::store::Writer<SealedSecret>,
) -> Watches {
    let forget = ctx.clone();
    let cache = shard::SealedCache {
        writer,
        fresh: ctx.fresh.clone(),
        gone: Box::new(move |obj| forget.forget(obj)),
    };
    if scope.is_all() {
        // One watch of every namespace (the namespace "").
        let (tx, set) = watch::channel(Some(std::collections::BTreeSet::from([String::new()])));
        let sealed = shard::sealed_secrets(client.clone(), set, cache, LIST_PAGE).boxed();
        // Keeps the namespace set's sender alive while polled.
        let follow = futures::stream::unfold(tx, |tx| async move {
            futures::future::pending::<()>().await;
            Some(((), tx))
        });
        // Rollout on change: the opted-in workloads ([`crate::rollout`]).
        let follow = if ctx.rollout {
            futures::stream::select(follow, ctx.workloads.clone().watch(client.clone(), None))
                .boxed()
        } else {
            follow.boxed()
        };
        return Watches {
            sealed,
            // The managed Secrets, reduced to fingerprints: reconcile reads
            // them from here instead of one GET per object, and a managed
            // Secret changed or deleted by someone else reconciles its
            // SealedSecret ([`crate::secret_index`]).
            managed: ctx
                .secrets
                .clone()
                .watch(Api::all(client.clone()), None)
                .boxed(),
            // Secrets, metadata-only and uncached: an owned Secret changed,
            // deleted or vanished across a relist, or a Secret asking to be
            // adopted, maps to its SealedSecret ([`crate::triggers`]).
            triggers: distrusting(
                ctx,
                crate::triggers::secret_triggers(client.clone()).boxed(),
            ),
            follow,
        };
    }
    // A shard: the same watches, one per namespace of the shard.
    let (set, follow) = shard::namespaces(client.clone(), scope);
    let sealed = shard::sealed_secrets(client.clone(), set.clone(), cache, LIST_PAGE).boxed();
    let (c, index) = (client.clone(), ctx.secrets.clone());
    let left = ctx.secrets.clone();
    let managed = shard::per_namespace(set.clone(), move |ns| {
        index
            .clone()
            .watch(Api::namespaced(c.clone(), ns), Some(ns.to_string()))
    })
    .filter_map(move |item| {
        futures::future::ready(match item {
            shard::NsItem::Item(_, target) => Some(target),
            shard::NsItem::Left(ns) => {
                left.left(&ns);
                None
            }
        })
    })
    .boxed();
    let c = client.clone();
    let triggers = distrusting(
        ctx,
        shard::merged(set.clone(), move |ns| {
            crate::triggers::secret_triggers_in(Api::namespaced(c.clone(), ns))
        }),
    );
    // Rollout on change: the opted-in workloads, per namespace too.
    let follow = if ctx.rollout {
        let (c, index) = (client.clone(), ctx.workloads.clone());
        let left = ctx.workloads.clone();
        let workloads = shard::per_namespace(set, move |ns| {
            index.clone().watch(c.clone(), Some(ns.to_string()))
        })
        .map(move |item| {
            if let shard::NsItem::Left(ns) = item {
                left.left(&ns);
            }
        });
        futures::stream::select(follow, workloads).boxed()
    } else {
        follow
    };
    Watches {
        sealed,
        managed,
        triggers,
        follow,
    }
}

async fn leader_work(client: Client, config: Config, ctx: Arc<Context>, health: Arc<Health>) {
    let secrets_ns: Api<Secret> = Api::namespaced(client.clone(), &config.namespace);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &config.namespace);
    let store = ctx.keys.clone();

    // Keys: first one at start, then one every rotation period; publish on change.
    let key_keeper = {
        let store = store.clone();
        let period = config.key_rotation_period;
        async move {
            let mut changes = store.subscribe();
            if let Err(e) = keys::load(&secrets_ns, &store).await {
                tracing::warn!(error = %e, "loading sealing keys failed");
            }
            let mut published: Option<Vec<keys::PublicKeyInfo>> = None;
            loop {
                let current = store.current();
                match keys::ensure_current_key(&secrets_ns, &current, period, Timestamp::now())
                    .await
                {
                    Ok(Some(_)) => {
                        // Make it visible now rather than when the watch sees it.
                        if let Err(e) = keys::load(&secrets_ns, &store).await {
                            tracing::warn!(error = %e, "reloading sealing keys failed");
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "creating a sealing key failed"),
                }
                let current = store.current();
                let public = current.public_keys();
                if published.as_ref() != Some(&public) && !current.is_empty() {
                    match keys::publish(&configmaps, &current).await {
                        Ok(()) => published = Some(public),
                        Err(e) => tracing::warn!(error = %e, "publishing public keys failed"),
                    }
                }
                let wait = match keys::next_rotation(&current, period) {
                    Some(at) => {
                        let secs = (at.as_second() - Timestamp::now().as_second()).max(1);
                        Duration::from_secs(u64::try_from(secs).unwrap_or(1))
                            .min(Duration::from_secs(600))
                    }
                    None => Duration::from_secs(600),
                };
                let wait = if published.is_none() {
                    wait.min(Duration::from_secs(5))
                } else {
                    wait
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {},
                    _ = changes.changed() => {},
                }
            }
        }
    };

    // The SealedSecret cache: what reconcile never reads is stripped before
    // it is stored, and deletions (seen live, or missing after a relist)
    // clear the object's per-object state and its retired-key count.
    let (reader, writer) = reflector::store();
    ctx.watch_live(reader.clone());
    ctx.secrets.start();
    if ctx.rollout {
        ctx.workloads.start();
    }
    let watches = watches(&client, &config.scope, &ctx, writer);
    let Watches {
        sealed: sealed_stream,
        managed: managed_secrets,
        triggers: secret_triggers,
        follow,
    } = watches;
    // Vault back after an outage: retry the objects waiting for it now.
    let vault_back = crate::vault::waiting_when_back(ctx.vault.recoveries(), reader.clone());
    let controller = Controller::for_stream(sealed_stream, reader)
        .reconcile_on(managed_secrets)
        .reconcile_on(secret_triggers)
        .reconcile_all_on(keys::changes(&store))
        .reconcile_on(vault_back)
        .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency))
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|res| {
            if let Err(e) = res {
                match e {
                    kube::runtime::controller::Error::ReconcilerFailed(..) => {}
                    kube::runtime::controller::Error::QueueError(e)
                        if health::is_crd_missing(&e) =>
                    {
                        health.crd_lost();
                    }
                    other => tracing::debug!(error = %other, "controller"),
                }
            }
            futures::future::ready(())
        })
        .boxed();
    // Start-up gate: reconcile only while the CRD is served. When it goes
    // away, this term's work ends; the lead loop starts it again, and it
    // waits here until the gate sees the CRD back.
    let gated = async {
        health.crd_installed().await;
        futures::future::join(controller, follow.for_each(|()| futures::future::ready(()))).await;
    };
    let crd_lost = async {
        health.crd_installed().await;
        health.crd_gone().await;
    };
    tokio::select! {
        _ = futures::future::join(key_keeper, gated) => {},
        () = crd_lost => tracing::warn!("the SealedSecret CRD is no longer served; reconciles stopped until it is back"),
    }
}
