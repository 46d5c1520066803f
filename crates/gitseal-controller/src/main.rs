//! `gitseal-controller`: `run` the controller, print the `crd`, or
//! `import-key` an age identity file as a sealing key. Thin: the logic
//! lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use gitseal_controller::kube_client::{self, ApiTimeouts};
use gitseal_controller::leader::LeaderConfig;
use gitseal_controller::run::Config;
use gitseal_controller::shard::{self, Scope};
use gitseal_controller::sources::VaultResolver;
use gitseal_controller::vault::VaultSource;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::Api;

/// The gitseal in-cluster controller: opens SealedSecrets into Secrets.
#[derive(Parser)]
#[command(name = "gitseal-controller", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (inside the cluster, or against the current kubeconfig).
    Run(Box<RunArgs>),
    /// Print the SealedSecret CustomResourceDefinition (YAML), generated from the Rust types.
    Crd,
    /// Store the keys of an age identity file as sealing-key Secrets, so this
    /// cluster opens what another cluster's (or an offline) key sealed.
    ImportKey(ImportArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Namespace holding the keys, the public-key ConfigMap and the Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "gitseal-system")]
    namespace: String,
    /// Address of the HTTP server (keys, health, metrics).
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Address of the probe-only HTTP server (/healthz, /readyz), so the
    /// kubelet's probes answer even while clients fill the main server's
    /// connection limit.
    #[arg(long, default_value = "0.0.0.0:8081")]
    probe_listen: SocketAddr,
    /// Make a new sealing key this often (e.g. 720h, 30d); 0 = never. Old keys are kept.
    #[arg(long, default_value = "720h", value_parser = parse_duration)]
    key_rotation_period: std::time::Duration,
    /// Elect a leader with a Lease, so several replicas can run.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// Name of the Lease. Default: gitseal-controller, or for a shard
    /// (--watch-namespaces, --watch-namespace-selector)
    /// gitseal-controller-shard-<8 hex digits of its namespaces or selector>.
    #[arg(long)]
    lease_name: Option<String>,
    /// Shard: own only the SealedSecrets of these namespaces (comma-separated);
    /// every namespace when neither this nor --watch-namespace-selector is given.
    #[arg(long, env = "GITSEAL_WATCH_NAMESPACES", value_name = "NS,...")]
    watch_namespaces: Option<String>,
    /// Shard: own only the SealedSecrets of the namespaces whose labels match
    /// this selector (e.g. team=x); a namespace that stops matching is handed
    /// over at once.
    #[arg(
        long,
        env = "GITSEAL_WATCH_NAMESPACE_SELECTOR",
        value_name = "SELECTOR"
    )]
    watch_namespace_selector: Option<String>,
    /// How long the Lease is valid without renewal: a follower takes over
    /// when the leader has not renewed it for this long.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    lease_duration: std::time::Duration,
    /// The leader stops reconciling when it has not renewed the Lease for
    /// this long (shorter than --lease-duration); it renews every half of it.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    renew_deadline: std::time::Duration,
    /// How often a follower tries to take the Lease, and a leader retries a
    /// failed renewal (shorter than --renew-deadline).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    retry_period: std::time::Duration,
    /// Longest time for one Kubernetes API request (watches: to start, and
    /// beyond their own server-side timeout); a request that takes longer
    /// fails and is retried.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    api_request_timeout: std::time::Duration,
    /// This replica's identity in the Lease and in Events (the pod name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Reconciles running at once.
    #[arg(long, default_value_t = 16)]
    concurrency: u16,
    /// Async worker threads. The controller mostly waits on the API server
    /// (about 1 ms of CPU per reconcile), and each worker thread costs memory
    /// (its stack and its own malloc arena); the runtime's default is one per
    /// CPU of the node, which is dozens on a large node without a CPU limit.
    #[arg(long, env = "GITSEAL_WORKER_THREADS", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    worker_threads: u16,
    /// Log format.
    #[arg(long, value_enum, default_value = "json")]
    log_format: LogFormat,
    /// Restart Deployments, StatefulSets and DaemonSets that opt in (annotation
    /// gitseal.dev/restart-on-change: "SECRET,…") when the Secret's data changes.
    /// Off by default: it needs list, watch and patch on those workloads
    /// (deploy/rbac-rollout.yaml).
    #[arg(long, env = "GITSEAL_ROLLOUT_ON_CHANGE", default_value_t = false, action = clap::ArgAction::Set)]
    rollout_on_change: bool,
    /// Also reconcile SealedSecrets in the controller's own namespace, where
    /// its sealing keys live (refused by default: a Secret written there is
    /// one step from posing as a key).
    #[arg(long, env = "GITSEAL_ALLOW_CONTROLLER_NAMESPACE", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    allow_controller_namespace: bool,
    /// Write Secrets of type kubernetes.io/service-account-token from
    /// SealedSecret templates (refused by default: Kubernetes fills such a
    /// Secret with a token of the service account it names, so anyone who
    /// can commit a SealedSecret could mint a token for any service account
    /// of its namespace through the controller).
    #[arg(long, env = "GITSEAL_ALLOW_SERVICE_ACCOUNT_TOKEN_SECRETS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    allow_service_account_token_secrets: bool,
    #[command(flatten)]
    vault: gitseal_controller::vault::VaultArgs,
}

