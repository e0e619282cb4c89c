//! Coin: a note plus its chain of transfers down to one output, checkable offline by anyone who
//! holds the issuer's key set. See docs/protocol.md#coin.

use super::note::{Earmark, Note};
use super::transfer::{Transfer, coin_id};
use super::{Context, SignedBody, VERSION, VerifyError};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader};
use crate::crypto::{Id, PublicKey, SigMemo, Signature, y_is_canonical};
use crate::money::Fen;

/// Upper bound on hops in the encoding (the policy maximum is usually much lower).
pub const MAX_HOPS_ENCODED: u8 = 255;

/// One link of a coin's chain: a transfer and which of its outputs the coin follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The transfer.
    pub transfer: Transfer,
    /// The output this coin continues as.
    pub index: u8,
}

/// A note and its chain of transfers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coin {
    /// The issuer-signed root.
    pub note: Note,
    /// Transfers in order, each spending the coin before it.
    pub hops: Vec<Hop>,
}

impl Encode for Coin {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.note.encode(out);
        out.put_u8(self.hops.len() as u8);
        for h in &self.hops {
            h.transfer.encode(out);
            out.put_u8(h.index);
        }
    }
}

impl Decode for Coin {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("coin", VERSION)?;
        let note = Note::decode_from(r)?;
        let n = r.count8("coin hops", 0, MAX_HOPS_ENCODED)?;
        let mut hops = Vec::with_capacity(n);
        for _ in 0..n {
            let transfer = Transfer::decode_from(r)?;
            let index = r.u8("hop output index")?;
            if usize::from(index) >= transfer.outputs.len() {
                return Err(DecodeError::InvalidValue("hop output index"));
            }
            hops.push(Hop { transfer, index });
        }
        Ok(Coin { note, hops })
    }
}

/// A signature still to be checked: verification first checks structure, then all signatures at
/// once (one by one, or batched).
#[derive(Debug, Clone)]
pub struct SigCheck {
    /// The signer.
    pub key: PublicKey,
    /// The labelled signing bytes.
    pub msg: Vec<u8>,
    /// The signature.
    pub sig: Signature,
    /// What was signed, for the error.
    pub what: &'static str,
    /// Signed by an issuer note key (a note or a certificate): a failure says it may come from
    /// another issuer ([`VerifyError::BadIssuerSignature`]).
    pub issuer: bool,
}

/// Below this many signatures, checking one by one is as fast as a batch. A single signature is
/// cheaper alone (a batch of one costs about a quarter more); from two on a batch is as fast or
/// faster (measured with the `R` checks included: 2 signatures 2-10% faster, 3: 6-21%, 4: 25-37%).
/// Once earlier checks are remembered (`SigMemo`), most payments leave two or three to check.
const BATCH_MIN: usize = 2;

/// Checks every pending signature, with the same verdict as `verify_strict` one by one.
///
/// From [`BATCH_MIN`] signatures on, they are checked as one batch (`crypto::verify_batch`: the
/// equation of ed25519-dalek's `verify_batch`, cofactorless with canonical `s`, with one point per
/// distinct key; two to three times as fast per signature). What `verify_strict` checks beyond
/// that is done here first: public keys are never weak (a [`PublicKey`] cannot hold one) and every
/// `R` must be canonically encoded and not of small order. If the batch fails, the signatures are
/// checked one by one with `verify_strict`, to report which one failed.
///
/// Checks this process has already seen pass (the same key, message and signature: a coin's note
/// and earlier transfers, checked again at every payment of it) are not repeated (`SigMemo` in
/// `crypto.rs`). Those that pass now are remembered.
pub fn verify_signatures(checks: &[SigCheck]) -> Result<(), VerifyError> {
    let todo = pending(checks);
    let strict = |todo: Pending<'_>| -> Result<(), VerifyError> {
        for (c, memo) in todo {
            c.key.verify_uncached(&c.msg, &c.sig, c.what).map_err(|e| {
                if c.issuer {
                    VerifyError::BadIssuerSignature(c.what)
                } else {
                    VerifyError::Crypto(e)
                }
            })?;
            if let Some(m) = memo {
                m.remember();
            }
        }
        Ok(())
    };
    if todo.len() < BATCH_MIN {
        return strict(todo);
    }
    // Else find and name the bad one (or confirm, strictly, that all are good).
    batch(todo).or_else(strict)
}

