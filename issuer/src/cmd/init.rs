//! `issuer init`: a new issuer.

use issuer::Issuer;

use super::Ctx;

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let iss = Issuer::init_dir(&ctx.home, ctx.now, &mut rand::rng())?;
    if a.json {
        return super::json(
            &serde_json::json!({ "issuer": iss.root().address(), "home": ctx.home }),
        );
    }
    println!(
        "issuer {} created in {}",
        iss.root().address(),
        ctx.home.display()
    );
    println!("next: `issuer keys export --out issuer-keys.tb` and give the file to wallets");
    Ok(())
}
