//! `issuer settle REQUEST --out RESPONSE`: settle a sync request a wallet brought by hand
//! (`wallet sync --out FILE`) and write the signed response for `wallet sync --apply`. Settling is
//! idempotent: the same request file always gets the same response.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use tongbao::Fen;
use tongbao::protocol::file::{TbFile, read_file, write_file};
use tongbao::protocol::sync::CoinStatus;

use super::operator::{self, Ledger};
use super::{Ctx, check_new_output};

#[derive(clap::Args)]
pub struct Args {
    /// The sync request file (from `wallet sync --out FILE`).
    request: PathBuf,
    /// Where to write the sync response.
    #[arg(long, value_name = "RESPONSE")]
    out: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    check_new_output(&a.out)?;
    let req = match read_file(&a.request)? {
        TbFile::SyncRequest(r) => r,
        other => bail!(
            "{} is a {}, not a sync request",
            a.request.display(),
            other.kind_name()
        ),
    };
    let resp = match operator::open(ctx)? {
        Ledger::Direct(iss) => iss.sync(&req, ctx.now)?,
        Ledger::Service(c) => c.settle(&req)?,
    };
    write_file(&a.out, &TbFile::SyncResponse(Box::new(resp.clone()))).with_context(|| {
        format!(
            "sync {} is settled; run `issuer settle {} --out FILE` again to write the same response",
            resp.sync_id.short(),
            a.request.display()
        )
    })?;
    let count = |s: CoinStatus| resp.results.iter().filter(|r| r.status == s).count();
    let fresh = Fen::checked_sum(resp.notes.iter().map(|n| n.value)).unwrap_or(Fen::ZERO);
    if a.json {
        return super::json(&serde_json::json!({
            "sync_id": resp.sync_id.to_hex(),
            "wallet": resp.wallet.address(),
            "settled": count(CoinStatus::Accepted),
            "already_settled": count(CoinStatus::AlreadySettled),
            "rejected": count(CoinStatus::Rejected),
            "fresh_fen": fresh.0,
            "collected": resp.collected.len(),
            "redeemed_fen": resp.redeemed.0,
            "revocation_version": resp.revocations.list_version,
            "file": a.out,
        }));
    }
    println!(
        "settled sync {} of {}: {} chain(s) settled, {} already settled, {} rejected",
        resp.sync_id.short(),
        resp.wallet.address(),
        count(CoinStatus::Accepted),
        count(CoinStatus::AlreadySettled),
        count(CoinStatus::Rejected)
    );
    for r in resp
        .results
        .iter()
        .filter(|r| r.status == CoinStatus::Rejected)
    {
        println!("  rejected: {}", r.describe());
    }
    println!(
        "fresh notes {fresh}; {} credit(s) collected; {} to the bank account",
        resp.collected.len(),
        resp.redeemed
    );
    println!(
        "response written to {}: the wallet applies it with `wallet sync --apply {}`",
        a.out.display(),
        a.out.display()
    );
    Ok(())
}
