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
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use tongbao::store::{Batch, Pairs, Store, StoreError};

/// Writes not yet in sled: the newest value of each key (`None`: deleted).
type Memtable = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Keys applied to sled per batch when a checkpoint is written out.
const WRITE_SLICE: usize = 512;

/// The issuer's ledger in one sled database, written out at checkpoints.
///
/// Commits go to an in-memory table of the day's writes (one atomic insertion per commit, under a
/// lock); a checkpoint hands the table to a background thread at idle priority that applies it
/// to sled in sorted slices and flushes, while the run goes on. The handed-over table stays
/// readable until the next checkpoint replaces it. Reads see the day's table, then the previous
/// one, then sled: the newest value of every key, as one sled database would give. Sled does the
/// same work for a day's writes as for the commits one by one, less the keys written again the
/// same day (a coin paid and spent, a holder index entry added and removed), and it does it off
/// the ledger's one writer thread, on a core the run leaves idle while that writer works.
pub struct LedgerStore {
    db: sled::Db,
    pending: RwLock<Memtable>,
    /// The previous checkpoint's table (being written to sled, or written).
    previous: RwLock<Option<Arc<Memtable>>>,
    worker: Mutex<Option<JoinHandle<Result<(), String>>>>,
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
            .map_err(backend)?;
        Ok(LedgerStore {
            db,
            pending: RwLock::new(Memtable::new()),
            previous: RwLock::new(None),
            worker: Mutex::new(None),
        })
    }

    /// Starts writing out everything committed so far (in the background; not synced: see
    /// [`LedgerStore::open`]), after the previous checkpoint's write has finished. Fails if that
    /// write failed.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.wait()?;
        let table = std::mem::take(&mut *self.pending.write().map_err(poisoned)?);
        if table.is_empty() {
            return Ok(());
        }
        let table = Arc::new(table);
        *self.previous.write().map_err(poisoned)? = Some(Arc::clone(&table));
        let db = self.db.clone();
        let handle = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || -> Result<(), String> {
                // Idle priority: the write runs on a core the run leaves free (the ledger's one
                // writer works alone at times), and the run waits for it only at the next
                // checkpoint. Best effort: without it the write competes for the cores.
                let _ = thread_priority::set_thread_priority_and_policy(
                    thread_priority::thread_native_id(),
                    thread_priority::ThreadPriority::Min,
                    thread_priority::ThreadSchedulePolicy::Normal(
                        thread_priority::NormalThreadSchedulePolicy::Idle,
                    ),
                );
                // In slices: sled holds every reader of the tree while it applies a batch, and
                // the run reads the ledger meanwhile.
                let ops: Vec<_> = table.iter().collect();
                for slice in ops.chunks(WRITE_SLICE) {
                    let mut b = sled::Batch::default();
                    for (k, v) in slice {
                        match v {
                            Some(v) => b.insert(k.as_slice(), v.as_slice()),
                            None => b.remove(k.as_slice()),
                        }
                    }
                    db.apply_batch(b).map_err(|e| e.to_string())?;
                }
                db.flush().map_err(|e| e.to_string())?;
                Ok(())
            })
            .map_err(|e| StoreError::Backend(format!("ledger writer: {e}")))?;
        *self.worker.lock().map_err(poisoned)? = Some(handle);
        Ok(())
    }

    /// Waits for the checkpoint being written out; its error, if it failed.
    pub fn wait(&self) -> Result<(), StoreError> {
        let handle = self.worker.lock().map_err(poisoned)?.take();
        match handle.map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(StoreError::Backend(e)),
            Some(Err(_)) => Err(StoreError::Backend("the ledger writer panicked".into())),
        }
    }

    /// The previous checkpoint's table, if any. It stays readable until the next checkpoint:
    /// yesterday's changes are the ones the run reads most (a store collects them at its sync),
    /// and while it is being written the same values may or may not be in sled yet.
    fn previous(&self) -> Result<Option<Arc<Memtable>>, StoreError> {
        Ok(self.previous.read().map_err(poisoned)?.clone())
    }
}
impl Drop for LedgerStore {
    fn drop(&mut self) {
        // The database is scratch; only the writer thread must not outlive it.
        let _ = self.wait();
    }
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Backend("poisoned".into())
}

