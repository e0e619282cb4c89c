//! The in-process world shared by the issuer's integration tests: wallets over memory stores, the
//! issuer's ledger over a memory store, a seeded RNG and a fixed clock.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use issuer::Issuer;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tongbao::Fen;
use tongbao::protocol::certificate::{WalletClass, WalletKind};
use tongbao::protocol::file::TbFile;
use tongbao::protocol::note::Earmark;
use tongbao::protocol::sync::SyncResponse;
use tongbao::store::{MemStore, Store};
use tongbao::wallet::{PayTarget, Wallet, WalletError};

/// 2026-11-21T09:30:00Z.
pub const T0: u64 = 1_795_253_400;

/// Certificates last 90 days.
pub const CERT_SECS: u64 = 90 * 86_400;

/// An issuer and the clock; wallets are made with [`World::wallet`].
pub struct World<S: Store = MemStore> {
    pub iss: Arc<Issuer<S>>,
    pub rng: StdRng,
    pub now: u64,
}

impl World<MemStore> {
    /// A fresh issuer at [`T0`], every key drawn from `seed`.
    pub fn new(seed: u64) -> World {
        let mut rng = StdRng::seed_from_u64(seed);
        let iss = Issuer::init(MemStore::new(), T0, &mut rng).unwrap();
        World {
            iss: Arc::new(iss),
            rng,
            now: T0,
        }
    }
}

impl<S: Store> World<S> {
    /// A certified wallet.
    pub fn wallet(&mut self, kind: WalletKind, class: WalletClass) -> Wallet<MemStore> {
        let (w, reg) = Wallet::create(
            MemStore::new(),
            kind,
            None,
            self.iss.keyset().unwrap(),
            self.now,
            &mut self.rng,
        )
        .unwrap();
        let cert = self.iss.certify(&reg, class, CERT_SECS, self.now).unwrap();
        w.import(TbFile::Certificate(cert), self.now).unwrap();
        w
    }

    /// Issues `yuan` to `w` and imports it.
    pub fn fund(&mut self, w: &Wallet<MemStore>, yuan: u64) {
        let b = self
            .iss
            .issue(
                &w.public(),
                Fen(yuan * 100),
                Earmark::None,
                self.now,
                &mut self.rng,
            )
            .unwrap();
        w.import(TbFile::Notes(b), self.now).unwrap();
    }

    /// `from` pays `to` offline and `to` receives it.
    pub fn pay(
        &mut self,
        from: &Wallet<MemStore>,
        to: &Wallet<MemStore>,
        fen: u64,
    ) -> Result<(), WalletError> {
        let p = from.pay(
            PayTarget::Direct {
                to: to.public(),
                amount: Fen(fen),
            },
            self.now,
            &mut self.rng,
        )?;
        to.receive(&p, self.now).map(|_| ())
    }

    /// A sync of `w` with no top-up or redemption, applied.
    pub fn sync(&mut self, w: &Wallet<MemStore>) -> SyncResponse {
        let req = w
            .begin_sync(Fen::ZERO, Fen::ZERO, self.now, &mut self.rng)
            .unwrap();
        let resp = self.iss.sync(&req, self.now).unwrap();
        w.apply_sync(&resp, self.now).unwrap();
        resp
    }

    /// `issuer audit` passes.
    pub fn audit(&self) {
        let a = self.iss.audit().unwrap();
        assert!(a.ok, "audit: {:?}", a.problems);
        assert_eq!(a.issued_fen, a.redeemed_fen + a.outstanding_fen);
    }
}

/// A wallet's total balance in fen.
pub fn total(w: &Wallet<MemStore>, now: u64) -> u64 {
    w.balance(now).unwrap().total_fen
}
