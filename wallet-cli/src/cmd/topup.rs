//! `wallet topup --amount X`: new digital RMB from the linked bank account, in a sync with the
//! issuer service (the wallet's offline coins are settled and refreshed in the same sync).

use anyhow::bail;
use tongbao::Fen;

use super::{Ctx, issuer_client};

#[derive(clap::Args)]
pub struct Args {
    /// Amount to top up, e.g. 200 or 200.00.
    #[arg(long)]
    amount: Fen,
    /// The issuer service (default: the URL recorded by `wallet init --issuer`).
    #[arg(long, value_name = "URL", env = "TONGBAO_ISSUER_URL")]
    issuer: Option<String>,
    /// Print JSON (as `wallet sync --json`).
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    if a.amount == Fen::ZERO {
        bail!("a top-up needs an amount above zero");
    }
    let w = ctx.open()?;
    let client = issuer_client(&w, a.issuer.as_deref())?;
    // The issuer refuses a top-up above the class cap; refuse it here first, before the wallet's
    // coins go into a sync request.
    if w.pending_sync()?.is_none()
        && let Some(cert) = w.certificate()?
    {
        let have = Fen(w.balance(ctx.now)?.total_fen);
        let after = have.checked_add(a.amount);
        if after.is_none_or(|t| t > cert.limits.balance_max) {
            bail!(
                "a top-up of {} would bring this wallet above its class {} cap {} (it holds {have})",
                a.amount,
                cert.class,
                cert.limits.balance_max
            );
        }
    }
    let done = super::sync::online(&w, ctx, &client, a.amount, Fen::ZERO)?;
    super::sync::report(
        &w,
        ctx,
        done.topup,
        &done.resp,
        &done.applied,
        done.resent,
        a.json,
    )
}
