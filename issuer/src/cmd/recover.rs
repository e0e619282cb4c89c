//! `issuer recover LOST_ADDRESS --to NEW_ADDRESS [--grace 30d] [--out NOTES]`: the value the
//! ledger shows a lost or stolen key still holding goes to the owner's new wallet, once the lost
//! key is revoked (`issuer revoke --reason lost|stolen`) and its certificate expired a grace window
//! ago. Once per lost key. The rule and its risk: docs/adr/0004-lost-device-recovery.md.

use std::path::PathBuf;

use tongbao::client::RecoveryInfo;
use tongbao::protocol::file::{TbFile, write_file};
use tongbao::time::{format_rfc3339, parse_duration};
use tongbao::{Fen, PublicKey};

use super::operator::{self, Ledger};
use super::{Ctx, check_new_output};

#[derive(clap::Args)]
pub struct Args {
    /// The lost or stolen wallet's address (tbw1...), already revoked as lost or stolen.
    lost: String,
    /// The owner's new wallet (registered and certified with this issuer).
    #[arg(long, value_name = "NEW_ADDRESS")]
    to: String,
    /// How long after the lost key's certificate expired recovery opens, e.g. 30d [default: 30d].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    grace: Option<u64>,
    /// The operator's note (kept in the recovery record).
    #[arg(long, value_name = "TEXT", default_value = "")]
    note: String,
    /// Also write the new wallet's notes to this file for `wallet import` (otherwise the wallet
    /// collects them at its next sync).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    if let Some(out) = &a.out {
        check_new_output(out)?;
    }
    let lost = PublicKey::from_address(&a.lost)?;
    let to = PublicKey::from_address(&a.to)?;
    let (info, notes) = match operator::open(ctx)? {
        Ledger::Direct(iss) => {
            let grace = a
                .grace
                .unwrap_or(issuer::recovery::DEFAULT_RECOVERY_GRACE_SECS);
            let r = iss.recover(&lost, &to, grace, &a.note, ctx.now)?;
            let info: RecoveryInfo = serde_json::from_value(serde_json::to_value(&r.record)?)?;
            (info, r.notes)
        }
        Ledger::Service(c) => {
            let r = c.recover(&lost, &to, a.grace, &a.note)?;
            (r.recovery, r.notes)
        }
    };
    let written = match (&a.out, &notes) {
        (Some(out), Some(bundle)) => {
            write_file(out, &TbFile::Notes(bundle.clone()))?;
            Some(out)
        }
        _ => None,
    };
    if a.json {
        let mut v = serde_json::to_value(&info)?;
        if let Some(m) = v.as_object_mut() {
            m.insert("file".into(), serde_json::json!(written));
        }
        return super::json(&v);
    }
    println!(
        "recovered {} in {} coin(s) of {} ({}, revoked {}) to {}",
        Fen(info.value_fen),
        info.coins,
        info.lost,
        info.reason,
        format_rfc3339(info.revoked_at),
        info.to
    );
    if info.restricted_fen > 0 {
        println!(
            "{} of it stays red-envelope money (merchants only, same expiry)",
            Fen(info.restricted_fen)
        );
    }
    if info.left_for_clawback_fen > 0 {
        println!(
            "{} of red-envelope money past its expiry is left for the clawback",
            Fen(info.left_for_clawback_fen)
        );
    }
    if info.losses_fen > 0 {
        println!(
            "{} of double spends signed with the lost key is on the ledger as losses: claims against whoever signed them, not deducted here",
            Fen(info.losses_fen)
        );
    }
    match (written, info.value_fen) {
        (_, 0) => println!("the lost key held nothing at the ledger: no notes issued"),
        (Some(out), _) => println!(
            "notes written to {}: the new wallet imports them, or collects them at its next sync",
            out.display()
        ),
        (None, _) => println!("the new wallet collects the value at its next sync"),
    }
    println!(
        "anything the lost device signs from now on is rejected at settlement (already redeemed)"
    );
    Ok(())
}
