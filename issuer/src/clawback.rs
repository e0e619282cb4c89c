//! The clawback at the end of a red-envelope window: whatever restricted money its winners still
//! hold is taken back by the issuer. See docs/protocol.md#earmarked-money.
//!
//! The ledger indexes every live coin that is red-envelope money held by its winner (`er/`, written
//! when such a note is issued, when settlement makes change back to the winner, and when a sync
//! refreshes it into a fresh restricted note; removed when settlement spends, refreshes or
//! collects the coin, so the index is about as large as the live restricted money, not as all
//! of it ever made). Clawing back turns each such coin whose earmark has
//! expired from live to redeemed and adds its value to the redeemed total (so issued = redeemed +
//! outstanding still holds) and to the clawback total. It goes through the index in pages of
//! [`CLAWBACK_PAGE`] entries, each page one atomic batch with its totals: a city's clawback is
//! millions of coins, and one batch of them all held gigabytes at once. Between pages the ledger
//! is whole (the audit holds), and a call cut short is finished by the next one.

use serde::Serialize;
use tongbao::codec::Decode;
use tongbao::settlement::CoinState;
use tongbao::store::{Batch, Store};
use tongbao::{Fen, Id};

use crate::ledger::{Issuer, IssuerError, keys, redeem_live};

/// Earmark index entries clawed back per atomic batch.
pub const CLAWBACK_PAGE: usize = 4096;

/// What one clawback took back.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Clawback {
    /// Coins clawed back.
    pub coins: u64,
    /// Their value, in fen.
    pub value_fen: u64,
}

