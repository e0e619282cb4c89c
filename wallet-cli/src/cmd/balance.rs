//! `wallet balance`: total, spendable, coins and offline limits left.

use tongbao::Fen;
use tongbao::time::format_rfc3339;

use super::{Ctx, short};

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON ("total_fen", "coins", ...).
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let w = ctx.open()?;
    let b = w.balance(ctx.now)?;
    if a.json {
        return crate::out::json(&b);
    }
    println!(
        "balance {} ({} spendable offline) in {} coin(s)",
        Fen(b.total_fen),
        Fen(b.spendable_fen),
        b.coins.len()
    );
    for c in &b.coins {
        let tag = match (&c.earmark, c.spendable) {
            (Some(e), true) => format!(" [{e}]"),
            (Some(e), false) => format!(" [{e}, not spendable]"),
            (None, false) => " [not spendable offline: sync to refresh]".to_string(),
            (None, true) => String::new(),
        };
        println!(
            "  {} {:>12} {} hop(s){tag}",
            short(&c.id),
            c.value.to_string(),
            c.hops
        );
    }
    match (&b.class, b.certificate_expires_at) {
        (Some(class), Some(exp)) => {
            println!(
                "class {class}; offline left {} in {} payment(s); certificate valid until {}",
                Fen(b.offline_left_fen.unwrap_or(0)),
                b.offline_payments_left.unwrap_or(0),
                format_rfc3339(exp)
            );
        }
        _ => println!("not certified yet: import the certificate from the issuer"),
    }
    Ok(())
}
