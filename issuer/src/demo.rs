//! The narrated walk-through behind `issuer demo`: an issuer, a person, a shop and its supplier,
//! offline payments with change and a second hop, and a rolled-back wallet caught double spending.
//!
//! Every step runs the same library code as the CLI command printed beside it, on real sled
//! stores and real files in the demo directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tongbao::protocol::certificate::{WalletClass, WalletKind};
use tongbao::protocol::file::{TbFile, read_file, write_file};
use tongbao::protocol::note::Earmark;
use tongbao::store::SledStore;
use tongbao::wallet::{PayTarget, Wallet, WalletError};
use tongbao::{Fen, SignedBody as _};

use crate::Issuer;
use crate::ledger::DEFAULT_CERT_SECS;

struct Demo<'a> {
    dir: PathBuf,
    now: u64,
    out: &'a mut dyn Write,
}

impl Demo<'_> {
    fn cmd(&mut self, line: &str) -> anyhow::Result<()> {
        writeln!(self.out, "\n$ {line}")?;
        Ok(())
    }

    fn say(&mut self, line: &str) -> anyhow::Result<()> {
        writeln!(self.out, "  {line}")?;
        Ok(())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn wallet(&self, name: &str) -> anyhow::Result<Wallet<SledStore>> {
        Ok(Wallet::open(SledStore::open(&self.path(name))?)?)
    }

    fn balance(&mut self, name: &str) -> anyhow::Result<Fen> {
        let b = self.wallet(name)?.balance(self.now)?;
        let total = Fen(b.total_fen);
        self.cmd(&format!("wallet --wallet {name} balance"))?;
        self.say(&format!("balance {total} in {} coin(s)", b.coins.len()))?;
        Ok(total)
    }

    /// `wallet init` + `issuer certify` + `wallet import CERT`.
    fn open_wallet(
        &mut self,
        iss: &Issuer,
        name: &str,
        kind: WalletKind,
        class: WalletClass,
    ) -> anyhow::Result<()> {
        let keys = self.path("issuer-keys.tb");
        let keyset = match read_file(&keys)? {
            TbFile::KeySet(k) => k,
            _ => bail!("issuer-keys.tb is not a key set"),
        };
        self.cmd(&format!("wallet --wallet {name} init --kind {kind} --issuer-keys issuer-keys.tb --out {name}.reg"))?;
        let store = SledStore::open(&self.path(name))?;
        let (w, reg) = Wallet::create(store, kind, None, keyset, self.now, &mut rand::rng())?;
        write_file(
            &self.path(&format!("{name}.reg")),
            &TbFile::Registration(reg.clone()),
        )?;
        self.say(&format!("created {kind} wallet {}", w.public().address()))?;
        self.cmd(&format!(
            "issuer --home issuer certify {name}.reg --class {class} --out {name}.cert"
        ))?;
        let cert = iss.certify(&reg, class, DEFAULT_CERT_SECS, self.now)?;
        write_file(
            &self.path(&format!("{name}.cert")),
            &TbFile::Certificate(cert.clone()),
        )?;
        self.say(&format!(
            "class {class}: balance cap {}, per payment {}, offline {} in {} payments",
            cert.limits.balance_max,
            cert.limits.per_payment_max,
            cert.limits.offline_total_max,
            cert.limits.offline_count_max
        ))?;
        self.cmd(&format!("wallet --wallet {name} import {name}.cert"))?;
        w.import(TbFile::Certificate(cert), self.now)?;
        self.say("imported certificate")?;
        Ok(())
    }

    /// `wallet request` on `payee`, `wallet pay --request` on `payer`, `wallet receive` on `payee`.
    fn shop_sale(
        &mut self,
        payer: &str,
        payee: &str,
        amount: Fen,
        memo: &str,
        tag: &str,
    ) -> anyhow::Result<Result<(), WalletError>> {
        let req_file = format!("{tag}.req");
        self.cmd(&format!(
            "wallet --wallet {payee} request --amount {} --memo \"{memo}\" --out {req_file}",
            amount.plain()
        ))?;
        let req = self.wallet(payee)?.create_request(
            amount,
            memo.to_string(),
            600,
            self.now,
            &mut rand::rng(),
        )?;
        write_file(&self.path(&req_file), &TbFile::Request(req.clone()))?;
        self.say(&format!(
            "request {} for {amount}: {}",
            req.request_id.short(),
            req.to_code()
        ))?;
        let pay_file = format!("{tag}.pay");
        self.cmd(&format!(
            "wallet --wallet {payer} pay --request {req_file} --out {pay_file}"
        ))?;
        let p = self.wallet(payer)?.pay(
            PayTarget::Request {
                request: req,
                amount: None,
            },
            self.now,
            &mut rand::rng(),
        )?;
        write_file(&self.path(&pay_file), &TbFile::Payment(Box::new(p.clone())))?;
        self.say(&format!(
            "paid {} with {} coin(s), offline; payment {}",
            p.amount,
            p.coins.len(),
            p.id().short()
        ))?;
        let receipt_file = format!("{tag}.receipt");
        self.cmd(&format!(
            "wallet --wallet {payee} receive {pay_file} --receipt-out {receipt_file}"
        ))?;
        let p = match read_file(&self.path(&pay_file))? {
            TbFile::Payment(p) => p,
            _ => bail!("{pay_file} is not a payment"),
        };
        match self.wallet(payee)?.receive(&p, self.now) {
            Ok(got) => {
                write_file(
                    &self.path(&receipt_file),
                    &TbFile::Receipt(got.receipt.clone()),
                )?;
                self.say(&format!(
                    "received {} from {}",
                    got.amount,
                    got.payer.short()
                ))?;
                self.cmd(&format!("wallet --wallet {payer} import {receipt_file}"))?;
                self.wallet(payer)?
                    .import(read_file(&self.path(&receipt_file))?, self.now)?;
                self.say("receipt imported: the payment leaves the outbox")?;
                Ok(Ok(()))
            }
            Err(e) => {
                self.say(&format!("error: {e}"))?;
                Ok(Err(e))
            }
        }
    }
}