impl<S: Store> Issuer<S> {
    /// Claws back every live red-envelope coin held by its winner whose earmark expired before
    /// `now`, a page at a time (each page one atomic, durable commit). Idempotent: a second call
    /// finds nothing more until other earmarks expire, and finishes a call that failed part way.
    pub fn claw_back(&self, now: u64) -> Result<Clawback, IssuerError> {
        let _guard = self.lock();
        let mut out = Clawback::default();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self
                .store
                .scan_range(keys::EARMARKED, after.as_deref(), CLAWBACK_PAGE)?;
            let Some((last, _)) = page.last() else {
                break;
            };
            after = Some(last.clone());
            let full = page.len() == CLAWBACK_PAGE;
            let mut b = Batch::new();
            let mut taken = Clawback::default();
            for (k, v) in page {
                let (Some(id), Ok(exp)) = (
                    k.get(keys::EARMARKED.len()..)
                        .and_then(|r| <[u8; 32]>::try_from(r).ok())
                        .map(Id),
                    <[u8; 8]>::try_from(v.as_slice()),
                ) else {
                    return Err(IssuerError::Corrupt("earmark index".into()));
                };
                if now <= u64::from_be_bytes(exp) {
                    continue;
                }
                let state = match self.store.get(&keys::with(keys::COIN, &id.0))? {
                    Some(s) => Some(
                        CoinState::decode(&s)
                            .map_err(|e| IssuerError::Corrupt(format!("coin state: {e}")))?,
                    ),
                    None => None,
                };
                if let Some(CoinState::Live { value, holder }) = state {
                    redeem_live(&mut b, &id, value, holder);
                    taken.coins += 1;
                    taken.value_fen = taken
                        .value_fen
                        .checked_add(value.0)
                        .ok_or_else(|| IssuerError::Corrupt("clawback overflows".into()))?;
                }
                b.delete(k);
            }
            if taken.value_fen > 0 {
                for key in [keys::REDEEMED_TOTAL, keys::CLAWBACK_TOTAL] {
                    let total = self
                        .load_u64(key)?
                        .checked_add(taken.value_fen)
                        .ok_or_else(|| IssuerError::Corrupt("clawback overflows".into()))?;
                    b.put(key, total.to_be_bytes().to_vec());
                }
            }
            if !b.is_empty() {
                self.store.commit(b)?;
            }
            out.coins += taken.coins;
            out.value_fen = out
                .value_fen
                .checked_add(taken.value_fen)
                .ok_or_else(|| IssuerError::Corrupt("clawback overflows".into()))?;
            if !full {
                break;
            }
        }
        Ok(out)
    }

    /// Everything clawed back so far.
    pub fn clawed_back_total(&self) -> Result<Fen, IssuerError> {
        self.load_u64(keys::CLAWBACK_TOTAL).map(Fen)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use tongbao::protocol::certificate::{WalletClass, WalletKind};
    use tongbao::protocol::note::Earmark;
    use tongbao::store::{MemStore, Store};
    use tongbao::wallet::Wallet;
    use tongbao::{Fen, Nonce};

    use super::CLAWBACK_PAGE;
    use crate::ledger::Issuer;

    /// 2026-11-21T09:30:00Z.
    const T0: u64 = 1_795_253_400;

    /// The earmark index keeps only coins that may still be live: a restricted coin spent (offline
    /// and settled at a sync, or paid online), refreshed or collected leaves it as its restricted
    /// change or fresh note joins it (both in one batch too), so the clawback reads no coin spent
    /// long ago.
    #[test]
    fn the_earmark_index_drops_coins_as_they_are_spent() {
        use tongbao::codec::Decode;
        use tongbao::protocol::file::TbFile;
        use tongbao::settlement::CoinState;
        use tongbao::wallet::PayTarget;

        use crate::ledger::keys;

        let mut rng = StdRng::seed_from_u64(11);
        let iss = Issuer::init(MemStore::new(), T0 - 60, &mut rng).expect("init");
        let keyset = iss.keyset().expect("keyset");
        let make = |kind, class, rng: &mut StdRng| {
            let (w, reg) =
                Wallet::create(MemStore::new(), kind, None, keyset.clone(), T0, rng).expect("w");
            let cert = iss.certify(&reg, class, 30 * 86_400, T0).expect("certify");
            w.import(TbFile::Certificate(cert), T0).expect("cert");
            w
        };
        let winner = make(WalletKind::Personal, WalletClass::II, &mut rng);
        let shop = make(WalletKind::Merchant, WalletClass::I, &mut rng);
        let shop2 = make(WalletKind::Merchant, WalletClass::I, &mut rng);
        let end = T0 + 7 * 86_400;
        let envelope = iss
            .issue(
                &winner.public(),
                Fen(20_000),
                Earmark::MerchantsOnly { expires_at: end },
                T0,
                &mut rng,
            )
            .expect("issue");
        winner.import(TbFile::Notes(envelope), T0).expect("import");
        // Every index entry, with whether its coin is live.
        let index = || -> Vec<bool> {
            iss.store
                .scan_prefix(keys::EARMARKED)
                .expect("scan")
                .iter()
                .map(|(k, _)| {
                    let state = iss
                        .store
                        .get(&keys::with(keys::COIN, &k[keys::EARMARKED.len()..]))
                        .expect("get")
                        .map(|v| CoinState::decode(&v).expect("state"));
                    matches!(state, Some(CoinState::Live { .. }))
                })
                .collect()
        };
        assert_eq!(index(), [true], "the note");
        let buy = |shop: &Wallet<MemStore>, fen: u64, t: u64, rng: &mut StdRng| {
            let request = shop
                .create_request(Fen(fen), "lunch".into(), 600, t, rng)
                .expect("request");
            let pay = winner
                .pay(
                    PayTarget::Request {
                        request,
                        amount: None,
                    },
                    t + 5,
                    rng,
                )
                .expect("pay");
            shop.receive(&pay, t + 10).expect("receive");
            pay
        };
        // A sync with nothing to top up or cash out, settled and applied.
        let sync = |w: &Wallet<MemStore>, t: u64, rng: &mut StdRng| {
            let r = w.begin_sync(Fen::ZERO, Fen::ZERO, t, rng).expect("sync");
            let resp = iss.sync(&r, t).expect("settled");
            w.apply_sync(&resp, t).expect("apply");
        };
        // Offline, settled when the shop syncs: the note is spent, its change is restricted.
        buy(&shop, 5_000, T0 + 60, &mut rng);
        sync(&shop, T0 + 3_600, &mut rng);
        assert_eq!(index(), [true], "the change only");
        // Online: the change is spent at once, its own change indexed.
        let pay = buy(&shop, 2_000, T0 + 3_700, &mut rng);
        iss.pay_online(&pay, T0 + 4_000).expect("online");
        assert_eq!(index(), [true], "the new change only");
        // A second envelope the winner never imports: collected for it at its next sync.
        iss.issue(
            &winner.public(),
            Fen(1_000),
            Earmark::MerchantsOnly { expires_at: end },
            T0 + 5_000,
            &mut rng,
        )
        .expect("issue");
        assert_eq!(index(), [true, true]);
        // A refresh: the restricted change comes home, and the second envelope is collected,
        // both as one fresh restricted note (one per expiry).
        sync(&winner, T0 + 7_200, &mut rng);
        assert_eq!(index(), [true], "the fresh note only");
        // Two payments offline, at two shops, and the second shop syncs first: its coin's chain
        // makes the first payment's change and spends it (one chain, one batch).
        buy(&shop, 1_000, T0 + 8_000, &mut rng);
        buy(&shop2, 500, T0 + 8_100, &mut rng);
        sync(&shop2, T0 + 9_000, &mut rng);
        assert_eq!(index(), [true], "the second change only");
        // Then the winner: it reports both payments and refreshes that change, in one batch.
        sync(&winner, T0 + 9_500, &mut rng);
        assert_eq!(index(), [true], "the newest fresh note only");
        // The clawback takes what is left: 200 - 50 - 20 + 10 - 10 - 5 yuan.
        let c = iss.claw_back(end + 1).expect("clawback");
        assert_eq!((c.coins, c.value_fen), (1, 12_500));
        assert!(index().is_empty());
        assert!(iss.audit().expect("audit").ok);
    }

    /// More earmarked coins than a page, some expiring later: the clawback takes every expired
    /// one across the pages, leaves the others, keeps the ledger whole, and is idempotent.
    #[test]
    fn clawback_goes_through_the_index_in_pages() {
        let mut rng = StdRng::seed_from_u64(5);
        let iss = Issuer::init(MemStore::new(), T0, &mut rng).expect("init");
        let keyset = iss.keyset().expect("keyset");
        let (w, reg) = Wallet::create(
            MemStore::new(),
            WalletKind::Personal,
            None,
            keyset,
            T0,
            &mut rng,
        )
        .expect("create");
        iss.certify(&reg, WalletClass::I, 90 * 86_400, T0)
            .expect("certify");
        let (soon, later) = (T0 + 86_400, T0 + 10 * 86_400);
        let n = CLAWBACK_PAGE * 2 + 7;
        let items: Vec<_> = (0..n)
            .map(|i| {
                let expires_at = if i % 3 == 0 { later } else { soon };
                (
                    w.public(),
                    Fen(100 + i as u64),
                    Earmark::MerchantsOnly { expires_at },
                    Nonce::random(&mut rng),
                )
            })
            .collect();
        for b in iss.issue_batch(&items, T0 + 60) {
            b.expect("issued");
        }
        let expired: Vec<u64> = (0..n)
            .filter(|i| i % 3 != 0)
            .map(|i| 100 + i as u64)
            .collect();
        let c = iss.claw_back(soon + 1).expect("clawback");
        assert_eq!(c.coins, expired.len() as u64);
        assert_eq!(c.value_fen, expired.iter().sum::<u64>());
        assert_eq!(iss.clawed_back_total().expect("total"), Fen(c.value_fen));
        let audit = iss.audit().expect("audit");
        assert!(audit.ok, "{:?}", audit.problems);
        assert_eq!(
            iss.claw_back(soon + 2).expect("again"),
            super::Clawback::default(),
            "idempotent"
        );
        // The rest when they expire.
        let rest = iss.claw_back(later + 1).expect("the rest");
        assert_eq!(rest.coins as usize, n - expired.len());
        assert!(iss.audit().expect("audit").ok);
    }
}
