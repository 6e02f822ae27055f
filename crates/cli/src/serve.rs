//! `hotspot serve --role R --config FILE`: one server role, with JSON logs when stdout is not
//! a terminal, and a graceful stop on SIGTERM or Ctrl-C.

use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use tracing_subscriber::EnvFilter;

use hotspot_server::config::{ProcessEnv, ServerConfig};

use crate::ServeArgs;

/// Runs the role until SIGTERM or Ctrl-C.
pub fn run(args: ServeArgs) -> Result<()> {
    init_logs();
    let config = ServerConfig::load(&args.config, &ProcessEnv)
        .with_context(|| format!("config {}", args.config.display()))?;
    let role = format!("{:?}", config.role).to_lowercase();
    if role != args.role {
        bail!(
            "--role {} but the config file says role = \"{role}\"",
            args.role
        );
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        hotspot_server::serve::run(config, shutdown_signal())
            .await
            .map_err(anyhow::Error::from)
    })
}

/// Logs as JSON lines when stdout is not a terminal (log shippers), human-readable otherwise;
/// `RUST_LOG` filters (default `info`).
pub fn init_logs() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if std::io::stdout().is_terminal() {
        builder.try_init()
    } else {
        builder.json().with_current_span(true).try_init()
    };
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            tracing::info!("shutdown requested");
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutdown requested");
}
