//! Decoded copies of the signed objects every wallet in a process holds alike: the issuer's key set
//! and revocation list.
//!
//! A wallet reads its key set and revocation list at every payment, receipt and sync. They are
//! stored as bytes and were decoded at each read; every wallet of one issuer holds the same few
//! versions of them, so one decoded copy per version serves every wallet handle in the process.
//! Each read still fetches the stored bytes and looks them up by equality, so a changed key set or
//! list (a rotation, a new revocation, another handle writing the store) is decoded afresh at
//! once; what is saved is decoding the same bytes again (point decompression of every key in
//! them). Nothing here is trusted beyond what decoding the same bytes would give.

use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use crate::codec::{Decode, DecodeError};
use crate::protocol::keyset::IssuerKeySet;
use crate::protocol::revocation::RevocationList;

/// Distinct versions kept per kind (a process sees one or two at a time: the current one and,
/// around a rotation or a new revocation, the one before).
const SLOTS: usize = 4;

/// Stored forms larger than this are decoded at each read instead (a very long revocation list
/// is not kept twice).
const MAX_BYTES: usize = 1 << 20;

/// Stored bytes and what they decode to.
type Slots<T> = VecDeque<(Box<[u8]>, Arc<T>)>;

/// A few decoded values by their exact stored bytes, most recently added first.
pub(crate) struct Interned<T> {
    slots: Mutex<Slots<T>>,
}

impl<T: Decode> Interned<T> {
    fn new() -> Interned<T> {
        Interned {
            slots: Mutex::new(VecDeque::with_capacity(SLOTS)),
        }
    }

    /// The value `bytes` decode to: the shared copy if these exact bytes were decoded before,
    /// otherwise decoded now (and kept, if they decode and are not too large).
    pub(crate) fn get(&self, bytes: &[u8]) -> Result<Arc<T>, DecodeError> {
        if let Some(v) = self.find(bytes) {
            return Ok(v);
        }
        let v = Arc::new(T::decode(bytes)?);
        if bytes.len() <= MAX_BYTES {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            if !slots.iter().any(|(b, _)| **b == *bytes) {
                slots.push_front((bytes.into(), v.clone()));
                slots.truncate(SLOTS);
            }
        }
        Ok(v)
    }

    fn find(&self, bytes: &[u8]) -> Option<Arc<T>> {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(b, _)| **b == *bytes)
            .map(|(_, v)| v.clone())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Key sets, by their stored bytes.
pub(crate) static KEYSETS: LazyLock<Interned<IssuerKeySet>> = LazyLock::new(Interned::new);

/// Revocation lists, by their stored bytes.
pub(crate) static REVOCATIONS: LazyLock<Interned<RevocationList>> = LazyLock::new(Interned::new);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Encode;
    use crate::crypto::SecretKey;
    use crate::protocol::revocation::{Revocation, RevocationReason};

    fn list(version: u64) -> RevocationList {
        let root = SecretKey::from_seed(&[1; 32]);
        let wallet = SecretKey::from_seed(&[2; 32]).public();
        RevocationList::sign(
            &root,
            version,
            1_700_000_000 + version,
            vec![Revocation {
                wallet,
                reason: RevocationReason::Lost,
                revoked_at: 1_700_000_000,
            }],
        )
    }

    #[test]
    fn same_bytes_share_one_copy_and_changes_are_seen() {
        let cache: Interned<RevocationList> = Interned::new();
        let a = list(1).to_bytes();
        let first = cache.get(&a).expect("decodes");
        let again = cache.get(&a).expect("decodes");
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(*first, list(1));
        // Other bytes: another value, decoded afresh.
        let b = list(2).to_bytes();
        let second = cache.get(&b).expect("decodes");
        assert_eq!(*second, list(2));
        assert!(!Arc::ptr_eq(&first, &second));
        // Bounded.
        for v in 3..20 {
            assert_eq!(*cache.get(&list(v).to_bytes()).expect("decodes"), list(v));
        }
        assert!(cache.len() <= SLOTS);
    }

    #[test]
    fn refused_bytes_stay_refused_and_are_not_kept() {
        let cache: Interned<RevocationList> = Interned::new();
        let mut bad = list(1).to_bytes();
        bad.push(0); // trailing byte
        for _ in 0..3 {
            assert!(cache.get(&bad).is_err());
        }
        assert_eq!(cache.len(), 0);
    }
}
