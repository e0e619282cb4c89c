//! Storage for a pilot run: the issuer's ledger in sled, and a compact store for the wallets
//! (in memory, with the records of wallets at rest compressed in a scratch file).
//!
//! Both implement [`Store`], so the real ledger and the real wallet engine run over them unchanged.
//! Every commit is still one atomic batch. What a simulation does without: the ledger is written
//! out at checkpoints (the end of each simulated day, or when its table of changes is full)
//! instead of flushed at every commit, and never
//! synced to the device (it is a scratch copy, deleted when the run ends), and the wallets keep no
//! local history (`h/`), which only a device's user reads and the engine never does.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use tongbao::store::{Batch, Pairs, Store, StoreError, range_start};

/// A fast hash for keys the run makes itself (no adversary chooses them), seeded the same every
/// run.
type Hasher = foldhash::fast::FixedState;

/// Writes not yet in sled: the newest value of each key (`None`: deleted), found by hash for a
/// point read (most of the ledger's reads: a lookup in an ordered map of a day's million keys
/// costs dozens of key comparisons) and in key order for a scan.
#[derive(Default)]
struct Memtable {
    values: HashMap<Arc<[u8]>, Option<Vec<u8>>, Hasher>,
    order: BTreeSet<Arc<[u8]>>,
}

impl Memtable {
    fn get(&self, key: &[u8]) -> Option<&Option<Vec<u8>>> {
        self.values.get(key)
    }

    fn insert(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        if let Some(slot) = self.values.get_mut(key.as_slice()) {
            *slot = value;
            return;
        }
        let key: Arc<[u8]> = key.into();
        self.order.insert(Arc::clone(&key));
        self.values.insert(key, value);
    }

    fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Entries from `from` on, in key order.
    fn range<'a>(
        &'a self,
        from: Bound<&[u8]>,
    ) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + use<'a> {
        self.order
            .range::<[u8], _>((from, Bound::Unbounded))
            .map(|k| (&**k, self.values.get(&**k).and_then(|v| v.as_deref())))
    }
}

/// Values read from sled lately, so the reads a settlement makes of the same coin (its check,
/// its rules, its commit) go to sled once. A commit forgets the keys it writes; a read that a
/// commit overtook is not kept (`generation`).
#[derive(Default)]
struct ReadCache {
    generation: u64,
    bytes: usize,
    values: HashMap<Vec<u8>, Option<Vec<u8>>, Hasher>,
}

/// Bytes of keys and values the read cache holds before it starts again.
const READ_CACHE_BYTES: usize = 16 << 20;

impl ReadCache {
    /// Keeps a value read from sled by a read that began at `generation`, unless a commit came
    /// since (its values may be newer than the one read).
    fn keep(&mut self, generation: u64, key: &[u8], value: &Option<Vec<u8>>) {
        if self.generation != generation {
            return;
        }
        if self.bytes > READ_CACHE_BYTES {
            self.values.clear();
            self.bytes = 0;
        }
        self.bytes += key.len() + value.as_ref().map_or(0, Vec::len);
        self.values.insert(key.to_vec(), value.clone());
    }

    /// Forgets the values of keys a commit writes, and turns away the reads begun before it.
    fn forget<'a>(&mut self, keys: impl Iterator<Item = &'a [u8]>) {
        for k in keys {
            if let Some(old) = self.values.remove(k) {
                self.bytes = self
                    .bytes
                    .saturating_sub(k.len() + old.as_ref().map_or(0, Vec::len));
            }
        }
        self.generation += 1;
    }
}

/// Entries the table of changes holds before a commit writes it out (a checkpoint): with the
/// table being written, at most about twice this many entries, some 1.2 GB with their overheads.
/// A paying day of stress-1m writes up to about two million: in one table, the evening's reads
/// of the coins paid that day stay in memory, and a key written again the same day reaches sled
/// once (or not at all, if it is gone by the day's end).
const TABLE_MAX: usize = 1 << 21;

/// Threads that write a checkpoint's table to sled, each a range of its keys, at idle priority.
const WRITERS: usize = 2;

/// The issuer's ledger in one sled database, written out at checkpoints.
///
/// Commits go to an in-memory table of the day's writes (one atomic insertion per commit, under a
/// lock); a checkpoint (the pilot's at the end of each day, or a commit's that filled the table
/// to [`TABLE_MAX`] entries) hands the table to background threads at idle priority that apply
/// it to sled key by key, each a range of its keys, and flush, while the run goes on. The
/// handed-over table stays readable until it is written out, then is dropped. Reads see the
/// day's table, then the one being written, then sled: the newest value of every key, as one
/// sled database would give.
/// Sled does the same work for a day's writes as for the commits one by one, less the keys
/// written again the same day (a coin paid and spent, a holder index entry added and removed),
/// and it does it off the ledger's one writer thread, on the cores the run leaves idle (while
/// that writer works alone, and while the run waits for the write at the next checkpoint).
pub struct LedgerStore {
    db: sled::Db,
    pending: RwLock<Memtable>,
    /// The previous checkpoint's table while it is being written to sled (dropped once written).
    previous: Arc<RwLock<Option<Arc<Memtable>>>>,
    worker: Mutex<Option<JoinHandle<Result<(), String>>>>,
    cache: Mutex<ReadCache>,
    /// One Bloom filter per table written to sled, of the keys it gave a value: a key none of
    /// them may hold is not in sled, and its read does not go there.
    written: Arc<RwLock<Vec<Filter>>>,
    /// Entries at which a commit writes the table out ([`TABLE_MAX`]; smaller in tests).
    table_max: usize,
}

/// Keys written to sled by one checkpoint (no false negatives; false positives 1 in 1,000).
type Filter = fastbloom::BloomFilter<Hasher>;

/// False positive rate of each checkpoint's filter: a read of a key sled does not hold goes there
/// anyway this often per checkpoint written (about 14 bits of filter per key).
const FILTER_FALSE_POSITIVES: f64 = 0.001;