/// Runs the walk-through in `dir` (created; must be new or empty) at time `now`.
pub fn run(dir: &Path, now: u64, out: &mut dyn Write) -> anyhow::Result<()> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!("{} is not empty: give a new --dir", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let mut d = Demo {
        dir: dir.to_path_buf(),
        now,
        out,
    };
    writeln!(d.out, "Tongbao walk-through in {}", dir.display())?;
    writeln!(
        d.out,
        "(each step runs the same code as the command shown; files and wallets stay there to inspect)"
    )?;

    d.cmd("issuer --home issuer init")?;
    let iss = Issuer::init_dir(&d.path("issuer"), now, &mut rand::rng())?;
    d.say(&format!("issuer {} created", iss.root().address()))?;
    d.cmd("issuer --home issuer keys export --out issuer-keys.tb")?;
    write_file(&d.path("issuer-keys.tb"), &TbFile::KeySet(iss.keyset()?))?;
    d.say("issuer key set version 1 written")?;

    writeln!(
        d.out,
        "\n# Three wallets: Alice (a person), a noodle shop, and its supplier."
    )?;
    d.open_wallet(&iss, "alice", WalletKind::Personal, WalletClass::II)?;
    d.open_wallet(&iss, "shop", WalletKind::Merchant, WalletClass::I)?;
    d.open_wallet(&iss, "supplier", WalletKind::Merchant, WalletClass::I)?;

    writeln!(d.out, "\n# The issuer issues ¥100.00 to Alice.")?;
    let alice = d.wallet("alice")?.public();
    d.cmd(&format!(
        "issuer --home issuer issue --to {} --amount 100.00 --out alice-100.notes",
        alice.address()
    ))?;
    let bundle = iss.issue(&alice, Fen(10_000), Earmark::None, now, &mut rand::rng())?;
    write_file(&d.path("alice-100.notes"), &TbFile::Notes(bundle))?;
    d.cmd("wallet --wallet alice import alice-100.notes")?;
    d.wallet("alice")?
        .import(read_file(&d.path("alice-100.notes"))?, now)?;
    d.say("imported 1 note(s): ¥100.00")?;

    writeln!(
        d.out,
        "\n# Both devices offline: Alice pays the shop ¥37.50 against its request. Change comes back to her."
    )?;
    if let Err(e) = d.shop_sale("alice", "shop", Fen(3_750), "2 bowls of noodles", "sale1")? {
        bail!("sale refused: {e}");
    }

    writeln!(
        d.out,
        "\n# The shop pays its supplier ¥20.00 onward, still offline: a second hop on the same coin."
    )?;
    let supplier = d.wallet("supplier")?.public();
    d.cmd(&format!(
        "wallet --wallet shop pay --to {} --amount 20.00 --out supply.pay",
        supplier.address()
    ))?;
    let p = d.wallet("shop")?.pay(
        PayTarget::Direct {
            to: supplier,
            amount: Fen(2_000),
        },
        now,
        &mut rand::rng(),
    )?;
    write_file(&d.path("supply.pay"), &TbFile::Payment(Box::new(p.clone())))?;
    d.say(&format!(
        "paid ¥20.00; the coin now carries {} hop(s)",
        p.coins[0].hops.len()
    ))?;
    d.cmd("wallet --wallet supplier receive supply.pay")?;
    let p = match read_file(&d.path("supply.pay"))? {
        TbFile::Payment(p) => p,
        _ => bail!("supply.pay is not a payment"),
    };
    let got = d.wallet("supplier")?.receive(&p, now)?;
    d.say(&format!(
        "received {} (verified offline: issuer signature, both transfers, value conserved)",
        got.amount
    ))?;

    let a = d.balance("alice")?;
    let s = d.balance("shop")?;
    let u = d.balance("supplier")?;
    if (a, s, u) != (Fen(6_250), Fen(1_750), Fen(2_000)) {
        bail!("balances are not as expected: {a} {s} {u}");
    }

    writeln!(
        d.out,
        "\n# A cheat: Alice copies her wallet, pays ¥10.00, restores the copy and pays the same coins again."
    )?;
    d.cmd("cp -r alice alice-backup")?;
    copy_dir(&d.path("alice"), &d.path("alice-backup"))?;
    if let Err(e) = d.shop_sale("alice", "shop", Fen(1_000), "tea", "sale2")? {
        bail!("honest sale refused: {e}");
    }
    d.cmd("rm -r alice && mv alice-backup alice    # roll the wallet back")?;
    std::fs::remove_dir_all(d.path("alice"))?;
    std::fs::rename(d.path("alice-backup"), d.path("alice"))?;
    match d.shop_sale("alice", "shop", Fen(1_000), "more tea", "sale3")? {
        Err(WalletError::DoubleSpend { .. }) => {}
        Err(e) => bail!("expected a double spend, got: {e}"),
        Ok(()) => bail!("the double spend was accepted"),
    }
    d.cmd("wallet --wallet shop proofs")?;
    let (proofs, keys) = {
        let shop = d.wallet("shop")?;
        (shop.proofs()?, shop.keyset()?)
    };
    for p in proofs {
        p.verify(&keys)?;
        d.say(&format!(
            "proof {}: {} {} (anyone can check it)",
            p.id().short(),
            p.signer().short(),
            p.what()
        ))?;
    }
    let s2 = d.balance("shop")?;
    if s2 != Fen(2_750) {
        bail!("shop balance should be ¥27.50, is {s2}");
    }
    writeln!(
        d.out,
        "\nDone. The shop kept the honest ¥10.00 and refused the copy; the proof goes to the issuer at the next sync."
    )?;
    writeln!(
        d.out,
        "Everything is in {}: try `wallet --wallet {}/alice history`.",
        dir.display(),
        dir.display()
    )?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
