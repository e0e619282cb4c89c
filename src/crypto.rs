//! Keys, signatures, ids and addresses. See docs/protocol.md#primitives.
//!
//! Ed25519 (ed25519-dalek) verified with `verify_strict`; ids are blake3 hashes of signing bytes;
//! addresses are bech32m text of a wallet's public key with the prefix `tbw`.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError, RwLock};

use bech32::{Bech32m, Hrp};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand::{CryptoRng, Rng};
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Put, Reader};

/// Why a signature or key check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The signature does not verify under the named key (`verify_strict`).
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
    /// An address string could not be read.
    #[error("invalid address {0:?}: {1}")]
    BadAddress(String, String),
}

/// A 32-byte blake3 hash used as an identifier.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Id(pub [u8; 32]);

impl Id {
    /// blake3 of `bytes`.
    pub fn hash(bytes: &[u8]) -> Id {
        Id(*blake3::hash(bytes).as_bytes())
    }

    /// The first 8 hex digits, for people.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    /// Full lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Id> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out).ok()?;
        Some(Id(out))
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.put_raw(&self.0);
    }

    pub(crate) fn decode(r: &mut Reader<'_>, what: &'static str) -> Result<Id, DecodeError> {
        Ok(Id(r.array(what)?))
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.short())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A 16-byte random identifier (request ids, note serials).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Nonce(pub [u8; 16]);

impl Nonce {
    /// Fresh random bytes.
    pub fn random<R: Rng + CryptoRng + ?Sized>(rng: &mut R) -> Nonce {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        Nonce(b)
    }

    /// Full hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// First 8 hex digits.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", self.to_hex())
    }
}

/// An ed25519 public key (a wallet's or an issuer key's). Always a valid, non-weak curve point.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Reads 32 bytes as a public key, refusing invalid points and small-order (weak) keys.
    ///
    /// Keys already accepted are remembered in a bounded process-wide cache (`KeyCache`), so
    /// the same key decoded again (a coin's holder, a certificate, a key set, a revocation list)
    /// is not decompressed again. Only accepted keys are cached: refused bytes are checked (and
    /// refused) every time.
    pub fn from_bytes(bytes: &[u8; 32], what: &'static str) -> Result<PublicKey, DecodeError> {
        KEY_CACHE.get_or_check(bytes, what)
    }

    /// The uncached check behind [`PublicKey::from_bytes`].
    fn check_bytes(bytes: &[u8; 32], what: &'static str) -> Result<PublicKey, DecodeError> {
        let vk = VerifyingKey::from_bytes(bytes).map_err(|_| DecodeError::InvalidKey(what))?;
        // Refuse small-order keys, and non-canonical encodings (y written as y + p), so that
        // every key has exactly one encoding.
        if vk.is_weak() || !y_is_canonical(bytes) {
            return Err(DecodeError::InvalidKey(what));
        }
        Ok(PublicKey(vk))
    }

    /// Checks `sig` over `msg` with `verify_strict`.
    ///
    /// A check that passed is remembered (`SigMemo`): the same key, message and signature
    /// checked again pass without the curve arithmetic. A failed check is never remembered.
    pub fn verify(
        &self,
        msg: &[u8],
        sig: &Signature,
        what: &'static str,
    ) -> Result<(), CryptoError> {
        let memo = SigMemo::of(self, msg, sig);
        if memo.as_ref().is_some_and(SigMemo::known) {
            return Ok(());
        }
        self.verify_uncached(msg, sig, what)?;
        if let Some(m) = memo {
            m.remember();
        }
        Ok(())
    }

    /// [`PublicKey::verify`] without the cache of checks that passed.
    pub fn verify_uncached(
        &self,
        msg: &[u8],
        sig: &Signature,
        what: &'static str,
    ) -> Result<(), CryptoError> {
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        self.0
            .verify_strict(msg, &sig)
            .map_err(|_| CryptoError::BadSignature(what))
    }

    /// The underlying dalek key (for batch verification).
    pub fn dalek(&self) -> &VerifyingKey {
        &self.0
    }

    /// The bech32m address text: `tbw1...`.
    pub fn address(&self) -> String {
        // The HRP is a valid constant and 32 bytes are far below the code length limit.
        bech32::encode::<Bech32m>(ADDRESS_HRP, self.as_bytes()).unwrap_or_default()
    }

    /// A short form for people: the first 12 characters after the prefix.
    pub fn short(&self) -> String {
        let a = self.address();
        let body = a.get(4..16).unwrap_or("");
        format!("tbw1{body}…")
    }

    /// Parses a `tbw1...` address.
    pub fn from_address(text: &str) -> Result<PublicKey, CryptoError> {
        let text = text.trim();
        let bad = |why: &str| CryptoError::BadAddress(text.to_string(), why.to_string());
        let checked = bech32::primitives::decode::CheckedHrpstring::new::<Bech32m>(text)
            .map_err(|e| bad(&e.to_string()))?;
        if checked.hrp() != ADDRESS_HRP {
            return Err(bad("not a wallet address (expected prefix tbw1)"));
        }
        let bytes: Vec<u8> = checked.byte_iter().collect();
        let arr: [u8; 32] = bytes.try_into().map_err(|_| bad("wrong length"))?;
        PublicKey::from_bytes(&arr, "address").map_err(|e| bad(&e.to_string()))
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.put_raw(self.as_bytes());
    }

    pub(crate) fn decode(r: &mut Reader<'_>, what: &'static str) -> Result<PublicKey, DecodeError> {
        PublicKey::from_bytes(&r.array(what)?, what)
    }
}

impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.short())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address())
    }
}

/// A decoded key in the cache, looked up by its 32 bytes.
#[derive(Clone, Copy)]
struct CachedKey(VerifyingKey);

impl PartialEq for CachedKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes() == other.0.as_bytes()
    }
}

impl Eq for CachedKey {}

impl std::hash::Hash for CachedKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // The same as hashing the `[u8; 32]` it is borrowed as.
        self.0.as_bytes().hash(state);
    }
}

impl Borrow<[u8; 32]> for CachedKey {
    fn borrow(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }
}

/// A bounded set in two generations. Insertions go to the young one; when it is full, the old
/// generation is dropped and the young one becomes old. A hit in the old generation moves the item
/// back to the young one, so what is in use stays while what is not ages out; memory stays under
/// two generations' worth. (Emptying a full set outright, as a one-generation cache must, makes a
/// working set a little larger than the cache miss nearly every time.)
struct Generations<T> {
    young: HashSet<T>,
    old: HashSet<T>,
}

impl<T: Eq + std::hash::Hash> Generations<T> {
    fn new() -> Generations<T> {
        Generations {
            young: HashSet::new(),
            old: HashSet::new(),
        }
    }

    /// The item equal to `q`, if either generation holds it, and whether it is the old one's.
    fn get<Q>(&self, q: &Q) -> Option<(&T, bool)>
    where
        T: Borrow<Q>,
        Q: Eq + std::hash::Hash + ?Sized,
    {
        self.young
            .get(q)
            .map(|v| (v, false))
            .or_else(|| self.old.get(q).map(|v| (v, true)))
    }

