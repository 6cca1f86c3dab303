//! The `pantry` command: `run` (the default), `ca export`, `cache …`, `prefetch`, `check-config`,
//! `completions`, `man`.

mod healthcheck;
mod listing;
mod prefetch_command;
mod tools;

use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use pantry::{
    config::{Config, LogFormat, RunArgs},
    mitm::Authority,
    Pantry, Sockets,
};

/// A forward HTTPS proxy that caches container images.
#[derive(Parser)]
#[command(
    version,
    long_version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("PANTRY_BUILD_INFO"), ")"),
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy (the default).
    Run(RunArgs),
    /// Manage pantry's certificate authority.
    Ca {
        #[command(subcommand)]
        action: CaAction,
    },
    /// Inspect and clean the cache directory (works while pantry runs).
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Pull images' manifests and blobs into the cache ahead of time (resumable; works while pantry runs).
    Prefetch(prefetch_command::PrefetchArgs),
    /// Validate the configuration (flags, PANTRY_* variables, --config file) and print it as TOML.
    CheckConfig {
        /// Instead, say which credentials, policy and tag rules apply to this image reference.
        #[arg(long, value_name = "IMAGE")]
        explain: Option<String>,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Ask a running pantry's /healthz (admin port if configured, else the proxy port); exit 0 when healthy.
    Healthcheck(RunArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `pantry man > /usr/local/share/man/man1/pantry.1`.
    Man,
}

#[derive(Subcommand)]
enum CacheAction {
    /// List stored blobs and manifests, most recently used first (filters: repository, age, size).
    Ls {
        #[command(flatten)]
        list: listing::LsArgs,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Show how much is stored.
    Stats {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Verify every blob against its digest; remove corrupt and orphaned entries and stale spools.
    Gc(RunArgs),
    /// Remove a blob (DIGEST) or the remembered tags of REGISTRY/REPOSITORY[:TAG].
    Purge {
        /// `sha256:…` or `registry.example:5000/team/app[:tag]`.
        target: String,
        #[command(flatten)]
        args: RunArgs,
    },
}

#[derive(Subcommand)]
enum CaAction {
    /// Print the CA certificate (PEM), creating the CA if there is none yet.
    Export(RunArgs),
}

fn main() -> ExitCode {
    // Everything pantry writes (the store, cacache's index, the CA) is for its own user only,
    // whatever umask it was started with: the store holds content some clients may not see.
    #[cfg(target_os = "linux")]
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let cli = Cli::parse();
    let mut text = Vec::new();
    match &cli.command {
        Some(Command::Completions { shell }) => {
            clap_complete::generate(*shell, &mut Cli::command(), "pantry", &mut text);
            return print_bytes(&text);
        }
        Some(Command::Man) => {
            // Rendering into memory cannot fail.
            let _ = clap_mangen::Man::new(Cli::command()).render(&mut text);
            return print_bytes(&text);
        }
        _ => {}
    }
    let (args, task) = match cli.command {
        None => (cli.run, Task::Run),
        Some(Command::Run(args)) => (args, Task::Run),
        Some(Command::Ca { action: CaAction::Export(args) }) => (args, Task::ExportCa),
        Some(Command::Cache { action }) => match action {
            CacheAction::Ls { list, args } => (args, Task::Cache(tools::Tool::Ls(list))),
            CacheAction::Stats { json, args } => (args, Task::Cache(tools::Tool::Stats { json })),
            CacheAction::Gc(args) => (args, Task::Cache(tools::Tool::Gc)),
            CacheAction::Purge { target, args } => (args, Task::Cache(tools::Tool::Purge(target))),
        },
        Some(Command::Prefetch(prefetch)) => (prefetch.run.clone(), Task::Prefetch(Box::new(prefetch))),
        Some(Command::CheckConfig { explain, args }) => (args, Task::CheckConfig(explain)),
        Some(Command::Healthcheck(args)) => (args, Task::Healthcheck),
        Some(Command::Completions { .. } | Command::Man) => unreachable!("answered above"),
    };
    let configured = match pantry::configuration(&args) {
        Ok(configured) => configured,
        Err(errors) => {
            eprintln!("pantry: {errors}");
            return ExitCode::from(2);
        }
    };
    let config = &configured.config;
    let result = match task {
        Task::Run => run(configured, args),
        Task::ExportCa => export_ca(config),
        Task::Cache(tool) => tools::run(&config.startup.cache_dir, tool),
        Task::Prefetch(prefetch) => prefetch_command::run(config.clone(), &prefetch),
        Task::Healthcheck => healthcheck::run(config),
        Task::CheckConfig(None) => {
            eprintln!("pantry: the configuration is valid; effective values:");
            print!("{}", config.effective_toml());
            Ok(())
        }
        Task::CheckConfig(Some(image)) => match image.parse::<pantry::registry::reference::ImageRef>() {
            Ok(image) => {
                print!("{}", config.explain(&image));
                Ok(())
            }
            Err(error) => Err(anyhow::anyhow!("--explain {image:?}: {error}")),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pantry: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes generated text to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn print_bytes(bytes: &[u8]) -> ExitCode {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pantry: cannot write to stdout: {error}");
            ExitCode::FAILURE
        }
    }
}

enum Task {
    Run,
    ExportCa,
    Cache(tools::Tool),
    Prefetch(Box<prefetch_command::PrefetchArgs>),
    CheckConfig(Option<String>),
    Healthcheck,
}

fn export_ca(config: &Config) -> anyhow::Result<()> {
    let authority = Authority::load_or_create(&config.startup.certs_dir)?;
    print!("{}", authority.ca_pem());
    Ok(())
}

/// With upstream credentials configured, the process is made non-dumpable: no core dump holds
/// their secrets or tokens, and other processes of the same user cannot read its memory (Linux's
/// `prctl(PR_SET_DUMPABLE)`).
#[cfg(target_os = "linux")]
fn keep_secrets_out_of_dumps(config: &Config) {
    let holds_secrets = !config.credential_entries().is_empty() || config.startup.upstream_proxy.is_some();
    if holds_secrets {
        if let Err(error) = nix::sys::prctl::set_dumpable(false) {
            tracing::warn!(%error, "cannot keep core dumps from holding the upstream credentials");
        }
    }
}

/// A client connection may hold a second descriptor upstream and a third in the store: raise the
/// soft open-file limit to the hard one (as Go programs and nginx do) and say so if it stays short.
fn raise_open_file_limit(max_connections: usize) {
    let wanted = max_connections as u64 * 3 + 256;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < wanted => tracing::warn!(
            limit,
            max_connections,
            "the open-file limit is below what max_connections may need; raise it (LimitNOFILE=, ulimit -n)"
        ),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot read or raise the open-file limit"),
    }
}

fn run(configured: pantry::Configured, args: RunArgs) -> anyhow::Result<()> {
    init_logging(configured.config.startup.log_format);
    raise_open_file_limit(configured.config.startup.max_connections);
    keep_secrets_out_of_dumps(&configured.config);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let config = &configured.config;
        let proxy = bind(config.startup.listen, "proxy").await?;
        let listen = proxy.local_addr().context("cannot read the bound address")?;
        let mirror = bind_if(config.startup.mirror_listen, "registry mirror").await?;
        if let Some((_, addr)) = &mirror {
            let scheme = if config.live.mirror_tls { "https" } else { "http" };
            let mirror = format!("{scheme}://{addr}");
            tracing::info!(%mirror, default = %config.live.mirror_default, "registry mirror is listening");
            if !config.live.mirror_tls && !addr.ip().is_loopback() {
                tracing::warn!(
                    "the mirror speaks plain HTTP beyond loopback: credentials cross the network unencrypted"
                );
            }
        }
        let admin = bind_if(config.startup.admin_listen, "admin").await?;
        if let Some((_, admin)) = &admin {
            tracing::info!(%admin, "admin pages (/metrics, /healthz, /ca.pem) are listening");
        }
        let transparent = bind_if(config.startup.transparent, "transparent").await?;
        if let Some((_, transparent)) = &transparent {
            tracing::info!(%transparent, "accepting redirected connections (transparent mode)");
        }
        let fleet = bind_if(config.startup.fleet_listen, "fleet").await?;
        if let Some((_, addr)) = &fleet {
            let advertise = config.startup.advertise.as_ref().map(|a| format!("https://{a}")).unwrap_or_default();
            let peers = config.startup.peers.len();
            let dns = config.startup.peers_dns.as_ref().map(ToString::to_string).unwrap_or_default();
            tracing::info!(fleet = %addr, %advertise, peers, peers_dns = %dns, "fleet port is listening (mutual TLS with this CA)");
        }
        let pantry = std::sync::Arc::new(Pantry::with_files(configured).await?);
        reload_on_hangup(std::sync::Arc::clone(&pantry), args);
        let ca = pantry.authority().ca_path().display().to_string();
        tracing::info!(%listen, ca = %ca, "pantry is listening");
        tracing::info!(
            "trust its CA: `curl -o pantry-ca.pem http://{listen}/ca.pem` and add it to your client's \
             trust store; use it as HTTPS_PROXY=http://{listen}"
        );
        let [mirror, admin, transparent, fleet] =
            [mirror, admin, transparent, fleet].map(|b| b.map(|(listener, _)| listener));
        pantry.serve_sockets(Sockets { proxy, mirror, admin, transparent, fleet }, shutdown_signal()).await;
        Ok(())
    })
}

async fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} ({what})"))
}