#[derive(clap::Args)]
struct ImportArgs {
    /// age identity file (`age-keygen` or `gitseal keygen` output); `-` for stdin.
    #[arg(short = 'i', long = "identity")]
    identity: PathBuf,
    /// Namespace of the controller.
    #[arg(long, default_value = "gitseal-system")]
    namespace: String,
    /// Print the Secret manifests (YAML) instead of creating them.
    #[arg(long)]
    dry_run: bool,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    gitseal_controller::parse_duration(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(1)
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Crd => {
            #[allow(clippy::print_stdout)]
            {
                print!("{}", gitseal_controller::crd::crd_yaml()?);
            }
            Ok(())
        }
        Command::ImportKey(args) => runtime(1)?.block_on(import_key(args)),
        Command::Run(args) => runtime(args.worker_threads.into())?.block_on(run(*args)),
    }
}

fn runtime(worker_threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn import_key(args: ImportArgs) -> anyhow::Result<()> {
    let text = if args.identity.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading stdin")?
    } else {
        std::fs::read_to_string(&args.identity)
            .with_context(|| format!("reading {}", args.identity.display()))?
    };
    let origin = args.identity.display().to_string();
    let secrets = gitseal_controller::keys::import_identity_file(
        &text,
        &origin,
        k8s_openapi::jiff::Timestamp::now(),
    )?;
    if args.dry_run {
        for s in &secrets {
            let mut s = s.clone();
            s.metadata.namespace = Some(args.namespace.clone());
            let yaml = serde_yaml::to_string(&s).context("encoding the Secret")?;
            #[allow(clippy::print_stdout)]
            {
                println!("---\napiVersion: v1\nkind: Secret\n{yaml}");
            }
        }
        return Ok(());
    }
    gitseal_controller::install_crypto_provider();
    let kube_config = kube::Config::infer()
        .await
        .context("reading the Kubernetes client configuration (kubeconfig or in-cluster)")?;
    let client = kube_client::client_from_config(kube_config, ApiTimeouts::default())
        .context("connecting to Kubernetes (kubeconfig or in-cluster)")?;
    let api: Api<Secret> = Api::namespaced(client, &args.namespace);
    for s in &secrets {
        let name = s.metadata.name.clone().unwrap_or_default();
        match api.create(&PostParams::default(), s).await {
            Ok(_) => {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("created sealing key Secret {}/{name}", args.namespace);
                }
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!(
                        "sealing key Secret {}/{name} already exists; left as it is",
                        args.namespace
                    );
                }
            }
            Err(e) => {
                return Err(e).with_context(|| format!("creating Secret {}/{name}", args.namespace))
            }
        }
    }
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    // One TLS provider for kube and vaultrs, before either builds a client.
    gitseal_controller::install_crypto_provider();
    // Bad flags fail before anything else is started.
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("gitseal-controller-{}", std::process::id()));
    let scope = Scope::from_flags(
        args.watch_namespaces.as_deref(),
        args.watch_namespace_selector.as_deref(),
    )?;
    let lease_name = args
        .lease_name
        .clone()
        .unwrap_or_else(|| scope.lease_name(shard::DEFAULT_LEASE));
    let leader = args.leader_election.then(|| {
        let mut lc = LeaderConfig::new(lease_name.clone(), identity.clone());
        lc.lease_duration = args.lease_duration;
        lc.renew_deadline = args.renew_deadline;
        lc.renew_every = args.renew_deadline / 2;
        lc.retry_every = args.retry_period;
        lc
    });
    if let Some(lc) = &leader {
        lc.validate()?;
    }
    if args.api_request_timeout.is_zero() {
        anyhow::bail!("--api-request-timeout must be above 0");
    }
    let vault: Option<Arc<dyn VaultResolver>> =
        match args.vault.settings().context("invalid Vault settings")? {
            Some(settings) => {
                let source = VaultSource::connect(settings)
                    .await
                    .context("setting up the Vault client")?;
                tracing::info!(vault = ?source, "Vault items enabled");
                Some(Arc::new(source))
            }
            None => None,
        };
    let kube_config = kube::Config::infer()
        .await
        .context("reading the Kubernetes client configuration (in-cluster or kubeconfig)")?;
    let timeouts = ApiTimeouts {
        request: args.api_request_timeout,
        ..ApiTimeouts::default()
    };
    let client = kube_client::client_from_config(kube_config, timeouts)
        .context("connecting to Kubernetes (in-cluster config or kubeconfig)")?;
    let mut config = Config::new(args.namespace);
    config.listen = Some(args.listen);
    config.probe_listen = Some(args.probe_listen);
    config.key_rotation_period = args.key_rotation_period;
    config.concurrency = args.concurrency;
    config.rollout = args.rollout_on_change;
    config.allow_controller_namespace = args.allow_controller_namespace;
    config.allow_service_account_tokens = args.allow_service_account_token_secrets;
    let scope_text = scope.describe();
    let args_leader = args.leader_election;
    config.scope = scope;
    config.instance = Some(identity);
    config.leader = leader;
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
    };
    let (handles, fut) = gitseal_controller::run::start(client, config, vault, shutdown).await?;
    let addr = |a: Option<SocketAddr>| a.map_or_else(|| "off".to_string(), |a| a.to_string());
    tracing::info!(
        http = %addr(handles.http_addr),
        probes = %addr(handles.probe_addr),
        watching = %scope_text,
        lease = %if args_leader { lease_name.as_str() } else { "off" },
        "gitseal-controller started"
    );
    fut.await;
    tracing::info!("gitseal-controller stopped");
    Ok(())
}
