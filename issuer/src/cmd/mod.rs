//! One module per subcommand, each with its `Args` and `run`.

pub mod audit;
pub mod bench;
pub mod certify;
pub mod clawback;
pub mod demo;
pub mod init;
pub mod issue;
pub mod keys;
pub mod ledger;
pub mod notes;
pub mod operator;
pub mod pilot;
pub mod recover;
pub mod revoke;
pub mod serve;
pub mod settle;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use issuer::Issuer;

/// What every command gets.
pub struct Ctx {
    /// Issuer home.
    pub home: PathBuf,
    /// Unix seconds (TONGBAO_NOW or the system clock).
    pub now: u64,
}

impl Ctx {
    pub fn new(home: Option<PathBuf>) -> anyhow::Result<Ctx> {
        let home = match home {
            Some(h) => h,
            None => {
                let h = std::env::var_os("HOME")
                    .context("no --home given, TONGBAO_ISSUER_HOME unset and no HOME")?;
                Path::new(&h).join(".tongbao").join("issuer")
            }
        };
        let now = tongbao::time::now_from_env().context("TONGBAO_NOW")?;
        Ok(Ctx { home, now })
    }

    pub fn open(&self) -> anyhow::Result<Issuer> {
        Ok(Issuer::open_dir(&self.home)?)
    }
}

/// Refuses a `--out` that exists or cannot be created, before anything changes.
pub fn check_new_output(path: &Path) -> anyhow::Result<()> {
    Ok(tongbao::protocol::file::check_new_output(path)?)
}

/// Prints pretty JSON.
pub fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}
