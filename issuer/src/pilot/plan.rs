//! What every winner will try to do, drawn once from the scenario's seed: whether they claim, when,
//! their wallet class, top-up, purchases (day, time, shop, channel, basket) and transfers.
//!
//! Plans are drawn in winner order from one seeded generator, so a scenario and a seed always give
//! the same plans. Floating point is used for the draws only; every amount becomes whole fen here.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tongbao::Fen;
use tongbao::protocol::certificate::WalletClass;

use super::scenario::Checked;

/// How a payment travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// Both devices online: settled at the issuer at once.
    Online,
    /// The payer offline, the store online: the store settles it that evening.
    Offline,
    /// Both devices offline: settled when the store next syncs.
    DualOffline,
    /// Paid at the door to a courier, offline; settled at the depot that evening.
    CashOnDelivery,
    /// Person to person, both offline, own money.
    Transfer,
}

impl Channel {
    /// Every channel, in report order.
    pub const ALL: [Channel; 5] = [
        Channel::Online,
        Channel::Offline,
        Channel::DualOffline,
        Channel::CashOnDelivery,
        Channel::Transfer,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Online => "online",
            Channel::Offline => "offline",
            Channel::DualOffline => "dual offline",
            Channel::CashOnDelivery => "cash on delivery",
            Channel::Transfer => "person to person",
        }
    }

    /// Whether the payee checks it offline (and it settles later).
    pub fn offline(self) -> bool {
        self != Channel::Online
    }
}

/// Who is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payee {
    /// A wallet in the shops list (stores, online shops, couriers).
    Shop(u32),
    /// A person in the people pool.
    Person(u32),
}

/// One planned payment.
#[derive(Debug, Clone, Copy)]
pub struct Intent {
    /// Day of the window.
    pub day: u32,
    /// Seconds into that day.
    pub secs: u32,
    /// Who is paid.
    pub payee: Payee,
    /// How.
    pub channel: Channel,
    /// The basket (what the person wants to pay).
    pub basket: Fen,
    /// For the cheat: the second payee of the same money.
    pub twin: Option<u32>,
}

/// One winner's plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Claims the envelope.
    pub claims: bool,
    /// Day of the claim.
    pub claim_day: u32,
    /// The envelope.
    pub envelope: Fen,
    /// Wallet class.
    pub class: WalletClass,
    /// Top-up at the claim.
    pub topup: Fen,
    /// Purchases and transfers, in time order.
    pub intents: Vec<Intent>,
    /// Rolls back and spends twice (its first purchase).
    pub cheater: bool,
}

/// Where the shops are in the shops list.
#[derive(Debug, Clone)]
pub struct ShopLayout {
    /// Stores: indexes `0..stores`, with the category of each (contiguous ranges).
    pub stores: u32,
    /// Category ranges `[from, to)` of store indexes, with the median basket.
    pub categories: Vec<(u32, u32, Fen)>,
    /// Online shops: their index and median basket.
    pub online: Vec<(u32, Fen)>,
    /// Couriers: indexes `[from, to)`, each a till of online shop 0.
    pub couriers: (u32, u32),
    /// Total wallets in the shops list.
    pub total: u32,
}

