//! The settlement index: what the issuer made of every coin this wallet brought to a sync, kept
//! by coin id, and every sync response applied. Merchants' reconciliation and till journals read
//! it; couriers' carried payments are brought to sync from here. See docs/merchants.md.

use serde::{Deserialize, Serialize};

use super::records::{RECORD_BINARY, put_option};
use super::{Batch, Store, Wallet, WalletError, keys};
use crate::codec::{Decode, Encode, Put, Reader};
use crate::crypto::{Id, Nonce};
use crate::protocol::SignedBody;
use crate::protocol::coin::Coin;
use crate::protocol::journal::CoinSettlement;
use crate::protocol::sync::{CoinStatus, RejectReason, SyncRequest, SyncResponse};

/// The statuses a settlement record names, by their stored number.
const STATUSES: [&str; 3] = ["settled", "collected", "rejected"];

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
    /// The stored record: binary (docs/adr/0006); records written before it are JSON and still
    /// read.
    ///
    /// Layout: `01` (the form), sync id (16 bytes), time (u64), status (0 settled, 1 collected,
    /// 2 rejected), coin id (32 bytes), reason (a tag byte 0/1, then u8 length + text), proof id
    /// (a tag byte 0/1, then 32 bytes).
    pub(crate) fn to_stored(&self) -> Result<Vec<u8>, WalletError> {
        let corrupt = |what: &str| WalletError::Corrupt(format!("settlement index: bad {what}"));
        let sync_id = nonce_hex(&self.sync_id)?;
        let coin = Id::from_hex(&self.coin).ok_or_else(|| corrupt("coin"))?;
        let status = STATUSES
            .iter()
            .position(|s| *s == self.status)
            .ok_or_else(|| corrupt("status"))? as u8;
        let proof = match &self.proof {
            Some(h) => Some(Id::from_hex(h).ok_or_else(|| corrupt("proof"))?.0),
            None => None,
        };
        let mut v = Vec::with_capacity(96);
        v.put_u8(RECORD_BINARY);
        v.put_raw(&sync_id.0);
        v.put_u64(self.time);
        v.put_u8(status);
        v.put_raw(&coin.0);
        match &self.reason {
            Some(r) if r.len() <= 255 => {
                v.put_u8(1);
                v.put_var8(r.as_bytes());
            }
            Some(_) => return Err(corrupt("reason")),
            None => v.put_u8(0),
        }
        put_option(&mut v, proof.as_ref());
        Ok(v)
    }

    pub(crate) fn from_stored(v: &[u8]) -> Result<SettledCoin, WalletError> {
        if v.first() == Some(&b'{') {
            return serde_json::from_slice(v)
                .map_err(|e| WalletError::Corrupt(format!("settlement index: {e}")));
        }
        let corrupt =
            |e: crate::codec::DecodeError| WalletError::Corrupt(format!("settlement index: {e}"));
        let mut r = Reader::new(v);
        r.version("settlement record", RECORD_BINARY)
            .map_err(corrupt)?;
        let sync_id = hex::encode(r.array::<16>("sync id").map_err(corrupt)?);
        let time = r.u64("time").map_err(corrupt)?;
        let status = STATUSES
            .get(usize::from(r.u8("status").map_err(corrupt)?))
            .ok_or_else(|| WalletError::Corrupt("settlement index: unknown status".into()))?
            .to_string();
        let coin = hex::encode(r.array::<32>("coin").map_err(corrupt)?);
        let reason = match r.option_tag("reason").map_err(corrupt)? {
            true => Some(
                std::str::from_utf8(r.var8("reason", 255).map_err(corrupt)?)
                    .map_err(|_| WalletError::Corrupt("settlement index: reason".into()))?
                    .to_string(),
            ),
            false => None,
        };
        let proof = match r.option_tag("proof").map_err(corrupt)? {
            true => Some(hex::encode(r.array::<32>("proof").map_err(corrupt)?)),
            false => None,
        };
        r.finish().map_err(corrupt)?;
        Ok(SettledCoin {
            sync_id,
            time,
            status,
            coin,
            reason,
            proof,
        })
    }

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
            let v = rec.to_stored()?;
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
            b.put(keys::with(keys::SETTLED, &c.0), rec.to_stored()?);
        }
        b.put(keys::with(keys::SYNC_LOG, &resp.sync_id.0), resp.to_bytes());
        Ok(())
    }

    /// What settlement made of coin `id`, if this wallet has heard.
    pub fn coin_settlement(&self, id: &Id) -> Result<Option<SettledCoin>, WalletError> {
        match self.store().get(&keys::with(keys::SETTLED, &id.0))? {
            None => Ok(None),
            Some(v) => SettledCoin::from_stored(&v).map(Some),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settlement_records_round_trip_in_binary_and_still_read_as_json() {
        let mut rec = SettledCoin {
            sync_id: "ab".repeat(16),
            time: 1_700_000_000,
            status: "collected".into(),
            coin: "01".repeat(32),
            reason: None,
            proof: None,
        };
        for (status, reason, proof) in [
            ("collected", None, None),
            ("settled", None, None),
            ("rejected", Some("double-spend"), Some("02".repeat(32))),
            ("rejected", Some("unknown-note"), None),
        ] {
            rec.status = status.into();
            rec.reason = reason.map(str::to_string);
            rec.proof = proof;
            let v = rec.to_stored().expect("ok");
            assert_eq!(v[0], RECORD_BINARY);
            assert_eq!(SettledCoin::from_stored(&v).expect("ok"), rec);
            let json = serde_json::to_vec(&rec).expect("ok");
            assert!(v.len() * 2 < json.len(), "{} vs {}", v.len(), json.len());
            assert_eq!(SettledCoin::from_stored(&json).expect("ok"), rec);
            for cut in 0..v.len() {
                assert!(SettledCoin::from_stored(&v[..cut]).is_err(), "cut {cut}");
            }
            let mut long = v.clone();
            long.push(0);
            assert!(SettledCoin::from_stored(&long).is_err(), "trailing bytes");
        }
        rec.status = "lost".into();
        assert!(rec.to_stored().is_err(), "an unknown status is not stored");
    }
}
