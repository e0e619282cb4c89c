//! The scenario file: a pilot described in TOML. Every key, its unit and its default are in
//! docs/scenarios.md. Unknown keys and impossible values are refused with the line and the key.
//!
//! Money is written as whole yuan (`200`) or as a string with fen (`"12.50"`), never as a
//! floating-point number; shares and rates are plain numbers between 0 and 1.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tongbao::Fen;
use tongbao::protocol::certificate::WalletClass;

/// Why a scenario was refused: one line naming the file, the line and the key.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        cause: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type or out of range.
    #[error("{path}:{line}: {key}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line (0 when the key is missing altogether).
        line: usize,
        /// The key, dotted (`behaviour.claim_rate`).
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// An amount of money in a scenario: whole yuan (`200`) or a string (`"12.50"`, `"¥12.50"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct Yuan(pub Fen);

impl From<Yuan> for String {
    fn from(y: Yuan) -> String {
        y.0.to_string()
    }
}

impl<'de> Deserialize<'de> for Yuan {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Str(String),
            Float(#[allow(dead_code)] f64),
        }
        match Raw::deserialize(d)? {
            Raw::Int(y) if y >= 0 => (y as u64)
                .checked_mul(100)
                .map(|f| Yuan(Fen(f)))
                .ok_or_else(|| serde::de::Error::custom("amount too large")),
            Raw::Int(_) => Err(serde::de::Error::custom("amount cannot be negative")),
            Raw::Str(s) => s
                .parse::<Fen>()
                .map(Yuan)
                .map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}"))),
            Raw::Float(_) => Err(serde::de::Error::custom(
                "write money as whole yuan (200) or a string with fen (\"12.50\"), not a decimal number",
            )),
        }
    }
}

/// One envelope amount, or a list the lottery deals out in turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Amounts {
    /// The same for every winner.
    One(Yuan),
    /// Dealt in turn: winner `i` gets `list[i % len]`.
    List(Vec<Yuan>),
}

impl Amounts {
    /// The amounts as a list.
    pub fn list(&self) -> Vec<Fen> {
        match self {
            Amounts::One(y) => vec![y.0],
            Amounts::List(l) => l.iter().map(|y| y.0).collect(),
        }
    }
}

/// A whole pilot.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A title for the report.
    pub name: String,
    /// Where the figures come from, for the report.
    #[serde(default)]
    pub source: String,
    /// Default seed (the command line's --seed overrides it).
    #[serde(default = "one")]
    pub seed: u64,
    /// The pilot window.
    pub window: Window,
    /// The red-envelope lottery.
    pub lottery: Lottery,
    /// People and merchants.
    pub population: Population,
    /// What people do.
    #[serde(default)]
    pub behaviour: Behaviour,
    /// Network and syncing.
    #[serde(default)]
    pub connectivity: Connectivity,
    /// Cash on delivery.
    #[serde(default)]
    pub delivery: Delivery,
    /// Cheaters.
    #[serde(default)]
    pub adversaries: Adversaries,
    /// Wallet classes and the coin policy.
    #[serde(default)]
    pub policy: PolicySpec,
    /// Published figures to hold the simulation against.
    #[serde(default)]
    pub published: Published,
}

/// The pilot window.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// First moment of the pilot, RFC 3339.
    pub start: String,
    /// Length in days; red envelopes expire at its end.
    pub days: u32,
}

/// The red-envelope lottery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lottery {
    /// People who entered (for the win rate in the report).
    #[serde(default)]
    pub registrants: u64,
    /// Winners drawn.
    pub winners: u64,
    /// Envelope amount(s).
    pub envelope_yuan: Amounts,
    /// Winners claim within this many days from the start.
    #[serde(default = "one_u32")]
    pub claim_days: u32,
}

/// People and merchants.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Population {
    /// Physical stores accepting e-CNY.
    pub merchants: u64,
    /// Other people with wallets of their own money (they receive person-to-person transfers).
    #[serde(default)]
    pub people: u64,
    /// Store categories: share of stores and median basket.
    #[serde(default = "default_categories")]
    pub categories: Vec<Category>,
    /// Online shops (such as JD), each with its share of purchases.
    #[serde(default)]
    pub online: Vec<OnlineShop>,
}

/// A category of physical store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Its name.
    pub name: String,
    /// Share of the stores (shares are normalised).
    pub share: f64,
    /// Median basket.
    pub basket_yuan: Yuan,
}

/// An online shop.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineShop {
    /// Its name.
    pub name: String,
    /// Share of all purchases made at this shop.
    pub share: f64,
    /// Median basket.
    pub basket_yuan: Yuan,
}