/// The checks of `checks` not already known to have passed, each with its cache entry.
type Pending<'a> = Vec<(&'a SigCheck, Option<SigMemo>)>;

fn pending(checks: &[SigCheck]) -> Pending<'_> {
    checks
        .iter()
        .map(|c| (c, SigMemo::of(&c.key, &c.msg, &c.sig)))
        .filter(|(_, m)| !m.as_ref().is_some_and(SigMemo::known))
        .collect()
}

/// Checks `todo` as one batch and remembers every check if it passes; hands `todo` back if it
/// fails or holds an `R` the batch cannot judge as `verify_strict` does.
fn batch(todo: Pending<'_>) -> Result<(), Pending<'_>> {
    if todo.iter().any(|(c, _)| !r_is_sound(&c.sig)) {
        return Err(todo);
    }
    let msgs: Vec<&[u8]> = todo.iter().map(|(c, _)| c.msg.as_slice()).collect();
    let sigs: Vec<&Signature> = todo.iter().map(|(c, _)| &c.sig).collect();
    let keys: Vec<&PublicKey> = todo.iter().map(|(c, _)| &c.key).collect();
    if !crate::crypto::verify_batch(&keys, &msgs, &sigs) {
        return Err(todo);
    }
    for (_, memo) in todo {
        if let Some(m) = memo {
            m.remember();
        }
    }
    Ok(())
}

/// Checks many independent signatures, each an item of its own (registrations, certificates,
/// notes, the transfers an audit rechecks), in batches of [`EACH_BATCH`] on every core, and returns
/// each one's verdict, the same as `verify_strict`'s. A batch that fails is split in halves and
/// each half checked again, down to single signatures: a bad item costs about two batches' work
/// (a check of each half on its way down), not a strict check of every item beside it. Checks that
/// pass are remembered like those of [`verify_signatures`], so the item's own verification later
/// finds its check done.
pub fn verify_each(checks: &[SigCheck]) -> Vec<bool> {
    use rayon::prelude::*;
    checks
        .par_chunks(EACH_BATCH)
        .flat_map_iter(|chunk| {
            let mut verdicts = Vec::with_capacity(chunk.len());
            verify_halving(chunk, &mut verdicts);
            verdicts
        })
        .collect()
}

/// Appends the verdicts of `checks` to `out`: all true if they pass as one batch, else those of
/// each half in turn (a single check's verdict is `verify_strict`'s).
fn verify_halving(checks: &[SigCheck], out: &mut Vec<bool>) {
    if checks.len() == 1 {
        out.push(verify_signatures(checks).is_ok());
        return;
    }
    // The batch alone: no strict fallback over the whole set before halving it.
    if batch(pending(checks)).is_ok() {
        out.extend(std::iter::repeat_n(true, checks.len()));
        return;
    }
    let (a, b) = checks.split_at(checks.len() / 2);
    verify_halving(a, out);
    verify_halving(b, out);
}

/// Signatures per batch in [`verify_each`]. `crypto::verify_batch` counts each distinct key once,
/// so a larger batch shares more keys (a batch of payments' checks holds each payer's key once
/// however many of its signatures it holds); past about 190 points curve25519-dalek switches to
/// Pippenger's method. Per signature, 256 by one key is about 2.5% faster than 64 by one key
/// (`cargo bench --bench verify -- verify_batch`); a failed batch is halved, not rechecked whole.
pub const EACH_BATCH: usize = 256;

/// Whether a signature's `R` is canonically encoded and is not a point of small order (the checks
/// `verify_strict` makes and batch verification does not: `verify_strict` compares `R`'s bytes
/// with the canonical encoding of the point it computes, and refuses small-order `R`).
///
/// Without decompressing `R` (a square root, a fifth of a signature check): a point is of small
/// order exactly when its y is one of the eight torsion points' y values (for each such y, both
/// points ±x are torsion points), so those y values are refused whatever the sign bit. An `R` that
/// is not on the curve at all fails the batch equation, and the strict pass then refuses it.
fn r_is_sound(sig: &Signature) -> bool {
    let mut r = [0u8; 32];
    r.copy_from_slice(&sig.0[..32]);
    if !y_is_canonical(&r) {
        return false;
    }
    r[31] &= 0x7f;
    !SMALL_ORDER_Y.contains(&r)
}

/// The y-coordinates (sign bit cleared) of the eight points of small order.
static SMALL_ORDER_Y: std::sync::LazyLock<Vec<[u8; 32]>> = std::sync::LazyLock::new(|| {
    curve25519_dalek::constants::EIGHT_TORSION
        .iter()
        .map(|p| {
            let mut y = p.compress().to_bytes();
            y[31] &= 0x7f;
            y
        })
        .collect()
});

/// One spend in a coin's history: coin `input` was consumed by transfer `transfer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The coin consumed.
    pub input: Id,
    /// The transfer that consumed it.
    pub transfer: Id,
    /// Who signed (the input's holder).
    pub signer: PublicKey,
}

