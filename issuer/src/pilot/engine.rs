//! The pilot run: the real wallet engine (`tongbao::wallet::Wallet` over [`SimStore`]) and the real
//! ledger (`Issuer` over sled), driven day by day on a simulated clock.
//!
//! Each day: winners claim (wallet, certificate, top-up, envelope note); stores and couriers make
//! payment requests; people pay them (restricted money first) and make transfers; online payments
//! are settled at the issuer one by one in time order while stores check offline payments; people
//! import online confirmations; then the wallets due to sync do, in groups (signature checks on
//! every core, one commit per group). Work on different wallets runs on both cores; everything that
//! touches the ledger runs in a fixed order, so a seed always gives the same run.

use std::collections::HashMap;
use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rayon::prelude::*;
use tongbao::protocol::certificate::{WalletClass, WalletKind};
use tongbao::protocol::file::TbFile;
use tongbao::protocol::keyset::IssuerKeySet;
use tongbao::protocol::note::Earmark;
use tongbao::protocol::payment::Payment;
use tongbao::protocol::sync::Confirmation;
use tongbao::store::Store;
use tongbao::wallet::{PayTarget, Wallet, WalletError};
use tongbao::{Fen, Id, PublicKey};

use super::plan::{Channel, Intent, Payee, Plan, ShopLayout};
use super::scenario::Checked;
use super::store::{LedgerStore, SimStore, Spill};
use crate::Issuer;

pub(crate) type W = Wallet<SimStore>;

/// Streams of the seeded generator: each wallet and operation draws from its own.
pub(crate) mod stream {
    pub const ISSUER: u64 = 1;
    pub const CREATE: u64 = 2;
    pub const NOTE: u64 = 3;
    pub const REQUEST: u64 = 4;
    pub const PAY: u64 = 5;
    pub const SYNC: u64 = 6;
}

/// A payment made in the run, by its record number. Boxed: a `Payment` is 1,456 bytes inline (its
/// certificate, payee key, revocation list and key set hold decompressed curve points), and a
/// window's tens of thousands of them are collected, sorted and split by channel and by payee.
/// Inline, each of those steps moved tens of MB into vectors that grew onto fresh memory from the
/// kernel (huge pages, each cleared on first touch: 15% of a Suzhou run's samples); boxed, they
/// move 16 bytes a payment. docs/performance.md, the thirteenth round.
type Paid = (u32, Box<Payment>);

/// People whose payments of the day are made together (their requests checked as one slice).
const PAY_SLICE: usize = 8192;

/// Wallets created while the slice before them is certified.
const WALLET_SLICE: usize = 4096;

/// Online payments checked while the slice before them is settled.
const ONLINE_SLICE: usize = 4096;

/// A generator for one (stream, wallet, step): independent of the order work runs in.
pub(crate) fn rng_for(seed: u64, stream: u64, a: u64, b: u64) -> StdRng {
    let mut h = blake3::Hasher::new();
    h.update(b"tongbao/pilot/rng");
    for x in [seed, stream, a, b] {
        h.update(&x.to_be_bytes());
    }
    let mut s = [0u8; 32];
    s.copy_from_slice(h.finalize().as_bytes());
    StdRng::from_seed(s)
}

/// What happened to one payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Refused by the payer's own wallet or by the payee (or online by the issuer).
    Refused,
    /// Accepted offline by the payee, not settled yet.
    Accepted,
    /// Settled at the issuer.
    Settled,
    /// Accepted offline, then rejected at settlement: the second spend of a double spend.
    Lost,
}

/// One payment the pilot made.
#[derive(Debug, Clone)]
pub(crate) struct PayRec {
    pub day: u32,
    pub time: u64,
    pub channel: Channel,
    pub amount: u64,
    /// Of which red-envelope money.
    pub envelope: u64,
    pub payer: u32,
    pub status: Status,
    pub settled_at: u64,
    pub coins_left: u8,
    pub lost_fen: u64,
    /// One of the two spends of a cheat.
    pub cheat: bool,
    /// Refused because the payee caught a double spend.
    pub caught_locally: bool,
    /// Paid to: a store, an online shop, a courier or a person.
    pub to: Dest,
}

/// What kind of payee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dest {
    Store,
    OnlineShop,
    Courier,
    Person,
}

/// A person's payments of the day: (person, intents with amounts, intents consumed, stopped).
type Planned = (u32, Vec<(Intent, Fen)>, u32, bool);

/// A store's requests of the day: (store, [(payment record, amount, time, window)]).
type ShopRequests = (u32, Vec<(u32, Fen, u64, u32)>);

/// A payment to make today.
struct Job {
    person: u32,
    intent: Intent,
    amount: Fen,
    time: u64,
    rec: u32,
    /// The cheat's second spend.
    twin_rec: Option<u32>,
    /// The window of the day it is made in.
    window: u32,
}

/// A payment request a store makes today: `k` is its place in the store's list of the day.
struct RequestItem {
    shop: u32,
    k: usize,
    rec: u32,
    amount: Fen,
    time: u64,
    window: u32,
}