/// What people do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Behaviour {
    /// Share of winners who claim their envelope.
    pub claim_rate: f64,
    /// Share of claimers who never spend.
    pub idle_share: f64,
    /// Mean purchases a spending claimer plans (at least one each).
    pub purchases_per_person: f64,
    /// Spread of basket sizes: the sigma of a log-normal around each median.
    pub basket_spread: f64,
    /// Mean days from claiming (or from the last purchase) to a purchase.
    pub days_between_purchases: f64,
    /// Share of claimers who top up from their bank account when they claim.
    pub topup_share: f64,
    /// The top-up.
    pub topup_yuan: Yuan,
    /// Mean person-to-person transfers of their own money per claimer who topped up.
    pub transfers_per_person: f64,
    /// Median transfer.
    pub transfer_yuan: Yuan,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            claim_rate: 1.0,
            idle_share: 0.0,
            purchases_per_person: 1.5,
            basket_spread: 0.5,
            days_between_purchases: 2.0,
            topup_share: 0.0,
            topup_yuan: Yuan(Fen(10_000)),
            transfers_per_person: 0.0,
            transfer_yuan: Yuan(Fen(5_000)),
        }
    }
}

/// Network and syncing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Connectivity {
    /// Share of store payments made with the payer offline (the store is online and settles
    /// that evening).
    pub offline_share: f64,
    /// Share of store payments made with both devices offline (settled when the store next syncs).
    pub dual_offline_share: f64,
    /// Days between syncs of a store that is offline.
    pub store_sync_every_days: u32,
    /// Days between syncs of a person's wallet that has received money.
    pub person_sync_every_days: u32,
}

impl Default for Connectivity {
    fn default() -> Self {
        Connectivity {
            offline_share: 0.1,
            dual_offline_share: 0.0,
            store_sync_every_days: 2,
            person_sync_every_days: 3,
        }
    }
}

/// Cash on delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Delivery {
    /// Share of online orders paid at the door to the courier, offline.
    pub cash_on_delivery_share: f64,
    /// Couriers (each a till of the online shop; they sync at the depot every evening).
    pub couriers: u64,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            cash_on_delivery_share: 0.0,
            couriers: 10,
        }
    }
}

/// Cheaters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Adversaries {
    /// Share of claimers' wallets that roll their state back once and spend the same money twice,
    /// both devices offline.
    pub cheater_share: f64,
}

/// Wallet classes and the coin policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySpec {
    /// Class mix of people's wallets (`I`..`IV` to shares); the class sets the offline limits.
    pub person_classes: BTreeMap<String, f64>,
    /// Class of stores', online shops' and couriers' wallets.
    pub merchant_class: String,
    /// Most transfers a coin may carry before it must be refreshed.
    pub max_hops: u8,
}

impl Default for PolicySpec {
    fn default() -> Self {
        PolicySpec {
            person_classes: BTreeMap::from([("IV".to_string(), 1.0)]),
            merchant_class: "I".into(),
            max_hops: 16,
        }
    }
}

/// Published figures (each optional) that the report prints beside the simulated ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Published {
    /// Winners who claimed.
    pub claimed: Option<u64>,
    /// Payments made with envelope money.
    pub transactions: Option<u64>,
    /// Envelope money spent, yuan.
    pub amount_spent_yuan: Option<u64>,
    /// Envelope money spent at physical stores, yuan.
    pub store_spent_yuan: Option<u64>,
    /// Envelope money spent at online shops (cash on delivery included), yuan.
    pub online_spent_yuan: Option<u64>,
    /// Own money spent beyond the envelopes in the same purchases, yuan.
    pub topup_spent_yuan: Option<u64>,
    /// Orders at online shops on the first day.
    pub online_orders_first_day: Option<u64>,
    /// People who made at least one dual-offline payment.
    pub dual_offline_payers: Option<u64>,
}

fn one() -> u64 {
    1
}

fn one_u32() -> u32 {
    1
}

fn default_categories() -> Vec<Category> {
    vec![Category {
        name: "store".into(),
        share: 1.0,
        basket_yuan: Yuan(Fen(10_000)),
    }]
}

/// A scenario ready to run: parsed, checked, with its window in unix seconds.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The scenario as written.
    pub spec: Scenario,
    /// Start of the window (unix seconds).
    pub start: u64,
    /// People's classes and their shares (normalised), in class order.
    pub person_classes: Vec<(WalletClass, f64)>,
    /// The stores' class.
    pub merchant_class: WalletClass,
}

impl Checked {
    /// End of the window: red envelopes expire here.
    pub fn end(&self) -> u64 {
        self.start + u64::from(self.spec.window.days) * 86_400
    }

