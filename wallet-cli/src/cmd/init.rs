//! `wallet init`: create a wallet. Online (`--issuer URL`): download the issuer's key set,
//! register and import the certificate in one go. Offline (`--issuer-keys FILE --out REG`): write
//! the registration for the issuer to certify. `--encrypt` seals the new key under a passphrase.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::ArgGroup;
use tongbao::PublicKey;
use tongbao::client::IssuerClient;
use tongbao::protocol::certificate::{WalletClass, WalletKind};
use tongbao::protocol::file::TbFile;
use tongbao::protocol::keyset::IssuerKeySet;
use tongbao::store::SledStore;
use tongbao::time::format_rfc3339;
use tongbao::wallet::keystore::Passphrase;
use tongbao::wallet::{Wallet, WalletError};

use super::{Ctx, check_new_output, read, write};

#[derive(clap::Args)]
#[command(group(ArgGroup::new("source").required(true).args(["issuer", "issuer_keys"])))]
pub struct Args {
    /// personal, merchant, till or courier.
    #[arg(long)]
    kind: WalletKind,
    /// Online: the issuer service. Downloads its key set, registers and imports the certificate,
    /// and records the URL for `wallet sync`, `topup`, `redeem` and `pay --online`. Run it again
    /// to finish a registration that was interrupted.
    #[arg(long, value_name = "URL", conflicts_with = "issuer_keys")]
    issuer: Option<String>,
    /// With --issuer: the e-CNY class to ask for, I to IV [default: IV].
    #[arg(long, requires = "issuer")]
    class: Option<WalletClass>,
    /// Offline: the issuer key set file (from `issuer keys export`); needs --out.
    #[arg(long, value_name = "FILE", requires = "out")]
    issuer_keys: Option<PathBuf>,
    /// Where to write the registration for the issuer (needed with --issuer-keys).
    #[arg(long, value_name = "REGISTRATION")]
    out: Option<PathBuf>,
    /// For a till: the merchant wallet's address.
    #[arg(long, value_name = "ADDRESS")]
    merchant: Option<String>,
    /// Protect the wallet's secret key with a passphrase (argon2id + XChaCha20-Poly1305): from the
    /// environment variable named by --passphrase-env VAR, else asked for twice on the terminal.
    /// Every later command then needs it; the plain key is never written to disk.
    #[arg(long)]
    encrypt: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    if let Some(out) = &a.out {
        check_new_output(out)?;
    }
    let merchant = a
        .merchant
        .as_deref()
        .map(PublicKey::from_address)
        .transpose()?;
    match (&a.issuer, &a.issuer_keys) {
        (Some(url), _) => online(ctx, &a, url, merchant),
        (None, Some(keys)) => offline(ctx, &a, keys, merchant),
        (None, None) => bail!("give --issuer URL or --issuer-keys FILE"),
    }
}

/// The passphrase for a new wallet (`--encrypt`), asked for before anything is created.
fn new_passphrase(ctx: &Ctx, a: &Args) -> anyhow::Result<Option<Passphrase>> {
    if !a.encrypt {
        if ctx.passphrase_env.is_some() {
            bail!(
                "--passphrase-env is given but --encrypt is not: add --encrypt to protect the new wallet's key"
            );
        }
        return Ok(None);
    }
    Ok(Some(
        ctx.passphrase("passphrase for the new wallet: ", true)?,
    ))
}

/// Creates the wallet, its key sealed under `passphrase` if there is one.
fn create(
    ctx: &Ctx,
    a: &Args,
    passphrase: Option<&Passphrase>,
    merchant: Option<PublicKey>,
    keyset: IssuerKeySet,
) -> anyhow::Result<Wallet<SledStore>> {
    std::fs::create_dir_all(&ctx.dir).with_context(|| ctx.dir.display().to_string())?;
    let store = SledStore::open(&ctx.dir)?;
    let mut rng = rand::rng();
    let (w, _) = match passphrase {
        Some(p) => Wallet::create_sealed(store, p, a.kind, merchant, keyset, ctx.now, &mut rng)?,
        None => Wallet::create(store, a.kind, merchant, keyset, ctx.now, &mut rng)?,
    };
    Ok(w)
}

