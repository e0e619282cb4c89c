//! `issuer keys export`: the key set wallets import. `issuer keys rotate`: a new note key signs
//! from now on; the old one stops signing and its coins stay valid for a grace period, by the end
//! of which syncs have refreshed them to the new key.

use std::path::PathBuf;

use clap::Subcommand;
use tongbao::protocol::file::{TbFile, write_file};
use tongbao::time::{FOREVER, format_rfc3339, parse_duration};

use super::operator::{self, Ledger};
use super::{Ctx, check_new_output};

/// Default grace for the old note key: 30 days.
const DEFAULT_GRACE_SECS: u64 = 30 * 86_400;

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
    /// Rotate the note key: a new key signs from now on; coins under the old one stay valid for
    /// the grace period and are refreshed to the new key at their holders' next sync.
    Rotate {
        /// How long coins under the old key stay valid, e.g. 30d [default: 30d].
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        grace: Option<u64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    match a.action {
        Action::Export { out } => {
            check_new_output(&out)?;
            let ks = match operator::open(ctx)? {
                Ledger::Direct(iss) => iss.keyset()?,
                Ledger::Service(c) => {
                    let ks = c.keys()?;
                    ks.verify()?;
                    ks
                }
            };
            write_file(&out, &TbFile::KeySet(ks.clone()))?;
            println!(
                "issuer key set version {} ({} key(s)) written to {}",
                ks.set_version,
                ks.keys.len(),
                out.display()
            );
            Ok(())
        }
        Action::Rotate { grace, json } => {
            let ks = match operator::open(ctx)? {
                Ledger::Direct(iss) => iss.rotate_keys(
                    grace.unwrap_or(DEFAULT_GRACE_SECS),
                    ctx.now,
                    &mut rand::rng(),
                )?,
                Ledger::Service(c) => {
                    let ks = c.rotate_keys(grace)?;
                    ks.verify()?;
                    ks
                }
            };
            let until = |t: u64| {
                if t == FOREVER {
                    "no end".to_string()
                } else {
                    format_rfc3339(t)
                }
            };
            let keys: Vec<_> = ks
                .keys
                .iter()
                .map(|k| {
                    serde_json::json!({
                        "key_id": k.key_id,
                        "not_before": k.not_before,
                        "issue_until": (k.issue_until != FOREVER).then_some(k.issue_until),
                        "redeem_until": (k.redeem_until != FOREVER).then_some(k.redeem_until),
                    })
                })
                .collect();
            if json {
                return super::json(&serde_json::json!({
                    "version": ks.set_version,
                    "signing_key": ks.keys.last().map(|k| k.key_id),
                    "keys": keys,
                }));
            }
            println!("issuer key set version {}", ks.set_version);
            for k in &ks.keys {
                println!(
                    "  key {}: signs {} to {}; its coins valid until {}",
                    k.key_id,
                    format_rfc3339(k.not_before),
                    until(k.issue_until),
                    until(k.redeem_until)
                );
            }
            println!(
                "wallets get the new key set at their next sync; give it to new wallets with `issuer keys export`"
            );
            Ok(())
        }
    }
}