impl LedgerStore {
    /// Creates the database in `dir`, as a scratch database: sled deletes it when it is dropped,
    /// and does not sync what it writes (`temporary`). A durable sled syncs every log segment as
    /// it writes it (`sync_file_range`, waiting for the device), whatever `flush_every_ms` says,
    /// which cost about a tenth of a pilot's run time for a database nobody reopens. Sled keeps
    /// up to `cache_bytes` of its pages in memory (deserialised): a read or a write of a page
    /// not there loads it again.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<LedgerStore, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .temporary(true)
            .flush_every_ms(None)
            .cache_capacity(cache_bytes)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(backend)?;
        Ok(LedgerStore {
            db,
            pending: RwLock::new(Memtable::default()),
            previous: Arc::new(RwLock::new(None)),
            worker: Mutex::new(None),
            cache: Mutex::new(ReadCache::default()),
            written: Arc::new(RwLock::new(Vec::new())),
            table_max: TABLE_MAX,
        })
    }

    /// Starts writing out everything committed so far (in the background; not synced: see
    /// [`LedgerStore::open`]), after the previous checkpoint's write has finished. Fails if that
    /// write failed.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        // Held throughout: one checkpoint at a time (a second one taking the table while the
        // first is handing its own over would drop the first's from the readers' view).
        let mut worker = self.worker.lock().map_err(poisoned)?;
        let clock = std::time::Instant::now();
        join(worker.take())?;
        super::timing::add("ledger: wait for the writer", clock.elapsed().as_secs_f64());
        // The day's table becomes the previous one in one step for readers (they look at the
        // day's, then the previous one): between the two, its values would be nowhere.
        let table = {
            let mut previous = self.previous.write().map_err(poisoned)?;
            let mut pending = self.pending.write().map_err(poisoned)?;
            if pending.is_empty() {
                return Ok(());
            }
            if super::timing::on() {
                let bytes = pending
                    .values
                    .iter()
                    .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
                    .sum();
                super::timing::checkpoint("checkpoint", pending.values.len(), bytes);
            }
            let table = Arc::new(std::mem::take(&mut *pending));
            *previous = Some(Arc::clone(&table));
            table
        };
        let db = self.db.clone();
        let previous = Arc::clone(&self.previous);
        let written = Arc::clone(&self.written);
        let handle = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || -> Result<(), String> {
                // Idle priority: the write runs on a core the run leaves free (the ledger's one
                // writer works alone at times), and the run waits for it only at the next
                // checkpoint. Best effort: without it the write competes for the cores.
                idle_priority();
                // The filter of the keys this table gives a value, published before any of them
                // reaches sled (and so before the table stops being readable). A deleted key needs
                // none: sled either never held it, or holds it from an earlier table's filter.
                let mut filter = fastbloom::BloomFilter::with_false_pos(FILTER_FALSE_POSITIVES)
                    .hasher(Hasher::default())
                    .expected_items(table.values.len().max(1));
                for (k, v) in &table.values {
                    if v.is_some() {
                        filter.insert(&**k);
                    }
                }
                written
                    .write()
                    .map_err(|_| "poisoned".to_string())?
                    .push(filter);
                // A removal of a key no table ever gave a value (the filters have no false
                // negatives) would load sled's page of it for nothing: most are of entries made
                // and dropped between two checkpoints (a holder index entry, an earmark). Only
                // this thread adds filters, so the set read here stays the same while it works.
                let filters = written.read().map_err(|_| "poisoned".to_string())?;
                let in_sled = |k: &[u8]| filters.iter().any(|f| f.contains(k));
                // In key order, key by key (`insert` and `remove` hold sled's readers only
                // for the one key; a batch holds every reader of the tree until it is in), by
                // [`WRITERS`] threads at idle priority, each over its own range of keys: while
                // the run waits for the write at a checkpoint, or leaves both cores free, each
                // core applies a part. Safe because until the whole table is written, readers
                // find every key of it in the table before they look in sled.
                let clock = std::time::Instant::now();
                let part =
                    |from: Option<&[u8]>, to: Option<&[u8]>| -> Result<(usize, usize), String> {
                        let (mut applied, mut skipped) = (0usize, 0usize);
                        let start = from.map_or(Bound::Unbounded, Bound::Included);
                        for (k, v) in table
                            .range(start)
                            .take_while(|(k, _)| to.is_none_or(|t| *k < t))
                        {
                            match v {
                                Some(v) => {
                                    db.insert(k, v).map_err(|e| e.to_string())?;
                                }
                                None if in_sled(k) => {
                                    db.remove(k).map_err(|e| e.to_string())?;
                                }
                                None => {
                                    skipped += 1;
                                    continue;
                                }
                            }
                            applied += 1;
                        }
                        Ok((applied, skipped))
                    };
                // The parts' edges: unbounded at both ends, and the key at every n / WRITERS.
                let step = table.order.len().div_ceil(WRITERS).max(1);
                let mut edges: Vec<Option<&[u8]>> = vec![None];
                edges.extend(table.order.iter().step_by(step).skip(1).map(|k| Some(&**k)));
                edges.push(None);
                let (applied, skipped) = std::thread::scope(|s| {
                    // The first part on this thread, each other on a thread of its own.
                    let others: Vec<_> = edges
                        .windows(2)
                        .skip(1)
                        .map(|e| {
                            let (part, from, to) = (&part, e[0], e[1]);
                            std::thread::Builder::new()
                                .name("ledger-writer".into())
                                .spawn_scoped(s, move || {
                                    idle_priority();
                                    part(from, to)
                                })
                        })
                        .collect();
                    let mut total = part(edges[0], edges[1])?;
                    for h in others {
                        let (a, k) = h
                            .map_err(|e| e.to_string())?
                            .join()
                            .map_err(|_| "a ledger writer panicked".to_string())??;
                        total.0 += a;
                        total.1 += k;
                    }
                    Ok::<_, String>(total)
                })?;
                drop(filters);
                db.flush().map_err(|e| e.to_string())?;
                super::timing::written(applied, skipped);
                super::timing::add(
                    "ledger writer (idle priority)",
                    clock.elapsed().as_secs_f64(),
                );
                // Written: sled reads the same now, so the table's memory goes (a day of a
                // city-scale pilot's changes is hundreds of MB).
                if let Ok(mut p) = previous.write()
                    && p.as_ref().is_some_and(|t| Arc::ptr_eq(t, &table))
                {
                    *p = None;
                }
                Ok(())
            })
            .map_err(|e| StoreError::Backend(format!("ledger writer: {e}")))?;
        *worker = Some(handle);
        Ok(())
    }

    /// Waits for the checkpoint being written out; its error, if it failed.
    pub fn wait(&self) -> Result<(), StoreError> {
        let handle = self.worker.lock().map_err(poisoned)?.take();
        join(handle)
    }

    /// The previous checkpoint's table while it is being written: the same values may or may not
    /// be in sled yet.
    fn previous(&self) -> Result<Option<Arc<Memtable>>, StoreError> {
        Ok(self.previous.read().map_err(poisoned)?.clone())
    }

    /// Both tables as one checkpoint left them (taken in the order a checkpoint takes them, so
    /// none happens in between): the previous one, and the day's, held for reading.
    fn tables(
        &self,
    ) -> Result<
        (
            Option<Arc<Memtable>>,
            std::sync::RwLockReadGuard<'_, Memtable>,
        ),
        StoreError,
    > {
        let previous = self.previous.read().map_err(poisoned)?;
        let pending = self.pending.read().map_err(poisoned)?;
        Ok((previous.clone(), pending))
    }
}
impl Drop for LedgerStore {
    fn drop(&mut self) {
        // The database is scratch; only the writer thread must not outlive it.
        let _ = self.wait();
    }
}

/// Puts the calling thread at idle priority (`SCHED_IDLE`): it runs only on a core nothing else
/// wants. Best effort: without it a writer competes with the run for the cores.
fn idle_priority() {
    let _ = thread_priority::set_thread_priority_and_policy(
        thread_priority::thread_native_id(),
        thread_priority::ThreadPriority::Min,
        thread_priority::ThreadSchedulePolicy::Normal(
            thread_priority::NormalThreadSchedulePolicy::Idle,
        ),
    );
}

/// Waits for a ledger writer, if any; its error, if it failed.
fn join(handle: Option<JoinHandle<Result<(), String>>>) -> Result<(), StoreError> {
    match handle.map(JoinHandle::join) {
        None | Some(Ok(Ok(()))) => Ok(()),
        Some(Ok(Err(e))) => Err(StoreError::Backend(e)),
        Some(Err(_)) => Err(StoreError::Backend("the ledger writer panicked".into())),
    }
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// A table's entries under `prefix` past `after`, in key order (`None`: deleted).
fn table_range<'a>(
    t: &'a Memtable,
    prefix: &'a [u8],
    after: Option<&[u8]>,
) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
    let from = range_start(prefix, after);
    let from = match &from {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    };
    t.range(from)
        .take_while(move |(k, _)| k.starts_with(prefix))
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Backend("poisoned".into())
}

impl Store for LedgerStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        // Noted first: a commit after this point (its value perhaps missed below) stops the
        // value read from sled from being kept.
        let generation = self.cache.lock().map_err(poisoned)?.generation;
        if let Some(v) = self.pending.read().map_err(poisoned)?.get(key) {
            return Ok(v.clone());
        }
        // Before sled: sled holds the same values once the table is written, or older ones.
        if let Some(t) = self.previous()?
            && let Some(v) = t.get(key)
        {
            return Ok(v.clone());
        }
        // Not in any table written out: not in sled (most reads of a coin made offline since,
        // or of a payment not settled yet).
        if !self
            .written
            .read()
            .map_err(poisoned)?
            .iter()
            .any(|f| f.contains(key))
        {
            return Ok(None);
        }
        if let Some(v) = self.cache.lock().map_err(poisoned)?.values.get(key) {
            return Ok(v.clone());
        }
        let clock = super::timing::on().then(std::time::Instant::now);
        let v = self.db.get(key).map_err(backend)?.map(|iv| iv.to_vec());
        if let Some(c) = clock {
            super::timing::sled_read(key, v.is_some(), c.elapsed().as_secs_f64());
        }
        self.cache
            .lock()
            .map_err(poisoned)?
            .keep(generation, key, &v);
        Ok(v)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        let (previous, pending) = self.tables()?;
        // The tables' entries under the prefix, the day's over the previous one.
        let mut newer: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
        for t in previous.as_deref().into_iter().chain([&*pending]) {
            newer.extend(table_range(t, prefix, None));
        }
        // Merged with sled's entries, both in key order.
        let clock = super::timing::on().then(std::time::Instant::now);
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
        if let Some(c) = clock {
            let what = [b"scan ".as_slice(), prefix].concat();
            super::timing::sled_read(&what, !out.is_empty(), c.elapsed().as_secs_f64());
        }
        Ok(out)
    }

    /// The same merge as [`LedgerStore::scan_prefix`], from `after` on, stopping at `limit`
    /// pairs: each source is read only as far as the page reaches (past `limit` entries only by
    /// the deletions in the tables).
    fn scan_range(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, StoreError> {
        let (previous, pending) = self.tables()?;
        let mut day = table_range(&pending, prefix, after).peekable();
        let mut prev = previous
            .as_deref()
            .map(|t| table_range(t, prefix, after))
            .into_iter()
            .flatten()
            .peekable();
        let mut disk = self
            .db
            .range((range_start(prefix, after), std::ops::Bound::Unbounded));
        let mut disk_next = || -> Result<Option<(sled::IVec, sled::IVec)>, StoreError> {
            match disk.next().transpose().map_err(backend)? {
                Some((k, v)) if k.starts_with(prefix) => Ok(Some((k, v))),
                _ => Ok(None),
            }
        };
        let mut disk_head = disk_next()?;
        let mut out = Vec::new();
        while out.len() < limit {
            let heads = [
                day.peek().map(|(k, _)| *k),
                prev.peek().map(|(k, _)| *k),
                disk_head.as_ref().map(|(k, _)| k.as_ref()),
            ];
            let Some(key) = heads.into_iter().flatten().min().map(<[u8]>::to_vec) else {
                break;
            };
            // Every source holding the key moves past it; the newest one gives its value
            // (`None`: deleted).
            let mut value: Option<Option<Vec<u8>>> = None;
            if let Some((_, v)) = day.next_if(|(k, _)| *k == key.as_slice()) {
                value = Some(v.map(<[u8]>::to_vec));
            }
            if let Some((_, v)) = prev.next_if(|(k, _)| *k == key.as_slice())
                && value.is_none()
            {
                value = Some(v.map(<[u8]>::to_vec));
            }
            if let Some((_, v)) = disk_head.take_if(|(k, _)| k.as_ref() == key.as_slice()) {
                if value.is_none() {
                    value = Some(Some(v.to_vec()));
                }
                disk_head = disk_next()?;
            }
            if let Some(Some(v)) = value {
                out.push((key, v));
            }
        }
        Ok(out)
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let ops = batch.into_ops();
        // The table first, then the cache: a read that missed the new values has noted the
        // generation this bumps.
        let mut cache = self.cache.lock().map_err(poisoned)?;
        cache.forget(ops.iter().map(|(k, _)| k.as_slice()));
        let mut t = self.pending.write().map_err(poisoned)?;
        for (k, v) in ops {
            t.insert(k, v);
        }
        let full = t.values.len() >= self.table_max;
        drop(t);
        drop(cache);
        // A table past its size is written out at once, not at the day's end: a claims day of
        // a city-scale pilot writes millions of entries, and two such tables (the one being
        // written and the next) held gigabytes.
        if full {
            self.checkpoint()?;
        }
        Ok(())
    }
}

