//! `wallet init`: create a wallet and write its registration.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use tongbao::PublicKey;
use tongbao::protocol::certificate::WalletKind;
use tongbao::protocol::file::TbFile;
use tongbao::store::SledStore;
use tongbao::wallet::Wallet;

use super::{Ctx, check_new_output, read, write};

#[derive(clap::Args)]
pub struct Args {
    /// personal, merchant, till or courier.
    #[arg(long)]
    kind: WalletKind,
    /// The issuer key set file (from `issuer keys export`).
    #[arg(long, value_name = "FILE")]
    issuer_keys: PathBuf,
    /// Where to write the registration for the issuer.
    #[arg(long, value_name = "REGISTRATION")]
    out: PathBuf,
    /// For a till: the merchant wallet's address.
    #[arg(long, value_name = "ADDRESS")]
    merchant: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    check_new_output(&a.out)?;
    let keyset = match read(&a.issuer_keys)? {
        TbFile::KeySet(k) => k,
        other => bail!(
            "{} is a {}, not an issuer key set",
            a.issuer_keys.display(),
            other.kind_name()
        ),
    };
    keyset.verify().context("issuer key set")?;
    let merchant = a
        .merchant
        .as_deref()
        .map(PublicKey::from_address)
        .transpose()?;
    if ctx.dir.join("db").exists() {
        let w = ctx.open()?;
        bail!(
            "a wallet already exists at {} ({})",
            ctx.dir.display(),
            w.public().address()
        );
    }
    std::fs::create_dir_all(&ctx.dir).with_context(|| ctx.dir.display().to_string())?;
    let store = SledStore::open(&ctx.dir)?;
    let (w, reg) = Wallet::create(store, a.kind, merchant, keyset, ctx.now, &mut rand::rng())?;
    write(&a.out, &TbFile::Registration(reg))?;
    if a.json {
        return crate::out::json(&serde_json::json!({
            "address": w.public().address(),
            "kind": a.kind,
            "registration": a.out,
        }));
    }
    println!("created {} wallet {}", a.kind, w.public().address());
    println!("registration written to {}", a.out.display());
    println!(
        "next: the issuer certifies it (issuer certify {} --class IV --out CERT), then `wallet import CERT`",
        a.out.display()
    );
    Ok(())
}