/// The day's payments, planned (`World::plan_day`), made window by window.
struct DayPlan {
    jobs: Vec<Job>,
    items: Vec<RequestItem>,
    /// Each payer's jobs in time order, and (beside it) the payer's generator for the day.
    people: Vec<(u32, Vec<usize>)>,
    rngs: Vec<StdRng>,
    windows: u32,
}

/// Per-person progress through the plan.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PersonState {
    pub next: u32,
    pub done: bool,
    pub revoked: bool,
    pub cheated: bool,
    /// A payment it made was refused after its coins left: they wait in its outbox.
    pub stranded: bool,
}

/// Which wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Who {
    Person(u32),
    Pool(u32),
    Shop(u32),
}

/// Day-by-day figures.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DayRow {
    /// Day of the window (0-based).
    pub day: u32,
    /// Its date.
    pub date: String,
    /// Winners who claimed that day.
    pub claims: u64,
    /// Payments made, by channel (report order).
    pub payments: [u64; 5],
    /// Value paid, by channel, fen.
    pub value_fen: [u64; 5],
    /// Red-envelope money spent, fen.
    pub envelope_fen: u64,
    /// Own money spent, fen.
    pub own_fen: u64,
    /// Payments settled at the issuer that day.
    pub settled: u64,
    /// Offline payments accepted and not settled at the end of the day, fen.
    pub exposure_fen: u64,
    /// Double spends attempted that day.
    pub double_spends: u64,
    /// Losses booked so far, fen.
    pub losses_fen: u64,
    /// Syncs settled that day.
    pub syncs: u64,
}

/// The run's state.
pub(crate) struct World {
    pub sc: Checked,
    pub seed: u64,
    pub iss: Issuer<LedgerStore>,
    pub layout: ShopLayout,
    pub plans: Vec<Plan>,
    pub persons: Vec<Option<W>>,
    pub state: Vec<PersonState>,
    pub pool: Vec<W>,
    pub shops: Vec<W>,
    pub pays: Vec<PayRec>,
    /// Offline-received coins not yet settled: coin id -> payment index.
    pub coin_pay: HashMap<Id, u32>,
    /// Stores, couriers and pool people holding unsettled money: (tonight, on schedule).
    pub shop_dirty: Vec<(bool, bool)>,
    pub pool_dirty: Vec<bool>,
    pub days: Vec<DayRow>,
    pub exposure: u64,
    pub refusals: std::collections::BTreeMap<String, u64>,
    pub double_spends_local: u64,
    pub double_spends_online: u64,
    pub syncs_refused: u64,
    /// Double spends attempted (both spends made).
    pub attempts: u64,
    pub shop_index: HashMap<PublicKey, u32>,
    pub pool_index: HashMap<PublicKey, u32>,
    /// Payments made and delivered at a time (`Options::window`).
    pub window: usize,
    /// Where resting wallets keep their records.
    pub spill: Arc<Spill>,
}

/// Start of day `d`.
pub(crate) fn day_start(sc: &Checked, d: u32) -> u64 {
    sc.start + u64::from(d) * 86_400
}

impl World {
    pub(crate) fn wallet(&self, w: Who) -> Option<&W> {
        match w {
            Who::Person(i) => self.persons.get(i as usize).and_then(|x| x.as_ref()),
            Who::Pool(i) => self.pool.get(i as usize),
            Who::Shop(i) => self.shops.get(i as usize),
        }
    }

    /// Sets up the issuer and the shops; plans are drawn; no winner has a wallet yet.
    pub(crate) fn new(
        sc: Checked,
        seed: u64,
        scratch: &std::path::Path,
        window: usize,
        ledger_cache: Option<u64>,
    ) -> anyhow::Result<World> {
        let t = sc.start;
        // Every wallet's key, certificate and note are checked again and again (by payees and
        // the issuer): the process-wide caches hold the whole pilot's working set.
        let p = &sc.spec.population;
        let wallets = (sc.spec.lottery.winners + p.merchants + p.people) as usize
            + sc.spec.delivery.couriers as usize
            + p.online.len();
        tongbao::crypto::set_cache_sizes(
            (wallets + wallets / 4 + 4096).max(tongbao::crypto::KEY_CACHE_DEFAULT),
            (4 * wallets + 65_536).max(tongbao::crypto::SIG_CACHE_DEFAULT),
        );
        std::fs::create_dir_all(scratch)
            .map_err(|e| anyhow::anyhow!("{}: {e}", scratch.display()))?;
        let cache = ledger_cache.unwrap_or(super::LEDGER_CACHE);
        let store = LedgerStore::open(&scratch.join("ledger"), cache)?;
        let spill = Spill::create(&scratch.join("wallets"))?;
        let iss = Issuer::init(store, t - 3600, &mut rng_for(seed, stream::ISSUER, 0, 0))?;
        super::set_max_hops(&iss, sc.spec.policy.max_hops, t - 3600)?;
        let layout = ShopLayout::of(&sc);
        let plans = super::plan::draw(&sc, &layout, seed);
        let keyset = iss.keyset()?;
        let valid = u64::from(sc.spec.window.days) * 86_400 + 30 * 86_400;
        let mclass = sc.merchant_class;
        // Stores and online shops, then couriers.
        let first_couriers = layout.couriers.0;
        let mk = |range: std::ops::Range<u32>| {
            let specs: Vec<_> = range
                .map(|i| (i, WalletKind::Merchant, mclass, seed))
                .collect();
            make_wallets(&iss, &keyset, &spill, &specs, valid, t - 1800)
        };
        let mut shops: Vec<W> = mk(0..first_couriers)?;
        // Couriers: JD's delivery handsets, merchant wallets of their own that take payment at
        // the door (restricted money included) and settle at the depot.
        let couriers: Vec<W> = mk(layout.couriers.0..layout.couriers.1)?;
        shops.extend(couriers);
        let n_pool = sc.spec.population.people as u32;
        let specs: Vec<_> = (0..n_pool)
            .map(|i| (i, WalletKind::Personal, WalletClass::II, seed ^ 0x9e37))
            .collect();
        let pool: Vec<W> = make_wallets(&iss, &keyset, &spill, &specs, valid, t - 1800)?;
        let n = plans.len();
        let n_shops = shops.len();
        let (shop_index, pool_index) = (index_of(&shops), index_of(&pool));
        Ok(World {
            seed,
            iss,
            layout,
            persons: (0..n).map(|_| None).collect(),
            state: vec![PersonState::default(); n],
            plans,
            pool,
            shops,
            pays: Vec::new(),
            coin_pay: HashMap::new(),
            shop_dirty: vec![(false, false); n_shops],
            pool_dirty: vec![false; n_pool as usize],
            days: Vec::new(),
            exposure: 0,
            refusals: Default::default(),
            double_spends_local: 0,
            double_spends_online: 0,
            syncs_refused: 0,
            attempts: 0,
            shop_index,
            pool_index,
            window,
            spill,
            sc,
        })
    }

