//! `issuer keys export`: the key set wallets import.

use std::path::PathBuf;

use clap::Subcommand;
use tongbao::protocol::file::{TbFile, write_file};

use super::{Ctx, check_new_output};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Write the current issuer key set to a file.
    Export {
        /// Where to write it.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    match a.action {
        Action::Export { out } => {
            check_new_output(&out)?;
            let iss = ctx.open()?;
            let ks = iss.keyset()?;
            write_file(&out, &TbFile::KeySet(ks.clone()))?;
            println!(
                "issuer key set version {} ({} key(s)) written to {}",
                ks.set_version,
                ks.keys.len(),
                out.display()
            );
            Ok(())
        }
    }
}