/// What a structurally valid coin amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoinInfo {
    /// The coin id of its last output (the note id if no hops).
    pub id: Id,
    /// The current holder.
    pub holder: PublicKey,
    /// The current value.
    pub value: Fen,
    /// Number of transfers.
    pub hops: usize,
    /// The root note's id.
    pub note_id: Id,
    /// The note's restriction.
    pub earmark: Earmark,
    /// Every spend along the chain, oldest first.
    pub links: Vec<Link>,
    /// Time of the last transfer (or issue).
    pub last_time: u64,
}

impl Coin {
    /// A fresh coin: just a note.
    pub fn from_note(note: Note) -> Coin {
        Coin {
            note,
            hops: Vec::new(),
        }
    }

    /// Checks everything except signatures, and queues the signature checks in `checks`.
    ///
    /// Rules: the note's issuer key is known and valid, every transfer spends the coin before it,
    /// outputs sum exactly to their input, hop count within policy, times never go backwards and are
    /// not in the future.
    pub fn check_structure(
        &self,
        ctx: &Context<'_>,
        checks: &mut Vec<SigCheck>,
    ) -> Result<CoinInfo, VerifyError> {
        let note = &self.note;
        let entry = ctx
            .keys
            .check_signing_key(note.key_id, note.issued_at, ctx.now, "note")?;
        let note_msg = note.signing_bytes();
        let note_id = Id::hash(&note_msg);
        checks.push(SigCheck {
            key: entry.key,
            msg: note_msg,
            sig: note.signature,
            what: "note",
            issuer: true,
        });
        if let Earmark::MerchantsOnly { expires_at } = note.earmark
            && ctx.now > expires_at
        {
            return Err(VerifyError::Expired {
                what: "restricted note",
                at: crate::time::format_rfc3339(expires_at),
            });
        }
        if self.hops.len() > usize::from(ctx.keys.policy.max_hops) {
            return Err(VerifyError::TooManyHops {
                hops: self.hops.len(),
                max: ctx.keys.policy.max_hops,
            });
        }
        let mut id = note_id;
        let mut holder = note.holder;
        let mut value = note.value;
        let mut last_time = note.issued_at;
        let mut links = Vec::with_capacity(self.hops.len());
        for (i, hop) in self.hops.iter().enumerate() {
            let t = &hop.transfer;
            if t.input != id {
                return Err(VerifyError::BrokenChain(i));
            }
            let total = t.output_total().ok_or(VerifyError::ValueNotConserved {
                input: value,
                outputs: Fen(u64::MAX),
            })?;
            if total != value {
                return Err(VerifyError::ValueNotConserved {
                    input: value,
                    outputs: total,
                });
            }
            if t.time < last_time {
                return Err(VerifyError::TimeOrder);
            }
            let out = t
                .outputs
                .get(usize::from(hop.index))
                .ok_or(VerifyError::BadOutputIndex(hop.index))?;
            let msg = t.signing_bytes();
            let tid = Id::hash(&msg);
            checks.push(SigCheck {
                key: holder,
                msg,
                sig: t.signature,
                what: "transfer",
                issuer: false,
            });
            links.push(Link {
                input: id,
                transfer: tid,
                signer: holder,
            });
            id = coin_id(&tid, hop.index);
            holder = out.holder;
            value = out.value;
            last_time = t.time;
        }
        ctx.check_not_future(last_time, "coin")?;
        Ok(CoinInfo {
            id,
            holder,
            value,
            hops: self.hops.len(),
            note_id,
            earmark: note.earmark,
            links,
            last_time,
        })
    }