    /// Frees the run: the wallets on every core while the ledger closes (dropped one by one, a
    /// hundred thousand wallets' maps take seconds to free).
    pub(crate) fn teardown(self) {
        self.spill.stop_reclaiming();
        let World {
            iss,
            persons,
            pool,
            shops,
            ..
        } = self;
        rayon::join(
            move || drop(iss),
            move || {
                persons.into_par_iter().for_each(drop);
                pool.into_par_iter().for_each(drop);
                shops.into_par_iter().for_each(drop);
            },
        );
    }

    /// One day of the window.
    pub(crate) fn day(&mut self, d: u32) -> anyhow::Result<()> {
        let t0 = day_start(&self.sc, d);
        let mut row = DayRow {
            day: d,
            date: tongbao::time::format_rfc3339(t0)[..10].to_string(),
            ..DayRow::default()
        };
        row.claims = super::timing::time("day: claims", || self.claims(d, t0 + 7 * 3600))?;
        let before = self.pays.len();
        let attempts_before = self.attempts;
        // The day in windows of time (`Options::window` payments each): each window's payments
        // are made and its online ones settled before the next is made, so only a window's
        // payments are held at once. The offline ones wait for the end of the day (their payees
        // receive the day's in one order however it is cut); none of this changes the run.
        let mut plan = super::timing::time("day: pay", || self.plan_day(d, t0));
        let mut offline = Vec::new();
        for win in 0..plan.windows.max(1) {
            let payments = super::timing::time("day: pay", || self.pay_window(&mut plan, win))?;
            let last = win + 1 >= plan.windows;
            super::timing::time("day: deliver", || {
                self.deliver(payments, &mut offline, last)
            })?;
        }
        drop(plan);
        for p in &self.pays[before..] {
            let c = p.channel as usize;
            if p.status != Status::Refused {
                row.payments[c] += 1;
                row.value_fen[c] += p.amount;
                row.envelope_fen += p.envelope;
                row.own_fen += p.amount - p.envelope;
            }
        }
        row.double_spends = self.attempts - attempts_before;
        row.syncs = super::timing::time("day: evening", || self.evening(d, t0 + 22 * 3600))?;
        // Waits for the day before's table to be written out first: time spent here is sled
        // falling behind the run.
        super::timing::time("day: checkpoint", || self.iss.store.checkpoint())?;
        // Every wallet the day touched is packed and compressed until it is next used.
        super::timing::thawed(
            d,
            [
                ("people", &mut self.persons.iter().flatten()),
                ("pools", &mut self.pool.iter()),
                ("shops", &mut self.shops.iter()),
            ],
            &self.spill,
        );
        super::timing::time("day: rest wallets", || {
            // Sparse regions of the resting wallets' file are emptied by this rest, once it holds
            // enough that no wallet uses.
            self.spill.plan_moves(super::store::SPILL_SLACK);
            self.persons
                .par_iter()
                .flatten()
                .chain(self.pool.par_iter())
                .chain(self.shops.par_iter())
                .for_each(|w| w.store().rest());
            super::timing::time("rest: give back", || self.spill.give_back());
        });
        row.settled = self
            .pays
            .iter()
            .filter(|p| {
                p.status == Status::Settled && p.settled_at >= t0 && p.settled_at < t0 + 86_400
            })
            .count() as u64;
        row.exposure_fen = self.exposure;
        // Not `stats()`: it counts the registered wallets, a scan of a million entries a day.
        row.losses_fen = self.iss.losses_total()?.0;
        self.days.push(row);
        Ok(())
    }

