//! `wallet pay`: pay a request or an address offline and write the payment file.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tongbao::protocol::file::TbFile;
use tongbao::protocol::request::PaymentRequest;
use tongbao::wallet::PayTarget;
use tongbao::{Fen, PublicKey, SignedBody as _};

use super::{Ctx, check_new_output, read, write};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["request", "to"])))]
pub struct Args {
    /// A payment request file or a `tbreq1...` code.
    #[arg(long, value_name = "FILE_OR_CODE")]
    request: Option<String>,
    /// Pay this address directly (needs --amount).
    #[arg(long, value_name = "ADDRESS", requires = "amount")]
    to: Option<String>,
    /// Amount (for --to, or a static code).
    #[arg(long)]
    amount: Option<Fen>,
    /// Where to write the payment file.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    check_new_output(&a.out)?;
    let target = match (&a.request, &a.to) {
        (Some(r), _) => PayTarget::Request {
            request: load_request(r)?,
            amount: a.amount,
        },
        (None, Some(to)) => PayTarget::Direct {
            to: PublicKey::from_address(to)?,
            amount: a.amount.context("--to needs --amount")?,
        },
        (None, None) => bail!("give --request or --to"),
    };
    let w = ctx.open()?;
    // Committed (coins spent, payment in the outbox) before the file is written.
    let payment = w.pay(target, ctx.now, &mut rand::rng())?;
    let id = payment.id();
    tongbao::failpoint::hit("pay-after-commit");
    write(&a.out, &TbFile::Payment(Box::new(payment.clone()))).with_context(|| {
        format!(
            "the payment is committed; write it again with `wallet outbox export {}`",
            id.short()
        )
    })?;
    if a.json {
        return crate::out::json(&serde_json::json!({
            "payment_id": id.to_hex(),
            "payee": payment.payee.address(),
            "amount_fen": payment.amount.0,
            "coins": payment.coins.len(),
            "file": a.out,
        }));
    }
    println!(
        "paid {} to {} (payment {}, {} coin(s))",
        payment.amount,
        payment.payee.address(),
        id.short(),
        payment.coins.len()
    );
    println!(
        "payment written to {}: hand it to the payee",
        a.out.display()
    );
    Ok(())
}

/// A request from a file path or a code.
fn load_request(arg: &str) -> anyhow::Result<PaymentRequest> {
    let trimmed = arg.trim();
    if trimmed.to_lowercase().starts_with("tbreq1") {
        return Ok(PaymentRequest::from_code(trimmed)?);
    }
    match read(Path::new(arg))? {
        TbFile::Request(r) => Ok(r),
        other => bail!("{arg} is a {}, not a payment request", other.kind_name()),
    }
}
