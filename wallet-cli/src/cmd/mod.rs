//! One module per subcommand, each with its `Args` and `run`.

pub mod address;
pub mod balance;
pub mod cod;
pub mod code;
pub mod history;
pub mod import;
pub mod init;
pub mod inspect;
pub mod outbox;
pub mod pay;
pub mod proofs;
pub mod receive;
pub mod redeem;
pub mod refund;
pub mod request;
pub mod sync;
pub mod till;
pub mod topup;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tongbao::client::IssuerClient;
use tongbao::protocol::file::{self, TbFile};
use tongbao::store::SledStore;
use tongbao::wallet::Wallet;
use tongbao::wallet::keystore::Passphrase;

/// What every command gets: where the wallet is, what time it is, and where an encrypted
/// wallet's passphrase comes from.
pub struct Ctx {
    /// The wallet directory.
    pub dir: PathBuf,
    /// Unix seconds (TONGBAO_NOW or the system clock).
    pub now: u64,
    /// `--passphrase-env VAR`: the environment variable holding the passphrase.
    pub passphrase_env: Option<String>,
}

impl Ctx {
    pub fn new(dir: Option<PathBuf>, passphrase_env: Option<String>) -> anyhow::Result<Ctx> {
        let dir = match dir {
            Some(d) => d,
            None => default_dir()?,
        };
        let now = tongbao::time::now_from_env().context("TONGBAO_NOW")?;
        Ok(Ctx {
            dir,
            now,
            passphrase_env,
        })
    }

    /// Opens the existing wallet; an encrypted one with its passphrase ([`Ctx::passphrase`]).
    pub fn open(&self) -> anyhow::Result<Wallet<SledStore>> {
        if !self.dir.join("db").exists() {
            bail!(
                "no wallet at {}: create one with `wallet init`",
                self.dir.display()
            );
        }
        let store = SledStore::open(&self.dir)?;
        if Wallet::needs_passphrase(&store)? {
            let prompt = format!("passphrase for the wallet at {}: ", self.dir.display());
            let p = self.passphrase(&prompt, false)?;
            return Ok(Wallet::open_with(store, Some(&p))?);
        }
        Ok(Wallet::open(store)?)
    }

    /// The passphrase: from the environment variable named by `--passphrase-env`, else asked for
    /// on the terminal (twice when `confirm`) if standard input is one. Never echoed or stored.
    pub fn passphrase(&self, prompt: &str, confirm: bool) -> anyhow::Result<Passphrase> {
        if let Some(var) = &self.passphrase_env {
            let value = std::env::var(var).map_err(|e| match e {
                std::env::VarError::NotPresent => anyhow::anyhow!(
                    "--passphrase-env {var}: the environment variable {var} is not set"
                ),
                std::env::VarError::NotUnicode(_) => anyhow::anyhow!(
                    "--passphrase-env {var}: the environment variable {var} is not UTF-8"
                ),
            })?;
            return Passphrase::new(value).with_context(|| format!("--passphrase-env {var}"));
        }
        if !std::io::stdin().is_terminal() {
            bail!(
                "the wallet at {} is encrypted and no terminal is attached to ask for its passphrase: give --passphrase-env VAR (the environment variable holding it)",
                self.dir.display()
            );
        }
        let first =
            Passphrase::new(rpassword::prompt_password(prompt).context("reading the passphrase")?)?;
        if confirm {
            let again = rpassword::prompt_password("the same passphrase again: ")
                .context("reading the passphrase")?;
            if !first.matches(&again) {
                bail!("the two passphrases differ");
            }
        }
        Ok(first)
    }
}

fn default_dir() -> anyhow::Result<PathBuf> {
    let home =
        std::env::var_os("HOME").context("no --wallet given, TONGBAO_WALLET unset and no HOME")?;
    Ok(Path::new(&home).join(".tongbao").join("wallet"))
}

/// Reads a Tongbao file.
pub fn read(path: &Path) -> anyhow::Result<TbFile> {
    Ok(file::read_file(path)?)
}

/// Writes a Tongbao file atomically.
pub fn write(path: &Path, f: &TbFile) -> anyhow::Result<()> {
    file::write_file(path, f)?;
    Ok(())
}

/// Refuses a `--out` that exists or cannot be created, before anything changes.
pub fn check_new_output(path: &Path) -> anyhow::Result<()> {
    Ok(file::check_new_output(path)?)
}

/// The issuer service to talk to: `--issuer URL` (or `TONGBAO_ISSUER_URL`, which clap reads into
/// the same argument), else the URL recorded by `wallet init --issuer`.
pub fn issuer_client(w: &Wallet<SledStore>, given: Option<&str>) -> anyhow::Result<IssuerClient> {
    let url = match given {
        Some(u) => u.to_string(),
        None => w.issuer_url()?.context(
            "this wallet has no issuer URL (it was set up from a key set file): give --issuer URL or set TONGBAO_ISSUER_URL",
        )?,
    };
    Ok(IssuerClient::new(&url)?)
}

/// A short id for people.
pub fn short(hex: &str) -> &str {
    &hex[..hex.len().min(8)]
}