    /// Adds `v` to the young generation (of at most `per_gen` items).
    fn insert(&mut self, v: T, per_gen: usize) {
        if self.young.len() >= per_gen {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(v);
    }

    /// Moves the item equal to `q` from the old generation to the young one.
    fn promote<Q>(&mut self, q: &Q, per_gen: usize)
    where
        T: Borrow<Q>,
        Q: Eq + std::hash::Hash + ?Sized,
    {
        if let Some(v) = self.old.take(q) {
            self.insert(v, per_gen);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }
}

/// Sets how many items each process-wide cache keeps in a generation (it holds at most two):
/// decoded public keys (about 220 bytes each) and signature checks that passed (about 40 bytes
/// each). The defaults, [`KEY_CACHE_DEFAULT`] and [`SIG_CACHE_DEFAULT`], hold a few tens of MB; a
/// process that handles many more wallets at once (a city-scale pilot) raises them so that its
/// working set fits.
pub fn set_cache_sizes(keys: usize, signature_checks: usize) {
    KEY_CACHE
        .per_shard
        .store((keys / KEY_CACHE_SHARDS).max(1), Ordering::Relaxed);
    SIG_CACHE_PER_SHARD.store(
        (signature_checks / SIG_CACHE_SHARDS).max(1),
        Ordering::Relaxed,
    );
}

/// Empties both process-wide caches and frees what they held (they fill again as keys and
/// signatures are checked): for a process done with a working set it had raised them for.
pub fn clear_caches() {
    for shard in &KEY_CACHE.shards {
        if let Ok(mut g) = shard.write() {
            *g = Generations::new();
        }
    }
    for shard in SIG_CACHE.iter() {
        if let Ok(mut g) = shard.lock() {
            *g = Generations::new();
        }
    }
}

/// Decoded keys per generation of the process-wide key cache, by default.
pub const KEY_CACHE_DEFAULT: usize = KEY_CACHE_SHARDS * 4 * 1024;
/// Signature checks per generation of the process-wide cache of checks, by default.
pub const SIG_CACHE_DEFAULT: usize = SIG_CACHE_SHARDS * 8 * 1024;

/// A bounded, thread-safe cache of accepted public keys, by their bytes.
///
/// Decompressing an Edwards point costs about as much as a fifth of a signature check, and the
/// same keys (the issuer's, a wallet's own, its payees') are decoded over and over. The cache is
/// split into shards, each behind its own lock and kept in two [`Generations`], so memory stays
/// bounded (about 220 bytes per key: by default at most 2 × [`KEY_CACHE_DEFAULT`] keys, about
/// 29 MB) whatever the traffic, and keys in use stay. Only keys that passed every check of
/// [`PublicKey::check_bytes`] are ever inserted.
struct KeyCache {
    shards: Vec<RwLock<Generations<CachedKey>>>,
    per_shard: AtomicUsize,
}

/// Shards in the process-wide cache.
const KEY_CACHE_SHARDS: usize = 16;

static KEY_CACHE: LazyLock<KeyCache> =
    LazyLock::new(|| KeyCache::new(KEY_CACHE_SHARDS, KEY_CACHE_DEFAULT / KEY_CACHE_SHARDS));

impl KeyCache {
    fn new(shards: usize, per_shard: usize) -> KeyCache {
        KeyCache {
            shards: (0..shards.max(1))
                .map(|_| RwLock::new(Generations::new()))
                .collect(),
            per_shard: AtomicUsize::new(per_shard.max(1)),
        }
    }

    fn shard(&self, bytes: &[u8; 32]) -> &RwLock<Generations<CachedKey>> {
        // Valid keys' bytes are uniformly spread; a crafted spread only costs cache hits.
        &self.shards[usize::from(bytes[0]) % self.shards.len()]
    }

    /// The cached key for `bytes`, or the result of checking them (cached if accepted).
    fn get_or_check(&self, bytes: &[u8; 32], what: &'static str) -> Result<PublicKey, DecodeError> {
        let shard = self.shard(bytes);
        let per_shard = self.per_shard.load(Ordering::Relaxed);
        // A poisoned lock only means another thread panicked mid-insert; the set is still sound
        // (it holds only accepted keys), so carry on with it.
        let hit = shard
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(bytes)
            .map(|(k, old)| (k.0, old));
        if let Some((k, old)) = hit {
            if old {
                shard
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .promote(bytes, per_shard);
            }
            return Ok(PublicKey(k));
        }
        let key = PublicKey::check_bytes(bytes, what)?;
        shard
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(CachedKey(key.0), per_shard);
        Ok(key)
    }

    /// Keys held, over all shards.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Whether `bytes` are cached.
    #[cfg(test)]
    fn contains(&self, bytes: &[u8; 32]) -> bool {
        self.shard(bytes)
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(bytes)
            .is_some()
    }
}

/// Turns the process-wide cache of signature checks that passed on or off (on by default).
///
/// Off, every check does the curve arithmetic again (benchmarks of verification turn it off).
pub fn set_signature_cache(on: bool) {
    SIG_CACHE_ON.store(on, Ordering::Relaxed);
}

static SIG_CACHE_ON: AtomicBool = AtomicBool::new(true);

/// Shards in the cache of signature checks.
const SIG_CACHE_SHARDS: usize = 16;
/// Digests per shard and generation (see [`set_cache_sizes`]).
static SIG_CACHE_PER_SHARD: AtomicUsize = AtomicUsize::new(SIG_CACHE_DEFAULT / SIG_CACHE_SHARDS);

/// Digests of signature checks that passed (see [`SigMemo`]), in two [`Generations`] per shard.
static SIG_CACHE: LazyLock<Vec<Mutex<Generations<[u8; 32]>>>> = LazyLock::new(|| {
    (0..SIG_CACHE_SHARDS)
        .map(|_| Mutex::new(Generations::new()))
        .collect()
});

/// One signature check's entry in the process-wide cache of checks that passed.
///
/// The same key, message and signature always get the same verdict, so a check that passed need
/// not be repeated: a coin's note and earlier transfers are checked again at every payment of it,
/// by every payee and by the issuer, and every wallet checks the same key set and revocation
/// list. The entry is blake3 of key, signature and message (fixed lengths first, so the input is
/// unambiguous; a false hit would need a blake3 collision). Only checks with the same verdict as
/// `verify_strict` are remembered, and only after they passed: [`SigMemo::remember`] is
/// crate-private and called after a passing check only. Bounded like [`KeyCache`].
pub(crate) struct SigMemo([u8; 32]);

impl SigMemo {
    /// The entry for checking `sig` over `msg` under `key`; `None` when the cache is off.
    pub(crate) fn of(key: &PublicKey, msg: &[u8], sig: &Signature) -> Option<SigMemo> {
        if !SIG_CACHE_ON.load(Ordering::Relaxed) {
            return None;
        }
        let mut h = blake3::Hasher::new();
        h.update(key.as_bytes());
        h.update(&sig.0);
        h.update(msg);
        Some(SigMemo(*h.finalize().as_bytes()))
    }

    fn shard(&self) -> &'static Mutex<Generations<[u8; 32]>> {
        &SIG_CACHE[usize::from(self.0[0]) % SIG_CACHE_SHARDS]
    }

    /// Whether this exact check passed before.
    pub(crate) fn known(&self) -> bool {
        let mut set = self.shard().lock().unwrap_or_else(PoisonError::into_inner);
        match set.get(&self.0) {
            None => false,
            Some((_, false)) => true,
            Some((_, true)) => {
                set.promote(&self.0, SIG_CACHE_PER_SHARD.load(Ordering::Relaxed));
                true
            }
        }
    }

    /// Records that the check passed. Call only after it did, with `verify_strict`'s verdict.
    pub(crate) fn remember(self) {
        let mut set = self.shard().lock().unwrap_or_else(PoisonError::into_inner);
        set.insert(self.0, SIG_CACHE_PER_SHARD.load(Ordering::Relaxed));
    }
}

/// Checks many signatures at once: true if every one satisfies (and, but for a chance of about
/// 2^-128 per batch, only if every one satisfies) the cofactorless ed25519 equation
/// `[s]B = R + [k]A` with `s` canonical (`k` = SHA-512(R ‖ A ‖ M) mod ℓ), the equation
/// ed25519-dalek's `verify_batch` checks. The checks `verify_strict` makes beyond it (`R` canonical
/// and not of small order, keys not weak) are the caller's (`protocol::coin`).
///
/// Written here rather than calling `verify_batch` for one reason: signatures by the same key
/// share its point. The batch equation is one multiscalar multiplication,
/// `[-Σ zᵢsᵢ]B + Σ [zᵢ]Rᵢ + Σ [zᵢkᵢ]Aᵢ = 0` with random 128-bit weights `zᵢ`; `verify_batch` has a
/// point `Aᵢ` for every signature, while here each distinct key is one point whose scalar is the
/// sum of its signatures' `zᵢkᵢ` (the same sum, by distributivity). The cost of the multiplication
/// grows with its points, and in this system most batches repeat keys: notes, certificates and
/// confirmations are all signed by the issuer, and a payment's signature and its coins' transfers
/// by one payer, so a batch has about a third to a half fewer points.
///
/// The weights are drawn as `verify_batch` draws them: from a hash of every input (here blake3
/// with its own context string over each `SHA-512(R ‖ A ‖ M)` and each `s`), so that whoever picks
/// the signatures cannot pick them to cancel out without knowing the weights first.
pub fn verify_batch(keys: &[&PublicKey], msgs: &[&[u8]], sigs: &[&Signature]) -> bool {
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
    use ed25519_dalek::{Digest, Sha512};

    let n = sigs.len();
    if keys.len() != n || msgs.len() != n {
        return false;
    }
    let mut weights = blake3::Hasher::new_derive_key("tongbao 2026 ed25519 batch weights");
    let mut rs = Vec::with_capacity(n);
    let mut ss = Vec::with_capacity(n);
    let mut ks = Vec::with_capacity(n);
    for ((key, msg), sig) in keys.iter().zip(msgs).zip(sigs) {
        let mut r = [0u8; 32];
        r.copy_from_slice(&sig.0[..32]);
        let mut s = [0u8; 32];
        s.copy_from_slice(&sig.0[32..]);
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s)) else {
            return false;
        };
        let Some(r_point) = CompressedEdwardsY(r).decompress() else {
            return false;
        };
        let mut h = Sha512::new();
        h.update(r);
        h.update(key.as_bytes());
        h.update(msg);
        let hram: [u8; 64] = h.finalize().into();
        weights.update(&hram);
        rs.push(r_point);
        ss.push(s);
        ks.push(Scalar::from_bytes_mod_order_wide(&hram));
    }
    for s in &ss {
        weights.update(s.as_bytes());
    }
    let mut stream = weights.finalize_xof();
    let zs: Vec<Scalar> = (0..n)
        .map(|_| {
            let mut z = [0u8; 16];
            stream.fill(&mut z);
            Scalar::from(u128::from_le_bytes(z))
        })
        .collect();

    // One point per distinct key, its scalar the sum of its signatures' zᵢkᵢ.
    let mut key_points: Vec<(EdwardsPoint, Scalar)> = Vec::new();
    let mut slot: std::collections::HashMap<&[u8; 32], usize> = std::collections::HashMap::new();
    for ((key, k), z) in keys.iter().zip(&ks).zip(&zs) {
        let i = *slot.entry(key.as_bytes()).or_insert_with(|| {
            key_points.push((key.0.to_edwards(), Scalar::ZERO));
            key_points.len() - 1
        });
        key_points[i].1 += z * k;
    }
    let b_coefficient: Scalar = ss.iter().zip(&zs).map(|(s, z)| s * z).sum();

    let scalars = std::iter::once(-b_coefficient)
        .chain(zs.iter().copied())
        .chain(key_points.iter().map(|(_, c)| *c));
    let points = std::iter::once(curve25519_dalek::constants::ED25519_BASEPOINT_POINT)
        .chain(rs)
        .chain(key_points.iter().map(|(p, _)| *p));
    EdwardsPoint::vartime_multiscalar_mul(scalars, points).is_identity()
}