    /// Full offline verification: structure, then every signature.
    pub fn verify(&self, ctx: &Context<'_>) -> Result<CoinInfo, VerifyError> {
        let mut checks = Vec::with_capacity(self.hops.len() + 1);
        let info = self.check_structure(ctx, &mut checks)?;
        verify_signatures(&checks)?;
        Ok(info)
    }

    /// The coin extended by a transfer of it, following output `index`.
    pub fn extended(&self, transfer: Transfer, index: u8) -> Coin {
        let mut hops = self.hops.clone();
        hops.push(Hop { transfer, index });
        Coin {
            note: self.note.clone(),
            hops,
        }
    }

    /// The coin id without verifying anything.
    pub fn id(&self) -> Id {
        match self.hops.last() {
            None => self.note.id(),
            Some(h) => h.transfer.output_coin_id(h.index),
        }
    }

    /// The current holder, without verifying anything.
    pub fn holder(&self) -> PublicKey {
        match self.hops.last() {
            None => self.note.holder,
            Some(h) => h
                .transfer
                .outputs
                .get(usize::from(h.index))
                .map(|o| o.holder)
                .unwrap_or(self.note.holder),
        }
    }

    /// When the coin last changed hands (its last transfer, or its issue), without verifying.
    /// A new transfer of it must not be dated earlier: chains never go back in time.
    pub fn last_time(&self) -> u64 {
        self.hops
            .last()
            .map(|h| h.transfer.time)
            .unwrap_or(self.note.issued_at)
    }

