//! `issuer clawback`: take back the red-envelope money whose window has closed (every live
//! merchants-only coin still held by its winner past its expiry). See docs/protocol.md#earmark.

use super::Ctx;

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let iss = match super::operator::open(ctx)? {
        super::operator::Ledger::Direct(iss) => iss,
        super::operator::Ledger::Service(_) => anyhow::bail!(
            "the issuer service holds the ledger: stop `issuer serve` and run the clawback on the ledger directly"
        ),
    };
    let c = iss.claw_back(ctx.now)?;
    let total = iss.clawed_back_total()?;
    if a.json {
        return super::json(&serde_json::json!({
            "coins": c.coins,
            "value_fen": c.value_fen,
            "total_clawed_back_fen": total.0,
        }));
    }
    println!(
        "clawed back {} in {} coin(s); {} in all so far",
        tongbao::Fen(c.value_fen),
        c.coins,
        total
    );
    Ok(())
}
