//! Keys, signatures, ids and addresses. See docs/protocol.md#primitives.
//!
//! Ed25519 (ed25519-dalek) verified with `verify_strict`; ids are blake3 hashes of signing bytes;
//! addresses are bech32m text of a wallet's public key with the prefix `tbw`.

use std::fmt;

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
    pub fn from_bytes(bytes: &[u8; 32], what: &'static str) -> Result<PublicKey, DecodeError> {
        let vk = VerifyingKey::from_bytes(bytes).map_err(|_| DecodeError::InvalidKey(what))?;
        // Refuse small-order keys, and non-canonical encodings (y written as y + p), so that
        // every key has exactly one encoding.
        if vk.is_weak() || !y_is_canonical(bytes) {
            return Err(DecodeError::InvalidKey(what));
        }
        Ok(PublicKey(vk))
    }

    /// Checks `sig` over `msg` with `verify_strict`.
    pub fn verify(
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

/// Whether the encoded `y` (the low 255 bits, little-endian) is below p = 2^255 - 19, i.e. the
/// encoding is the canonical one. (The other way to encode a point twice, a set sign bit with
/// x = 0, only exists for the two small-order points with y = ±1, which are refused as weak.)
fn y_is_canonical(bytes: &[u8; 32]) -> bool {
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

    #[test]
    fn sign_verify() {
        let sk = SecretKey::from_seed(&[1u8; 32]);
        let sig = sk.sign(b"hello");
        assert!(sk.public().verify(b"hello", &sig, "m").is_ok());
        assert!(sk.public().verify(b"hellp", &sig, "m").is_err());
    }
}