    /// The same scenario with every count (winners, stores, people, couriers and the published
    /// counts and amounts) multiplied by `f`: a smaller pilot with the same behaviour, for tests.
    pub fn scaled(&self, f: f64) -> Checked {
        let mut c = self.clone();
        let s = |n: u64| ((n as f64 * f).round() as u64).max(1);
        let so = |n: Option<u64>| n.map(s);
        let sp = &mut c.spec;
        sp.lottery.registrants = (sp.lottery.registrants as f64 * f).round() as u64;
        sp.lottery.winners = s(sp.lottery.winners);
        sp.population.merchants = s(sp.population.merchants);
        sp.population.people = (sp.population.people as f64 * f).round() as u64;
        sp.delivery.couriers = s(sp.delivery.couriers);
        let p = &mut sp.published;
        p.claimed = so(p.claimed);
        p.transactions = so(p.transactions);
        p.amount_spent_yuan = so(p.amount_spent_yuan);
        p.store_spent_yuan = so(p.store_spent_yuan);
        p.online_spent_yuan = so(p.online_spent_yuan);
        p.topup_spent_yuan = so(p.topup_spent_yuan);
        p.online_orders_first_day = so(p.online_orders_first_day);
        p.dual_offline_payers = so(p.dual_offline_payers);
        c
    }
}

/// Reads and checks a scenario file.
pub fn load(path: &Path) -> Result<Checked, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|cause| ScenarioError::Io {
        path: path.display().to_string(),
        cause,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses and checks scenario text; `path` names it in errors.
pub fn parse(text: &str, path: &str) -> Result<Checked, ScenarioError> {
    let spec: Scenario = toml::from_str(text).map_err(|e| {
        let (line, key) = match e.span() {
            Some(span) => locate_span(text, span.start),
            None => (0, String::from("(file)")),
        };
        ScenarioError::Invalid {
            path: path.into(),
            line,
            key,
            message: e.message().trim().replace('\n', " "),
        }
    })?;
    check(spec, text, path)
}

/// The 1-based line of byte `at` and the dotted key written on that line (or the table).
fn locate_span(text: &str, at: usize) -> (usize, String) {
    let at = at.min(text.len());
    let line = text[..at].matches('\n').count() + 1;
    let mut table = String::new();
    let mut key = String::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if i + 1 > line {
            break;
        }
        if t.starts_with('[') {
            table = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            key.clear();
        } else if let Some((k, _)) = t.split_once('=')
            && !t.starts_with('#')
        {
            key = k.trim().to_string();
        }
        if i + 1 == line && !t.contains('=') && !t.starts_with('[') {
            key.clear();
        }
    }
    let dotted = match (table.is_empty(), key.is_empty()) {
        (true, true) => "(top level)".into(),
        (true, false) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    };
    (line, dotted)
}

/// The line where `table.key` is written (0 if it is not: a default).
fn line_of(text: &str, dotted: &str) -> usize {
    let (table, key) = match dotted.rsplit_once('.') {
        Some((t, k)) => (t, k),
        None => ("", dotted),
    };
    let mut current = String::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            continue;
        }
        if current == table
            && let Some((k, _)) = t.split_once('=')
            && k.trim() == key
        {
            return i + 1;
        }
    }
    0
}