/// Keys a simulated wallet does not keep: the local history and its sequence number.
fn dropped(key: &[u8]) -> bool {
    key.starts_with(b"h/") || key == b"m/history-seq"
}

/// Entries a wallet's recent writes reach before a commit packs them (see [`SimStore`]).
const PACK_MIN: usize = 64;

/// Packed bytes per recent entry at which recent writes are worth packing (an entry in the map
/// costs about a hundred bytes beyond its key and value).
const PACK_RATIO: usize = 1024;

/// Packed bytes a block holds before the next entry starts a new one (an entry larger than this
/// has a block to itself). A person's wallet fits in one; a shop's records span hundreds, of which
/// a day reads and writes few.
const BLOCK_BYTES: usize = 32 << 10;

/// Packed bytes of one kind of record at which it has blocks of its own (see [`chunks`]).
const BLOCK_KIND_BYTES: usize = 8 << 10;

/// A run of a wallet's records packed in key order: each entry is its key's length (two bytes,
/// big-endian), the key and the value; `at` holds where each entry starts, and a value ends where
/// the next entry starts (the last at `size`). The bytes are readable (`data`), compressed
/// (`cold`: lz4, length first), or both while they are unchanged since they were compressed.
#[derive(Clone, Default)]
struct Block {
    /// The first key (unused in the first block, which holds every key before the second's).
    first: Box<[u8]>,
    at: Box<[u32]>,
    size: u32,
    data: Option<Box<[u8]>>,
    cold: Option<Cold>,
}

/// A block's compressed bytes: in memory, or written to the run's [`Spill`] file.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Cold {
    Mem(Box<[u8]>),
    File(Arc<Extent>),
}

impl Cold {
    fn len(&self) -> usize {
        match self {
            Cold::Mem(b) => b.len(),
            Cold::File(e) => e.len as usize,
        }
    }
}

/// A block's bytes in the spill file. A wallet and its rollback snapshots share them; when the
/// last block that refers to them goes (written afresh, or its wallet dropped), the file gives
/// their disk space back ([`Spill::free`]).
struct Extent {
    spill: Arc<Spill>,
    at: u64,
    len: u32,
}

impl Extent {
    fn read(&self) -> Result<Vec<u8>, StoreError> {
        self.spill.read(self.at, self.len)
    }
}

impl Drop for Extent {
    fn drop(&mut self) {
        self.spill.free(self.at, self.len);
    }
}

impl PartialEq for Extent {
    fn eq(&self, other: &Extent) -> bool {
        Arc::ptr_eq(&self.spill, &other.spill) && self.at == other.at && self.len == other.len
    }
}

impl Eq for Extent {}

impl std::fmt::Debug for Extent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Extent({}+{})", self.at, self.len)
    }
}

/// The scratch file where resting wallets keep their compressed blocks ([`SimStore::rest`]), so
/// the city's idle wallets take disk instead of memory (gigabytes at a million wallets). It is
/// only appended to: a block's bytes never move or change, so every copy of a wallet that
/// refers to them (a rollback's snapshot included) stays valid. A block packed again is written
/// afresh at the end, and its old bytes are freed once no copy refers to them ([`Extent`]).
///
/// The file is cut in regions of [`SPILL_REGION`] bytes, and counts the bytes in use in each. A
/// region none of whose bytes is used any more is given back to the file system at the end of
/// the day's rest (on Linux a hole, `fallocate` with `FALLOC_FL_PUNCH_HOLE`; one call for each
/// run of such regions). A person's wallet is a sliver of a region and most stay unchanged for
/// days, so regions would rarely empty by themselves: once the file holds a gigabyte
/// ([`SPILL_SLACK`]) beyond what its blocks use, the regions less than half used are marked
/// before each day's rest ([`Spill::plan_moves`]), and the wallets with blocks there write them
/// afresh at the end with their other blocks, so those regions empty. So the file's length
/// grows by what each day's rest writes, but the disk it takes stays within about twice what
/// the wallets hold, or that plus a gigabyte. Elsewhere, or on a file system without holes,
/// nothing is given back and nothing moved: the bytes stay until the run ends and the file is
/// deleted.
pub struct Spill {
    file: File,
    path: PathBuf,
    end: AtomicU64,
    /// Whether space is given back (cleared when holes fail, and at the end of the run, when
    /// the whole file goes).
    reclaim: AtomicBool,
    usage: Mutex<Usage>,
    /// The regions whose blocks the wallets' next rest moves ([`Spill::plan_moves`]).
    moving: RwLock<Vec<bool>>,
    /// Bytes in a region ([`SPILL_REGION`]; smaller in tests).
    region: u64,
    /// Bytes written again to move them out of sparse regions, and calls that made holes (for
    /// `TONGBAO_PILOT_TIMING`).
    moved: AtomicU64,
    punches: AtomicU64,
}

/// What a [`Spill`] has done so far ([`Spill::figures`], for `TONGBAO_PILOT_TIMING`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpillFigures {
    /// Bytes written again to empty sparse regions.
    pub moved: u64,
    /// Bytes written that no block refers to any more.
    pub freed: u64,
    /// Regions given back to the file system.
    pub given: usize,
    /// Calls that gave them back (one for each run of regions).
    pub punches: u64,
}

/// What the spill file's bytes are used for.
#[derive(Default)]
struct Usage {
    /// Bytes written that no block refers to any more.
    freed: u64,
    /// Bytes in use in each region (written or being written, and referred to).
    live: Vec<u64>,
    /// Regions given back.
    given: Vec<bool>,
}

/// The spill file's regions: the unit in which space is given back, and in which sparse parts
/// are chosen to be emptied.
const SPILL_REGION: u64 = 1 << 20;

/// Disk the spill file may hold beyond what its blocks use before sparse regions are emptied:
/// moving blocks costs a run time (a few percent of a rest), which a file of a few hundred
/// megabytes is not worth (Suzhou's never reaches it; a million wallets' does by the third day).
pub const SPILL_SLACK: u64 = 1 << 30;

impl Spill {
    /// Creates the file at `path` (which must not exist); it is deleted when the spill is dropped.
    pub fn create(path: &Path) -> Result<Arc<Spill>, StoreError> {
        Spill::create_in(path, SPILL_REGION)
    }

    /// [`Spill::create`] with regions of `region` bytes (smaller in tests).
    fn create_in(path: &Path, region: u64) -> Result<Arc<Spill>, StoreError> {
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
        Ok(Arc::new(Spill::over(file, path.to_path_buf(), region)))
    }

    fn over(file: File, path: PathBuf, region: u64) -> Spill {
        Spill {
            file,
            path,
            end: AtomicU64::new(0),
            reclaim: AtomicBool::new(cfg!(target_os = "linux")),
            usage: Mutex::new(Usage::default()),
            moving: RwLock::new(Vec::new()),
            region,
            moved: AtomicU64::new(0),
            punches: AtomicU64::new(0),
        }
    }

    /// Bytes written to the file so far (live and left behind).
    pub fn written(&self) -> u64 {
        self.end.load(Ordering::Relaxed)
    }

    /// What the file has moved, freed and given back so far.
    pub fn figures(&self) -> SpillFigures {
        let (freed, given) = self.usage.lock().map_or((0, 0), |u| {
            (u.freed, u.given.iter().filter(|&&g| g).count())
        });
        SpillFigures {
            moved: self.moved.load(Ordering::Relaxed),
            freed,
            given,
            punches: self.punches.load(Ordering::Relaxed),
        }
    }

