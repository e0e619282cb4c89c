//! Keys at rest: the wallet's 32-byte key seed sealed under a passphrase (argon2id, then
//! XChaCha20-Poly1305). See docs/architecture.md#storage-keys and docs/threat-model.md.
//!
//! Sealed form, 102 bytes, stored under `m/secret-sealed` instead of the plain `m/secret`:
//!
//! | offset | field | notes |
//! |---|---|---|
//! | 0 | version | u8, 1 |
//! | 1 | kdf | u8, 1 = argon2id (version 0x13) |
//! | 2 | m_cost | u32 BE, KiB of memory |
//! | 6 | t_cost | u32 BE, passes |
//! | 10 | p_cost | u32 BE, lanes |
//! | 14 | salt | 16 random bytes |
//! | 30 | nonce | 24 random bytes (XChaCha20) |
//! | 54 | ciphertext + tag | 32 + 16 bytes |
//!
//! The key is `argon2id(passphrase, salt, m_cost, t_cost, p_cost)`, 32 bytes. The associated data
//! is the domain label `tongbao/v1/keystore` followed by the 54 header bytes, so the parameters,
//! salt and nonce cannot be changed without the tag failing. A wrong passphrase and a damaged
//! sealed form both fail the tag; they cannot be told apart, and are reported as a wrong passphrase.
//!
//! Invariant: the unsealed seed exists only in memory, in buffers that are zeroized on drop; it is
//! never written to the store.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use rand::{CryptoRng, Rng};
use zeroize::Zeroizing;

/// The domain label at the start of the associated data.
pub const LABEL: &[u8] = b"tongbao/v1/keystore";
/// The sealed form's version.
pub const VERSION: u8 = 1;
/// The key-derivation function tag for argon2id (version 0x13).
pub const KDF_ARGON2ID: u8 = 1;
/// Length of the sealed form.
pub const SEALED_LEN: usize = HEADER_LEN + 32 + 16;

const HEADER_LEN: usize = 54;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
/// Most memory a sealed form may ask for when it is opened: 1 GiB. (The tag covers the parameters,
/// but argon2 runs before the tag is checked, so a damaged form must not be able to ask for more.)
const MAX_M_COST: u32 = 1024 * 1024;
/// Most passes a sealed form may ask for.
const MAX_T_COST: u32 = 64;
/// Most lanes a sealed form may ask for.
const MAX_P_COST: u32 = 16;

/// Why sealing or unsealing failed.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// The tag did not verify: the passphrase is wrong (or the sealed form was altered).
    #[error("wrong passphrase for this wallet")]
    WrongPassphrase,
    /// The sealed form is not one this version reads.
    #[error("sealed wallet key: {0}")]
    Malformed(String),
    /// An empty passphrase.
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    /// The key-derivation parameters were refused.
    #[error("key derivation: {0}")]
    Kdf(String),
}