fn check(spec: Scenario, text: &str, path: &str) -> Result<Checked, ScenarioError> {
    let bad = |key: &str, message: String| ScenarioError::Invalid {
        path: path.into(),
        line: line_of(text, key),
        key: key.into(),
        message,
    };
    let share = |key: &str, v: f64| -> Result<(), ScenarioError> {
        if v.is_finite() && (0.0..=1.0).contains(&v) {
            Ok(())
        } else {
            Err(bad(key, format!("{v} is not a share between 0 and 1")))
        }
    };
    let start = tongbao::time::parse_rfc3339(&spec.window.start)
        .map_err(|e| bad("window.start", e.to_string()))?;
    let w = &spec.window;
    if w.days == 0 || w.days > 366 {
        return Err(bad(
            "window.days",
            format!("{} is not 1 to 366 days", w.days),
        ));
    }
    let l = &spec.lottery;
    if l.winners == 0 || l.winners > 20_000_000 {
        return Err(bad(
            "lottery.winners",
            format!("{} is not 1 to 20,000,000", l.winners),
        ));
    }
    if l.registrants != 0 && l.registrants < l.winners {
        return Err(bad(
            "lottery.registrants",
            format!(
                "{} registrants cannot give {} winners",
                l.registrants, l.winners
            ),
        ));
    }
    let amounts = l.envelope_yuan.list();
    if amounts.is_empty() || amounts.contains(&Fen::ZERO) {
        return Err(bad(
            "lottery.envelope_yuan",
            "needs at least one amount, none of them zero".into(),
        ));
    }
    if l.claim_days == 0 || l.claim_days > w.days {
        return Err(bad(
            "lottery.claim_days",
            format!("{} is not 1 to the window's {} days", l.claim_days, w.days),
        ));
    }
    let p = &spec.population;
    if p.merchants == 0 || p.merchants > 5_000_000 {
        return Err(bad(
            "population.merchants",
            format!("{} is not 1 to 5,000,000", p.merchants),
        ));
    }
    if p.people > 20_000_000 {
        return Err(bad(
            "population.people",
            format!("{} is above 20,000,000", p.people),
        ));
    }
    if p.categories.is_empty() {
        return Err(bad(
            "population.categories",
            "needs at least one category".into(),
        ));
    }
    let mut cat_total = 0.0;
    for c in &p.categories {
        if !(c.share.is_finite() && c.share > 0.0) {
            return Err(bad(
                "population.categories.share",
                format!("{}: share {} must be above 0", c.name, c.share),
            ));
        }
        if c.basket_yuan.0 == Fen::ZERO {
            return Err(bad(
                "population.categories.basket_yuan",
                format!("{}: basket must be above zero", c.name),
            ));
        }
        cat_total += c.share;
    }
    let _ = cat_total;
    let mut online_total = 0.0;
    for o in &p.online {
        share("population.online.share", o.share)?;
        if o.basket_yuan.0 == Fen::ZERO {
            return Err(bad(
                "population.online.basket_yuan",
                format!("{}: basket must be above zero", o.name),
            ));
        }
        online_total += o.share;
    }
    if online_total > 1.0 {
        return Err(bad(
            "population.online.share",
            format!("online shares add up to {online_total}, more than 1"),
        ));
    }
    let b = &spec.behaviour;
    share("behaviour.claim_rate", b.claim_rate)?;
    share("behaviour.idle_share", b.idle_share)?;
    share("behaviour.topup_share", b.topup_share)?;
    for (key, v, max) in [
        (
            "behaviour.purchases_per_person",
            b.purchases_per_person,
            50.0,
        ),
        ("behaviour.basket_spread", b.basket_spread, 3.0),
        (
            "behaviour.days_between_purchases",
            b.days_between_purchases,
            366.0,
        ),
        (
            "behaviour.transfers_per_person",
            b.transfers_per_person,
            50.0,
        ),
    ] {
        if !(v.is_finite() && (0.0..=max).contains(&v)) {
            return Err(bad(key, format!("{v} is not between 0 and {max}")));
        }
    }
    if b.purchases_per_person < 1.0 {
        return Err(bad(
            "behaviour.purchases_per_person",
            format!(
                "{} is below 1 (idle_share says who never spends)",
                b.purchases_per_person
            ),
        ));
    }
    let c = &spec.connectivity;
    share("connectivity.offline_share", c.offline_share)?;
    share("connectivity.dual_offline_share", c.dual_offline_share)?;
    if c.offline_share + c.dual_offline_share > 1.0 {
        return Err(bad(
            "connectivity.dual_offline_share",
            "offline_share + dual_offline_share is more than 1".into(),
        ));
    }
    for (key, v) in [
        (
            "connectivity.store_sync_every_days",
            c.store_sync_every_days,
        ),
        (
            "connectivity.person_sync_every_days",
            c.person_sync_every_days,
        ),
    ] {
        if v == 0 {
            return Err(bad(key, "must be at least 1 day".into()));
        }
    }
    let d = &spec.delivery;
    share("delivery.cash_on_delivery_share", d.cash_on_delivery_share)?;
    if d.cash_on_delivery_share > 0.0 && (d.couriers == 0 || p.online.is_empty()) {
        return Err(bad(
            "delivery.couriers",
            "cash on delivery needs couriers and an online shop".into(),
        ));
    }
    share("adversaries.cheater_share", spec.adversaries.cheater_share)?;
    let pol = &spec.policy;
    if pol.max_hops == 0 {
        return Err(bad("policy.max_hops", "must be at least 1".into()));
    }
    let mut person_classes = Vec::new();
    let mut class_total = 0.0;
    for (name, &v) in &pol.person_classes {
        let class: WalletClass = name
            .parse()
            .map_err(|e: String| bad("policy.person_classes", format!("{name}: {e}")))?;
        if !(v.is_finite() && v >= 0.0) {
            return Err(bad(
                "policy.person_classes",
                format!("{name}: share {v} is negative"),
            ));
        }
        class_total += v;
        person_classes.push((class, v));
    }
    if class_total <= 0.0 {
        return Err(bad(
            "policy.person_classes",
            "needs at least one class with a share above 0".into(),
        ));
    }
    for (_, v) in &mut person_classes {
        *v /= class_total;
    }
    let merchant_class: WalletClass = pol
        .merchant_class
        .parse()
        .map_err(|e: String| bad("policy.merchant_class", e))?;
    Ok(Checked {
        spec,
        start,
        person_classes,
        merchant_class,
    })
}
