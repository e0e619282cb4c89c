//! Where an operator command runs: directly on the ledger when no service holds it, or through the
//! running `issuer serve` (its operator endpoints, with `<home>/operator.token`) when one does.
//!
//! sled lets one process open the ledger. The service writes `<home>/service.json` (URL, pid) once
//! it is listening and removes it when it stops; a file left by a service that died is recognised
//! because nothing answers at its URL, and the ledger is then opened directly.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use issuer::{Issuer, IssuerError};
use tongbao::client::{CALL_TIMEOUT, IssuerClient};
use tongbao::store::StoreError;

use super::Ctx;
use super::serve::{SERVICE_FILE, TOKEN_FILE};

/// The ledger, one way or the other.
pub enum Ledger {
    /// Opened here: no service runs.
    Direct(Box<Issuer>),
    /// Held by the running service: operator calls go to it.
    Service(IssuerClient),
}

/// Opens the ledger, or finds the service that holds it.
pub fn open(ctx: &Ctx) -> anyhow::Result<Ledger> {
    if let Some(c) = running_service(&ctx.home)? {
        return Ok(Ledger::Service(c));
    }
    match Issuer::open_dir(&ctx.home) {
        Ok(i) => Ok(Ledger::Direct(Box::new(i))),
        Err(IssuerError::Store(StoreError::Locked(_))) => {
            // A service that is starting opens the ledger before it writes service.json.
            for _ in 0..30 {
                std::thread::sleep(Duration::from_millis(100));
                if let Some(c) = running_service(&ctx.home)? {
                    return Ok(Ledger::Service(c));
                }
            }
            bail!(
                "the issuer ledger at {} is in use by another process, and no issuer service answers for it ({} is missing or stale)",
                ctx.home.display(),
                ctx.home.join(SERVICE_FILE).display()
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// The service described by `<home>/service.json`, if it answers.
fn running_service(home: &Path) -> anyhow::Result<Option<IssuerClient>> {
    let path = home.join(SERVICE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| path.display().to_string()),
    };
    // Written atomically by the service; anything unreadable is treated as stale.
    let Some(url) = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("url").and_then(|u| u.as_str()).map(str::to_string))
    else {
        return Ok(None);
    };
    let client = IssuerClient::with_timeouts(&url, Duration::from_secs(2), CALL_TIMEOUT)
        .with_context(|| path.display().to_string())?;
    match client.health() {
        Ok(_) => {}
        Err(e) if e.is_unreachable() => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("the issuer service at {url}")),
    }
    let token_path = home.join(TOKEN_FILE);
    let token = std::fs::read_to_string(&token_path).with_context(|| {
        format!(
            "{}: the operator token of the running service",
            token_path.display()
        )
    })?;
    Ok(Some(client.with_token(token.trim())))
}