impl Store for LedgerStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.pending.read().map_err(poisoned)?.get(key) {
            return Ok(v.clone());
        }
        // Before sled: sled holds the same values once the table is written, or older ones.
        if let Some(t) = self.previous()?
            && let Some(v) = t.get(key)
        {
            return Ok(v.clone());
        }
        Ok(self.db.get(key).map_err(backend)?.map(|iv| iv.to_vec()))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        let previous = self.previous()?;
        let pending = self.pending.read().map_err(poisoned)?;
        // The tables' entries under the prefix, the day's over the previous one.
        let mut newer: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
        for t in previous.as_deref().into_iter().chain([&*pending]) {
            let from = std::ops::Bound::Included(prefix.to_vec());
            newer.extend(
                t.range((from, std::ops::Bound::Unbounded))
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(k, v)| (k.as_slice(), v.as_deref())),
            );
        }
        // Merged with sled's entries, both in key order.
        let mut out = Vec::new();
        let mut newer = newer.into_iter().peekable();
        for r in self.db.scan_prefix(prefix) {
            let (k, v) = r.map_err(backend)?;
            while let Some((nk, nv)) = newer.next_if(|(nk, _)| *nk < k.as_ref()) {
                if let Some(nv) = nv {
                    out.push((nk.to_vec(), nv.to_vec()));
                }
            }
            match newer.next_if(|(nk, _)| *nk == k.as_ref()) {
                Some((_, Some(nv))) => out.push((k.to_vec(), nv.to_vec())),
                Some((_, None)) => {}
                None => out.push((k.to_vec(), v.to_vec())),
            }
        }
        for (nk, nv) in newer {
            if let Some(nv) = nv {
                out.push((nk.to_vec(), nv.to_vec()));
            }
        }
        Ok(out)
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut t = self.pending.write().map_err(poisoned)?;
        for (k, v) in batch.into_ops() {
            t.insert(k, v);
        }
        Ok(())
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

    /// Entries and bytes held (keys and values) by key prefix (up to the first `/`), for memory
    /// figures.
    pub fn usage(&self) -> BTreeMap<Vec<u8>, (usize, usize)> {
        let mut out: BTreeMap<Vec<u8>, (usize, usize)> = BTreeMap::new();
        if let Ok(m) = self.map.lock() {
            for (k, v) in m.iter() {
                let p = k.iter().position(|&c| c == b'/').map_or(k.len(), |i| i + 1);
                let e = out.entry(k[..p].to_vec()).or_default();
                e.0 += 1;
                e.1 += k.len() + v.len();
            }
        }
        out
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

    /// The ledger store reads exactly as one in-memory store given the same commits, whatever
    /// the checkpoints in between (written out or still being written), deletions across days
    /// included.
    #[test]
    fn ledger_store_reads_as_one_store_across_checkpoints() {
        use rand::{RngExt, SeedableRng};
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = LedgerStore::open(&dir.path().join("ledger")).expect("open");
        let model = tongbao::store::MemStore::new();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let key = |rng: &mut rand::rngs::StdRng| {
            let p = [b"x/".as_slice(), b"hl/", b"m/"][rng.random_range(0..3)];
            let mut k = p.to_vec();
            k.push(rng.random_range(0..40u8));
            k
        };
        for step in 0..600 {
            let mut a = Batch::new();
            let mut b = Batch::new();
            for _ in 0..rng.random_range(1..6) {
                let k = key(&mut rng);
                if rng.random_bool(0.3) {
                    a.delete(k.clone());
                    b.delete(k);
                } else {
                    let v = vec![rng.random_range(0..255u8); rng.random_range(0..4)];
                    a.put(k.clone(), v.clone());
                    b.put(k, v);
                }
            }
            ledger.commit(a).expect("commit");
            model.commit(b).expect("commit");
            if rng.random_bool(0.1) {
                ledger.checkpoint().expect("checkpoint");
            }
            if step % 50 == 0 {
                ledger.wait().expect("written out");
            }
            for _ in 0..3 {
                let k = key(&mut rng);
                assert_eq!(ledger.get(&k).expect("get"), model.get(&k).expect("get"));
            }
            for p in [b"x/".as_slice(), b"hl/", b"m/", b"", b"x"] {
                assert_eq!(
                    ledger.scan_prefix(p).expect("scan"),
                    model.scan_prefix(p).expect("scan"),
                    "step {step}, prefix {p:?}"
                );
            }
        }
        ledger.checkpoint().expect("checkpoint");
        ledger.wait().expect("written out");
        assert_eq!(
            ledger.scan_prefix(b"").expect("scan"),
            model.scan_prefix(b"").expect("scan")
        );
    }

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
