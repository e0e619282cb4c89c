//! `wallet address`: print the wallet's address.

use super::Ctx;

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let w = ctx.open()?;
    if a.json {
        return crate::out::json(
            &serde_json::json!({ "address": w.public().address(), "kind": w.kind() }),
        );
    }
    println!("{}", w.public().address());
    Ok(())
}
