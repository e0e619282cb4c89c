//! Storage for a pilot run: the issuer's ledger in sled, and a compact in-memory store for the
//! wallets.
//!
//! Both implement [`Store`], so the real ledger and the real wallet engine run over them unchanged.
//! Every commit is still one atomic batch. What a simulation does without: the ledger is written
//! out at checkpoints (the end of each simulated day) instead of flushed at every commit, and never
//! synced to the device (it is a scratch copy, deleted when the run ends), and the wallets keep no
//! local history (`h/`), which only a device's user reads and the engine never does.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use tongbao::store::{Batch, Pairs, Store, StoreError};

/// The issuer's ledger in one sled database, written out at checkpoints.
pub struct LedgerStore {
    db: sled::Db,
}

impl LedgerStore {
    /// Creates the database in `dir`, as a scratch database: sled deletes it when it is dropped,
    /// and does not sync what it writes (`temporary`). A durable sled syncs every log segment as
    /// it writes it (`sync_file_range`, waiting for the device), whatever `flush_every_ms` says,
    /// which cost about a tenth of a pilot's run time for a database nobody reopens.
    pub fn open(dir: &Path) -> Result<LedgerStore, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .temporary(true)
            .flush_every_ms(None)
            .cache_capacity(256 * 1024 * 1024)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(LedgerStore { db })
    }

    /// Writes out everything committed so far (not synced: see [`LedgerStore::open`]).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.db
            .flush()
            .map(|_| ())
            .map_err(|e| StoreError::Backend(e.to_string()))
    }
}

impl Store for LedgerStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .get(key)
            .map(|v| v.map(|iv| iv.to_vec()))
            .map_err(|e| StoreError::Backend(e.to_string()))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        self.db
            .scan_prefix(prefix)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::Backend(e.to_string()))
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for (k, v) in batch.ops() {
            match v {
                Some(v) => b.insert(k.as_slice(), v.as_slice()),
                None => b.remove(k.as_slice()),
            }
        }
        self.db
            .apply_batch(b)
            .map_err(|e| StoreError::Backend(e.to_string()))
    }
}

/// Keys a simulated wallet does not keep: the local history and its sequence number.
fn dropped(key: &[u8]) -> bool {
    key.starts_with(b"h/") || key == b"m/history-seq"
}

/// Keys and values as boxed slices (no spare capacity).
type Compact = BTreeMap<Box<[u8]>, Box<[u8]>>;

/// One wallet's state in memory, compactly (boxed slices, no history).
#[derive(Default)]
pub struct SimStore {
    map: Mutex<Compact>,
}

impl SimStore {
    /// An empty store.
    pub fn new() -> SimStore {
        SimStore::default()
    }

    /// A copy of everything: the wallet as a backup would restore it (a rollback).
    pub fn snapshot(&self) -> SimStore {
        let map = self.map.lock().map(|m| m.clone()).unwrap_or_default();
        SimStore {
            map: Mutex::new(map),
        }
    }

    /// Bytes held (keys and values), for memory figures.
    pub fn bytes(&self) -> usize {
        self.map
            .lock()
            .map(|m| m.iter().map(|(k, v)| k.len() + v.len()).sum())
            .unwrap_or(0)
    }
}

impl Store for SimStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let m = self
            .map
            .lock()
            .map_err(|_| StoreError::Backend("poisoned".into()))?;
        Ok(m.get(key).map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        let m = self
            .map
            .lock()
            .map_err(|_| StoreError::Backend("poisoned".into()))?;
        Ok(m.range::<[u8], _>((
            std::ops::Bound::Included(prefix),
            std::ops::Bound::Unbounded,
        ))
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect())
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut m = self
            .map
            .lock()
            .map_err(|_| StoreError::Backend("poisoned".into()))?;
        for (k, v) in batch.ops() {
            if dropped(k) {
                continue;
            }
            match v {
                Some(v) => {
                    m.insert(k.clone().into_boxed_slice(), v.clone().into_boxed_slice());
                }
                None => {
                    m.remove(k.as_slice());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_store_scans_in_order_and_drops_history() {
        let s = SimStore::new();
        let mut b = Batch::new();
        b.put(b"c/2".to_vec(), b"two".to_vec());
        b.put(b"c/1".to_vec(), b"one".to_vec());
        b.put(b"d/1".to_vec(), b"x".to_vec());
        b.put(b"h/1".to_vec(), b"history".to_vec());
        s.commit(b).expect("commit");
        let keys: Vec<_> = s
            .scan_prefix(b"c/")
            .expect("scan")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec![b"c/1".to_vec(), b"c/2".to_vec()]);
        assert_eq!(s.get(b"h/1").expect("get"), None);
        let snap = s.snapshot();
        let mut b = Batch::new();
        b.delete(b"c/1".to_vec());
        s.commit(b).expect("commit");
        assert!(snap.get(b"c/1").expect("get").is_some());
        assert!(s.get(b"c/1").expect("get").is_none());
    }
}
