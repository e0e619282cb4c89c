//! `wallet pay`: pay a request or an address offline and write the payment file; with `--online`,
//! also settle it at the issuer service at once and write the confirmed payment instead.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tongbao::protocol::file::TbFile;
use tongbao::protocol::request::PaymentRequest;
use tongbao::wallet::PayTarget;
use tongbao::{Fen, PublicKey, SignedBody as _};

use super::{Ctx, check_new_output, issuer_client, read, write};

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
    /// Also settle the payment at the issuer service now: the file then carries the issuer's
    /// confirmation, final for the payee. If the issuer cannot be reached, the plain payment is
    /// written and settles at the next sync.
    #[arg(long)]
    online: bool,
    /// The issuer service for --online (default: the URL recorded by `wallet init --issuer`).
    #[arg(
        long,
        value_name = "URL",
        env = "TONGBAO_ISSUER_URL",
        requires = "online"
    )]
    issuer: Option<String>,
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
    // Resolved before paying, so that a missing issuer URL changes nothing.
    let client = if a.online {
        Some(issuer_client(&w, a.issuer.as_deref())?)
    } else {
        None
    };
    // Committed (coins spent, payment in the outbox) before the file is written.
    let payment = w.pay(target, ctx.now, &mut rand::rng())?;
    let id = payment.id();
    tongbao::failpoint::hit("pay-after-commit");
    let again = || {
        format!(
            "the payment is committed; write it again with `wallet outbox export {}`",
            id.short()
        )
    };
    // Online: the issuer settles it now; its confirmation makes the payment final for the payee.
    let (settled, unsettled_why) = match &client {
        None => (None, None),
        Some(c) => match c.pay(&payment) {
            Ok(conf) => match w.confirm_online(&conf, ctx.now) {
                Ok(()) => (Some(conf), None),
                Err(e) => (
                    None,
                    Some((
                        true,
                        format!("the issuer's confirmation does not check: {e}"),
                    )),
                ),
            },
            Err(e) => (None, Some((e.is_refusal(), e.to_string()))),
        },
    };
    let file = match &settled {
        Some(conf) => TbFile::ConfirmedPayment(Box::new(payment.clone()), conf.clone()),
        None => TbFile::Payment(Box::new(payment.clone())),
    };
    write(&a.out, &file).with_context(|| match &settled {
        // A settled payment's bytes are not kept (docs/adr/0006): it is final, and the payee
        // collects it at its next sync.
        Some(_) => format!(
            "payment {} is settled at the issuer (final; the payee collects it when it syncs)",
            id.short()
        ),
        None => again(),
    })?;
    if let Some((true, why)) = &unsettled_why {
        bail!(
            "{why}; payment {} is committed and written, unconfirmed, to {}",
            id.short(),
            a.out.display()
        );
    }
    if a.json {
        return crate::out::json(&serde_json::json!({
            "payment_id": id.to_hex(),
            "payee": payment.payee.address(),
            "amount_fen": payment.amount.0,
            "coins": payment.coins.len(),
            "file": a.out,
            "settled": settled.is_some(),
            "settled_at": settled.as_ref().map(|c| c.settled_at),
            "unsettled_reason": unsettled_why.as_ref().map(|(_, w)| w),
        }));
    }
    println!(
        "paid {} to {} (payment {}, {} coin(s))",
        payment.amount,
        payment.payee.address(),
        id.short(),
        payment.coins.len()
    );
    match (&settled, &unsettled_why) {
        (Some(_), _) => {
            println!("settled at the issuer now: final for the payee");
            println!(
                "confirmed payment written to {}: hand it to the payee",
                a.out.display()
            );
        }
        (None, Some((_, why))) => {
            println!("not settled online ({why}): it will settle at the next sync");
            println!(
                "payment written to {}: hand it to the payee",
                a.out.display()
            );
        }
        (None, None) => println!(
            "payment written to {}: hand it to the payee",
            a.out.display()
        ),
    }
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
