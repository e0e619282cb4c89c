//! `issuer revoke ADDRESS --reason lost|stolen|fraud`: revoke a wallet key by operator decision.
//! The new revocation list reaches wallets at their next sync and travels on inside payments.
//! (Double spenders are revoked by settlement itself, with their proof.)

use tongbao::PublicKey;
use tongbao::protocol::revocation::RevocationReason;

use super::Ctx;
use super::operator::{self, Ledger};

/// Why a key is revoked by hand.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Reason {
    /// Reported lost.
    Lost,
    /// Reported stolen.
    Stolen,
    /// Other fraud.
    Fraud,
}

impl From<Reason> for RevocationReason {
    fn from(r: Reason) -> Self {
        match r {
            Reason::Lost => RevocationReason::Lost,
            Reason::Stolen => RevocationReason::Stolen,
            Reason::Fraud => RevocationReason::Fraud,
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// The wallet's address (tbw1...).
    address: String,
    /// Why.
    #[arg(long, value_enum)]
    reason: Reason,
    /// The operator's note (kept in the ledger beside the revocation).
    #[arg(long, value_name = "TEXT", default_value = "")]
    note: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let key = PublicKey::from_address(&a.address)?;
    let reason = RevocationReason::from(a.reason);
    let version = match operator::open(ctx)? {
        Ledger::Direct(iss) => iss.revoke(&key, reason, &a.note, ctx.now)?.list_version,
        Ledger::Service(c) => c.revoke(&key, reason, &a.note)?,
    };
    if a.json {
        return super::json(&serde_json::json!({
            "wallet": key.address(), "reason": reason.as_str(), "revocation_version": version,
        }));
    }
    println!(
        "revoked {} ({}): revocation list version {version}",
        key.address(),
        reason.as_str()
    );
    println!("wallets get the new list at their next sync, and pass it on inside payments");
    Ok(())
}
