//! `sse-host`: the SSE host binary. A thin shell over the `sse_host` library.
//!
//! Run with: `sse-host serve --dev` (try it), `sse-host serve --config host.toml`
//! (production), `sse-host check-config host.toml`, `sse-host token --dev --company acme`.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use sse_host::config::{self, FileConfig, HostConfig};
use sse_host::dev::{self, DevSecrets};
use sse_host::{App, EdgeMode, LogFormat};

/// Exit code for an invalid configuration (EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(
    name = "sse-host",
    version,
    about = "Real-time Server-Sent Events with tenant isolation at the edge"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve: `--dev` for a no-config try-out, `--config FILE` for production.
    Serve {
        /// The TOML configuration file.
        #[arg(long, env = "SSE_HOST_CONFIG", conflicts_with = "dev")]
        config: Option<PathBuf>,
        /// Dev mode: no file needed, dev endpoints on, secrets kept in a local file.
        #[arg(long)]
        dev: bool,
        /// Let dev mode listen beyond loopback (anyone who reaches it can mint tokens).
        #[arg(long, requires = "dev")]
        dev_allow_remote: bool,
        /// Listen address (overrides the file).
        #[arg(long, env = "SSE_HOST_LISTEN")]
        listen: Option<String>,
        /// Edge mode: native, envoy or wasm (overrides the file).
        #[arg(long, env = "SSE_HOST_EDGE")]
        edge: Option<EdgeMode>,
        /// Policy JSON file (overrides the file's policy_file).
        #[arg(long, env = "SSE_HOST_POLICY")]
        policy: Option<PathBuf>,
        /// Where dev mode keeps its secrets.
        #[arg(long, env = "SSE_HOST_DEV_DIR")]
        dev_dir: Option<PathBuf>,
        /// Use the Redis backend at this URL (redis://HOST:PORT): several hosts share
        /// history, fan-out and connection limits.
        #[arg(long, env = "SSE_HOST_REDIS")]
        redis: Option<String>,
        /// Log format: text or json (overrides the file).
        #[arg(long, env = "SSE_HOST_LOG_FORMAT")]
        log_format: Option<LogFormat>,
        /// Where compiled wasm filters are cached (overrides the file's wasm.cache_dir).
        #[arg(long, env = "SSE_HOST_WASM_CACHE")]
        wasm_cache: Option<PathBuf>,
        /// Serve TLS with this PEM certificate chain (overrides the file's tls.cert_file).
        #[arg(long, env = "SSE_HOST_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's PEM private key (overrides the file's tls.key_file).
        #[arg(long, env = "SSE_HOST_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Validate a configuration file and its policy; report every problem.
    CheckConfig {
        /// The TOML configuration file.
        file: PathBuf,
    },
    /// Print a token the dev host accepts.
    Token {
        /// Required: tokens from this command are for dev hosts only.
        #[arg(long, required = true)]
        dev: bool,
        /// The token's company_id.
        #[arg(long)]
        company: String,
        /// The token's role (VIEWER, ADMIN, PUBLISHER, SUPER_ADMIN, ...).
        #[arg(long, default_value = "VIEWER")]
        role: String,
        /// The token's subject.
        #[arg(long, default_value = "dev-user")]
        subject: String,
        /// Lifetime: 90s, 15m, 1h, 2d.
        #[arg(long, default_value = "1h", value_parser = dev::parse_duration)]
        ttl: std::time::Duration,
        /// Where dev mode keeps its secrets.
        #[arg(long, env = "SSE_HOST_DEV_DIR")]
        dev_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sse-host: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::CheckConfig { file } => match FileConfig::from_path(&file).and_then(|f| f.build(None)) {
            Ok(cfg) => {
                for warning in cfg.policy.warnings() {
                    eprintln!("{}: warning: policy: {warning}", file.display());
                }
                let tls = cfg
                    .tls
                    .as_ref()
                    .map_or("plain HTTP".to_owned(), |t| format!("TLS {}", t.cert_file.display()));
                println!(
                    "{}: ok (listen {}, edge {:?}, {} channels, {tls})",
                    file.display(),
                    cfg.listen,
                    cfg.edge,
                    cfg.policy.channels.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                Ok(ExitCode::from(EXIT_CONFIG))
            }
        },
        Command::Token {
            company,
            role,
            subject,
            ttl,
            dev_dir,
            ..
        } => {
            let secrets = DevSecrets::load_or_create(&dev_dir.unwrap_or_else(dev::default_dir))?;
            println!("{}", secrets.token(&company, &role, &subject, ttl));
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            config,
            dev,
            dev_allow_remote,
            listen,
            edge,
            policy,
            dev_dir,
            redis,
            log_format,
            wasm_cache,
            tls_cert,
            tls_key,
        } => {
            let (mut file, mut policy_json, secrets) = if dev {
                let secrets = DevSecrets::load_or_create(&dev_dir.unwrap_or_else(dev::default_dir))?;
                (FileConfig::default(), Some(secrets.policy_json()), Some(secrets))
            } else {
                let path = config.context("give --config FILE (production) or --dev (try-out)")?;
                (FileConfig::from_path(&path)?, None, None)
            };
            file.dev = dev;
            file.dev_allow_remote = dev_allow_remote;
            if let Some(listen) = listen {
                file.listen = listen;
            }
            if let Some(edge) = edge {
                file.edge = edge;
            }
            if let Some(url) = redis {
                file.backend = config::BackendKind::Redis;
                file.redis.url = Some(url);
            }
            if let Some(format) = log_format {
                file.log_format = format;
            }
            if let Some(dir) = wasm_cache {
                file.wasm.cache_dir = Some(dir);
            }
            if tls_cert.is_some() {
                file.tls.cert_file = tls_cert;
                file.tls.key_file = tls_key;
            }
            if let Some(p) = policy {
                // Read like policy_file, `${NAME}` placeholders included.
                policy_json = None;
                file.policy_file = Some(p);
            }
            let cfg = match file.build(policy_json) {
                Ok(cfg) => cfg,
                Err(e) => {
                    eprintln!("sse-host: {e}");
                    return Ok(ExitCode::from(EXIT_CONFIG));
                }
            };
            init_logging(&cfg);
            for warning in cfg.policy.warnings() {
                tracing::warn!("policy: {warning}");
            }
            let mut runtime = tokio::runtime::Builder::new_multi_thread();
            if let Some(n) = cfg.worker_threads {
                runtime.worker_threads(n);
            }
            let runtime = runtime.enable_all().build()?;
            tracing::info!(workers = runtime.metrics().num_workers(), "runtime built");
            runtime.block_on(serve(cfg, secrets))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn init_logging(cfg: &HostConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Colour only for a person at a terminal: redirected logs stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match cfg.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(cfg: HostConfig, dev: Option<DevSecrets>) -> anyhow::Result<()> {
    let scheme = if cfg.tls.is_some() { "https" } else { "http" };
    let app = App::bind(cfg).await?;
    let app = match dev {
        Some(secrets) => {
            print_dev_banner(scheme, app.local_addr(), &secrets);
            app.with_dev_tokens(secrets)
        }
        None => {
            // The first line on stdout, for whoever started us with port 0 (a closed
            // stdout is not a reason to stop serving).
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stdout(),
                "sse-host listening on {scheme}://{}/",
                app.local_addr()
            );
            app
        }
    };
    app.run(shutdown_signal()).await;
    Ok(())
}

fn print_dev_banner(scheme: &str, addr: SocketAddr, secrets: &DevSecrets) {
    if !addr.ip().is_loopback() {
        eprintln!(
            "sse-host: WARNING: dev mode on a non-loopback address ({addr}) by --dev-allow-remote: anyone who can \
             reach it can mint tokens (/dev/token) and publish (/sse/test-broadcast). Use --config for anything shared."
        );
    }
    let token = secrets.token(
        "test-company",
        "VIEWER",
        "dev-user",
        std::time::Duration::from_secs(3600),
    );
    println!("sse-host (dev) listening on {scheme}://{addr}/  (open it in a browser: the live dashboard)");
    println!("Open a stream (token valid 1 h; more with `sse-host token --dev --company C`):");
    println!("  curl -N -H 'Authorization: Bearer {token}' '{scheme}://{addr}/sse/stream?companyId=test-company&channel=dashboard-updates'");
    println!("Publish to it (dev mode needs no token here):");
    println!("  curl -X POST {scheme}://{addr}/sse/test-broadcast -H 'Content-Type: application/json' -d '{{\"companyId\":\"test-company\",\"channel\":\"dashboard-updates\",\"type\":\"dashboard-update\",\"data\":{{\"metric\":\"SROI\",\"value\":2.5}}}}'");
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown signal received");
}
