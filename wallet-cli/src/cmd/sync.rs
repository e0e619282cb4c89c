//! `wallet sync`: bring offline money home and settle with the issuer, online or by hand.
//!
//! Online, the request goes to the issuer service (`POST /v1/sync`) and its signed answer is
//! applied at once. Air-gapped, `--out FILE` writes the request for `issuer settle`, and
//! `--apply FILE` applies the answer it wrote. Either way the request is committed as pending
//! before it leaves the wallet, so a crash or a lost answer is retried with the same request (the
//! issuer answers a replay with the answer it already gave).

use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use serde_json::json;
use tongbao::Fen;
use tongbao::client::{ClientError, IssuerClient};
use tongbao::protocol::SignedBody as _;
use tongbao::protocol::file::TbFile;
use tongbao::protocol::sync::{CoinStatus, SyncRequest, SyncResponse};
use tongbao::store::SledStore;
use tongbao::time::format_rfc3339;
use tongbao::wallet::Wallet;
use tongbao::wallet::sync::SyncApplied;

use super::{Ctx, check_new_output, issuer_client, read, write};

#[derive(clap::Args)]
pub struct Args {
    /// The issuer service (default: the URL recorded by `wallet init --issuer`).
    #[arg(
        long,
        value_name = "URL",
        env = "TONGBAO_ISSUER_URL",
        conflicts_with_all = ["out", "apply"]
    )]
    issuer: Option<String>,
    /// Air-gapped: write the sync request to FILE for `issuer settle` instead of sending it.
    #[arg(long, value_name = "FILE", conflicts_with = "apply")]
    out: Option<PathBuf>,
    /// Air-gapped: apply the sync response FILE that `issuer settle` wrote.
    #[arg(long, value_name = "FILE")]
    apply: Option<PathBuf>,
    /// Drop the pending sync and take its coins back: only when the issuer refused it and its
    /// operator confirms it was never settled (if it was, spending those coins again is a
    /// double spend, and this wallet would be revoked).
    #[arg(long, conflicts_with_all = ["out", "apply", "issuer"])]
    abandon: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    if a.abandon {
        let w = ctx.open()?;
        let pending = w
            .pending_sync()?
            .ok_or_else(|| anyhow!("no sync is pending"))?;
        let restored = w.abandon_sync("abandoned by the owner", ctx.now)?;
        if a.json {
            return crate::out::json(&json!({
                "abandoned": pending.sync_id.to_hex(),
                "restored_fen": restored.0,
            }));
        }
        println!(
            "sync {} dropped: {restored} is back in the wallet; its payments go with the next sync",
            pending.sync_id.short()
        );
        return Ok(());
    }
    if let Some(out) = &a.out {
        check_new_output(out)?;
        let w = ctx.open()?;
        let (req, resent) = pending_or_new(&w, ctx, Fen::ZERO, Fen::ZERO)?;
        write(out, &TbFile::SyncRequest(Box::new(req.clone()))).with_context(|| {
            format!(
                "sync {} is pending; write it again with `wallet sync --out FILE`",
                req.sync_id.short()
            )
        })?;
        if a.json {
            return crate::out::json(&json!({
                "sync_id": req.sync_id.to_hex(),
                "resent": resent,
                "coins": req.coins.len(),
                "topup_fen": req.topup.0,
                "redeem_fen": req.redeem.0,
                "file": out,
            }));
        }
        if resent {
            println!(
                "sync {} was already pending: written again",
                req.sync_id.short()
            );
        }
        println!(
            "sync request {} ({} coin chain(s)) written to {}",
            req.sync_id.short(),
            req.coins.len(),
            out.display()
        );
        println!(
            "next: at the issuer, `issuer settle {} --out RESPONSE`; then `wallet sync --apply RESPONSE`",
            out.display()
        );
        return Ok(());
    }
    if let Some(file) = &a.apply {
        let resp = match read(file)? {
            TbFile::SyncResponse(r) => r,
            other => bail!(
                "{} is a {}, not a sync response",
                file.display(),
                other.kind_name()
            ),
        };
        let w = ctx.open()?;
        let topup = w
            .pending_sync()?
            .filter(|p| p.sync_id == resp.sync_id)
            .map(|p| p.topup)
            .unwrap_or(Fen::ZERO);
        let applied = w.apply_sync(&resp, ctx.now)?;
        return report(&w, ctx, topup, &resp, &applied, false, a.json);
    }
    let w = ctx.open()?;
    let client = issuer_client(&w, a.issuer.as_deref())?;
    let done = online(&w, ctx, &client, Fen::ZERO, Fen::ZERO)?;
    report(
        &w,
        ctx,
        done.topup,
        &done.resp,
        &done.applied,
        done.resent,
        a.json,
    )
}

/// The pending sync request (to resend it whatever it asked), or a new one.
fn pending_or_new(
    w: &Wallet<SledStore>,
    ctx: &Ctx,
    topup: Fen,
    redeem: Fen,
) -> anyhow::Result<(SyncRequest, bool)> {
    if topup == Fen::ZERO
        && redeem == Fen::ZERO
        && let Some(p) = w.pending_sync()?
    {
        return Ok((p, true));
    }
    let resent = w.pending_sync()?.is_some();
    Ok((
        w.begin_sync(topup, redeem, ctx.now, &mut rand::rng())?,
        resent,
    ))
}

