//! The storage trait (wallets and the issuer ledger) and its two implementations: sled (one database per wallet
//! directory) and memory (simulations and tests). See docs/architecture.md#storage.
//!
//! The engine reads freely and writes only through [`Store::commit`], which applies a whole
//! [`Batch`] atomically and makes it durable before returning.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process has the database open.
    #[error("the database at {0} is in use by another process")]
    Locked(String),
    /// Anything else from the storage engine.
    #[error("storage: {0}")]
    Backend(String),
}

/// A set of writes applied all together or not at all.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Set `key` to `value`.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), Some(value.into())));
    }

    /// Remove `key`.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), None));
    }

    /// The operations in order.
    pub fn ops(&self) -> &[(Vec<u8>, Option<Vec<u8>>)] {
        &self.ops
    }

    /// The operations, taken, in order.
    pub fn into_ops(self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.ops
    }

    /// Whether nothing is written.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Key-value pairs as returned by a prefix scan.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Ordered key-value storage with atomic, durable batches.
pub trait Store {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every pair whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError>;
    /// Up to `limit` pairs under `prefix` whose keys are greater than `after` (all under `prefix`
    /// when `None`), in key order: exactly `limit` unless fewer are left. Paging through a prefix
    /// (each page's last key as the next page's `after`) gives what [`Store::scan_prefix`] gives,
    /// a page's worth of memory at a time.
    ///
    /// The default reads the whole prefix for each page (correct, not fast): stores with ordered
    /// iteration implement it directly.
    fn scan_range(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, StoreError> {
        let mut all = self.scan_prefix(prefix)?;
        let start = after.map_or(0, |a| all.partition_point(|(k, _)| k.as_slice() <= a));
        let end = start.saturating_add(limit).min(all.len());
        all.truncate(end);
        Ok(all.split_off(start))
    }
    /// Applies `batch` atomically; returns only once it is durable.
    fn commit(&self, batch: Batch) -> Result<(), StoreError>;
    /// Whether the store keeps a wallet's local history (`h/` and its sequence number). A
    /// device's store does; a simulation's, which no user reads, may not, and the wallet then
    /// does not write it.
    fn keeps_history(&self) -> bool {
        true
    }
}

/// Where a range scan under `prefix` after `after` starts: the first key under the prefix, or
/// the first key past `after` when that is further on.
pub fn range_start(prefix: &[u8], after: Option<&[u8]>) -> std::ops::Bound<Vec<u8>> {
    use std::ops::Bound;
    match after {
        Some(a) if a >= prefix => Bound::Excluded(a.to_vec()),
        _ => Bound::Included(prefix.to_vec()),
    }
}

/// A sled database in one directory.
pub struct SledStore {
    // Declared before `_lock` so the database is closed before the lock is released.
    db: sled::Db,
    _lock: std::fs::File,
}

/// The file in a store's directory whose exclusive lock is held while the store is open.
const LOCK_FILE: &str = "tongbao.lock";

impl SledStore {
    /// Opens (or creates) the database in `dir`.
    ///
    /// Every commit flushes explicitly, so sled's background flusher is off (it would also keep
    /// the database locked for a moment after the handle is dropped). A lock held by a process
    /// that is just finishing is waited for, up to about a second.
    ///
    /// Crash repair: sled 0.34.7 writes a snapshot at every open, first to
    /// `snap.<lsn>.generating`, then renames it. A process killed between the two leaves a
    /// truncated `.generating` file, which the next open takes for the newest snapshot and
    /// refuses as corrupt ("Read corrupted data at file offset None"), so the wallet could
    /// never be opened again (defect D7 in docs/testing.md). Such a file is never complete
    /// data: it is only read back after its rename. So, holding our own exclusive lock (no other
    /// process can be opening the database and writing one), we remove any left over before
    /// opening. sled then recovers from its last complete snapshot and its log.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        let io = |e: std::io::Error| StoreError::Backend(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(io)?;
        let mut attempt = 0;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    attempt += 1;
                    if attempt >= 40 {
                        return Err(StoreError::Locked(dir.display().to_string()));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        remove_unfinished_snapshots(dir).map_err(io)?;
        let mut attempt = 0;
        loop {
            match sled::Config::new().path(dir).flush_every_ms(None).open() {
                Ok(db) => return Ok(SledStore { db, _lock: lock }),
                Err(sled::Error::Io(io))
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock") =>
                {
                    attempt += 1;
                    if attempt >= 40 {
                        return Err(StoreError::Locked(dir.display().to_string()));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                Err(other) => return Err(StoreError::Backend(other.to_string())),
            }
        }
    }
}

/// Removes sled snapshot files that were being written when their process died (see
/// [`SledStore::open`]). Call only while holding the store's lock.
fn remove_unfinished_snapshots(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

impl Store for SledStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .get(key)
            .map(|v| v.map(|iv| iv.to_vec()))
            .map_err(backend)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        self.db
            .scan_prefix(prefix)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()
            .map_err(backend)
    }

    fn scan_range(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, StoreError> {
        let mut out = Vec::new();
        for r in self
            .db
            .range((range_start(prefix, after), std::ops::Bound::Unbounded))
        {
            if out.len() >= limit {
                break;
            }
            let (k, v) = r.map_err(backend)?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for (k, v) in batch.ops {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.db.apply_batch(b).map_err(backend)?;
        self.db.flush().map_err(backend)?;
        Ok(())
    }
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// An in-memory store (for simulations and tests); "durable" for the life of the process.
#[derive(Default)]
pub struct MemStore {
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// A copy of everything (to model a wallet backed up and restored).
    pub fn snapshot(&self) -> MemStore {
        let map = self.map.lock().map(|m| m.clone()).unwrap_or_default();
        MemStore {
            map: Mutex::new(map),
        }
    }
}

impl Store for MemStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let m = self
            .map
            .lock()
            .map_err(|_| StoreError::Backend("poisoned".into()))?;
        Ok(m.get(key).cloned())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        let m = self
            .map
            .lock()
            .map_err(|_| StoreError::Backend("poisoned".into()))?;
        Ok(m.range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn scan_range(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, StoreError> {
        let m = self
            .map
            .lock()
            .map_err(|_| StoreError::Backend("poisoned".into()))?;
        Ok(
            m.range((range_start(prefix, after), std::ops::Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
                .take(limit)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut m = self
            .map
            .lock()
            .map_err(|_| StoreError::Backend("poisoned".into()))?;
        for (k, v) in batch.ops {
            match v {
                Some(v) => m.insert(k, v),
                None => m.remove(&k),
            };
        }
        Ok(())
    }
}

impl<S: Store + ?Sized> Store for &S {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get(key)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        (**self).scan_prefix(prefix)
    }
    fn scan_range(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, StoreError> {
        (**self).scan_range(prefix, after, limit)
    }
    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        (**self).commit(batch)
    }
    fn keeps_history(&self) -> bool {
        (**self).keeps_history()
    }
}

/// One test suite, run against every store implementation.
#[cfg(test)]
pub(crate) mod suite {
    use super::*;

    pub fn run(store: &dyn Store) {
        assert_eq!(store.get(b"a").ok().flatten(), None);
        let mut b = Batch::new();
        b.put(b"a/1".to_vec(), b"one".to_vec());
        b.put(b"a/2".to_vec(), b"two".to_vec());
        b.put(b"b/1".to_vec(), b"other".to_vec());
        store.commit(b).expect("commit");
        assert_eq!(store.get(b"a/1").ok().flatten(), Some(b"one".to_vec()));
        let a = store.scan_prefix(b"a/").expect("scan");
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].0, b"a/1".to_vec());
        let mut b = Batch::new();
        b.delete(b"a/1".to_vec());
        b.put(b"a/3".to_vec(), b"three".to_vec());
        store.commit(b).expect("commit");
        let keys: Vec<Vec<u8>> = store
            .scan_prefix(b"a/")
            .expect("scan")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec![b"a/2".to_vec(), b"a/3".to_vec()]);
        store.commit(Batch::new()).expect("empty commit");
        range(store);
    }

    /// [`Store::scan_range`]: pages through a prefix exactly as [`Store::scan_prefix`] reads it.
    fn range(store: &dyn Store) {
        let mut b = Batch::new();
        for i in 0..23u8 {
            b.put(format!("a/{i:02}").into_bytes(), vec![i]);
        }
        // Neighbours of the prefix on both sides ('.' < '/' < '0').
        b.put(b"a.9".to_vec(), b"before".to_vec());
        b.put(b"a0".to_vec(), b"after".to_vec());
        b.put(b"a".to_vec(), b"short".to_vec());
        b.delete(b"a/07".to_vec());
        store.commit(b).expect("commit");
        let all = store.scan_prefix(b"a/").expect("scan");
        assert_eq!(all.len(), 24, "a/00..a/22 but a/07, and a/2, a/3");
        for limit in 1..=5 {
            let mut pages = Vec::new();
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = store
                    .scan_range(b"a/", after.as_deref(), limit)
                    .expect("range");
                assert!(page.len() <= limit);
                let Some((last, _)) = page.last() else { break };
                after = Some(last.clone());
                pages.push(page);
            }
            let n = pages.len();
            for (i, p) in pages.iter().enumerate() {
                assert!(
                    i + 1 == n || p.len() == limit,
                    "only the last page is short"
                );
            }
            assert_eq!(pages.concat(), all, "pages of {limit}");
        }
        // `after` an existing key: from the next one.
        let page = store.scan_range(b"a/", Some(b"a/05"), 2).expect("range");
        let keys: Vec<&[u8]> = page.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, vec![b"a/06".as_slice(), b"a/08"]);
        // `after` not a key: from the next one.
        let page = store.scan_range(b"a/", Some(b"a/070"), 1).expect("range");
        assert_eq!(page, vec![(b"a/08".to_vec(), vec![8])]);
        // Nothing from other prefixes, whatever `after` and `limit`.
        let page = store.scan_range(b"a/", Some(b"a/21"), 100).expect("range");
        let keys: Vec<&[u8]> = page.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, vec![b"a/22".as_slice(), b"a/3"]);
        assert!(
            store
                .scan_range(b"a/", Some(b"a/3"), 9)
                .expect("range")
                .is_empty()
        );
        assert!(
            store
                .scan_range(b"a/", Some(b"a0"), 9)
                .expect("range")
                .is_empty()
        );
        assert_eq!(
            store.scan_range(b"a/", Some(b"a"), 1000).expect("range"),
            all
        );
        assert_eq!(
            store.scan_range(b"a/", Some(b"a.9"), 1000).expect("range"),
            all
        );
        assert!(store.scan_range(b"a/", None, 0).expect("range").is_empty());
        assert!(store.scan_range(b"c/", None, 9).expect("range").is_empty());
        assert_eq!(
            store.scan_range(b"", None, usize::MAX).expect("range"),
            store.scan_prefix(b"").expect("scan")
        );
    }

    /// A memory store with only the required methods (so [`Store::scan_range`]'s default),
    /// keeping a wallet's history or not as `.1` says.
    pub(crate) struct Minimal(pub MemStore, pub bool);

    impl Store for Minimal {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.0.get(key)
        }
        fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
            self.0.scan_prefix(prefix)
        }
        fn commit(&self, batch: Batch) -> Result<(), StoreError> {
            self.0.commit(batch)
        }
        fn keeps_history(&self) -> bool {
            self.1
        }
    }