/// A passphrase, zeroized on drop. No `Debug` or `Display`.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// A passphrase; refused if empty. A trailing newline (as read from a line) is removed.
    pub fn new(text: String) -> Result<Passphrase, KeystoreError> {
        let mut text = Zeroizing::new(text);
        while text.ends_with('\n') || text.ends_with('\r') {
            text.pop();
        }
        if text.is_empty() {
            return Err(KeystoreError::EmptyPassphrase);
        }
        Ok(Passphrase(text))
    }

    /// Whether `other` (a trailing newline removed) is the same passphrase, e.g. typed twice.
    pub fn matches(&self, other: &str) -> bool {
        let other = other.trim_end_matches(['\n', '\r']);
        self.0.as_str() == other
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        KdfParams {
            m_cost: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl KdfParams {
    fn check(self) -> Result<Params, KeystoreError> {
        if self.m_cost > MAX_M_COST || self.t_cost > MAX_T_COST || self.p_cost > MAX_P_COST {
            return Err(KeystoreError::Malformed(format!(
                "argon2 cost m={} KiB t={} p={} is above the limits ({MAX_M_COST} KiB, {MAX_T_COST}, {MAX_P_COST})",
                self.m_cost, self.t_cost, self.p_cost
            )));
        }
        Params::new(self.m_cost, self.t_cost, self.p_cost, Some(32))
            .map_err(|e| KeystoreError::Kdf(e.to_string()))
    }
}

/// Seals a 32-byte seed under `passphrase` with fresh salt and nonce from `rng`.
pub fn seal<R: Rng + CryptoRng + ?Sized>(
    seed: &[u8; 32],
    passphrase: &Passphrase,
    params: KdfParams,
    rng: &mut R,
) -> Result<Vec<u8>, KeystoreError> {
    let mut header = Vec::with_capacity(SEALED_LEN);
    header.push(VERSION);
    header.push(KDF_ARGON2ID);
    header.extend_from_slice(&params.m_cost.to_be_bytes());
    header.extend_from_slice(&params.t_cost.to_be_bytes());
    header.extend_from_slice(&params.p_cost.to_be_bytes());
    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    header.extend_from_slice(&salt);
    header.extend_from_slice(&nonce);
    debug_assert_eq!(header.len(), HEADER_LEN);
    let cipher = cipher(passphrase, &salt, params)?;
    let mut buf = Zeroizing::new(*seed);
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), &aad(&header), buf.as_mut())
        .map_err(|_| KeystoreError::Kdf("encryption failed".into()))?;
    let mut out = header;
    out.extend_from_slice(buf.as_ref());
    out.extend_from_slice(tag.as_slice());
    Ok(out)
}

/// Opens a sealed seed. A wrong passphrase is [`KeystoreError::WrongPassphrase`].
pub fn unseal(
    sealed: &[u8],
    passphrase: &Passphrase,
) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    if sealed.len() != SEALED_LEN {
        return Err(KeystoreError::Malformed(format!(
            "{} bytes, expected {SEALED_LEN}",
            sealed.len()
        )));
    }
    let (header, rest) = sealed.split_at(HEADER_LEN);
    if header[0] != VERSION {
        return Err(KeystoreError::Malformed(format!(
            "unknown version {}",
            header[0]
        )));
    }
    if header[1] != KDF_ARGON2ID {
        return Err(KeystoreError::Malformed(format!(
            "unknown key derivation {}",
            header[1]
        )));
    }
    let u32_at = |i: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&header[i..i + 4]);
        u32::from_be_bytes(b)
    };
    let params = KdfParams {
        m_cost: u32_at(2),
        t_cost: u32_at(6),
        p_cost: u32_at(10),
    };
    let salt = &header[14..14 + SALT_LEN];
    let nonce = &header[30..30 + NONCE_LEN];
    let (ct, tag) = rest.split_at(32);
    let cipher = cipher(passphrase, salt, params)?;
    let mut buf = Zeroizing::new([0u8; 32]);
    buf.copy_from_slice(ct);
    cipher
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            &aad(header),
            buf.as_mut(),
            Tag::from_slice(tag),
        )
        .map_err(|_| KeystoreError::WrongPassphrase)?;
    Ok(buf)
}

fn aad(header: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(LABEL.len() + header.len());
    a.extend_from_slice(LABEL);
    a.extend_from_slice(header);
    a
}