    /// Winners claiming on day `d`: wallet, certificate, top-up, envelope.
    fn claims(&mut self, d: u32, t: u64) -> anyhow::Result<u64> {
        let who: Vec<u32> = (0..self.plans.len() as u32)
            .filter(|&i| {
                let p = &self.plans[i as usize];
                p.claims && p.claim_day == d
            })
            .collect();
        let keyset = self.iss.keyset()?;
        let valid = u64::from(self.sc.spec.window.days) * 86_400 + 30 * 86_400;
        let specs: Vec<_> = who
            .iter()
            .map(|&i| {
                (
                    i,
                    WalletKind::Personal,
                    self.plans[i as usize].class,
                    self.seed,
                )
            })
            .collect();
        let made: Vec<W> = make_wallets(&self.iss, &keyset, &self.spill, &specs, valid, t)?;
        for (&i, w) in who.iter().zip(made) {
            self.persons[i as usize] = Some(w);
        }
        let topups: Vec<(Who, Fen, Fen)> = who
            .iter()
            .filter(|&&i| self.plans[i as usize].topup > Fen::ZERO)
            .map(|&i| (Who::Person(i), self.plans[i as usize].topup, Fen::ZERO))
            .collect();
        super::timing::time("claims: top-up syncs", || self.sync_round(topups, t + 60))?;
        let end = self.sc.end();
        // The envelopes: issued as one batch (signed on every core, one commit), each with the
        // serial its winner's stream draws, then imported on every core.
        let (plans, persons, seed) = (&self.plans, &self.persons, self.seed);
        let wallets: Vec<&W> = who
            .iter()
            .map(|&i| {
                persons[i as usize]
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("internal: no wallet"))
            })
            .collect::<anyhow::Result<_>>()?;
        let items: Vec<_> = who
            .iter()
            .zip(&wallets)
            .map(|(&i, w)| {
                let serial =
                    tongbao::Nonce::random(&mut rng_for(seed, stream::NOTE, u64::from(i), 0));
                (
                    w.public(),
                    plans[i as usize].envelope,
                    Earmark::MerchantsOnly { expires_at: end },
                    serial,
                )
            })
            .collect();
        let bundles =
            super::timing::time("claims: issue", || self.iss.issue_batch(&items, t + 120));
        super::timing::time("claims: prewarm notes", || {
            super::prewarm::notes(
                &keyset,
                bundles
                    .iter()
                    .filter_map(|b| b.as_ref().ok())
                    .flat_map(|b| &b.notes),
            );
        });
        super::timing::time("claims: import notes", || {
            wallets
                .par_iter()
                .zip(bundles)
                .map(|(w, notes)| -> anyhow::Result<()> {
                    w.import(TbFile::Notes(notes?), t + 180)?;
                    Ok(())
                })
                .collect::<anyhow::Result<()>>()
        })?;
        Ok(who.len() as u64)
    }

    /// The day's purchases and transfers, planned: amounts (from each wallet's money and limits,
    /// restricted money first), one record per payment, and the window each is made in.
    fn plan_day(&mut self, d: u32, t0: u64) -> DayPlan {
        let active: Vec<u32> = (0..self.plans.len() as u32)
            .filter(|&i| {
                let s = &self.state[i as usize];
                let p = &self.plans[i as usize];
                self.persons[i as usize].is_some()
                    && !s.revoked
                    && !s.cheated
                    && p.intents.get(s.next as usize).is_some_and(|x| x.day == d)
            })
            .collect();
        let (persons, plans, state) = (&self.persons, &self.plans, &self.state);
        let planned: Vec<Planned> = active
            .par_iter()
            .map(|&i| {
                let w = persons[i as usize].as_ref();
                let s = state[i as usize];
                let todo: Vec<Intent> = plans[i as usize].intents[s.next as usize..]
                    .iter()
                    .take_while(|x| x.day == d)
                    .copied()
                    .collect();
                let n = todo.len() as u32;
                let (out, done) = match w {
                    Some(w) => amounts(w, &todo, s.done, t0),
                    None => (Vec::new(), s.done),
                };
                (i, out, n, done)
            })
            .collect();
        let mut jobs: Vec<Job> = Vec::new();
        for (i, list, n, done) in planned {
            let st = &mut self.state[i as usize];
            st.next += n;
            st.done = done;
            for (intent, amount) in list {
                let time = t0 + u64::from(intent.secs);
                let to = match intent.payee {
                    Payee::Person(_) => Dest::Person,
                    Payee::Shop(s) if s < self.layout.stores => Dest::Store,
                    Payee::Shop(s) if s < self.layout.couriers.0 => Dest::OnlineShop,
                    Payee::Shop(_) => Dest::Courier,
                };
                let rec = self.record(
                    d,
                    time,
                    intent.channel,
                    amount,
                    i,
                    intent.twin.is_some(),
                    to,
                );
                let twin_rec = intent.twin.map(|_| {
                    self.record(d, time + 600, intent.channel, amount, i, true, Dest::Store)
                });
                jobs.push(Job {
                    person: i,
                    intent,
                    amount,
                    time,
                    rec,
                    twin_rec,
                    window: 0,
                });
            }
        }
        // Windows: the jobs in (time, record) order, cut every `self.window` payments. Online
        // payments reach the ledger in that order, so it is the same however the day is cut.
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by_key(|&k| (jobs[k].time, jobs[k].rec));
        let per = self.window.max(1);
        for (n, &k) in order.iter().enumerate() {
            jobs[k].window = (n / per) as u32;
        }
        let windows = jobs.len().div_ceil(per) as u32;
        // Requests, made by each payee store for its payments (and the cheat's second store):
        // each from its own stream, numbered in its store's list of the day.
        let mut by_shop: HashMap<u32, Vec<(u32, Fen, u64, u32)>> = HashMap::new();
        for j in &jobs {
            if let Payee::Shop(s) = j.intent.payee {
                by_shop
                    .entry(s)
                    .or_default()
                    .push((j.rec, j.amount, j.time, j.window));
            }
            if let (Some(s), Some(r)) = (j.intent.twin, j.twin_rec) {
                by_shop
                    .entry(s)
                    .or_default()
                    .push((r, j.amount, j.time + 600, j.window));
            }
        }
        let mut by_shop: Vec<ShopRequests> = by_shop.into_iter().collect();
        by_shop.sort_by_key(|(s, _)| *s);
        let items: Vec<RequestItem> = by_shop
            .iter()
            .flat_map(|(s, list)| {
                list.iter()
                    .enumerate()
                    .map(move |(k, &(rec, amount, time, window))| RequestItem {
                        shop: *s,
                        k,
                        rec,
                        amount,
                        time,
                        window,
                    })
            })
            .collect();
        // Each person's payments in time order, with the person's generator for the day (one
        // stream however the day is cut).
        let mut people: Vec<(u32, Vec<usize>)> = Vec::new();
        for (k, j) in jobs.iter().enumerate() {
            match people.last_mut() {
                Some((p, v)) if *p == j.person => v.push(k),
                _ => people.push((j.person, vec![k])),
            }
        }
        let seed = self.seed;
        let rngs: Vec<StdRng> = people
            .par_iter()
            .map(|(p, _)| rng_for(seed, stream::PAY, u64::from(*p), u64::from(d)))
            .collect();
        DayPlan {
            jobs,
            items,
            people,
            rngs,
            windows,
        }
    }

    /// The payments of one window of the day: requests, then payments (people on every core,
    /// cheaters one by one). Returns the payments made, each with its record index, in record
    /// order.
    fn pay_window(&mut self, day: &mut DayPlan, win: u32) -> anyhow::Result<Vec<Paid>> {
        let DayPlan {
            jobs,
            items,
            people,
            rngs,
            ..
        } = day;
        let jobs = &*jobs;
        let (shops, seed) = (&self.shops, self.seed);
        // Every request on its own (each from its own stream), so one busy shop (the online
        // shop takes about half the payments) does not keep one core alone at work.
        let requests: HashMap<u32, tongbao::protocol::request::PaymentRequest> =
            super::timing::time("pay: requests", || {
                items
                    .par_iter()
                    .filter(|it| it.window == win)
                    .map(|it| {
                        let w = &shops[it.shop as usize];
                        let mut rng = rng_for(
                            seed,
                            stream::REQUEST,
                            u64::from(it.shop),
                            u64::from(it.rec) << 8 | it.k as u64 & 0xff,
                        );
                        let r = w.create_request(
                            it.amount,
                            String::new(),
                            1800,
                            it.time - 30,
                            &mut rng,
                        )?;
                        Ok((it.rec, r))
                    })
                    .collect::<anyhow::Result<HashMap<_, _>>>()
            })?;
        // The window's payers, each with its payments in it (a contiguous run of its day's).
        let mut payers: Vec<(u32, Vec<usize>, &mut StdRng)> = people
            .iter()
            .zip(rngs.iter_mut())
            .filter_map(|((p, ks), rng)| {
                let ks: Vec<usize> = ks
                    .iter()
                    .copied()
                    .filter(|&k| jobs[k].window == win)
                    .collect();
                (!ks.is_empty()).then_some((*p, ks, rng))
            })
            .collect();
        let target = |j: &Job, rec: u32, pool: &[W]| -> Option<PayTarget> {
            match j.intent.payee {
                Payee::Shop(_) => requests.get(&rec).map(|r| PayTarget::Request {
                    request: r.clone(),
                    amount: None,
                }),
                Payee::Person(p) => pool.get(p as usize).map(|w| PayTarget::Direct {
                    to: w.public(),
                    amount: j.amount,
                }),
            }
        };
        let (persons, pool, plans) = (&self.persons, &self.pool, &self.plans);
        // A slice of people at a time: the requests they pay are checked first as batches
        // (`prewarm`), then each person's wallet pays on its own.
        let mut made: Vec<(u32, Result<Box<Payment>, String>)> = Vec::new();
        for slice in payers.chunks_mut(PAY_SLICE) {
            super::timing::time("pay: prewarm requests", || {
                super::prewarm::requests(
                    slice
                        .iter()
                        .flat_map(|(_, ks, _)| ks.iter())
                        .filter_map(|&k| requests.get(&jobs[k].rec)),
                );
            });
            made.extend(super::timing::time("pay: sign", || {
                slice
                    .par_iter_mut()
                    .filter(|(p, _, _)| !plans[*p as usize].cheater)
                    .flat_map_iter(|(p, ks, rng)| {
                        let w = persons[*p as usize].as_ref();
                        ks.iter()
                            .filter_map(|&k| {
                                let w = w?;
                                let j = &jobs[k];
                                Some((j.rec, pay(w, target(j, j.rec, pool), j.time, rng)))
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect::<Vec<_>>()
            }));
        }
        // Cheaters, one by one: pay, roll the wallet back to before, pay the same money again.
        for (p, ks, rng) in &mut payers {
            if !self.plans[*p as usize].cheater {
                continue;
            }
            for &k in ks.iter() {
                let j = &jobs[k];
                let Some(w) = self.persons[*p as usize].as_ref() else {
                    continue;
                };
                let Some(twin_rec) = j.twin_rec else {
                    made.push((j.rec, pay(w, target(j, j.rec, &self.pool), j.time, rng)));
                    continue;
                };
                let backup = w.store().snapshot();
                let first = pay(w, target(j, j.rec, &self.pool), j.time, rng);
                let rolled = Wallet::open(backup)?;
                let twin = requests.get(&twin_rec).map(|r| PayTarget::Request {
                    request: r.clone(),
                    amount: None,
                });
                let second = pay(&rolled, twin, j.time + 600, rng);
                if first.is_ok() && second.is_ok() {
                    self.attempts += 1;
                }
                made.push((j.rec, first));
                made.push((twin_rec, second));
                self.persons[*p as usize] = Some(rolled);
                self.state[*p as usize].cheated = true;
            }
        }
        made.sort_by_key(|(rec, _)| *rec);
        let mut out = Vec::with_capacity(made.len());
        for (rec, r) in made {
            match r {
                Ok(p) => {
                    let envelope: u64 = p
                        .coins
                        .iter()
                        .filter(|c| matches!(c.note.earmark, Earmark::MerchantsOnly { .. }))
                        .map(|c| c.value().0)
                        .sum();
                    let pr = &mut self.pays[rec as usize];
                    pr.envelope = envelope;
                    pr.coins_left = p.coins.len() as u8;
                    out.push((rec, p));
                }
                Err(e) => {
                    self.pays[rec as usize].status = Status::Refused;
                    *self
                        .refusals
                        .entry(format!("payer: {}", short(&e)))
                        .or_default() += 1;
                }
            }
        }
        Ok(out)
    }

    /// Payers import their online payments' confirmations (on every core, the issuer's
    /// signatures checked first as batches): each payment is then settled in its payer's outbox,
    /// which keeps its summary and drops its bytes (docs/adr/0006).
    fn confirm(
        &self,
        mut confirmations: Vec<(u32, Confirmation)>,
        keyset: &IssuerKeySet,
    ) -> anyhow::Result<()> {
        super::timing::time("deliver: confirmations", || {
            super::prewarm::confirmations(keyset.root, confirmations.iter().map(|(_, c)| c));
            // Each payer's in the order they were settled.
            confirmations.sort_by_key(|(payer, _)| *payer);
            confirmations.par_chunk_by(|a, b| a.0 == b.0).try_for_each(
                |group| -> anyhow::Result<()> {
                    if let Some(w) = self.wallet(Who::Person(group[0].0)) {
                        for (_, c) in group {
                            w.confirm_online(c, c.settled_at)?;
                        }
                    }
                    Ok(())
                },
            )
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        d: u32,
        time: u64,
        channel: Channel,
        amount: Fen,
        payer: u32,
        cheat: bool,
        to: Dest,
    ) -> u32 {
        self.pays.push(PayRec {
            day: d,
            time,
            channel,
            amount: amount.0,
            envelope: 0,
            payer,
            status: Status::Accepted,
            settled_at: 0,
            coins_left: 0,
            lost_fen: 0,
            cheat,
            caught_locally: false,
            to,
        });
        (self.pays.len() - 1) as u32
    }

    /// A window's online payments settled at the issuer (in time order, one thread); on the
    /// last window of the day, payees check the day's offline ones meanwhile (on the other core).
    fn deliver(
        &mut self,
        payments: Vec<Paid>,
        day_offline: &mut Vec<Paid>,
        last: bool,
    ) -> anyhow::Result<()> {
        let (online, offline): (Vec<_>, Vec<_>) = payments
            .into_iter()
            .partition(|(rec, _)| self.pays[*rec as usize].channel == Channel::Online);
        day_offline.extend(offline);
        // The day's offline payments, in record order, with the last window's online ones.
        let offline = if last {
            let mut all = std::mem::take(day_offline);
            all.sort_by_key(|(rec, _)| *rec);
            all
        } else {
            Vec::new()
        };
        let mut online = online;
        online.sort_by_key(|(rec, _)| (self.pays[*rec as usize].time, *rec));
        let mut by_payee: HashMap<Who, Vec<Paid>> = HashMap::new();
        for (rec, p) in offline {
            let who = self.payee_of(&p)?;
            by_payee.entry(who).or_default().push((rec, p));
        }
        let mut by_payee: Vec<(Who, Vec<Paid>)> = by_payee.into_iter().collect();
        by_payee.sort_by_key(|(w, _)| *w);
        let iss = &self.iss;
        let pays = &self.pays;
        let world = &*self;
        let keyset = self.iss.keyset()?;
        let (settled, received) = rayon::join(
            || {
                // In slices, in time order: each slice is checked on every core (its signatures
                // first as batches) while the slice before it is settled as one group with one
                // commit (the same outcome as settling them one by one).
                let mut results = Vec::with_capacity(online.len());
                let mut prev: Option<Vec<_>> = None;
                for slice in online.chunks(ONLINE_SLICE) {
                    let (done, checked) = rayon::join(
                        || {
                            prev.take().map(|c| {
                                super::timing::time("deliver: online settle", || {
                                    iss.pay_online_prechecked(c)
                                })
                            })
                        },
                        || {
                            super::timing::time("deliver: online precheck", || {
                                super::prewarm::payments(&keyset, slice.iter().map(|(_, p)| &**p));
                                slice
                                    .par_iter()
                                    .map(|(rec, p)| {
                                        let t = pays[*rec as usize].time;
                                        (&**p, iss.precheck_payment(p, t), t)
                                    })
                                    .collect::<Vec<_>>()
                            })
                        },
                    );
                    results.extend(done.into_iter().flatten());
                    prev = Some(checked);
                }
                if let Some(c) = prev {
                    results.extend(super::timing::time("deliver: online settle", || {
                        iss.pay_online_prechecked(c)
                    }));
                }
                online
                    .iter()
                    .zip(results)
                    .map(|((rec, _), r)| (*rec, r.map_err(|e| e.to_string())))
                    .collect::<Vec<_>>()
            },
            || {
                super::timing::time("deliver: offline receive", || {
                    super::prewarm::payments(
                        &keyset,
                        by_payee
                            .iter()
                            .flat_map(|(_, l)| l.iter().map(|(_, p)| &**p)),
                    );
                    by_payee
                        .par_iter()
                        .map(|(who, list)| {
                            let Some(w) = world.wallet(*who) else {
                                return Vec::new();
                            };
                            list.iter()
                                .map(|(rec, p)| {
                                    let t = pays[*rec as usize].time + 5;
                                    let r = match w.receive(p, t) {
                                        Ok(_) => {
                                            Ok(p.coins.iter().map(|c| c.id()).collect::<Vec<_>>())
                                        }
                                        Err(e @ WalletError::DoubleSpend { .. }) => {
                                            Err((true, e.to_string()))
                                        }
                                        Err(e) => Err((false, e.to_string())),
                                    };
                                    (*rec, *who, r)
                                })
                                .collect::<Vec<_>>()
                        })
                        .collect::<Vec<_>>()
                })
            },
        );
        let mut confirmations = Vec::new();
        for (rec, r) in settled {
            let pr = &mut self.pays[rec as usize];
            match r {
                Ok(confirmation) => {
                    // Final for the payee; the payer imports the confirmation below.
                    pr.status = Status::Settled;
                    pr.settled_at = pr.time;
                    confirmations.push((pr.payer, confirmation));
                }
                Err(e) => {
                    pr.status = Status::Refused;
                    self.state[pr.payer as usize].stranded = true;
                    if e.contains("double spend") {
                        self.double_spends_online += 1;
                    }
                    *self
                        .refusals
                        .entry(format!("issuer: {}", short(&e)))
                        .or_default() += 1;
                }
            }
        }
        self.confirm(confirmations, &keyset)?;
        for (rec, who, r) in received.into_iter().flatten() {
            let pr = &mut self.pays[rec as usize];
            match r {
                Ok(ids) => {
                    self.exposure += pr.amount;
                    for id in ids {
                        self.coin_pay.insert(id, rec);
                    }
                    let tonight = matches!(pr.channel, Channel::Offline | Channel::CashOnDelivery);
                    match who {
                        Who::Shop(s) => {
                            let f = &mut self.shop_dirty[s as usize];
                            if tonight {
                                f.0 = true;
                            } else {
                                f.1 = true;
                            }
                        }
                        Who::Pool(i) => self.pool_dirty[i as usize] = true,
                        Who::Person(_) => {}
                    }
                }
                Err((caught, e)) => {
                    pr.status = Status::Refused;
                    self.state[pr.payer as usize].stranded = true;
                    if caught {
                        pr.caught_locally = true;
                        self.double_spends_local += 1;
                    }
                    *self
                        .refusals
                        .entry(format!("payee: {}", short(&e)))
                        .or_default() += 1;
                }
            }
        }
        Ok(())
    }

    fn payee_of(&self, p: &Payment) -> anyhow::Result<Who> {
        // Payees are few per payment; the layout tells where to look.
        if let Some(i) = self.shop_index.get(&p.payee) {
            return Ok(Who::Shop(*i));
        }
        if let Some(i) = self.pool_index.get(&p.payee) {
            return Ok(Who::Pool(*i));
        }
        anyhow::bail!("internal: payment to an unknown wallet")
    }
}

/// A payment by `w` to `target` (none: the payee's request was never made), boxed, or why not.
fn pay(
    w: &W,
    target: Option<PayTarget>,
    now: u64,
    rng: &mut StdRng,
) -> Result<Box<Payment>, String> {
    match target {
        Some(t) => w.pay(t, now, rng).map(Box::new).map_err(|e| e.to_string()),
        None => Err("no request".into()),
    }
}

/// How much each of a person's intents of the day will pay: capped by the money the wallet holds
/// (restricted first), its own limits, and the end of its envelope (it stops buying when the
/// envelope is spent). Returns the amounts and whether the person has stopped.
fn amounts(w: &W, todo: &[Intent], mut done: bool, now: u64) -> (Vec<(Intent, Fen)>, bool) {
    let Ok(coins) = w.coins() else {
        return (Vec::new(), done);
    };
    let (mut r, mut p) = (0u64, 0u64);
    for c in &coins {
        match c.note.earmark {
            Earmark::MerchantsOnly { expires_at } if now <= expires_at => r += c.value().0,
            Earmark::MerchantsOnly { .. } => {}
            Earmark::None => p += c.value().0,
        }
    }
    let Ok(Some(cert)) = w.certificate() else {
        return (Vec::new(), done);
    };
    let lim = cert.limits;
    let mut left = lim
        .offline_total_max
        .0
        .saturating_sub(w.offline_spent().map(|f| f.0).unwrap_or(u64::MAX));
    let counter = w.counter().unwrap_or(u64::MAX);
    let mut count_left =
        (cert.counter_base + u64::from(lim.offline_count_max)).saturating_sub(counter);
    let mut out = Vec::new();
    for x in todo {
        if count_left == 0 {
            break;
        }
        let amount = if x.channel == Channel::Transfer {
            let a = x.basket.0.min(p).min(left);
            p -= a;
            a
        } else {
            if done || r == 0 {
                done = true;
                continue;
            }
            let a = x.basket.0.min(r + p).min(left).min(lim.per_payment_max.0);
            let from_r = a.min(r);
            r -= from_r;
            p -= a - from_r;
            a
        };
        if amount == 0 {
            continue;
        }
        left -= amount;
        count_left -= 1;
        out.push((*x, Fen(amount)));
    }
    (out, done)
}

fn short(e: &str) -> String {
    let e = e.split(':').next().unwrap_or(e);
    e.chars().take(70).collect()
}

/// Certified wallets, one per spec (index, kind, class, seed): created and registered on every
/// core (each from its own seeded stream), certified by the issuer in batches (one commit each),
/// and the certificates imported on every core.
pub(crate) fn make_wallets<S: Store + Sync>(
    iss: &Issuer<S>,
    keyset: &IssuerKeySet,
    spill: &Arc<Spill>,
    specs: &[(u32, WalletKind, WalletClass, u64)],
    valid: u64,
    now: u64,
) -> anyhow::Result<Vec<W>> {
    type Created = Vec<(W, tongbao::protocol::certificate::Registration)>;
    let create = |chunk: &[(u32, WalletKind, WalletClass, u64)]| -> anyhow::Result<Created> {
        super::timing::time("wallets: create", || {
            chunk
                .par_iter()
                .map(|&(i, kind, _, seed)| {
                    let k = match kind {
                        WalletKind::Personal => 1,
                        WalletKind::Merchant => 2,
                        WalletKind::Till => 3,
                        _ => 4,
                    };
                    let mut rng = rng_for(seed, stream::CREATE, u64::from(i), k);
                    Wallet::create(
                        SimStore::spilling(spill),
                        kind,
                        None,
                        keyset.clone(),
                        now,
                        &mut rng,
                    )
                })
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::from)
        })
    };
    let certify = |chunk: &[(u32, WalletKind, WalletClass, u64)],
                   created: Created|
     -> anyhow::Result<Vec<W>> {
        let regs: Vec<(tongbao::protocol::certificate::Registration, WalletClass)> = created
            .iter()
            .zip(chunk)
            .map(|((_, reg), &(_, _, class, _))| (reg.clone(), class))
            .collect();
        let certs =
            super::timing::time("wallets: certify", || iss.certify_batch(&regs, valid, now));
        super::timing::time("wallets: prewarm certs", || {
            super::prewarm::certificates(keyset, certs.iter().filter_map(|c| c.as_ref().ok()));
        });
        super::timing::time("wallets: import certs", || {
            created
                .into_par_iter()
                .zip(certs)
                .map(|((w, _), cert)| -> anyhow::Result<W> {
                    w.import(TbFile::Certificate(cert?), now)?;
                    Ok(w)
                })
                .collect::<anyhow::Result<_>>()
        })
    };
    // A chunk is certified (the issuer's part in order, chunk after chunk) while the next one's
    // wallets are created.
    let chunks: Vec<_> = specs.chunks(WALLET_SLICE).collect();
    let mut out = Vec::with_capacity(specs.len());
    let mut created = match chunks.first() {
        Some(c) => Some(create(c)?),
        None => None,
    };
    for (k, chunk) in chunks.iter().enumerate() {
        let Some(this) = created.take() else {
            break;
        };
        let (done, next) = rayon::join(
            || certify(chunk, this),
            || chunks.get(k + 1).map(|c| create(c)),
        );
        out.extend(done?);
        created = next.transpose()?;
    }
    Ok(out)
}

/// The wallet key → index maps for payees.
pub(crate) fn index_of(ws: &[W]) -> HashMap<PublicKey, u32> {
    ws.iter()
        .enumerate()
        .map(|(i, w)| (w.public(), i as u32))
        .collect()
}
