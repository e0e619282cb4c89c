//! Deterministic fixtures for tests, benchmarks and examples: an issuer from fixed seeds, wallet
//! keys, certificates, coins with any number of hops, and payments. Nothing here touches storage
//! or randomness.

use crate::crypto::{Nonce, PublicKey, SecretKey, Signature};
use crate::money::Fen;
use crate::protocol::certificate::{Certificate, WalletClass, WalletKind};
use crate::protocol::coin::Coin;
use crate::protocol::keyset::{IssuerKeyEntry, IssuerKeySet, Policy};
use crate::protocol::note::{Earmark, Note};
use crate::protocol::payment::Payment;
use crate::protocol::transfer::{Output, Transfer};
use crate::protocol::{Context, SignedBody};
use crate::time::FOREVER;

/// 2026-11-21T09:30:00Z, the fixtures' clock.
pub const NOW: u64 = 1_795_253_400;

/// A secret key from a one-byte seed (`[seed; 32]`).
pub fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32])
}

/// An issuer with root key seed 1 and note key 1 from seed 2.
pub struct Fixture {
    /// Root key.
    pub root: SecretKey,
    /// Note key (id 1).
    pub note_key: SecretKey,
    /// The published key set.
    pub keyset: IssuerKeySet,
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

impl Fixture {
    /// The fixed issuer.
    pub fn new() -> Fixture {
        let root = key(1);
        let note_key = key(2);
        let entry = IssuerKeyEntry {
            key_id: 1,
            key: note_key.public(),
            not_before: NOW - 86_400,
            issue_until: FOREVER,
            redeem_until: FOREVER,
        };
        let keyset = IssuerKeySet::sign(&root, 1, NOW - 86_400, Policy::default(), vec![entry]);
        Fixture {
            root,
            note_key,
            keyset,
        }
    }

    /// A verification context at [`NOW`] with no revocations.
    pub fn ctx(&self) -> Context<'_> {
        Context {
            keys: &self.keyset,
            now: NOW,
            revoked: None,
        }
    }

    /// A note of `value` to `holder` with serial bytes `[serial; 16]`.
    pub fn note(&self, holder: PublicKey, value: Fen, serial: u8) -> Note {
        Note::sign(
            &self.note_key,
            1,
            Nonce([serial; 16]),
            value,
            holder,
            NOW - 3_600,
            Earmark::None,
        )
    }

    /// A certificate for `wallet` (counter base 0, valid 90 days).
    pub fn certificate(
        &self,
        wallet: PublicKey,
        kind: WalletKind,
        class: WalletClass,
    ) -> Certificate {
        Certificate {
            key_id: 1,
            wallet,
            kind,
            class,
            merchant: None,
            limits: class.default_limits(),
            serial: 1,
            counter_base: 0,
            issued_at: NOW - 3_600,
            expires_at: NOW + 90 * 86_400,
            signature: Signature([0; 64]),
        }
        .signed(&self.note_key)
    }

    /// A coin of `value` whose chain has `hops` transfers ending at `holder`: the note goes to
    /// key seed 100, then each hop pays most of the value onward with change back (two outputs).
    pub fn coin_with_hops(&self, serial: u8, value: Fen, hops: usize, holder: PublicKey) -> Coin {
        let first = if hops == 0 { holder } else { key(100).public() };
        let mut coin = Coin::from_note(self.note(first, value, serial));
        let mut signer = key(100);
        for h in 0..hops {
            let next_key = key(101u8.wrapping_add(h as u8));
            let next = if h + 1 == hops {
                holder
            } else {
                next_key.public()
            };
            let v = coin.value();
            let change = Fen(v.0 / 100);
            let mut outputs = vec![Output {
                holder: next,
                value: Fen(v.0 - change.0),
            }];
            if change.0 > 0 {
                outputs.push(Output {
                    holder: signer.public(),
                    value: change,
                });
            }
            let t = Transfer::sign(
                &signer,
                coin.id(),
                outputs,
                h as u64 + 1,
                NOW - 1_800 + h as u64,
                Nonce([h as u8; 16]),
            );
            coin = coin.extended(t, 0);
            signer = next_key;
        }
        coin
    }

    /// A payment by `payer` (kind personal, class I) of `coins` (all held by `payer`) wholly to
    /// `payee`, counter 1.
    pub fn payment(&self, payer: &SecretKey, payee: PublicKey, coins: &[Coin]) -> Payment {
        let request_id = Nonce([0xAB; 16]);
        let cert = self.certificate(payer.public(), WalletKind::Personal, WalletClass::I);
        let mut paid = Vec::new();
        let mut amount = Fen::ZERO;
        for c in coins {
            let v = c.value();
            amount = Fen(amount.0 + v.0);
            let t = Transfer::sign(
                payer,
                c.id(),
                vec![Output {
                    holder: payee,
                    value: v,
                }],
                1,
                NOW,
                request_id,
            );
            paid.push(c.extended(t, 0));
        }
        Payment {
            certificate: cert,
            payee,
            request_id,
            amount,
            counter: 1,
            offline_spent: amount,
            time: NOW,
            coins: paid,
            signature: Signature([0; 64]),
            revocations: None,
            keyset: None,
        }
        .signed(payer)
    }

    /// A payment of `n` coins, each arriving with `hops` transfers (the last one the payment's own),
    /// from key seed 50 to key seed 51.
    pub fn payment_n_by_hops(&self, n: usize, hops: usize) -> (Payment, PublicKey) {
        let payer = key(50);
        let payee = key(51).public();
        let coins: Vec<Coin> = (0..n)
            .map(|i| {
                self.coin_with_hops(
                    i as u8 + 1,
                    Fen(10_000),
                    hops.saturating_sub(1),
                    payer.public(),
                )
            })
            .collect();
        let p = self.payment(&payer, payee, &coins);
        debug_assert!(p.id() != crate::crypto::Id::default());
        (p, payee)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_payment_verifies() {
        let f = Fixture::new();
        for (n, hops) in [(1, 1), (3, 4), (2, 16)] {
            let (p, payee) = f.payment_n_by_hops(n, hops);
            let v = p
                .verify(&f.ctx(), &payee, WalletKind::Merchant)
                .expect("verifies");
            assert_eq!(v.coins.len(), n);
            assert!(v.coins.iter().all(|c| c.hops == hops));
        }
    }

    #[test]
    fn too_many_hops_refused() {
        let f = Fixture::new();
        let (p, payee) = f.payment_n_by_hops(1, 17);
        assert!(matches!(
            p.verify(&f.ctx(), &payee, WalletKind::Merchant),
            Err(crate::protocol::VerifyError::TooManyHops { .. })
        ));
    }
}