    /// The disk the file takes (its allocated blocks), where the platform tells.
    pub fn on_disk(&self) -> Option<u64> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            self.file.metadata().ok().map(|m| m.blocks() * 512)
        }
        #[cfg(not(unix))]
        {
            None
        }
    }

    /// Stops giving back space: the run is over and the whole file is about to go, so freeing
    /// it block by block as the wallets drop would only cost time.
    pub fn stop_reclaiming(&self) {
        self.reclaim.store(false, Ordering::Relaxed);
    }

    /// Marks the regions of the file, wholly written, where blocks use less than half of the
    /// bytes: the next rest of each wallet with blocks there writes them afresh at the end
    /// (they are read back as they are, still compressed), so the region empties and is given
    /// back. Nothing is marked while the file holds less than `slack` bytes beyond what its
    /// blocks use ([`SPILL_SLACK`] in a run), nor where space is not given back.
    pub fn plan_moves(&self, slack: u64) {
        let written = self.written();
        let whole = usize::try_from(written / self.region).unwrap_or(usize::MAX);
        let sparse: Vec<bool> = if self.reclaim.load(Ordering::Relaxed) {
            self.usage.lock().map_or_else(
                |_| Vec::new(),
                |u| {
                    let live: u64 = u.live.iter().sum();
                    let given = u.given.iter().filter(|&&g| g).count() as u64 * self.region;
                    if written.saturating_sub(given).saturating_sub(live) < slack {
                        return Vec::new();
                    }
                    (0..whole)
                        .map(|r| u.live.get(r).copied().unwrap_or(0))
                        .map(|live| live > 0 && live < self.region / 2)
                        .collect()
                },
            )
        } else {
            Vec::new()
        };
        if let Ok(mut m) = self.moving.write() {
            *m = sparse;
        }
    }

    fn region_of(&self, at: u64) -> usize {
        usize::try_from(at / self.region).unwrap_or(usize::MAX)
    }

    /// Each region that bytes `at..at + len` fall in, with how many of them fall there.
    fn regions(&self, at: u64, len: u64) -> impl Iterator<Item = (usize, u64)> + use<'_> {
        let end = at + len;
        (self.region_of(at)..self.region_of(end.saturating_sub(1)) + usize::from(len > 0)).map(
            move |r| {
                let lo = (r as u64 * self.region).max(at);
                let hi = ((r as u64 + 1) * self.region).min(end);
                (r, hi - lo)
            },
        )
    }

    /// Counts `at..at + len` as used, before anything is written there: so a region with a
    /// write in flight is never empty.
    fn hold(&self, at: u64, len: u64) {
        if let Ok(mut u) = self.usage.lock() {
            for (r, n) in self.regions(at, len) {
                if u.live.len() <= r {
                    u.live.resize(r + 1, 0);
                }
                u.live[r] += n;
            }
        }
    }

    /// `at..at + len` is no longer used: a region left with no byte in use is due to be given
    /// back ([`Spill::give_back`]).
    fn release(&self, at: u64, len: u64) {
        let Ok(mut u) = self.usage.lock() else {
            return;
        };
        u.freed += len;
        for (r, n) in self.regions(at, len) {
            if let Some(live) = u.live.get_mut(r) {
                *live = live.saturating_sub(n);
            }
        }
    }

    /// A block's bytes no block refers to any more (see [`Spill::release`]).
    fn free(&self, at: u64, len: u32) {
        if self.reclaim.load(Ordering::Relaxed) {
            self.release(at, u64::from(len));
        }
    }

    /// Gives back to the file system the regions now empty and wholly written, not given back
    /// before, in one call for each run of them (a hole punched is a journal transaction). Such
    /// a region is never written again (the file is only appended to, and every write is
    /// counted before it starts), so it stays empty.
    pub fn give_back(&self) {
        if !self.reclaim.load(Ordering::Relaxed) {
            return;
        }
        let whole = usize::try_from(self.written() / self.region).unwrap_or(usize::MAX);
        let mut runs: Vec<(usize, usize)> = Vec::new();
        {
            let Ok(mut u) = self.usage.lock() else {
                return;
            };
            let u = &mut *u;
            let whole = whole.min(u.live.len());
            u.given.resize(u.given.len().max(whole), false);
            for (r, (&live, given)) in u.live[..whole].iter().zip(&mut u.given).enumerate() {
                if live == 0 && !*given {
                    *given = true;
                    match runs.last_mut() {
                        Some(last) if last.1 == r => last.1 = r + 1,
                        _ => runs.push((r, r + 1)),
                    }
                }
            }
        }
        self.punches.fetch_add(runs.len() as u64, Ordering::Relaxed);
        for (lo, hi) in runs {
            let (at, len) = (lo as u64 * self.region, (hi - lo) as u64 * self.region);
            if punch_hole(&self.file, at, len).is_err() {
                // No holes here: the bytes stay until the file is deleted, as elsewhere.
                self.stop_reclaiming();
                return;
            }
        }
    }

    /// Appends `bytes`, counted as used first; where they start.
    fn append(&self, bytes: &[u8]) -> std::io::Result<u64> {
        let len = bytes.len() as u64;
        let at = self.end.fetch_add(len, Ordering::Relaxed);
        self.hold(at, len);
        if let Err(e) = write_at(&self.file, bytes, at) {
            self.release(at, len);
            return Err(e);
        }
        Ok(at)
    }

    fn read(&self, at: u64, len: u32) -> Result<Vec<u8>, StoreError> {
        let mut buf = vec![0; len as usize];
        read_at(&self.file, &mut buf, at).map_err(|e| {
            StoreError::Backend(format!(
                "wallet records: {} at {at}: {e}",
                self.path.display()
            ))
        })?;
        Ok(buf)
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        // Scratch: nothing in it outlives the run.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(target_os = "linux")]
fn punch_hole(file: &File, at: u64, len: u64) -> std::io::Result<()> {
    use rustix::fs::{FallocateFlags, fallocate};
    fallocate(
        file,
        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
        at,
        len,
    )
    .map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn punch_hole(_: &File, _: u64, _: u64) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(unix)]
fn write_at(file: &File, bytes: &[u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, at)
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
}

#[cfg(windows)]
fn write_at(file: &File, mut bytes: &[u8], mut at: u64) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, bytes, at)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
        at += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_at(file: &File, mut buf: &mut [u8], mut at: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_read(file, buf, at)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        at += n as u64;
    }
    Ok(())
}

/// A readable block's entries.
#[derive(Clone, Copy)]
struct Packed<'a> {
    data: &'a [u8],
    at: &'a [u32],
}

impl<'a> Packed<'a> {
    fn len(&self) -> usize {
        self.at.len()
    }

    fn entry(&self, i: usize) -> (&'a [u8], &'a [u8]) {
        let start = self.at[i] as usize;
        let end = self.at.get(i + 1).map_or(self.data.len(), |&e| e as usize);
        let klen = usize::from(u16::from_be_bytes([self.data[start], self.data[start + 1]]));
        let k = &self.data[start + 2..start + 2 + klen];
        (k, &self.data[start + 2 + klen..end])
    }

    /// The first entry whose key is not less than `key`.
    fn lower_bound(&self, key: &[u8]) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.entry(mid).0 < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    fn get(&self, key: &[u8]) -> Option<&'a [u8]> {
        let i = self.lower_bound(key);
        (i < self.len() && self.entry(i).0 == key).then(|| self.entry(i).1)
    }
}

/// The packed size of an entry (see [`Block`]).
fn entry_bytes((k, v): &(&[u8], &[u8])) -> usize {
    2 + k.len() + v.len()
}

impl Block {
    /// Packs `entries` (in key order, at least one) into a readable block.
    fn build(entries: &[(&[u8], &[u8])]) -> Block {
        let bytes = entries.iter().map(entry_bytes).sum();
        let mut data = Vec::with_capacity(bytes);
        let mut at = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            at.push(u32::try_from(data.len()).unwrap_or(u32::MAX));
            data.extend_from_slice(&u16::try_from(k.len()).unwrap_or(u16::MAX).to_be_bytes());
            data.extend_from_slice(k);
            data.extend_from_slice(v);
        }
        Block {
            first: entries.first().map(|(k, _)| *k).unwrap_or_default().into(),
            at: at.into_boxed_slice(),
            size: u32::try_from(data.len()).unwrap_or(u32::MAX),
            data: Some(data.into_boxed_slice()),
            cold: None,
        }
    }

    /// The entries, if the block is readable.
    fn packed(&self) -> Option<Packed<'_>> {
        self.data
            .as_deref()
            .map(|data| Packed { data, at: &self.at })
    }

    /// Makes the bytes readable (a resting block read or written).
    fn thaw(&mut self) -> Result<(), StoreError> {
        if self.data.is_none() {
            let cold: Cow<'_, [u8]> = match &self.cold {
                None => Cow::Borrowed(&[]),
                Some(Cold::Mem(b)) => Cow::Borrowed(b),
                Some(Cold::File(e)) => Cow::Owned(e.read()?),
            };
            // The length written first must be the block's (a damaged one could ask for
            // gigabytes).
            let said = cold.get(..4).map(|n| [n[0], n[1], n[2], n[3]]);
            if said.map(u32::from_le_bytes) != Some(self.size) {
                return Err(StoreError::Backend(format!(
                    "wallet records: a block of {} bytes is recorded as {said:?}",
                    self.size
                )));
            }
            let data = lz4_flex::block::decompress(&cold[4..], self.size as usize)
                .map_err(|e| StoreError::Backend(format!("wallet records: {e}")))?;
            if data.len() != self.size as usize {
                return Err(StoreError::Backend(format!(
                    "wallet records: a block of {} bytes read back as {}",
                    self.size,
                    data.len()
                )));
            }
            self.data = Some(data.into_boxed_slice());
        }
        Ok(())
    }

    /// Keeps the bytes compressed only (compressed now if they changed since they last were).
    fn rest(&mut self) {
        if let Some(data) = self.data.take()
            && self.cold.is_none()
        {
            self.cold = Some(Cold::Mem(
                lz4_flex::compress_prepend_size(&data).into_boxed_slice(),
            ));
        }
    }
}

