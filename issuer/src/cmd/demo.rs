//! `issuer demo [--dir DIR]`: the walk-through, narrated.

use std::path::PathBuf;

use super::Ctx;

#[derive(clap::Args)]
pub struct Args {
    /// Directory to run in (must not exist yet, or be empty). Default: a new temporary directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let dir = match a.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("tongbao-demo-{}", std::process::id())),
    };
    issuer::demo::run(&dir, ctx.now, &mut std::io::stdout())
}