fn offline(
    ctx: &Ctx,
    a: &Args,
    keys_file: &std::path::Path,
    merchant: Option<PublicKey>,
) -> anyhow::Result<()> {
    let out = a.out.as_ref().context("--issuer-keys needs --out")?;
    let keyset = match read(keys_file)? {
        TbFile::KeySet(k) => k,
        other => bail!(
            "{} is a {}, not an issuer key set",
            keys_file.display(),
            other.kind_name()
        ),
    };
    keyset.verify().context("issuer key set")?;
    refuse_existing(ctx)?;
    let passphrase = new_passphrase(ctx, a)?;
    let w = create(ctx, a, passphrase.as_ref(), merchant, keyset)?;
    let reg = w.registration()?;
    write(out, &TbFile::Registration(reg))?;
    if a.json {
        return crate::out::json(&serde_json::json!({
            "address": w.public().address(),
            "kind": a.kind,
            "encrypted": a.encrypt,
            "registration": out,
        }));
    }
    println!("created {} wallet {}", a.kind, w.public().address());
    if a.encrypt {
        println!("its secret key is encrypted with your passphrase: every command will need it");
    }
    println!("registration written to {}", out.display());
    println!(
        "next: the issuer certifies it (issuer certify {} --class IV --out CERT), then `wallet import CERT`",
        out.display()
    );
    Ok(())
}

fn online(ctx: &Ctx, a: &Args, url: &str, merchant: Option<PublicKey>) -> anyhow::Result<()> {
    let class = a.class.unwrap_or(WalletClass::IV);
    let client = IssuerClient::new(url)?;
    let keyset = client.keys()?;
    keyset
        .verify()
        .with_context(|| format!("the issuer key set from {}", client.base))?;
    let (w, resumed) = if ctx.dir.join("db").exists() {
        // A wallet created by an earlier `init --issuer` that did not finish registering.
        let w = ctx.open()?;
        if w.certificate()?.is_some() {
            bail!(
                "a wallet already exists at {} ({})",
                ctx.dir.display(),
                w.public().address()
            );
        }
        if w.kind() != a.kind {
            bail!(
                "the unregistered wallet at {} is a {} wallet, not {}",
                ctx.dir.display(),
                w.kind(),
                a.kind
            );
        }
        let held = w.keyset()?;
        if held.root != keyset.root {
            bail!(
                "the issuer at {} ({}) is not the issuer this wallet was created for ({})",
                client.base,
                keyset.root.address(),
                held.root.address()
            );
        }
        match w.import(TbFile::KeySet(keyset.clone()), ctx.now) {
            Ok(_) | Err(WalletError::Replay(_)) => {}
            Err(e) => return Err(e.into()),
        }
        (w, true)
    } else {
        let passphrase = new_passphrase(ctx, a)?;
        let w = create(ctx, a, passphrase.as_ref(), merchant, keyset.clone())?;
        (w, false)
    };
    // Recorded before registering, so that running init again finishes an interrupted one.
    w.set_issuer_url(&client.base)?;
    let reg = w.registration()?;
    let cert = client.register(&reg, class).with_context(|| {
        format!(
            "wallet {} is created but not registered: run `wallet init --issuer {} --kind {}` again to finish",
            w.public().address(),
            client.base,
            a.kind
        )
    })?;
    w.import(TbFile::Certificate(cert.clone()), ctx.now)
        .context("the certificate the issuer sent")?;
    if let Some(out) = &a.out {
        write(out, &TbFile::Registration(reg.clone()))?;
    }
    if a.json {
        return crate::out::json(&serde_json::json!({
            "address": w.public().address(),
            "kind": a.kind,
            "class": cert.class.to_string(),
            "issuer": client.base,
            "issuer_key": keyset.root.address(),
            "certificate_expires_at": cert.expires_at,
            "encrypted": Wallet::needs_passphrase(w.store())?,
            "resumed": resumed,
            "registration": a.out,
        }));
    }
    if resumed {
        println!(
            "finishing the registration of {} wallet {}",
            a.kind,
            w.public().address()
        );
    } else {
        println!("created {} wallet {}", a.kind, w.public().address());
        if a.encrypt {
            println!(
                "its secret key is encrypted with your passphrase: every command will need it"
            );
        }
    }
    println!(
        "registered with the issuer at {} ({}): class {} certificate valid until {}",
        client.base,
        keyset.issuer_id(),
        cert.class,
        format_rfc3339(cert.expires_at)
    );
    println!("next: receive money, or top up from the bank account with `wallet topup --amount X`");
    Ok(())
}

fn refuse_existing(ctx: &Ctx) -> anyhow::Result<()> {
    if ctx.dir.join("db").exists() {
        let w = ctx.open()?;
        bail!(
            "a wallet already exists at {} ({})",
            ctx.dir.display(),
            w.public().address()
        );
    }
    Ok(())
}
