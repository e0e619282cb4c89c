//! `wallet refund PAYMENT_ID [--amount X] --out FILE`: pay a customer back, referencing a payment
//! this wallet received. Partial refunds add up and never exceed what was paid.

use std::path::PathBuf;

use anyhow::Context as _;
use tongbao::protocol::file::TbFile;
use tongbao::{Fen, SignedBody as _};

use super::{Ctx, check_new_output, write};

#[derive(clap::Args)]
pub struct Args {
    /// The payment to refund (full id or its first digits).
    payment_id: String,
    /// How much (default: all that is not refunded yet).
    #[arg(long)]
    amount: Option<Fen>,
    /// Where to write the refund (for the customer's `wallet receive`).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    check_new_output(&a.out)?;
    let w = ctx.open()?;
    // Committed (coins spent, refund recorded against the payment) before the file is written.
    let refund = w.refund(&a.payment_id, a.amount, ctx.now, &mut rand::rng())?;
    let rid = refund.payment.id();
    let sale = w.sale(&refund.original.to_hex())?;
    write(&a.out, &TbFile::Refund(Box::new(refund.clone()))).with_context(|| {
        format!(
            "the refund is committed; write it again with `wallet outbox export {}`",
            rid.short()
        )
    })?;
    if a.json {
        return crate::out::json(&serde_json::json!({
            "refund_id": rid.to_hex(),
            "payment_id": refund.original.to_hex(),
            "number": refund.number,
            "customer": refund.payment.payee.address(),
            "amount_fen": refund.payment.amount.0,
            "refunded_fen": sale.refunded_fen,
            "paid_fen": sale.amount_fen,
            "file": a.out,
        }));
    }
    println!(
        "refunded {} of payment {} to {} (refund {}, number {}); {} of {} refunded in all",
        refund.payment.amount,
        refund.original.short(),
        refund.payment.payee.address(),
        rid.short(),
        refund.number,
        Fen(sale.refunded_fen),
        Fen(sale.amount_fen)
    );
    println!(
        "refund written to {}: the customer receives it with `wallet receive`",
        a.out.display()
    );
    Ok(())
}
