//! The clawback at the end of a red-envelope window: whatever restricted money its winners still
//! hold is taken back by the issuer. See docs/protocol.md#earmarked-money.
//!
//! The ledger indexes every live coin that is red-envelope money held by its winner (`er/`, written
//! when such a note is issued, when settlement makes change back to the winner, and when a sync
//! refreshes it into a fresh restricted note). Clawing back turns each such coin whose earmark has
//! expired from live to redeemed, in one atomic batch, and adds its value to the redeemed total (so
//! issued = redeemed + outstanding still holds) and to the clawback total.

use serde::Serialize;
use tongbao::codec::{Decode, Encode};
use tongbao::settlement::CoinState;
use tongbao::store::{Batch, Store};
use tongbao::{Fen, Id};

use crate::ledger::{Issuer, IssuerError, holder_key, keys};

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
    /// `now`. Idempotent: a second call finds nothing more until other earmarks expire.
    pub fn claw_back(&self, now: u64) -> Result<Clawback, IssuerError> {
        let _guard = self.lock();
        let mut b = Batch::new();
        let mut out = Clawback::default();
        for (k, v) in self.store.scan_prefix(keys::EARMARKED)? {
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
                b.put(
                    keys::with(keys::COIN, &id.0),
                    CoinState::Redeemed {
                        value,
                        holder,
                        collected: None,
                    }
                    .to_bytes(),
                );
                b.delete(holder_key(&holder, &id));
                out.coins += 1;
                out.value_fen = out
                    .value_fen
                    .checked_add(value.0)
                    .ok_or_else(|| IssuerError::Corrupt("clawback overflows".into()))?;
            }
            b.delete(k);
        }
        if out.value_fen > 0 {
            for key in [keys::REDEEMED_TOTAL, keys::CLAWBACK_TOTAL] {
                let total = self.load_u64(key)? + out.value_fen;
                b.put(key, total.to_be_bytes().to_vec());
            }
        }
        if !b.is_empty() {
            self.store.commit(b)?;
        }
        Ok(out)
    }

    /// Everything clawed back so far.
    pub fn clawed_back_total(&self) -> Result<Fen, IssuerError> {
        self.load_u64(keys::CLAWBACK_TOTAL).map(Fen)
    }
}