/// One wallet's state in memory, compactly: its recent writes in a small map (`None`: deleted),
/// everything older packed in blocks of about [`BLOCK_BYTES`] in key order. A commit packs the
/// recent writes once they are many for the packed size (so each byte is copied a bounded number
/// of times), rewriting only the blocks they fall in. At the end of each day the pilot lets every
/// wallet rest ([`SimStore::rest`]): the wallets the day touched are packed and their blocks
/// compressed (lz4), and a block is decompressed again only when a read or a pack next needs it.
/// Most of a city's wallets are idle on any one day, and a shop that is busy every day reads
/// few of its older blocks (its new requests and sales are recent writes). A map entry costs
/// about a hundred bytes of its own; a packed one six, which at a million wallets is gigabytes;
/// compression keeps the packed bytes in about 56% of their size.
#[derive(Default)]
pub struct SimStore {
    inner: Mutex<Inner>,
}

#[derive(Clone, Default)]
struct Inner {
    recent: BTreeMap<Box<[u8]>, Option<Box<[u8]>>>,
    blocks: Vec<Block>,
    /// Where resting blocks go (none: they stay compressed in memory).
    spill: Option<Arc<Spill>>,
}

impl Inner {
    /// The block that holds `key` if any does.
    fn block_of(&self, key: &[u8]) -> usize {
        self.blocks
            .get(1..)
            .map_or(0, |rest| rest.partition_point(|b| &*b.first <= key))
    }

    /// The blocks that may hold keys under `prefix`, made readable.
    fn thaw_prefix(&mut self, prefix: &[u8]) -> Result<std::ops::Range<usize>, StoreError> {
        let from = self.block_of(prefix);
        let to = 1 + self.blocks.get(1..).map_or(0, |rest| {
            rest.partition_point(|b| &*b.first < prefix || b.first.starts_with(prefix))
        });
        let to = to.min(self.blocks.len());
        for b in self.blocks.get_mut(from..to).unwrap_or_default() {
            b.thaw()?;
        }
        Ok(from..to)
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<&[u8]>, StoreError> {
        if let Some(v) = self.recent.get(key) {
            return Ok(v.as_deref());
        }
        let i = self.block_of(key);
        let Some(b) = self.blocks.get_mut(i) else {
            return Ok(None);
        };
        b.thaw()?;
        Ok(b.packed().and_then(|p| p.get(key)))
    }

    /// Every live entry under `prefix`, in key order (recent writes over packed ones); the
    /// blocks in `range` must be readable ([`Inner::thaw_prefix`]).
    fn visit<'a>(
        &'a self,
        prefix: &[u8],
        range: std::ops::Range<usize>,
        mut f: impl FnMut(&'a [u8], &'a [u8]),
    ) {
        let recent = self
            .recent
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (&**k, v.as_deref()));
        let packed = self
            .blocks
            .get(range)
            .unwrap_or_default()
            .iter()
            .filter_map(Block::packed)
            .flat_map(|p| (0..p.len()).map(move |i| p.entry(i)))
            .skip_while(|(k, _)| *k < prefix)
            .take_while(|(k, _)| k.starts_with(prefix));
        merge(packed, recent, |k, v| {
            if let Some(v) = v {
                f(k, v);
            }
        });
    }

    fn packed_bytes(&self) -> usize {
        self.blocks.iter().map(|b| b.size as usize).sum()
    }

    fn should_pack(&self, min: usize) -> bool {
        self.recent.len() >= min && self.recent.len() * PACK_RATIO >= self.packed_bytes()
    }

    /// Moves the recent writes into the blocks, rewriting only the blocks they fall in (split
    /// when they grow past [`BLOCK_BYTES`], gone when emptied). With `resting`, every block is
    /// left compressed only. Damaged compressed bytes are an error, and nothing changes.
    fn pack(&mut self, resting: bool) -> Result<(), StoreError> {
        // How many recent writes (in key order) fall in each block: block i takes the keys below
        // block i + 1's first key; with no block yet, they are all past every block.
        let mut counts = vec![0usize; self.blocks.len()];
        let mut i = 0;
        for k in self.recent.keys() {
            while i + 1 < self.blocks.len() && **k >= *self.blocks[i + 1].first {
                i += 1;
            }
            if let Some(c) = counts.get_mut(i) {
                *c += 1;
            }
        }
        for (b, _) in self.blocks.iter_mut().zip(&counts).filter(|(_, c)| **c > 0) {
            b.thaw()?;
        }
        let recent = std::mem::take(&mut self.recent);
        let old = std::mem::take(&mut self.blocks);
        let mut writes = recent.iter().map(|(k, v)| (&**k, v.as_deref()));
        let mut blocks = Vec::with_capacity(old.len());
        let add = |c: &[(&[u8], &[u8])], blocks: &mut Vec<Block>| {
            let mut b = Block::build(c);
            if resting {
                b.rest();
            }
            blocks.push(b);
        };
        for (mut b, n) in old.into_iter().zip(counts) {
            if n == 0 {
                if resting {
                    b.rest();
                }
                blocks.push(b);
                continue;
            }
            let mut live: Vec<(&[u8], &[u8])> = Vec::new();
            let entries = b.packed().map(|p| (0..p.len()).map(move |j| p.entry(j)));
            merge(
                entries.into_iter().flatten(),
                writes.by_ref().take(n),
                |k, v| {
                    if let Some(v) = v {
                        live.push((k, v));
                    }
                },
            );
            for c in chunks(&live) {
                add(c, &mut blocks);
            }
        }
        // The writes when there was no block yet.
        let live: Vec<(&[u8], &[u8])> = writes.filter_map(|(k, v)| v.map(|v| (k, v))).collect();
        for c in chunks(&live) {
            add(c, &mut blocks);
        }
        drop(live);
        if let Some(b) = blocks.first_mut() {
            // The first block's key is never compared.
            b.first = Box::default();
        }
        self.blocks = blocks;
        Ok(())
    }

    fn rest(&mut self) {
        // A damaged block is left as it is (and the wallet unpacked): the next read of it reports
        // the damage.
        let _ = self.pack(true);
        if let Some(spill) = self.spill.clone() {
            self.move_out_of_sparse(&spill);
            self.spill_out(&spill);
        }
    }

    /// Reads back, still compressed, the resting blocks in regions of the file being emptied
    /// ([`Spill::plan_moves`]), so that they are written afresh with the others. A block that
    /// cannot be read stays where it is (its next read reports the damage).
    fn move_out_of_sparse(&mut self, spill: &Spill) {
        let Ok(moving) = spill.moving.read() else {
            return;
        };
        if moving.is_empty() {
            return;
        }
        for b in &mut self.blocks {
            if let (None, Some(Cold::File(e))) = (&b.data, &b.cold)
                && std::ptr::eq(&*e.spill, spill)
                && moving.get(spill.region_of(e.at)) == Some(&true)
                && let Ok(bytes) = e.read()
            {
                spill.moved.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                b.cold = Some(Cold::Mem(bytes.into_boxed_slice()));
            }
        }
    }

    /// Writes the blocks compressed in memory to `spill` (in one write) and keeps only where they
    /// are. If the write fails (a full disk), they stay in memory and the run goes on.
    fn spill_out(&mut self, spill: &Arc<Spill>) {
        let in_memory = |b: &Block| match (&b.data, &b.cold) {
            (None, Some(Cold::Mem(c))) => Some(c.len()),
            _ => None,
        };
        let total: usize = self.blocks.iter().filter_map(in_memory).sum();
        if total == 0 || u32::try_from(total).is_err() {
            return;
        }
        let mut bytes = Vec::with_capacity(total);
        for b in &self.blocks {
            if let (None, Some(Cold::Mem(c))) = (&b.data, &b.cold) {
                bytes.extend_from_slice(c);
            }
        }
        let Ok(mut at) = spill.append(&bytes) else {
            return;
        };
        for b in &mut self.blocks {
            if let Some(n) = in_memory(b) {
                // Fits: `total` does.
                let len = n as u32;
                b.cold = Some(Cold::File(Arc::new(Extent {
                    spill: Arc::clone(spill),
                    at,
                    len,
                })));
                at += u64::from(len);
            }
        }
    }
}

/// Merges packed entries with recent writes over them (both in key order): `f` sees every key
/// once, with the recent value where there is one (`None`: deleted).
fn merge<'a, 'p: 'a, 'r: 'a>(
    packed: impl Iterator<Item = (&'p [u8], &'p [u8])>,
    recent: impl Iterator<Item = (&'r [u8], Option<&'r [u8]>)>,
    mut f: impl FnMut(&'a [u8], Option<&'a [u8]>),
) {
    let mut p = packed.peekable();
    let mut r = recent.peekable();
    loop {
        match (p.peek().copied(), r.peek().copied()) {
            (None, None) => break,
            (Some((pk, pv)), r) if r.is_none_or(|(rk, _)| pk < rk) => {
                f(pk, Some(pv));
                p.next();
            }
            (pe, Some((rk, rv))) => {
                if pe.is_some_and(|(pk, _)| pk == rk) {
                    p.next();
                }
                f(rk, rv);
                r.next();
            }
            (Some(_), None) => unreachable!("handled by the arm above"),
        }
    }
}

