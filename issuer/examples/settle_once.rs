//! One in-process settlement load run, printed as JSON (the `issuer bench settle` command does the
//! same with flags). `cargo run --release -p issuer --example settle_once -- WALLETS PAYMENTS GROUP`
fn main() -> anyhow::Result<()> {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let load = issuer::bench::SettleLoad {
        wallets: a.first().copied().unwrap_or(1000),
        payments: a.get(1).copied().unwrap_or(4),
        group: a.get(2).copied().unwrap_or(64),
        threads: 2,
        seed: 1,
    };
    let dir = tempfile::tempdir()?;
    let r = issuer::bench::run_in_process(dir.path(), load, tongbao::time::now_from_env()?)?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    Ok(())
}
