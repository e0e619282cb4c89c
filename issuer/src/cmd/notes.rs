//! `issuer notes export ID --out FILE`: write an issued note's file again (if it was lost, or the
//! process died between recording the note and writing its file).

use std::path::PathBuf;

use anyhow::bail;
use clap::Subcommand;
use tongbao::SignedBody as _;
use tongbao::protocol::file::{NoteBundle, TbFile, write_file};

use super::{Ctx, check_new_output};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Write an issued note to a file again.
    Export {
        /// The note id (or its first characters), as `issuer issue --json` printed it.
        id: String,
        /// Where to write it.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    match a.action {
        Action::Export { id, out } => {
            check_new_output(&out)?;
            let iss = ctx.open()?;
            let notes = iss.find_notes(&id)?;
            match notes.as_slice() {
                [n] => {
                    write_file(
                        &out,
                        &TbFile::Notes(NoteBundle {
                            notes: vec![n.clone()],
                        }),
                    )?;
                    println!(
                        "note {} ({} to {}) written to {}",
                        n.id().short(),
                        n.value,
                        n.holder.address(),
                        out.display()
                    );
                    Ok(())
                }
                [] => bail!("no issued note starts with {id}"),
                _ => bail!("{} notes start with {id}: give more of the id", notes.len()),
            }
        }
    }
}