fn cipher(
    passphrase: &Passphrase,
    salt: &[u8],
    params: KdfParams,
) -> Result<XChaCha20Poly1305, KeystoreError> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.check()?);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.bytes(), salt, key.as_mut())
        .map_err(|e| KeystoreError::Kdf(e.to_string()))?;
    XChaCha20Poly1305::new_from_slice(key.as_ref()).map_err(|e| KeystoreError::Kdf(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::protocol::certificate::WalletKind;
    use crate::store::{MemStore, SledStore, Store};
    use crate::testkit::{Fixture, NOW};
    use crate::wallet::{Wallet, WalletError, keys};

    /// Cheap parameters for the format tests; the wallet tests use the real ones.
    const CHEAP: KdfParams = KdfParams {
        m_cost: 64,
        t_cost: 1,
        p_cost: 1,
    };

    fn pass(s: &str) -> Passphrase {
        Passphrase::new(s.to_string()).unwrap()
    }

    #[test]
    fn seal_and_unseal_round_trip_and_wrong_passphrase_fails() {
        let mut rng = StdRng::seed_from_u64(1);
        let seed = [7u8; 32];
        let sealed = seal(&seed, &pass("correct horse"), CHEAP, &mut rng).unwrap();
        assert_eq!(sealed.len(), SEALED_LEN);
        assert!(!sealed.windows(32).any(|w| w == seed), "seed in clear");
        assert_eq!(*unseal(&sealed, &pass("correct horse")).unwrap(), seed);
        assert!(matches!(
            unseal(&sealed, &pass("correct horsf")),
            Err(KeystoreError::WrongPassphrase)
        ));
    }

    #[test]
    fn every_header_byte_is_authenticated_and_bad_forms_are_refused() {
        let mut rng = StdRng::seed_from_u64(2);
        let sealed = seal(&[9u8; 32], &pass("pw"), CHEAP, &mut rng).unwrap();
        for i in 0..SEALED_LEN {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(unseal(&bad, &pass("pw")).is_err(), "byte {i} flipped");
        }
        assert!(matches!(
            unseal(&sealed[..SEALED_LEN - 1], &pass("pw")),
            Err(KeystoreError::Malformed(_))
        ));
        let mut greedy = sealed.clone();
        greedy[2..6].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            unseal(&greedy, &pass("pw")),
            Err(KeystoreError::Malformed(_))
        ));
        assert!(matches!(
            Passphrase::new("\n".into()),
            Err(KeystoreError::EmptyPassphrase)
        ));
    }

    #[test]
    fn a_sealed_wallet_needs_its_passphrase_and_stores_no_plain_seed() {
        let fx = Fixture::new();
        let dir = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let (w, _) = Wallet::create_sealed(
            SledStore::open(dir.path()).unwrap(),
            &pass("open sesame"),
            WalletKind::Personal,
            None,
            fx.keyset.clone(),
            NOW,
            &mut rng,
        )
        .unwrap();
        let seed = *w.secret().seed();
        let public = w.public();
        assert!(w.store().get(keys::SECRET).unwrap().is_none());
        assert!(w.store().get(keys::SECRET_SEALED).unwrap().is_some());
        drop(w);
        // Every byte sled wrote: no copy of the seed anywhere.
        let mut files = Vec::new();
        let mut stack = vec![dir.path().to_path_buf()];
        while let Some(p) = stack.pop() {
            for e in std::fs::read_dir(&p).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    files.push(std::fs::read(e.path()).unwrap());
                }
            }
        }
        assert!(!files.is_empty());
        for bytes in &files {
            assert!(
                !bytes.windows(32).any(|win| win == seed),
                "the seed is on disk"
            );
        }
        let store = || SledStore::open(dir.path()).unwrap();
        assert!(Wallet::needs_passphrase(&store()).unwrap());
        assert!(matches!(
            Wallet::open(store()),
            Err(WalletError::PassphraseNeeded)
        ));
        assert!(matches!(
            Wallet::open_with(store(), Some(&pass("open sesamE"))),
            Err(WalletError::WrongPassphrase)
        ));
        let w = Wallet::open_with(store(), Some(&pass("open sesame"))).unwrap();
        assert_eq!(w.public(), public);
    }

    #[test]
    fn a_plain_wallet_opens_as_before() {
        let fx = Fixture::new();
        let mut rng = StdRng::seed_from_u64(4);
        let (w, _) = Wallet::create(
            MemStore::new(),
            WalletKind::Personal,
            None,
            fx.keyset.clone(),
            NOW,
            &mut rng,
        )
        .unwrap();
        let store = w.store().snapshot();
        assert!(!Wallet::needs_passphrase(&store).unwrap());
        // A passphrase given for a plain wallet is not needed and changes nothing.
        let w2 = Wallet::open_with(store, Some(&pass("unused"))).unwrap();
        assert_eq!(w2.public(), w.public());
    }
}