/// Binds `addr` when it is set: the listener and the address it got (a port 0 resolved).
async fn bind_if(
    addr: Option<std::net::SocketAddr>,
    what: &str,
) -> anyhow::Result<Option<(tokio::net::TcpListener, std::net::SocketAddr)>> {
    let Some(addr) = addr else { return Ok(None) };
    let listener = bind(addr, what).await?;
    let bound = listener.local_addr().with_context(|| format!("cannot read the bound {what} address"))?;
    Ok(Some((listener, bound)))
}

/// SIGHUP: reads flags, environment and the config file again and applies what can change live.
fn reload_on_hangup(pantry: std::sync::Arc<Pantry>, args: RunArgs) {
    #[cfg(unix)]
    pantry.clone().spawn_background(async move {
        let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; configuration reloads need a restart");
            return;
        };
        while hangup.recv().await.is_some() {
            // Reading the files may be slow (the htpasswd check costs one bcrypt hash): off the
            // async threads.
            let read = tokio::task::spawn_blocking({
                let args = args.clone();
                move || pantry::configuration(&args)
            });
            let reloaded = match read.await {
                Ok(read) => read.map(|configured| {
                    keep_secrets_out_of_dumps(&configured.config);
                    pantry.apply(configured)
                }),
                Err(error) => Err(pantry::config::ConfigErrors(vec![format!("reading it failed: {error}")])),
            };
            match reloaded {
                Ok(reloaded) => {
                    tracing::info!(applied = ?reloaded.applied, "configuration reloaded");
                    if !reloaded.restart.is_empty() {
                        tracing::warn!(settings = ?reloaded.restart, "changed settings that take effect only after a restart");
                    }
                }
                Err(errors) => tracing::error!(
                    problems = %errors.0.join("; "),
                    "reload refused, the running configuration stays"
                ),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (pantry, args);
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops pantry");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PANTRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