/// Syncs online: the pending request again if there is one, else a new one (only once the issuer
/// answers, so an unreachable issuer leaves the wallet untouched); then applies the answer.
pub fn online(
    w: &Wallet<SledStore>,
    ctx: &Ctx,
    client: &IssuerClient,
    topup: Fen,
    redeem: Fen,
) -> anyhow::Result<Online> {
    if w.pending_sync()?.is_none() {
        // A new request takes every held coin out of the wallet until its answer is applied:
        // make sure somebody is there to answer first.
        client.health()?;
    }
    let (req, resent) = pending_or_new(w, ctx, topup, redeem)?;
    let short = req.sync_id.short();
    // A refusal is not signed by the issuer, so it is never acted on automatically: a forged
    // one could make the wallet drop a sync the issuer did settle, and spending those coins again
    // would be a double spend. The request stays pending; `wallet sync --abandon` drops it.
    let resp = client.sync(&req).map_err(|e| pending_error(e, &short))?;
    let applied = w
        .apply_sync(&resp, ctx.now)
        .with_context(|| format!("sync {short} stays pending"))?;
    Ok(Online {
        topup: req.topup,
        resp,
        applied,
        resent,
    })
}

/// What an online sync did.
pub struct Online {
    /// The top-up the request asked for.
    pub topup: Fen,
    /// The issuer's answer.
    pub resp: SyncResponse,
    /// What applying it did.
    pub applied: SyncApplied,
    /// Whether a pending request was sent again.
    pub resent: bool,
}

fn pending_error(e: ClientError, short: &str) -> anyhow::Error {
    if e.error_name() == Some("revoked") {
        anyhow!(
            "{e}: this wallet can no longer settle (sync {short} stays pending; `wallet sync --abandon` takes its coins back, frozen at the issuer)"
        )
    } else if e.is_refusal() {
        anyhow!(
            "{e}; sync {short} stays pending (the wallet's coins are in it): if the issuer's operator confirms it was never settled, `wallet sync --abandon` takes the coins back"
        )
    } else {
        anyhow!(
            "{e}; sync {short} stays pending: run `wallet sync` again when the issuer can be reached, or carry it by hand with `wallet sync --out FILE`"
        )
    }
}

/// Prints what a sync did: settled, already settled and rejected chains (with reasons and
/// proofs), fresh notes, credits collected, bank movements, balance, certificate, lists.
pub fn report(
    w: &Wallet<SledStore>,
    ctx: &Ctx,
    topup: Fen,
    resp: &SyncResponse,
    applied: &SyncApplied,
    resent: bool,
    as_json: bool,
) -> anyhow::Result<()> {
    let balance = w.balance(ctx.now)?.total_fen;
    let rejected: Vec<_> = resp
        .results
        .iter()
        .filter(|r| r.status == CoinStatus::Rejected)
        .map(|r| {
            json!({
                "coin": r.coin.to_hex(),
                "value_fen": r.value.0,
                "reason": r.reason.as_str(),
                "proof": r.proof.as_ref().map(|p| p.id().to_hex()),
                "cheater": r.proof.as_ref().map(|p| p.signer().address()),
                "proof_kind": r.proof.as_ref().map(|p| p.kind()),
            })
        })
        .collect();
    let renewed = applied.certificate_expires_at > ctx.now;
    if as_json {
        return crate::out::json(&json!({
            "sync_id": applied.sync_id,
            "resent": resent,
            "settled": applied.accepted,
            "already_settled": applied.already_settled,
            "rejected": rejected,
            "fresh_fen": applied.fresh_fen,
            "fresh_notes": resp.notes.iter().map(|n| json!({
                "id": n.id().to_hex(), "value_fen": n.value.0, "key_id": n.key_id,
            })).collect::<Vec<_>>(),
            "collected": applied.collected,
            "topup_fen": topup.0,
            "redeemed_fen": applied.redeemed_fen,
            "balance_fen": balance,
            "certificate_expires_at": applied.certificate_expires_at,
            "certificate_renewed": renewed,
            "revocation_version": applied.revocation_version,
            "key_set_version": resp.keyset.set_version,
        }));
    }
    if resent {
        println!("sync {} was pending: sent again", resp.sync_id.short());
    }
    println!(
        "sync {} settled at the issuer: {} chain(s) settled, {} already settled, {} rejected",
        resp.sync_id.short(),
        applied.accepted,
        applied.already_settled,
        rejected.len()
    );
    for r in resp
        .results
        .iter()
        .filter(|r| r.status == CoinStatus::Rejected)
    {
        println!("  rejected: {}", r.describe());
    }
    let keys: Vec<String> = resp.notes.iter().map(|n| n.key_id.to_string()).collect();
    println!(
        "fresh notes {} in {} note(s){}; {} credit(s) collected{}",
        Fen(applied.fresh_fen),
        resp.notes.len(),
        if keys.is_empty() {
            String::new()
        } else {
            format!(" (issuer key {})", keys.join(", "))
        },
        applied.collected,
        if applied.redeemed_fen > 0 {
            format!(
                "; {} redeemed to the bank account",
                Fen(applied.redeemed_fen)
            )
        } else {
            String::new()
        }
    );
    if topup > Fen::ZERO {
        println!("topped up {topup} from the bank account");
    }
    println!("balance {}", Fen(balance));
    if renewed {
        println!(
            "certificate renewed until {}; revocation list version {}; issuer key set version {}",
            format_rfc3339(applied.certificate_expires_at),
            applied.revocation_version,
            resp.keyset.set_version
        );
    } else {
        println!(
            "certificate NOT renewed (this wallet was caught double spending); revocation list version {}",
            applied.revocation_version
        );
    }
    Ok(())
}