impl ShopLayout {
    /// Lays out the shops of a scenario.
    pub fn of(sc: &Checked) -> ShopLayout {
        let p = &sc.spec.population;
        let stores = p.merchants as u32;
        let total_share: f64 = p.categories.iter().map(|c| c.share).sum();
        let mut categories = Vec::new();
        let mut from = 0u32;
        let mut acc = 0.0;
        for (i, c) in p.categories.iter().enumerate() {
            acc += c.share / total_share;
            let to = if i + 1 == p.categories.len() {
                stores
            } else {
                ((acc * f64::from(stores)).round() as u32).clamp(from, stores)
            };
            categories.push((from, to, c.basket_yuan.0));
            from = to;
        }
        let mut next = stores;
        let online = p
            .online
            .iter()
            .map(|o| {
                next += 1;
                (next - 1, o.basket_yuan.0)
            })
            .collect();
        let couriers = if p.online.is_empty() {
            (next, next)
        } else {
            (next, next + sc.spec.delivery.couriers as u32)
        };
        ShopLayout {
            stores,
            categories,
            online,
            couriers,
            total: couriers.1,
        }
    }
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A Poisson draw (Knuth; the means here are small).
fn poisson(rng: &mut StdRng, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    let limit = (-mean).exp();
    let mut k = 0;
    let mut p = 1.0;
    loop {
        p *= rng.random::<f64>();
        if p <= limit || k >= 1000 {
            return k;
        }
        k += 1;
    }
}

/// A basket around `median` (log-normal with `spread`), in whole fen, at least one yuan.
fn basket(rng: &mut StdRng, median: Fen, spread: f64) -> Fen {
    let x = median.0 as f64 * (spread * normal(rng)).exp();
    Fen((x.round() as u64).max(100))
}

/// Draws every winner's plan, in winner order, from the scenario's seed.
pub fn draw(sc: &Checked, layout: &ShopLayout, seed: u64) -> Vec<Plan> {
    let s = &sc.spec;
    let b = &s.behaviour;
    let c = &s.connectivity;
    let mut rng = StdRng::seed_from_u64(seed);
    let amounts = s.lottery.envelope_yuan.list();
    let days = s.window.days;
    let people = s.population.people as u32;
    let online_share: f64 = s.population.online.iter().map(|o| o.share).sum();
    let store_weights: Vec<f64> = s.population.categories.iter().map(|c| c.share).collect();
    let store_total: f64 = store_weights.iter().sum();
    let mut plans = Vec::with_capacity(s.lottery.winners as usize);
    for i in 0..s.lottery.winners as usize {
        let envelope = amounts[i % amounts.len()];
        let claims = rng.random_bool(b.claim_rate);
        let claim_day = rng.random_range(0..s.lottery.claim_days);
        let mut u = rng.random::<f64>();
        let mut class = sc.person_classes[0].0;
        for &(cl, share) in &sc.person_classes {
            class = cl;
            if u < share {
                break;
            }
            u -= share;
        }
        let topup = if rng.random_bool(b.topup_share) {
            b.topup_yuan.0
        } else {
            Fen::ZERO
        };
        let idle = rng.random_bool(b.idle_share);
        let cheater = rng.random_bool(s.adversaries.cheater_share);
        let mut intents = Vec::new();
        if claims && !idle {
            let n = 1 + poisson(&mut rng, b.purchases_per_person - 1.0);
            let mut t = f64::from(claim_day) + rng.random::<f64>() * 0.5;
            for k in 0..n {
                if k > 0 {
                    t += -b.days_between_purchases * rng.random::<f64>().max(1e-12).ln();
                }
                let day = t.floor() as u32;
                let secs = 8 * 3600 + rng.random_range(0..14 * 3600);
                let (payee, median, mut channel) = if rng.random::<f64>() < online_share {
                    let mut w = rng.random::<f64>() * online_share;
                    let mut pick = 0;
                    for (j, o) in s.population.online.iter().enumerate() {
                        pick = j;
                        if w < o.share {
                            break;
                        }
                        w -= o.share;
                    }
                    let (idx, median) = layout.online[pick];
                    if pick == 0 && rng.random_bool(s.delivery.cash_on_delivery_share) {
                        let (from, to) = layout.couriers;
                        (rng.random_range(from..to), median, Channel::CashOnDelivery)
                    } else {
                        (idx, median, Channel::Online)
                    }
                } else {
                    let mut w = rng.random::<f64>() * store_total;
                    let mut cat = 0;
                    for (j, sw) in store_weights.iter().enumerate() {
                        cat = j;
                        if w < *sw {
                            break;
                        }
                        w -= sw;
                    }
                    let (from, to, median) = layout.categories[cat];
                    let idx = if to > from {
                        rng.random_range(from..to)
                    } else {
                        rng.random_range(0..layout.stores)
                    };
                    let v = rng.random::<f64>();
                    let ch = if v < c.offline_share {
                        Channel::Offline
                    } else if v < c.offline_share + c.dual_offline_share {
                        Channel::DualOffline
                    } else {
                        Channel::Online
                    };
                    (idx, median, ch)
                };
                let amount = basket(&mut rng, median, b.basket_spread);
                let mut twin = None;
                let mut payee = Payee::Shop(payee);
                if cheater && k == 0 {
                    // The cheat: the first purchase, at a store, both offline, paid again to a
                    // second store after a rollback.
                    channel = Channel::DualOffline;
                    payee = Payee::Shop(rng.random_range(0..layout.stores));
                    twin = Some(rng.random_range(0..layout.stores));
                }
                if day < days {
                    intents.push(Intent {
                        day,
                        secs,
                        payee,
                        channel,
                        basket: amount,
                        twin,
                    });
                }
            }
            if topup > Fen::ZERO && (people > 0 || s.lottery.winners > 1) {
                for _ in 0..poisson(&mut rng, b.transfers_per_person) {
                    let day = rng.random_range(claim_day..days);
                    let secs = 8 * 3600 + rng.random_range(0..14 * 3600);
                    let to = if people > 0 {
                        Payee::Person(rng.random_range(0..people))
                    } else {
                        Payee::Shop(u32::MAX)
                    };
                    let amount = basket(&mut rng, b.transfer_yuan.0, b.basket_spread);
                    if let Payee::Person(_) = to {
                        intents.push(Intent {
                            day,
                            secs,
                            payee: to,
                            channel: Channel::Transfer,
                            basket: amount,
                            twin: None,
                        });
                    }
                }
            }
            intents.sort_by_key(|x| (x.day, x.secs));
        }
        plans.push(Plan {
            claims,
            claim_day,
            envelope,
            class,
            topup,
            intents,
            cheater,
        });
    }
    plans
}
