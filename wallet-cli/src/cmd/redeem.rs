//! `wallet redeem --amount X`: pay digital RMB back to the linked bank account, in a sync with
//! the issuer service (the rest of the wallet's value comes back as a fresh note).

use anyhow::bail;
use tongbao::Fen;

use super::{Ctx, issuer_client};

#[derive(clap::Args)]
pub struct Args {
    /// Amount to redeem, e.g. 50 or 50.00.
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
        bail!("a redemption needs an amount above zero");
    }
    let w = ctx.open()?;
    let client = issuer_client(&w, a.issuer.as_deref())?;
    let done = super::sync::online(&w, ctx, &client, Fen::ZERO, a.amount)?;
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
