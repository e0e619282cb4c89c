//! The settlement index: what the issuer made of every coin this wallet brought to a sync, kept
//! by coin id, and every sync response applied. Merchants' reconciliation and till journals read
//! it; couriers' carried payments are brought to sync from here. See docs/merchants.md.

use serde::{Deserialize, Serialize};

use super::{Batch, Store, Wallet, WalletError, keys};
use crate::codec::{Decode, Encode};
use crate::crypto::{Id, Nonce};
use crate::protocol::SignedBody;
use crate::protocol::coin::Coin;
use crate::protocol::journal::CoinSettlement;
use crate::protocol::sync::{CoinStatus, RejectReason, SyncRequest, SyncResponse};

/// What settlement made of one coin, as this wallet learned it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SettledCoin {
    /// The sync (hex).
    pub sync_id: String,
    /// The response's time.
    pub time: u64,
    /// "settled", "collected" or "rejected".
    pub status: String,
    /// The result's coin id (the chain's final coin), or the collected coin id (hex).
    pub coin: String,
    /// For a rejection: the reason (`double-spend`, ...).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// For a double spend: the proof id (hex).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub proof: Option<String>,
}

impl SettledCoin {
    /// Whether the coin was rejected.
    pub fn rejected(&self) -> bool {
        self.status == "rejected"
    }

    /// The journal form of this record.
    pub fn to_journal(&self) -> Result<CoinSettlement, WalletError> {
        let sync_id = nonce_hex(&self.sync_id)?;
        let coin =
            Id::from_hex(&self.coin).ok_or_else(|| WalletError::Corrupt("settled coin".into()))?;
        Ok(if self.rejected() {
            CoinSettlement::Rejected {
                sync_id,
                coin,
                time: self.time,
                reason: reason_from_str(self.reason.as_deref().unwrap_or("")),
            }
        } else {
            CoinSettlement::Settled {
                sync_id,
                coin,
                time: self.time,
            }
        })
    }
}

fn nonce_hex(s: &str) -> Result<Nonce, WalletError> {
    let mut n = [0u8; 16];
    hex::decode_to_slice(s, &mut n).map_err(|_| WalletError::Corrupt("sync id".into()))?;
    Ok(Nonce(n))
}

/// The reject reason named `s` (`invalid` for anything unknown).
pub fn reason_from_str(s: &str) -> RejectReason {
    [
        RejectReason::DoubleSpend,
        RejectReason::UnknownNote,
        RejectReason::AlreadyRedeemed,
        RejectReason::NotYours,
    ]
    .into_iter()
    .find(|r| r.as_str() == s)
    .unwrap_or(RejectReason::Invalid)
}

/// Every coin id along a chain, from its note to its final coin.
pub fn chain_coin_ids(chain: &Coin) -> Vec<Id> {
    let mut ids = Vec::with_capacity(chain.hops.len() + 1);
    ids.push(chain.note.id());
    for h in &chain.hops {
        ids.push(h.transfer.output_coin_id(h.index));
    }
    ids
}

impl<S: Store> Wallet<S> {
    /// Adds to `b` what the response says of every coin of the pending request (by coin id, along
    /// each chain), the coins collected for this wallet, and the response itself. Called by
    /// `apply_sync` inside its commit.
    pub(crate) fn record_settlement(
        &self,
        pending: &SyncRequest,
        resp: &SyncResponse,
        b: &mut Batch,
    ) -> Result<(), WalletError> {
        let sync_id = resp.sync_id.to_hex();
        for (chain, result) in pending.coins.iter().zip(&resp.results) {
            let ids = chain_coin_ids(chain);
            let mut rec = SettledCoin {
                sync_id: sync_id.clone(),
                time: resp.time,
                status: "settled".into(),
                coin: result.coin.to_hex(),
                reason: None,
                proof: None,
            };
            // A double spend invalidates the chain after the coin spent twice; before it the
            // chain is good history.
            let mut first = 0;
            if result.status == CoinStatus::Rejected {
                rec.status = "rejected".into();
                rec.reason = Some(result.reason.as_str().to_string());
                if let Some(p) = &result.proof {
                    rec.proof = Some(p.id().to_hex());
                    if let Some(i) = ids.iter().position(|id| *id == p.coin()) {
                        first = i + 1;
                    }
                }
            }
            let v = serde_json::to_vec(&rec).map_err(|e| WalletError::Corrupt(e.to_string()))?;
            for id in &ids[first.min(ids.len())..] {
                b.put(keys::with(keys::SETTLED, &id.0), v.clone());
            }
        }
        for c in &resp.collected {
            let rec = SettledCoin {
                sync_id: sync_id.clone(),
                time: resp.time,
                status: "collected".into(),
                coin: c.to_hex(),
                reason: None,
                proof: None,
            };
            b.put(
                keys::with(keys::SETTLED, &c.0),
                serde_json::to_vec(&rec).map_err(|e| WalletError::Corrupt(e.to_string()))?,
            );
        }
        b.put(keys::with(keys::SYNC_LOG, &resp.sync_id.0), resp.to_bytes());
        Ok(())
    }

    /// What settlement made of coin `id`, if this wallet has heard.
    pub fn coin_settlement(&self, id: &Id) -> Result<Option<SettledCoin>, WalletError> {
        match self.store().get(&keys::with(keys::SETTLED, &id.0))? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| WalletError::Corrupt(format!("settlement index: {e}"))),
        }
    }

    /// A sync response this wallet applied, by sync id.
    pub fn sync_response(&self, sync_id: &Nonce) -> Result<Option<SyncResponse>, WalletError> {
        self.load(&keys::with(keys::SYNC_LOG, &sync_id.0), "sync response")
    }

    /// Every sync response this wallet applied.
    pub fn sync_responses(&self) -> Result<Vec<SyncResponse>, WalletError> {
        self.store()
            .scan_prefix(keys::SYNC_LOG)?
            .into_iter()
            .map(|(_, v)| {
                SyncResponse::decode(&v).map_err(|e| WalletError::Corrupt(format!("sync log: {e}")))
            })
            .collect()
    }
}
