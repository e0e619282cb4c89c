//! `issuer audit`: recompute the ledger's totals from its records and check every rule
//! (issued = redeemed + outstanding, one state per coin, signed transfers, proofs, revocations).
//!
//! Exit code 1 when a problem is found: the problems one per line on stdout, and one line
//! `error: audit found N problem(s)` on stderr.

use anyhow::Context as _;
use tongbao::Fen;
use tongbao::client::AuditReply;

use super::Ctx;
use super::operator::{self, Ledger};

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON (the report, with "ok" and "problems").
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let report: AuditReply = match operator::open(ctx)? {
        Ledger::Direct(iss) => {
            let r = iss.audit()?;
            serde_json::to_value(&r)
                .and_then(serde_json::from_value)
                .context("audit report")?
        }
        Ledger::Service(c) => c.audit()?,
    };
    if a.json {
        super::json(&report)?;
    } else {
        println!(
            "issued {} = redeemed {} + outstanding {} ({} live, {} spent, {} redeemed coin(s))",
            Fen(report.issued_fen),
            Fen(report.redeemed_fen),
            Fen(report.outstanding_fen),
            report.live_coins,
            report.spent_coins,
            report.redeemed_coins
        );
        println!(
            "{} proof(s) and {} revocation(s) checked",
            report.proofs, report.revocations
        );
        for p in &report.problems {
            println!("problem: {p}");
        }
        if report.ok {
            println!("audit ok");
        }
    }
    if !report.ok {
        anyhow::bail!("audit found {} problem(s)", report.problems.len().max(1));
    }
    Ok(())
}
