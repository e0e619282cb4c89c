//! `issuer certify REGISTRATION --class C --out FILE`: a wallet certificate.

use std::path::PathBuf;

use anyhow::bail;
use issuer::ledger::DEFAULT_CERT_SECS;
use tongbao::protocol::certificate::WalletClass;
use tongbao::protocol::file::{TbFile, read_file, write_file};
use tongbao::time::{format_rfc3339, parse_duration};

use super::{Ctx, check_new_output};

#[derive(clap::Args)]
pub struct Args {
    /// The wallet's registration file (from `wallet init`).
    registration: PathBuf,
    /// For a till: its merchant's authorization (from `wallet till authorize` on the merchant).
    #[arg(long, value_name = "FILE")]
    authorization: Option<PathBuf>,
    /// e-CNY class: I, II, III or IV.
    #[arg(long)]
    class: WalletClass,
    /// How long the certificate is valid, e.g. 90d.
    #[arg(long, value_parser = parse_duration)]
    valid_for: Option<u64>,
    /// Where to write the certificate.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    check_new_output(&a.out)?;
    let reg = match read_file(&a.registration)? {
        TbFile::Registration(r) => r,
        other => bail!(
            "{} is a {}, not a wallet registration",
            a.registration.display(),
            other.kind_name()
        ),
    };
    let auth = match &a.authorization {
        None => None,
        Some(p) => match read_file(p)? {
            TbFile::TillAuthorization(x) => Some(*x),
            other => bail!(
                "{} is a {}, not a till authorization",
                p.display(),
                other.kind_name()
            ),
        },
    };
    let cert = match super::operator::open(ctx)? {
        super::operator::Ledger::Direct(iss) => iss.certify_with(
            &reg,
            auth.as_ref(),
            a.class,
            a.valid_for.unwrap_or(DEFAULT_CERT_SECS),
            ctx.now,
        )?,
        super::operator::Ledger::Service(c) => {
            c.certify_with(&reg, auth.as_ref(), a.class, a.valid_for)?
        }
    };
    write_file(&a.out, &TbFile::Certificate(cert.clone()))?;
    if a.json {
        return super::json(&serde_json::json!({
            "wallet": cert.wallet.address(), "kind": cert.kind, "class": cert.class.to_string(),
            "serial": cert.serial, "expires_at": cert.expires_at, "file": a.out,
        }));
    }
    println!(
        "certified {} wallet {} as class {} until {}",
        cert.kind,
        cert.wallet.address(),
        cert.class,
        format_rfc3339(cert.expires_at)
    );
    println!("certificate written to {}", a.out.display());
    Ok(())
}