/// Whether the encoded `y` (the low 255 bits, little-endian) is below p = 2^255 - 19, i.e. the
/// encoding is the canonical one. (The other way to encode a point twice, a set sign bit with
/// x = 0, only exists for the two small-order points with y = ±1, which are refused as weak.)
pub(crate) fn y_is_canonical(bytes: &[u8; 32]) -> bool {
    // y >= p only if bits 8..255 are all ones and the low byte is at least 0xed.
    let top_all_ones = bytes[31] & 0x7f == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff);
    !(top_all_ones && bytes[0] >= 0xed)
}

/// The human-readable prefix of wallet addresses.
pub const ADDRESS_HRP: Hrp = Hrp::parse_unchecked("tbw");

/// A 64-byte ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.put_raw(&self.0);
    }

    pub(crate) fn decode(r: &mut Reader<'_>, what: &'static str) -> Result<Signature, DecodeError> {
        Ok(Signature(r.array(what)?))
    }

    /// The dalek form (for batch verification).
    pub fn dalek(&self) -> ed25519_dalek::Signature {
        ed25519_dalek::Signature::from_bytes(&self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..4]))
    }
}

/// A secret signing key. No `Debug` or `Display`; zeroized on drop (dalek's `zeroize` feature).
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A fresh key from a cryptographic RNG.
    pub fn generate<R: Rng + CryptoRng + ?Sized>(rng: &mut R) -> SecretKey {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        SecretKey(SigningKey::from_bytes(&seed))
    }

    /// From a 32-byte seed (stored keys, test vectors).
    pub fn from_seed(seed: &[u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed, for storing. Handle with care.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `msg` (already labelled signing bytes).
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.0.sign(msg).to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_round_trip_and_refusals() {
        let sk = SecretKey::from_seed(&[7u8; 32]);
        let pk = sk.public();
        let addr = pk.address();
        assert!(addr.starts_with("tbw1"));
        assert_eq!(PublicKey::from_address(&addr), Ok(pk));
        assert_eq!(PublicKey::from_address(&addr.to_uppercase()), Ok(pk));
        // one character changed: checksum fails
        let mut chars: Vec<char> = addr.chars().collect();
        let i = chars.len() / 2;
        chars[i] = if chars[i] == 'q' { 'p' } else { 'q' };
        let flipped: String = chars.into_iter().collect();
        assert!(PublicKey::from_address(&flipped).is_err());
        assert!(PublicKey::from_address("").is_err());
        assert!(PublicKey::from_address(&addr[..addr.len() - 1]).is_err());
    }

    #[test]
    fn weak_keys_refused() {
        // The identity point (small order) encodes as 1 followed by zeros.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PublicKey::from_bytes(&identity, "k").is_err());
    }

    #[test]
    fn non_canonical_key_encoding_refused() {
        // y = 3 written as 3 + p (p = 2^255 - 19) decompresses to the same point as y = 3.
        let mut canonical = [0u8; 32];
        canonical[0] = 3;
        let mut alias = [0xffu8; 32];
        alias[0] = 0xed + 3;
        alias[31] = 0x7f;
        let canonical_ok = PublicKey::from_bytes(&canonical, "k");
        assert!(PublicKey::from_bytes(&alias, "k").is_err());
        // Whatever the canonical form's fate (it may be off-curve or weak), the alias never passes.
        if let Ok(k) = canonical_ok {
            assert_eq!(k.as_bytes(), &canonical);
        }
    }

    #[test]
    fn canonical_y_check_matches_recompression() {
        // Against the slow definition (decompress, compress, compare), over keys and edge cases.
        let mut cases: Vec<[u8; 32]> = (0u8..=40)
            .map(|i| {
                SecretKey::from_seed(&[i; 32])
                    .public()
                    .as_bytes()
                    .to_owned()
            })
            .collect();
        for low in [0xeau8, 0xec, 0xed, 0xee, 0xff] {
            let mut b = [0xffu8; 32];
            b[0] = low;
            b[31] = 0x7f;
            cases.push(b);
            let mut signed = b;
            signed[31] = 0xff;
            cases.push(signed);
        }
        for b in cases {
            // Only meaningful after the weak-key check (as `from_bytes` uses it): the points with
            // x = 0 (y = ±1) have a second, sign-bit encoding, and are refused as weak.
            if let Ok(vk) = VerifyingKey::from_bytes(&b)
                .map_err(|_| ())
                .and_then(|vk| if vk.is_weak() { Err(()) } else { Ok(vk) })
            {
                assert_eq!(
                    y_is_canonical(&b),
                    vk.to_edwards().compress().to_bytes() == b,
                    "{}",
                    hex::encode(b)
                );
            }
        }
    }

    /// Bytes that are not a point: y = 2 has no x on the curve.
    fn off_curve() -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0] = 2;
        assert!(VerifyingKey::from_bytes(&b).is_err());
        b
    }

    #[test]
    fn key_cache_hit_returns_the_same_key() {
        let bytes = *SecretKey::from_seed(&[42u8; 32]).public().as_bytes();
        let first = PublicKey::from_bytes(&bytes, "k").expect("valid key");
        assert!(KEY_CACHE.contains(&bytes));
        let again = PublicKey::from_bytes(&bytes, "k").expect("cached key");
        assert_eq!(first, again);
        assert_eq!(again.as_bytes(), &bytes);
        // The cached key verifies like the uncached one.
        let sk = SecretKey::from_seed(&[42u8; 32]);
        let sig = sk.sign(b"msg");
        assert!(again.verify(b"msg", &sig, "m").is_ok());
        assert_eq!(PublicKey::check_bytes(&bytes, "k"), Ok(again));
        // A private cache too: miss, then hit, same key.
        let c = KeyCache::new(2, 4);
        assert_eq!(c.get_or_check(&bytes, "k"), Ok(first));
        assert_eq!(c.len(), 1);
        assert_eq!(c.get_or_check(&bytes, "k"), Ok(first));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn key_cache_never_accepts_refused_bytes() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut alias = [0xffu8; 32];
        alias[0] = 0xed + 3;
        alias[31] = 0x7f;
        // A valid key written with y + p (its alias) is refused even once the key is cached.
        let valid = *SecretKey::from_seed(&[9u8; 32]).public().as_bytes();
        assert!(PublicKey::from_bytes(&valid, "k").is_ok());
        let c = KeyCache::new(4, 16);
        for bad in [identity, alias, off_curve()] {
            for _ in 0..3 {
                assert_eq!(
                    PublicKey::from_bytes(&bad, "what"),
                    Err(DecodeError::InvalidKey("what"))
                );
                assert_eq!(
                    c.get_or_check(&bad, "other"),
                    Err(DecodeError::InvalidKey("other"))
                );
            }
            assert!(!KEY_CACHE.contains(&bad));
            assert!(!c.contains(&bad));
        }
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn key_cache_stays_bounded() {
        let (shards, per_shard) = (4, 8);
        let c = KeyCache::new(shards, per_shard);
        let keys: Vec<[u8; 32]> = (0u32..200)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..4].copy_from_slice(&i.to_be_bytes());
                *SecretKey::from_seed(&seed).public().as_bytes()
            })
            .collect();
        for k in &keys {
            let got = c.get_or_check(k, "k").expect("valid key");
            assert_eq!(got.as_bytes(), k);
            // Just inserted: present, whatever was evicted to make room.
            assert!(c.contains(k));
            assert!(c.len() <= 2 * shards * per_shard);
            for s in &c.shards {
                assert!(s.read().expect("lock").len() <= 2 * per_shard);
            }
        }
        // Evicted keys decode again, to the same key.
        for k in &keys {
            assert_eq!(c.get_or_check(k, "k").expect("valid key").as_bytes(), k);
        }
        assert!(c.len() <= 2 * shards * per_shard);
        // A key in use stays while others come and go.
        let hot = keys[0];
        for k in &keys {
            c.get_or_check(&hot, "k").expect("valid key");
            c.get_or_check(k, "k").expect("valid key");
            assert!(c.contains(&hot));
        }
        // The process-wide cache's default bound: a few tens of MB at most.
        const { assert!(2 * KEY_CACHE_DEFAULT * std::mem::size_of::<CachedKey>() < 40 << 20) };
    }

    #[test]
    fn signature_cache_remembers_only_checks_that_passed() {
        let sk = SecretKey::from_seed(&[77u8; 32]);
        let pk = sk.public();
        let msg = b"signature cache";
        let sig = sk.sign(msg);
        let memo = SigMemo::of(&pk, msg, &sig).expect("cache on");
        assert!(!memo.known());
        assert!(pk.verify(msg, &sig, "m").is_ok());
        assert!(memo.known());
        assert!(pk.verify(msg, &sig, "m").is_ok());
        // Anything changed is another check, and a failing one is refused every time and never
        // remembered.
        let mut bad = sig;
        bad.0[40] ^= 1;
        let other = SecretKey::from_seed(&[78u8; 32]).public();
        for _ in 0..2 {
            assert_eq!(
                pk.verify(msg, &bad, "m"),
                Err(CryptoError::BadSignature("m"))
            );
            assert!(pk.verify(b"signature cachf", &sig, "m").is_err());
            assert!(other.verify(msg, &sig, "m").is_err());
        }
        assert!(!SigMemo::of(&pk, msg, &bad).expect("on").known());
        assert!(
            !SigMemo::of(&pk, b"signature cachf", &sig)
                .expect("on")
                .known()
        );
        assert!(!SigMemo::of(&other, msg, &sig).expect("on").known());
        // Bounded: a few tens of MB at most.
        const { assert!(2 * SIG_CACHE_DEFAULT * 40 < 20 << 20) };
    }

    #[test]
    fn sign_verify() {
        let sk = SecretKey::from_seed(&[1u8; 32]);
        let sig = sk.sign(b"hello");
        assert!(sk.public().verify(b"hello", &sig, "m").is_ok());
        assert!(sk.public().verify(b"hellp", &sig, "m").is_err());
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;
    use curve25519_dalek::scalar::Scalar;

    /// `n` signatures by `signers` keys in turn, each over a message of its own.
    fn batch(n: usize, signers: u8) -> (Vec<PublicKey>, Vec<Vec<u8>>, Vec<Signature>) {
        let keys: Vec<SecretKey> = (0..signers)
            .map(|i| SecretKey::from_seed(&[i + 1; 32]))
            .collect();
        let mut pks = Vec::new();
        let mut msgs = Vec::new();
        let mut sigs = Vec::new();
        for i in 0..n {
            let k = &keys[i % keys.len()];
            let msg = format!("tongbao batch test message {i}").into_bytes();
            sigs.push(k.sign(&msg));
            pks.push(k.public());
            msgs.push(msg);
        }
        (pks, msgs, sigs)
    }

    fn check(pks: &[PublicKey], msgs: &[Vec<u8>], sigs: &[Signature]) -> bool {
        let k: Vec<&PublicKey> = pks.iter().collect();
        let m: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        let s: Vec<&Signature> = sigs.iter().collect();
        verify_batch(&k, &m, &s)
    }

    /// ed25519-dalek's own batch verdict, for comparison.
    fn dalek(pks: &[PublicKey], msgs: &[Vec<u8>], sigs: &[Signature]) -> bool {
        let k: Vec<VerifyingKey> = pks.iter().map(|p| p.0).collect();
        let m: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        let s: Vec<ed25519_dalek::Signature> = sigs.iter().map(Signature::dalek).collect();
        ed25519_dalek::verify_batch(&m, &s, &k).is_ok()
    }

    #[test]
    fn good_batches_pass_with_repeated_and_distinct_keys() {
        for (n, signers) in [(1, 1), (2, 1), (2, 2), (64, 1), (64, 3), (64, 64), (300, 7)] {
            let (p, m, s) = batch(n, signers);
            assert!(check(&p, &m, &s), "{n} signatures by {signers} keys");
            assert!(dalek(&p, &m, &s));
        }
    }

    #[test]
    fn any_one_bad_signature_fails_the_batch_as_dalek_does() {
        for signers in [1, 2, 5] {
            let (p, m, s) = batch(20, signers);
            for i in 0..20 {
                // A wrong message, a flipped bit in R or in s, the signature of another item.
                let mut m2 = m.clone();
                m2[i].push(b'!');
                let mut r = s.clone();
                r[i].0[3] ^= 0x10;
                let mut sb = s.clone();
                sb[i].0[40] ^= 0x01;
                let mut swapped = s.clone();
                swapped[i] = s[(i + 1) % 20];
                for (what, mm, ss) in [
                    ("message", &m2, &s),
                    ("R", &m, &r),
                    ("s", &m, &sb),
                    ("swapped", &m, &swapped),
                ] {
                    assert!(!check(&p, mm, ss), "{what} of item {i}, {signers} signers");
                    assert!(!dalek(&p, mm, ss), "{what} of item {i}, dalek");
                }
            }
        }
    }

    #[test]
    fn a_signature_under_the_wrong_key_fails() {
        // Signed by key 1, claimed under key 2 (both keys appear elsewhere in the batch).
        let (mut p, m, s) = batch(10, 2);
        p.swap(0, 1);
        assert!(!check(&p, &m, &s));
    }

    #[test]
    fn errors_that_cancel_in_the_sum_of_s_still_fail() {
        // Two signatures by the same key, one s raised by d and the other lowered by d: the sum
        // of the s values is unchanged, so only the random weights catch it.
        let (p, m, mut s) = batch(8, 1);
        let d = Scalar::from(12345u64);
        let read = |sig: &Signature| {
            let mut b = [0u8; 32];
            b.copy_from_slice(&sig.0[32..]);
            Scalar::from_bytes_mod_order(b)
        };
        let s0 = read(&s[0]) + d;
        let s1 = read(&s[1]) - d;
        s[0].0[32..].copy_from_slice(s0.as_bytes());
        s[1].0[32..].copy_from_slice(s1.as_bytes());
        assert!(!check(&p, &m, &s));
    }

    #[test]
    fn non_canonical_s_and_r_off_the_curve_fail() {
        let (p, m, s) = batch(4, 2);
        // s + ℓ: the same value mod ℓ, not canonical (dalek's verify_strict refuses it too).
        let mut big = s.clone();
        let mut b = [0u8; 32];
        b.copy_from_slice(&s[2].0[32..]);
        let plus_l = {
            // ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
            let l: [u8; 32] = [
                0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
                0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
            ];
            let mut out = [0u8; 32];
            let mut carry = 0u16;
            for i in 0..32 {
                let v = u16::from(b[i]) + u16::from(l[i]) + carry;
                out[i] = (v & 0xff) as u8;
                carry = v >> 8;
            }
            out
        };
        big[2].0[32..].copy_from_slice(&plus_l);
        assert!(!check(&p, &m, &big));
        // An R whose y has no x on the curve (y = 2 is not a valid point).
        let mut off = s.clone();
        let mut y = [0u8; 32];
        y[0] = 2;
        off[1].0[..32].copy_from_slice(&y);
        assert!(
            curve25519_dalek::edwards::CompressedEdwardsY(y)
                .decompress()
                .is_none()
        );
        assert!(!check(&p, &m, &off));
    }

    #[test]
    fn mismatched_lengths_fail() {
        let (p, m, s) = batch(3, 1);
        assert!(!check(&p[..2], &m, &s));
        assert!(!check(&p, &m[..2], &s));
    }
}
