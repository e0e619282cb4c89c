//! `wallet history`: every event, oldest first.

use tongbao::Fen;
use tongbao::time::format_rfc3339;

use super::Ctx;

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let w = ctx.open()?;
    let h = w.history()?;
    if a.json {
        return crate::out::json(&h);
    }
    for e in &h {
        let amount = e
            .amount_fen
            .map(|f| format!(" {}", Fen(f)))
            .unwrap_or_default();
        let memo = e
            .memo
            .as_ref()
            .map(|m| format!(" \"{m}\""))
            .unwrap_or_default();
        println!(
            "{:>4} {} {:<11}{amount} {}{memo}",
            e.seq,
            format_rfc3339(e.time),
            e.event,
            e.detail
        );
    }
    Ok(())
}
