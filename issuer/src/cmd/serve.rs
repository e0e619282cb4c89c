//! `issuer serve --listen 127.0.0.1:7878`: the HTTP/JSON settlement service (docs/api.md).
//!
//! Opens the ledger (so no other `issuer` command can change it while the service runs), creates
//! `<home>/operator.token` (mode 0600) if missing, binds, writes `<home>/service.json` with the URL
//! and pid, and prints `listening on URL` as its first line. Ctrl-C or SIGTERM stops it cleanly:
//! requests in flight finish, queued settlements commit, service.json is removed.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use issuer::server::{self, ServerConfig};
use tongbao::time::parse_duration;

use super::Ctx;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
    listen: String,
    /// Largest request body, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = server::DEFAULT_BODY_LIMIT)]
    max_body: usize,
    /// Longest one request may take, e.g. 30s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    timeout: u64,
}

/// The operator token file.
pub const TOKEN_FILE: &str = "operator.token";
/// Where a running service says where it is.
pub const SERVICE_FILE: &str = "service.json";

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let issuer = Arc::new(ctx.open()?);
    let token = operator_token(&ctx.home)?;
    let config = ServerConfig {
        body_limit: a.max_body,
        request_timeout: Duration::from_secs(a.timeout),
        shutdown_grace: Duration::from_secs(a.timeout + 5),
        operator_token: Some(token),
        ..ServerConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .with_context(|| format!("cannot listen on {}", a.listen))?;
        let url = format!("http://{}", listener.local_addr()?);
        let service = ctx.home.join(SERVICE_FILE);
        let info = serde_json::json!({ "url": url, "pid": std::process::id() });
        tongbao::protocol::file::write_atomic(&service, info.to_string().as_bytes())
            .with_context(|| service.display().to_string())?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {url}")?;
        out.flush()?;
        drop(out);
        let result = server::run(listener, issuer, config, shutdown_signal()).await;
        let _ = std::fs::remove_file(&service);
        result
    })?;
    eprintln!("stopped");
    Ok(())
}

/// Reads the operator token, creating it (32 random bytes as hex, mode 0600) if missing.
fn operator_token(home: &Path) -> anyhow::Result<String> {
    let path = home.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let token = text.trim();
            if token.len() < 32 {
                bail!(
                    "{}: the operator token is too short (delete the file to make a new one)",
                    path.display()
                );
            }
            Ok(token.to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            rand::Rng::fill_bytes(&mut rand::rng(), &mut bytes);
            let token = hex::encode(bytes);
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            writeln!(f, "{token}")?;
            f.sync_all()?;
            Ok(token)
        }
        Err(e) => Err(e).with_context(|| path.display().to_string()),
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    eprintln!("shutting down: finishing the requests in flight");
}