    #[test]
    fn default_scan_range() {
        run(&Minimal(MemStore::new(), true));
    }

    #[test]
    fn forwarded_store() {
        let m = MemStore::new();
        run(&&m);
    }

    #[test]
    fn mem_store() {
        run(&MemStore::new());
    }

    #[test]
    fn sled_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        run(&SledStore::open(dir.path()).expect("open"));
        // Reopen: what was committed is still there.
    }

    #[test]
    fn sled_store_is_durable_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let s = SledStore::open(dir.path()).expect("open");
            let mut b = Batch::new();
            b.put(b"k".to_vec(), b"v".to_vec());
            s.commit(b).expect("commit");
        }
        let s = SledStore::open(dir.path()).expect("reopen");
        assert_eq!(s.get(b"k").ok().flatten(), Some(b"v".to_vec()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tongbao-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_snapshot_left_unfinished_by_a_killed_process_does_not_break_the_store() {
        let dir = tempdir("unfinished-snapshot");
        {
            let store = SledStore::open(&dir).expect("open");
            let mut batch = Batch::new();
            batch.put(b"balance".to_vec(), b"100".to_vec());
            store.commit(batch).expect("commit");
        }
        {
            // A second open writes a newer snapshot; then more committed work.
            let store = SledStore::open(&dir).expect("reopen");
            let mut batch = Batch::new();
            batch.put(b"balance".to_vec(), b"63".to_vec());
            store.commit(batch).expect("commit");
        }
        // What a process killed inside sled's snapshot write leaves: a truncated file named
        // after a newer log position than any complete snapshot.
        std::fs::write(dir.join("snap.7FFFFFFFFFFFFFFF.generating"), [0u8; 7]).expect("write");
        std::fs::write(
            dir.join("snap.7FFFFFFFFFFFFFFE.generating"),
            vec![0xA5; 4096],
        )
        .expect("write");
        let store = SledStore::open(&dir).expect("open after a killed snapshot write");
        assert_eq!(store.get(b"balance").expect("get"), Some(b"63".to_vec()));
        drop(store);
        let leftover = std::fs::read_dir(&dir)
            .expect("read dir")
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().ends_with(".generating"));
        assert!(!leftover, "unfinished snapshots are removed");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sled_alone_refuses_such_a_store_which_is_why_open_repairs_it() {
        // Pins the sled behaviour the repair exists for, so an upgrade that fixes it is noticed.
        let dir = tempdir("sled-alone");
        {
            let store = SledStore::open(&dir).expect("open");
            let mut batch = Batch::new();
            batch.put(b"k".to_vec(), b"v".to_vec());
            store.commit(batch).expect("commit");
        }
        std::fs::write(dir.join("snap.7FFFFFFFFFFFFFFF.generating"), [0u8; 7]).expect("write");
        let raw = sled::Config::new().path(&dir).flush_every_ms(None).open();
        assert!(
            raw.is_err(),
            "sled 0.34.7 opens a store with a truncated snapshot file"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_second_open_waits_for_the_lock_then_reports_it() {
        let dir = tempdir("locked");
        let first = SledStore::open(&dir).expect("open");
        match SledStore::open(&dir) {
            Err(StoreError::Locked(_)) => {}
            Err(other) => panic!("expected Locked, got {other}"),
            Ok(_) => panic!("expected Locked, the store opened twice"),
        }
        drop(first);
        SledStore::open(&dir).expect("open once released");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