    /// The current value, without verifying anything.
    pub fn value(&self) -> Fen {
        match self.hops.last() {
            None => self.note.value,
            Some(h) => h
                .transfer
                .outputs
                .get(usize::from(h.index))
                .map(|o| o.value)
                .unwrap_or(Fen::ZERO),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::certificate::WalletKind;
    use crate::testkit::Fixture;

    fn checks_of_a_payment() -> Vec<SigCheck> {
        let f = Fixture::new();
        let (p, payee) = f.payment_n_by_hops(3, 4);
        let mut checks = Vec::new();
        p.check_structure(&f.ctx(), &payee, WalletKind::Merchant, &mut checks)
            .expect("structure");
        checks
    }

    #[test]
    fn batch_agrees_with_strict() {
        let checks = checks_of_a_payment();
        assert!(checks.len() >= BATCH_MIN);
        assert_eq!(verify_signatures(&checks), Ok(()));
        // One flipped bit anywhere: refused, and the error names what was signed.
        for i in [0, checks.len() / 2, checks.len() - 1] {
            let mut bad = checks.clone();
            bad[i].sig.0[40] ^= 1;
            let err = verify_signatures(&bad).expect_err("bad signature");
            if bad[i].issuer {
                assert_eq!(err, VerifyError::BadIssuerSignature(bad[i].what));
            } else {
                assert!(matches!(err, VerifyError::Crypto(_)), "{err}");
            }
        }
    }

    #[test]
    fn verify_each_names_exactly_the_bad_items() {
        // More than two batches, signed by three keys; bad items at a batch's two ends, in the
        // middle of another, and last. Messages of this test only, so no earlier pass is cached.
        let keys = [
            crate::testkit::key(31),
            crate::testkit::key(32),
            crate::testkit::key(33),
        ];
        let mut checks: Vec<SigCheck> = (0..600)
            .map(|i| {
                let k = &keys[i % 3];
                let msg = format!("verify_each halving test {i}").into_bytes();
                SigCheck {
                    key: k.public(),
                    sig: k.sign(&msg),
                    msg,
                    what: "test",
                    issuer: false,
                }
            })
            .collect();
        assert!(verify_each(&checks).iter().all(|&ok| ok));
        let bad = [0, EACH_BATCH - 1, EACH_BATCH, EACH_BATCH + 77, 599];
        for &i in &bad {
            checks[i].msg.push(b'!');
        }
        let verdicts = verify_each(&checks);
        assert_eq!(verdicts.len(), checks.len());
        for (i, ok) in verdicts.iter().enumerate() {
            assert_eq!(*ok, !bad.contains(&i), "item {i}");
        }
    }

    #[test]
    fn checks_that_passed_are_not_repeated_and_failures_still_fail() {
        let checks = checks_of_a_payment();
        assert_eq!(verify_signatures(&checks), Ok(()));
        for c in &checks {
            assert!(SigMemo::of(&c.key, &c.msg, &c.sig).expect("on").known());
        }
        // Again: every check is known; the same verdict.
        assert_eq!(verify_signatures(&checks), Ok(()));
        // One known-good check among bad ones does not let the bad ones through.
        let mut bad = checks.clone();
        let last = bad.len() - 1;
        bad[last].msg.push(0);
        assert!(verify_signatures(&bad).is_err());
        assert!(verify_signatures(&bad[last..]).is_err());
        assert!(
            !SigMemo::of(&bad[last].key, &bad[last].msg, &bad[last].sig)
                .expect("on")
                .known()
        );
    }

    #[test]
    fn non_canonical_r_is_not_batched() {
        // Points whose y is below 19 have a second encoding, y + p; verify_strict refuses it.
        let mut found = 0;
        for y in 2u8..19 {
            let mut canonical = [0u8; 32];
            canonical[0] = y;
            let Some(p) = curve25519_dalek::edwards::CompressedEdwardsY(canonical).decompress()
            else {
                continue;
            };
            if p.is_small_order() {
                continue;
            }
            let mut alias = [0xffu8; 32];
            alias[0] = 0xed + y;
            alias[31] = 0x7f;
            let sig = |r: [u8; 32]| {
                let mut s = [0u8; 64];
                s[..32].copy_from_slice(&r);
                Signature(s)
            };
            assert!(r_is_sound(&sig(canonical)));
            assert!(!r_is_sound(&sig(alias)));
            found += 1;
        }
        assert!(found > 0);
    }

    #[test]
    fn r_check_agrees_with_decompression() {
        use curve25519_dalek::edwards::CompressedEdwardsY;
        // What decompressing R would decide: canonical, on the curve, not of small order.
        let by_decompression = |r: [u8; 32]| {
            crate::crypto::y_is_canonical(&r)
                && CompressedEdwardsY(r)
                    .decompress()
                    .is_some_and(|p| !p.is_small_order())
        };
        let sig = |r: [u8; 32]| {
            let mut s = [0u8; 64];
            s[..32].copy_from_slice(&r);
            Signature(s)
        };
        let mut cases: Vec<[u8; 32]> = Vec::new();
        // Every small-order point, with either sign bit.
        for p in curve25519_dalek::constants::EIGHT_TORSION {
            let b = p.compress().to_bytes();
            cases.push(b);
            let mut flipped = b;
            flipped[31] ^= 0x80;
            cases.push(flipped);
        }
        // Real signatures' R, and arbitrary bytes (many not on the curve).
        for i in 0u8..200 {
            let sk = crate::crypto::SecretKey::from_seed(&[i; 32]);
            let r: [u8; 32] = sk.sign(&[i]).0[..32].try_into().expect("32 bytes");
            cases.push(r);
            cases.push(*blake3::hash(&[i]).as_bytes());
        }
        for r in cases {
            let small_or_alias = CompressedEdwardsY(r)
                .decompress()
                .is_some_and(|p| p.is_small_order());
            if by_decompression(r) {
                assert!(r_is_sound(&sig(r)), "{}", hex::encode(r));
            }
            if small_or_alias || !crate::crypto::y_is_canonical(&r) {
                assert!(!r_is_sound(&sig(r)), "{}", hex::encode(r));
            }
        }
        assert_eq!(SMALL_ORDER_Y.len(), 8);
    }

    #[test]
    fn small_order_r_goes_strict_and_is_refused() {
        let mut checks = checks_of_a_payment();
        // R = the identity point (small order): verify_strict refuses it; so must the batch path.
        checks[1].sig.0[..32].copy_from_slice(&{
            let mut id = [0u8; 32];
            id[0] = 1;
            id
        });
        assert!(!r_is_sound(&checks[1].sig));
        assert!(verify_signatures(&checks).is_err());
    }
}