/// Entries cut into runs of at most [`BLOCK_BYTES`] packed bytes (an entry larger than that is a
/// run of its own). A kind of record (a key prefix up to its first `/`) that takes at least
/// [`BLOCK_KIND_BYTES`] here starts and ends its own runs, so the small records beside it (a
/// shop's keys and counters, read every day) are not in a block of its many older ones.
fn chunks<'e, 'a>(entries: &'e [(&'a [u8], &'a [u8])]) -> Vec<&'e [(&'a [u8], &'a [u8])]> {
    fn kind(k: &[u8]) -> &[u8] {
        k.iter().position(|&c| c == b'/').map_or(k, |i| &k[..=i])
    }
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    let mut i = 0;
    while i < entries.len() {
        // The run of this kind of record.
        let this = kind(entries[i].0);
        let end = i + entries[i..].partition_point(|(k, _)| kind(k) == this);
        let big = entries[i..end].iter().map(entry_bytes).sum::<usize>() >= BLOCK_KIND_BYTES;
        if big && i > start {
            out.push(&entries[start..i]);
            (start, bytes) = (i, 0);
        }
        for (j, e) in entries.iter().enumerate().take(end).skip(i) {
            let n = entry_bytes(e);
            if j > start && bytes + n > BLOCK_BYTES {
                out.push(&entries[start..j]);
                (start, bytes) = (j, 0);
            }
            bytes += n;
        }
        if big && end > start {
            out.push(&entries[start..end]);
            (start, bytes) = (end, 0);
        }
        i = end;
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}

impl SimStore {
    /// An empty store that keeps resting wallets' records compressed in memory.
    pub fn new() -> SimStore {
        SimStore::default()
    }

    /// An empty store that keeps resting wallets' records compressed in `spill`.
    pub fn spilling(spill: &Arc<Spill>) -> SimStore {
        SimStore {
            inner: Mutex::new(Inner {
                spill: Some(Arc::clone(spill)),
                ..Inner::default()
            }),
        }
    }

    /// A copy of everything: the wallet as a backup would restore it (a rollback).
    pub fn snapshot(&self) -> SimStore {
        let inner = self.inner.lock().map(|m| m.clone()).unwrap_or_default();
        SimStore {
            inner: Mutex::new(inner),
        }
    }

    /// Packs the recent writes and keeps the wallet's records compressed until they are next
    /// read or written (the end of a day; lz4 decompresses a block in microseconds), in the
    /// store's [`Spill`] file if it has one. A block unchanged since it was last compressed keeps
    /// those bytes, so a wallet already resting, or only read since, costs nothing.
    pub fn rest(&self) {
        if let Ok(mut m) = self.inner.lock() {
            m.rest();
        }
    }

    /// The compressed records' size if the wallet rests (see [`SimStore::rest`]).
    pub fn resting_bytes(&self) -> Option<usize> {
        let m = self.inner.lock().ok()?;
        (m.recent.is_empty() && m.blocks.iter().all(|b| b.data.is_none())).then(|| {
            m.blocks
                .iter()
                .map(|b| b.cold.as_ref().map_or(0, |c| c.len()))
                .sum()
        })
    }

    /// Compressed bytes held in memory (not in a spill file), for memory figures.
    pub fn cold_in_memory(&self) -> usize {
        self.inner.lock().map_or(0, |m| {
            m.blocks
                .iter()
                .filter_map(|b| match &b.cold {
                    Some(Cold::Mem(c)) => Some(c.len()),
                    _ => None,
                })
                .sum()
        })
    }

    /// The packed records readable (decompressed) since the wallet last rested, in bytes, for
    /// memory figures.
    pub fn thawed_bytes(&self) -> usize {
        self.inner.lock().map_or(0, |m| {
            m.blocks
                .iter()
                .filter(|b| b.data.is_some())
                .map(|b| b.size as usize)
                .sum()
        })
    }

    /// Entries and bytes held (keys and values) by key prefix (up to the first `/`), for memory
    /// figures.
    pub fn usage(&self) -> BTreeMap<Vec<u8>, (usize, usize)> {
        let mut out: BTreeMap<Vec<u8>, (usize, usize)> = BTreeMap::new();
        let Some(mut m) = self.inner.lock().ok().map(|m| m.clone()) else {
            return out;
        };
        if let Ok(range) = m.thaw_prefix(b"") {
            m.visit(b"", range, |k, v| {
                let p = k.iter().position(|&c| c == b'/').map_or(k.len(), |i| i + 1);
                let e = out.entry(k[..p].to_vec()).or_default();
                e.0 += 1;
                e.1 += k.len() + v.len();
            });
        }
        out
    }
}

impl Store for SimStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let mut m = self.inner.lock().map_err(poisoned)?;
        Ok(m.get(key)?.map(<[u8]>::to_vec))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        let mut m = self.inner.lock().map_err(poisoned)?;
        let range = m.thaw_prefix(prefix)?;
        let mut out = Vec::new();
        m.visit(prefix, range, |k, v| out.push((k.to_vec(), v.to_vec())));
        Ok(out)
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut m = self.inner.lock().map_err(poisoned)?;
        for (k, v) in batch.into_ops() {
            if dropped(&k) {
                continue;
            }
            // A deletion is kept as `None` until the next pack drops it with the entry.
            m.recent
                .insert(k.into_boxed_slice(), v.map(Vec::into_boxed_slice));
        }
        if m.should_pack(PACK_MIN) {
            // The writes are in: a block too damaged to pack into stays as it is, and the next
            // read of it reports the damage.
            let _ = m.pack(false);
        }
        Ok(())
    }

    /// No: a simulated wallet's history is never read (see [`dropped`]).
    fn keeps_history(&self) -> bool {
        false
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
        reads_as_one_store(TABLE_MAX);
    }

    /// The same with a table that fills every few commits: the commits write it out themselves.
    #[test]
    fn ledger_store_reads_as_one_store_when_tables_fill() {
        reads_as_one_store(9);
    }

    fn reads_as_one_store(table_max: usize) {
        use rand::{RngExt, SeedableRng};
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ledger = LedgerStore::open(&dir.path().join("ledger"), 1 << 20).expect("open");
        ledger.table_max = table_max;
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
                // A page of a random size from a random place (under the prefix or not), and
                // the whole prefix paged through.
                let after = rng.random_bool(0.8).then(|| key(&mut rng));
                let limit = rng.random_range(0..6);
                assert_eq!(
                    ledger
                        .scan_range(p, after.as_deref(), limit)
                        .expect("range"),
                    model.scan_range(p, after.as_deref(), limit).expect("range"),
                    "step {step}, prefix {p:?}, after {after:?}, limit {limit}"
                );
                let limit = rng.random_range(1..9);
                let mut paged = Vec::new();
                let mut after: Option<Vec<u8>> = None;
                loop {
                    let page = ledger
                        .scan_range(p, after.as_deref(), limit)
                        .expect("range");
                    assert_eq!(
                        page,
                        model.scan_range(p, after.as_deref(), limit).expect("range"),
                        "step {step}, prefix {p:?}, after {after:?}, limit {limit}"
                    );
                    let Some((last, _)) = page.last() else { break };
                    after = Some(last.clone());
                    paged.extend(page);
                }
                assert_eq!(paged, model.scan_prefix(p).expect("scan"), "step {step}");
            }
        }
        ledger.checkpoint().expect("checkpoint");
        ledger.wait().expect("written out");
        assert_eq!(
            ledger.scan_prefix(b"").expect("scan"),
            model.scan_prefix(b"").expect("scan")
        );
    }

    /// Readers running beside the writer never see a value go back or a key vanish: a value
    /// read from sled while a commit overtakes it is not kept in the read cache, a commit
    /// forgets the values it replaces, and a checkpoint hands the day's table over in one step
    /// for reads and scans alike.
    #[test]
    fn ledger_store_reads_never_go_back_while_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = LedgerStore::open(&dir.path().join("ledger"), 1 << 20).expect("open");
        let keys: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'c', b'/', i]).collect();
        let put_all = |n: u64| {
            let mut b = Batch::new();
            for k in &keys {
                b.put(k.clone(), n.to_be_bytes().to_vec());
            }
            ledger.commit(b).expect("commit");
        };
        put_all(0);
        ledger.checkpoint().expect("checkpoint");
        ledger.wait().expect("written out");
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    let mut seen = vec![0u64; keys.len()];
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        for (i, k) in keys.iter().enumerate() {
                            let v = ledger.get(k).expect("get").expect("present");
                            let n = u64::from_be_bytes(v.try_into().expect("eight bytes"));
                            assert!(n >= seen[i], "key {i} went back from {} to {n}", seen[i]);
                            seen[i] = n;
                        }
                        // A scan sees every key, none older than a read before it.
                        let all = ledger.scan_prefix(b"c/").expect("scan");
                        assert_eq!(all.len(), keys.len(), "a scan lost keys");
                        for (i, (_, v)) in all.into_iter().enumerate() {
                            let n = u64::from_be_bytes(v.try_into().expect("eight bytes"));
                            assert!(
                                n >= seen[i],
                                "scan: key {i} went back from {} to {n}",
                                seen[i]
                            );
                            seen[i] = n;
                        }
                    }
                });
            }
            for n in 1..=300u64 {
                put_all(n);
                if n % 7 == 0 {
                    ledger.checkpoint().expect("checkpoint");
                }
                if n % 21 == 0 {
                    ledger.wait().expect("written out");
                }
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        ledger.checkpoint().expect("checkpoint");
        ledger.wait().expect("written out");
        for k in &keys {
            assert_eq!(
                ledger.get(k).expect("get"),
                Some(300u64.to_be_bytes().to_vec())
            );
        }
    }

    /// The read cache keeps a value only when no commit came between the read's start and its
    /// end, forgets what a commit writes, and starts again past its size.
    #[test]
    fn read_cache_keeps_only_reads_no_commit_overtook() {
        let mut c = ReadCache::default();
        let g = c.generation;
        c.keep(g, b"c/1", &Some(vec![1]));
        assert_eq!(c.values.get(b"c/1".as_slice()), Some(&Some(vec![1])));
        let g = c.generation;
        c.forget([b"c/1".as_slice()].into_iter());
        assert!(c.values.is_empty() && c.bytes == 0);
        c.keep(g, b"c/1", &Some(vec![0]));
        assert!(c.values.is_empty(), "a read a commit overtook is not kept");
        let g = c.generation;
        c.keep(g, b"c/2", &None);
        assert_eq!(c.values.get(b"c/2".as_slice()), Some(&None));
        c.bytes = READ_CACHE_BYTES + 1;
        c.keep(g, b"c/3", &Some(vec![3; 4]));
        assert_eq!(c.values.len(), 1);
        assert_eq!(c.bytes, 3 + 4);
    }

    /// The wallet store reads exactly as one in-memory store given the same commits, whatever
    /// was packed when: puts, overwrites and deletions of packed and recent entries, snapshots.
    #[test]
    fn sim_store_reads_as_one_store_across_packing() {
        reads_as_one_sim_store(300, None);
    }

    /// The same with values large enough that a wallet spans many blocks.
    #[test]
    fn sim_store_reads_as_one_store_across_blocks() {
        reads_as_one_sim_store(3000, None);
    }

    /// The same with resting blocks in a spill file (snapshots keep reading blocks that the
    /// store has since written afresh).
    #[test]
    fn sim_store_reads_as_one_store_when_resting_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spill = Spill::create(&dir.path().join("wallets")).expect("spill");
        reads_as_one_sim_store(300, Some(&spill));
        reads_as_one_sim_store(3000, Some(&spill));
        assert!(spill.written() > 0);
    }

    fn reads_as_one_sim_store(max_value: usize, spill: Option<&Arc<Spill>>) {
        use rand::{RngExt, SeedableRng};
        let store = spill.map_or_else(SimStore::new, SimStore::spilling);
        let model = tongbao::store::MemStore::new();
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let key = |rng: &mut rand::rngs::StdRng| {
            let p = [b"c/".as_slice(), b"o/", b"m/", b"h/"][rng.random_range(0..4)];
            let mut k = p.to_vec();
            k.push(rng.random_range(0..60u8));
            k
        };
        let mut snapshots = Vec::new();
        for step in 0..2000 {
            let mut a = Batch::new();
            let mut b = Batch::new();
            for _ in 0..rng.random_range(1..8) {
                let k = key(&mut rng);
                if k.starts_with(b"h/") {
                    // History is not kept: never in the store.
                    a.put(k, vec![1]);
                } else if rng.random_bool(0.3) {
                    a.delete(k.clone());
                    b.delete(k);
                } else {
                    let v = vec![rng.random_range(0..255u8); rng.random_range(0..max_value)];
                    a.put(k.clone(), v.clone());
                    b.put(k, v);
                }
            }
            store.commit(a).expect("commit");
            model.commit(b).expect("commit");
            if rng.random_bool(0.05) {
                store.rest();
                assert!(store.resting_bytes().is_some(), "step {step}");
                if spill.is_some() {
                    assert_eq!(store.cold_in_memory(), 0, "step {step}");
                }
            }
            if rng.random_bool(0.01) {
                snapshots.push((store.snapshot(), model.snapshot()));
            }
            for _ in 0..3 {
                let k = key(&mut rng);
                assert_eq!(store.get(&k).expect("get"), model.get(&k).expect("get"));
            }
            for p in [b"c/".as_slice(), b"o/", b"m/", b"h/", b"", b"c"] {
                assert_eq!(
                    store.scan_prefix(p).expect("scan"),
                    model.scan_prefix(p).expect("scan"),
                    "step {step}, prefix {p:?}"
                );
            }
        }
        assert!(!snapshots.is_empty());
        for (s, m) in snapshots {
            assert_eq!(
                s.scan_prefix(b"").expect("scan"),
                m.scan_prefix(b"").expect("scan")
            );
        }
    }

    /// A resting wallet's records are compressed, read back whole, and a wallet only read rests
    /// again from the same compressed bytes; damaged compressed bytes are an error, not a panic.
    #[test]
    fn sim_store_rests_compressed() {
        let store = SimStore::new();
        let mut b = Batch::new();
        for i in 0..200u32 {
            // Records much like a wallet's: keys that share prefixes, values that repeat a key.
            let mut v = b"tb1qpayee-address-of-a-merchant".to_vec();
            v.extend_from_slice(&i.to_be_bytes());
            b.put(format!("o/{i:08}").into_bytes(), v);
        }
        store.commit(b).expect("commit");
        let before = store.scan_prefix(b"").expect("scan");
        let raw: usize = before.iter().map(|(k, v)| 2 + k.len() + v.len()).sum();
        assert_eq!(store.resting_bytes(), None);
        store.rest();
        let cold = store.resting_bytes().expect("resting");
        assert!(cold * 2 < raw, "{cold} compressed of {raw}");
        // Read: the records come back whole, and resting again keeps the same bytes.
        assert_eq!(store.scan_prefix(b"").expect("scan"), before);
        assert_eq!(store.resting_bytes(), None);
        store.rest();
        assert_eq!(store.resting_bytes(), Some(cold));
        // Written: compressed afresh.
        let mut b = Batch::new();
        b.delete(b"o/00000007".to_vec());
        store.commit(b).expect("commit");
        store.rest();
        assert_eq!(store.get(b"o/00000007").expect("get"), None);
        assert_eq!(store.scan_prefix(b"o/").expect("scan").len(), 199);
        // Damaged: reads are an error, not a panic; a write still lands, and resting leaves
        // the damaged block as it is.
        store.rest();
        if let Ok(mut m) = store.inner.lock() {
            for b in &mut m.blocks {
                b.cold = Some(Cold::Mem(vec![0xff; 9].into_boxed_slice()));
            }
        }
        assert!(store.get(b"o/00000001").is_err());
        assert!(store.scan_prefix(b"").is_err());
        let mut b = Batch::new();
        b.put(b"p/1".to_vec(), b"new".to_vec());
        store.commit(b).expect("commit");
        assert_eq!(store.get(b"p/1").expect("get"), Some(b"new".to_vec()));
        store.rest();
        assert!(store.get(b"o/00000001").is_err());
        assert_eq!(store.get(b"p/1").expect("get"), Some(b"new".to_vec()));
    }

    /// A resting wallet's blocks go to the spill file and nothing compressed stays in memory; a
    /// wallet only read rests without writing again; the file is deleted with the spill; a
    /// damaged or cut file is an error on read, not a panic; a failed write keeps the blocks in
    /// memory.
    #[test]
    fn sim_store_rests_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wallets");
        let spill = Spill::create(&path).expect("spill");
        assert!(
            Spill::create(&path).is_err(),
            "an existing file is not reused"
        );
        let store = SimStore::spilling(&spill);
        let mut b = Batch::new();
        for i in 0..300u32 {
            b.put(format!("o/{i:08}").into_bytes(), vec![b'p'; 100]);
        }
        store.commit(b).expect("commit");
        let before = store.scan_prefix(b"").expect("scan");
        store.rest();
        let cold = store.resting_bytes().expect("resting");
        assert_eq!(store.cold_in_memory(), 0);
        assert_eq!(spill.written(), cold as u64);
        assert_eq!(std::fs::metadata(&path).expect("file").len(), cold as u64);
        assert_eq!(store.scan_prefix(b"").expect("scan"), before);
        store.rest();
        assert_eq!(spill.written(), cold as u64, "read only: not written again");
        // A snapshot reads the same bytes after the store writes its block afresh.
        let snap = store.snapshot();
        let mut b = Batch::new();
        b.delete(b"o/00000001".to_vec());
        store.commit(b).expect("commit");
        store.rest();
        assert!(spill.written() > cold as u64);
        assert_eq!(snap.scan_prefix(b"").expect("scan"), before);
        assert_eq!(store.scan_prefix(b"").expect("scan").len(), 299);
        // Damaged, then cut short: errors.
        store.rest();
        let len = spill.written();
        std::fs::write(&path, vec![0xff; len as usize]).expect("damage");
        assert!(store.get(b"o/00000002").is_err());
        File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(1))
            .expect("cut");
        assert!(store.scan_prefix(b"").is_err());
        drop((store, snap, spill));
        assert!(!path.exists(), "the file goes with the spill");
        // A spill whose file cannot be written: the blocks stay compressed in memory.
        let spill = Arc::new(Spill::over(
            File::open(dir.path()).expect("a directory, read only"),
            dir.path().join("never"),
            SPILL_REGION,
        ));
        let store = SimStore::spilling(&spill);
        let mut b = Batch::new();
        b.put(b"c/1".to_vec(), vec![1; 50]);
        store.commit(b).expect("commit");
        store.rest();
        assert!(store.cold_in_memory() > 0);
        assert_eq!(store.get(b"c/1").expect("get"), Some(vec![1; 50]));
    }

    /// A spill file of small regions, for tests.
    fn small_spill(dir: &Path, region: u64) -> Arc<Spill> {
        Spill::create_in(&dir.join("wallets"), region).expect("file")
    }

    /// Bytes in the file that a block refers to, written three extents at a time (as a
    /// wallet's rest writes its blocks: several in one write, each its own extent).
    fn spill_extents(
        spill: &Arc<Spill>,
        sizes: &[usize],
        seed: u64,
    ) -> Vec<(Arc<Extent>, Vec<u8>)> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        sizes
            .chunks(3)
            .flat_map(|group| {
                let parts: Vec<Vec<u8>> = group
                    .iter()
                    .map(|&n| {
                        let mut b = vec![0; n];
                        rng.fill_bytes(&mut b);
                        b
                    })
                    .collect();
                let mut at = spill.append(&parts.concat()).expect("append");
                parts
                    .into_iter()
                    .map(|b| {
                        let len = u32::try_from(b.len()).expect("small");
                        let e = Arc::new(Extent {
                            spill: Arc::clone(spill),
                            at,
                            len,
                        });
                        at += u64::from(len);
                        (e, b)
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Bytes no block refers to are counted; on Linux each region that none of the blocks in
    /// use touches, wholly written, becomes a hole (and only those: the disk left is exactly the
    /// other regions'); every extent still in use reads back exactly what was written. Extents
    /// straddle regions.
    #[test]
    fn spill_gives_back_what_no_block_uses() {
        use rand::seq::SliceRandom;
        use rand::{RngExt, SeedableRng};
        let dir = tempfile::tempdir().expect("tempdir");
        let region = 16 << 10;
        let spill = small_spill(dir.path(), region);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let sizes: Vec<usize> = (0..600).map(|_| rng.random_range(1..9000)).collect();
        let mut extents = spill_extents(&spill, &sizes, 1);
        let written = spill.written();
        assert_eq!(written, sizes.iter().sum::<usize>() as u64);
        let f = spill.figures();
        assert_eq!((f.freed, f.given), (0, 0));
        // Most of the first half of the file goes, and a few extents of the rest.
        extents.shuffle(&mut rng);
        let (kept, dropped): (Vec<_>, Vec<_>) = extents.into_iter().partition(|(e, _)| {
            let early = e.at < written / 2;
            rng.random_range(0..10) < if early { 1 } else { 8 }
        });
        let dropped_bytes: u64 = dropped.iter().map(|(e, _)| u64::from(e.len)).sum();
        drop(dropped);
        assert_eq!(spill.figures().freed, dropped_bytes);
        let live: u64 = spill
            .usage
            .lock()
            .map(|u| u.live.iter().sum())
            .expect("lock");
        assert_eq!(live, written - dropped_bytes);
        assert!(
            spill.on_disk().expect("blocks") >= written,
            "given back only when asked"
        );
        spill.give_back();
        for (e, bytes) in &kept {
            assert_eq!(&e.read().expect("read"), bytes, "{e:?}");
        }
        // The regions in use: every one a kept extent touches, and the last, partly written.
        let mut used = BTreeSet::new();
        for (e, _) in &kept {
            used.extend(spill.regions(e.at, u64::from(e.len)).map(|(r, _)| r));
        }
        used.insert(spill.region_of(written));
        let whole = spill.region_of(written);
        let given = (0..whole).filter(|r| !used.contains(r)).count();
        assert!(given >= 10, "{given} regions free");
        assert_eq!(spill.figures().given, given);
        if cfg!(target_os = "linux") {
            assert!(spill.reclaim.load(Ordering::Relaxed), "holes work here");
            let disk = spill.on_disk().expect("blocks");
            let expected: u64 = used
                .iter()
                .map(|&r| {
                    (written - r as u64 * region)
                        .min(region)
                        .next_multiple_of(4096)
                })
                .sum();
            assert_eq!(disk, expected, "bytes on disk: the regions in use");
        }
        // Given back once: a second call makes no hole.
        let punches = spill.figures().punches;
        spill.give_back();
        assert_eq!(spill.figures().punches, punches);
        // The run's end: nothing more is freed, and the file goes with the spill.
        spill.stop_reclaiming();
        drop(kept);
        assert_eq!(spill.figures().freed, dropped_bytes);
    }

    /// Regions of the file where blocks use less than half the bytes are emptied by the next
    /// rest: the wallets with blocks there write them afresh, read the same, and the file takes
    /// less disk; a snapshot keeps its own blocks where they were.
    #[test]
    fn sim_store_moves_blocks_out_of_sparse_regions() {
        use rand::{Rng, SeedableRng};
        let dir = tempfile::tempdir().expect("tempdir");
        let spill = small_spill(dir.path(), 64 << 10);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut value = |n: usize| {
            let mut b = vec![0; n];
            rng.fill_bytes(&mut b);
            b
        };
        let wallets: Vec<SimStore> = (0..120).map(|_| SimStore::spilling(&spill)).collect();
        for (i, w) in wallets.iter().enumerate() {
            let mut b = Batch::new();
            b.put(format!("m/{i}").into_bytes(), value(3000));
            w.commit(b).expect("commit");
            w.rest();
        }
        let snap = wallets[1].snapshot();
        let snap_before = snap.scan_prefix(b"").expect("scan");
        // Two of every three wallets change: their old blocks are freed.
        for (i, w) in wallets.iter().enumerate().filter(|(i, _)| i % 3 != 0) {
            let mut b = Batch::new();
            b.put(format!("m/{i}").into_bytes(), value(3000));
            w.commit(b).expect("commit");
            w.rest();
        }
        let before: Vec<Pairs> = wallets
            .iter()
            .map(|w| w.scan_prefix(b"").expect("scan"))
            .collect();
        spill.give_back();
        let (written, disk) = (spill.written(), spill.on_disk().expect("blocks"));
        // Not while the file holds less than the slack beyond what its blocks use.
        let unused = written
            - spill
                .usage
                .lock()
                .map(|u| u.live.iter().sum::<u64>())
                .expect("lock");
        spill.plan_moves(unused + 1);
        assert!(spill.moving.read().map(|m| m.is_empty()).expect("lock"));
        spill.plan_moves(unused);
        let marked = spill
            .moving
            .read()
            .map(|m| m.iter().filter(|&&s| s).count());
        assert!(marked.expect("lock") >= 3, "the first regions are sparse");
        for w in &wallets {
            w.rest();
        }
        assert!(spill.written() > written, "blocks were moved");
        for (w, b) in wallets.iter().zip(&before) {
            assert_eq!(&w.scan_prefix(b"").expect("scan"), b);
        }
        assert_eq!(snap.scan_prefix(b"").expect("scan"), snap_before);
        let live: u64 = spill
            .usage
            .lock()
            .map(|u| u.live.iter().sum())
            .expect("lock");
        assert_eq!(live, spill.written() - spill.figures().freed);
        spill.give_back();
        if cfg!(target_os = "linux") {
            let after = spill.on_disk().expect("blocks");
            assert!(
                after < disk,
                "{after} bytes on disk after the moves, {disk} before"
            );
        }
        // Nothing sparse is left to move: a second rest writes nothing.
        spill.plan_moves(0);
        let written = spill.written();
        for w in &wallets {
            w.rest();
        }
        assert_eq!(spill.written(), written);
    }

    /// A wallet larger than a block: a read decompresses only the block it needs, a write only
    /// rewrites the blocks it falls in, and blocks split as they grow.
    #[test]
    fn sim_store_reads_only_the_blocks_it_needs() {
        let store = SimStore::new();
        let value = |i: u32| {
            let mut v = b"a sale of a merchant, with its payment id and amount ".to_vec();
            v.extend_from_slice(&i.to_be_bytes());
            v.resize(200, b'.');
            v
        };
        let mut b = Batch::new();
        for i in 0..2000u32 {
            b.put(format!("x/{i:08}").into_bytes(), value(i));
        }
        for i in 0..5u32 {
            b.put(format!("m/key-{i}").into_bytes(), vec![7; 40]);
        }
        store.commit(b).expect("commit");
        store.rest();
        let blocks = store.inner.lock().map(|m| m.blocks.len()).expect("lock");
        assert!(blocks >= 12, "{blocks} blocks for about 430 KB");
        assert_eq!(store.thawed_bytes(), 0);
        // The few small records of another kind are a block of their own.
        assert_eq!(store.get(b"m/key-3").expect("get"), Some(vec![7; 40]));
        assert!(store.thawed_bytes() < 1024, "{}", store.thawed_bytes());
        store.rest();
        assert_eq!(store.get(b"x/00001234").expect("get"), Some(value(1234)));
        let thawed = store.thawed_bytes();
        assert!(thawed > 0 && thawed <= BLOCK_BYTES, "{thawed}");
        // Writes land in recent; packing rewrites only the blocks they fall in.
        let mut b = Batch::new();
        b.put(b"x/00000010x".to_vec(), value(7));
        b.delete(b"x/00001999".to_vec());
        store.commit(b).expect("commit");
        let before: Vec<Option<Cold>> = store
            .inner
            .lock()
            .map(|m| m.blocks.iter().map(|b| b.cold.clone()).collect())
            .expect("lock");
        store.rest();
        let after: Vec<Option<Cold>> = store
            .inner
            .lock()
            .map(|m| m.blocks.iter().map(|b| b.cold.clone()).collect())
            .expect("lock");
        // The first block of sales (which the new key falls in, full, so split in two) and the
        // last one are written afresh; every other keeps its compressed bytes.
        let kept = after.iter().filter(|a| before.contains(a)).count();
        assert_eq!(kept, before.len() - 2);
        assert_eq!(after.len(), before.len() + 1);
        assert_eq!(store.scan_prefix(b"x/").expect("scan").len(), 2000);
        assert_eq!(store.get(b"x/00001999").expect("get"), None);
        assert_eq!(store.get(b"x/00000010x").expect("get"), Some(value(7)));
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
