//! The pilot's report: built from the run, rendered as report.md, report.json and daily.csv.
//!
//! Money is integer fen throughout (the JSON carries `_fen` integers); yuan strings are formatted
//! from the integers. Ratios and percentages are the only floating-point figures, and they are
//! printed with a fixed number of decimals.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use tongbao::Fen;
use tongbao::store::Store;

use super::engine::{DayRow, Dest, PayRec, Status, World};
use super::plan::Channel;
use super::rounds::Closing;
use crate::audit::AuditReport;
use crate::ledger::keys;

/// Payments of one channel.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelFigures {
    /// The channel.
    pub channel: String,
    /// Payments accepted (online: settled; offline: accepted by the payee).
    pub payments: u64,
    /// Their value, fen.
    pub value_fen: u64,
    /// Of which red-envelope money, fen.
    pub envelope_fen: u64,
    /// Refused (by the payer's own limits, the payee or the issuer).
    pub refused: u64,
}

/// One published figure beside the simulated one.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// What.
    pub figure: String,
    /// Unit: "count" or "yuan".
    pub unit: String,
    /// Published.
    pub published: u64,
    /// Simulated (yuan figures rounded down to whole yuan).
    pub simulated: u64,
    /// (simulated - published) / published, percent.
    pub diff_percent: f64,
}

/// Double spending.
#[derive(Debug, Clone, Serialize)]
pub struct DoubleSpends {
    /// Wallets that rolled back and spent twice.
    pub cheaters: u64,
    /// Second spends made.
    pub attempted: u64,
    /// Caught by the payee offline (it had seen the first spend): refused, nothing lost.
    pub caught_by_payee: u64,
    /// Caught by the issuer in an online payment: refused, nothing lost.
    pub caught_online: u64,
    /// Caught at settlement (first settled wins): the second payee lost the money.
    pub caught_at_settlement: u64,
    /// Every attempt was caught.
    pub all_detected: bool,
    /// Losses booked by the ledger against the cheaters, fen.
    pub lost_fen: u64,
    /// Losses the payees' sync results reported, fen (must equal the ledger's).
    pub lost_by_payees_fen: u64,
    /// The largest loss booked against one cheater, fen.
    pub max_loss_per_cheater_fen: u64,
    /// Every cheater's loss is within its certificate's offline total limit.
    pub within_offline_limits: bool,
}

/// The closing invariant.
#[derive(Debug, Clone, Serialize)]
pub struct Invariant {
    /// The ledger audit passed (issued = redeemed + outstanding recomputed from the coins, every
    /// transfer, proof and revocation checked).
    pub audit_ok: bool,
    /// What the audit found wrong.
    pub audit_problems: Vec<String>,
    /// Red envelopes issued, fen.
    pub envelopes_fen: u64,
    /// Topped up from bank accounts, fen.
    pub topped_up_fen: u64,
    /// Held by wallets at the close (every honest wallet, checked coin by coin against the
    /// ledger), fen.
    pub wallets_fen: u64,
    /// Held at the ledger by revoked cheaters, frozen, fen.
    pub frozen_fen: u64,
    /// Red-envelope money clawed back at the end of the window, fen.
    pub clawed_back_fen: u64,
    /// Paid out to bank accounts (shops cashing out), fen.
    pub cashed_out_fen: u64,
    /// Wallets whose holdings differ from the ledger's.
    pub mismatched_wallets: u64,
    /// envelopes + topped up = wallets + frozen + clawed back + cashed out, to the fen.
    pub money_adds_up: bool,
    /// Offline payments accepted by payees, fen.
    pub accepted_offline_fen: u64,
    /// Of which settled, fen.
    pub settled_offline_fen: u64,
    /// Of which lost to double spends (the second spends), fen.
    pub lost_offline_fen: u64,
    /// accepted = settled + lost, to the fen, and nothing left unsettled.
    pub payees_add_up: bool,
    /// Everything above holds.
    pub holds: bool,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario title.
    pub scenario: String,
    /// Its sources.
    pub source: String,
    /// Seed used.
    pub seed: u64,
    /// Window start (RFC 3339).
    pub start: String,
    /// Window end: envelopes expire (RFC 3339).
    pub end: String,
    /// Days.
    pub days: u32,
    /// Registrants in the lottery.
    pub registrants: u64,
    /// Winners drawn.
    pub winners: u64,
    /// Winners who claimed.
    pub claimed: u64,
    /// Stores.
    pub stores: u64,
    /// Online shops.
    pub online_shops: u64,
    /// Couriers.
    pub couriers: u64,
    /// Wallets in the run.
    pub wallets: u64,
    /// Payments by channel.
    pub channels: Vec<ChannelFigures>,
    /// Payments made with envelope money.
    pub envelope_payments: u64,
    /// Envelope money spent, fen.
    pub envelope_spent_fen: u64,
    /// ... at stores, fen.
    pub envelope_store_fen: u64,
    /// ... at online shops (cash on delivery included), fen.
    pub envelope_online_fen: u64,
    /// Own money spent in the same purchases, fen.
    pub own_in_envelope_payments_fen: u64,
    /// Settlement lag of all settled payments, seconds: p50, p99.
    pub lag_p50_secs: u64,
    /// p99.
    pub lag_p99_secs: u64,
    /// Settlement lag of offline payments only: p50.
    pub offline_lag_p50_secs: u64,
    /// p99.
    pub offline_lag_p99_secs: u64,
    /// Settled offline payments by lag (online ones settle at once): (bucket, payments).
    pub lag_buckets: Vec<(String, u64)>,
    /// Double spending.
    pub double_spends: DoubleSpends,
    /// Keys on the revocation list.
    pub revocations: u64,
    /// Syncs the issuer refused (a revoked cheater's, for instance).
    pub syncs_refused: u64,
    /// Refusals by reason.
    pub refusals: BTreeMap<String, u64>,
    /// Published figures beside the simulated ones.
    pub published: Vec<Comparison>,
    /// The closing invariant.
    pub invariant: Invariant,
    /// Day by day.
    pub daily: Vec<DayRow>,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Builds the report from a finished run.
pub(crate) fn build(
    w: &World,
    seed: u64,
    closing: Closing,
    audit: AuditReport,
) -> anyhow::Result<Report> {
    let sc = &w.sc;
    let ok = |p: &PayRec| matches!(p.status, Status::Settled | Status::Lost | Status::Accepted);
    let mut channels = Vec::new();
    for ch in Channel::ALL {
        let of: Vec<&PayRec> = w.pays.iter().filter(|p| p.channel == ch).collect();
        let good: Vec<&&PayRec> = of.iter().filter(|p| ok(p)).collect();
        channels.push(ChannelFigures {
            channel: ch.name().into(),
            payments: good.len() as u64,
            value_fen: good.iter().map(|p| p.amount).sum(),
            envelope_fen: good.iter().map(|p| p.envelope).sum(),
            refused: (of.len() - good.len()) as u64,
        });
    }
    let settled: Vec<&PayRec> = w
        .pays
        .iter()
        .filter(|p| p.status == Status::Settled)
        .collect();
    let env: Vec<&&PayRec> = settled.iter().filter(|p| p.envelope > 0).collect();
    let envelope_spent_fen = env.iter().map(|p| p.envelope).sum();
    let envelope_store_fen = env
        .iter()
        .filter(|p| p.to == Dest::Store)
        .map(|p| p.envelope)
        .sum();
    let envelope_online_fen = env
        .iter()
        .filter(|p| matches!(p.to, Dest::OnlineShop | Dest::Courier))
        .map(|p| p.envelope)
        .sum();
    let own_in_envelope_payments_fen = env.iter().map(|p| p.amount - p.envelope).sum();
    let mut lags: Vec<u64> = settled
        .iter()
        .map(|p| p.settled_at.saturating_sub(p.time))
        .collect();
    lags.sort_unstable();
    let mut off_lags: Vec<u64> = settled
        .iter()
        .filter(|p| p.channel.offline())
        .map(|p| p.settled_at.saturating_sub(p.time))
        .collect();
    off_lags.sort_unstable();
    // Double spends.
    let stats = w.iss.stats()?;
    let cheaters: Vec<usize> = (0..w.state.len()).filter(|&i| w.state[i].cheated).collect();
    let mut max_loss = 0u64;
    let mut within = true;
    for &i in &cheaters {
        let Some(wallet) = w.persons[i].as_ref() else {
            continue;
        };
        let loss = w
            .iss
            .store
            .get(&keys::with(keys::LOSS, wallet.public().as_bytes()))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        max_loss = max_loss.max(loss);
        let limit = w.plans[i].class.default_limits().offline_total_max.0;
        if loss > limit {
            within = false;
        }
    }
    let caught_at_settlement = w
        .pays
        .iter()
        .filter(|p| p.cheat && p.status == Status::Lost)
        .count() as u64;
    let lost_by_payees_fen = w.pays.iter().map(|p| p.lost_fen).sum();
    let detected = w.double_spends_local + w.double_spends_online + caught_at_settlement;
    let double_spends = DoubleSpends {
        cheaters: cheaters.len() as u64,
        attempted: w.attempts,
        caught_by_payee: w.double_spends_local,
        caught_online: w.double_spends_online,
        caught_at_settlement,
        all_detected: detected == w.attempts,
        lost_fen: stats.losses_fen,
        lost_by_payees_fen,
        max_loss_per_cheater_fen: max_loss,
        within_offline_limits: within,
    };
    // The closing invariant.
    let claimed = w.persons.iter().filter(|p| p.is_some()).count() as u64;
    let envelopes_fen: u64 = w
        .plans
        .iter()
        .zip(&w.persons)
        .filter(|(_, p)| p.is_some())
        .map(|(pl, _)| pl.envelope.0)
        .sum();
    let offline: Vec<&PayRec> = w
        .pays
        .iter()
        .filter(|p| {
            p.channel.offline()
                && matches!(p.status, Status::Settled | Status::Lost | Status::Accepted)
        })
        .collect();
    let accepted_offline_fen: u64 = offline.iter().map(|p| p.amount).sum();
    let settled_offline_fen: u64 = offline
        .iter()
        .filter(|p| p.status == Status::Settled)
        .map(|p| p.amount)
        .sum();
    let lost_offline_fen: u64 = offline
        .iter()
        .filter(|p| p.status == Status::Lost)
        .map(|p| p.amount)
        .sum();
    let pending = offline
        .iter()
        .filter(|p| p.status == Status::Accepted)
        .count();
    let money_adds_up = envelopes_fen + stats.bank_in_fen
        == closing.wallets_fen + closing.frozen_fen + closing.clawed_back_fen + stats.bank_out_fen;
    let payees_add_up = pending == 0
        && accepted_offline_fen == settled_offline_fen + lost_offline_fen
        && lost_by_payees_fen == stats.losses_fen;
    let invariant = Invariant {
        audit_ok: audit.ok,
        audit_problems: audit.problems.clone(),
        envelopes_fen,
        topped_up_fen: stats.bank_in_fen,
        wallets_fen: closing.wallets_fen,
        frozen_fen: closing.frozen_fen,
        clawed_back_fen: closing.clawed_back_fen,
        cashed_out_fen: stats.bank_out_fen,
        mismatched_wallets: closing.mismatched_wallets,
        money_adds_up,
        accepted_offline_fen,
        settled_offline_fen,
        lost_offline_fen,
        payees_add_up,
        holds: audit.ok && money_adds_up && payees_add_up && closing.mismatched_wallets == 0,
    };
    // Published figures.
    let pb = &sc.spec.published;
    let yuan = |f: u64| f / 100;
    let dual_payers = {
        let mut v: Vec<u32> = w
            .pays
            .iter()
            .filter(|p| p.channel == Channel::DualOffline && ok(p))
            .map(|p| p.payer)
            .collect();
        v.sort_unstable();
        v.dedup();
        v.len() as u64
    };
    let first_day_orders = w
        .pays
        .iter()
        .filter(|p| p.day == 0 && matches!(p.to, Dest::OnlineShop | Dest::Courier) && ok(p))
        .count() as u64;
    let mut published = Vec::new();
    for (figure, unit, publ, sim) in [
        ("winners who claimed", "count", pb.claimed, claimed),
        (
            "payments with envelope money",
            "count",
            pb.transactions,
            env.len() as u64,
        ),
        (
            "envelope money spent",
            "yuan",
            pb.amount_spent_yuan,
            yuan(envelope_spent_fen),
        ),
        (
            "... at physical stores",
            "yuan",
            pb.store_spent_yuan,
            yuan(envelope_store_fen),
        ),
        (
            "... online (cash on delivery included)",
            "yuan",
            pb.online_spent_yuan,
            yuan(envelope_online_fen),
        ),
        (
            "own money spent beyond the envelopes",
            "yuan",
            pb.topup_spent_yuan,
            yuan(own_in_envelope_payments_fen),
        ),
        (
            "online orders on the first day",
            "count",
            pb.online_orders_first_day,
            first_day_orders,
        ),
        (
            "people who paid dual offline",
            "count",
            pb.dual_offline_payers,
            dual_payers,
        ),
    ] {
        if let Some(p) = publ {
            let diff = if p == 0 {
                0.0
            } else {
                (sim as f64 - p as f64) / p as f64 * 100.0
            };
            published.push(Comparison {
                figure: figure.into(),
                unit: unit.into(),
                published: p,
                simulated: sim,
                diff_percent: (diff * 10.0).round() / 10.0,
            });
        }
    }
    Ok(Report {
        scenario: sc.spec.name.clone(),
        source: sc.spec.source.clone(),
        seed,
        start: tongbao::time::format_rfc3339(sc.start),
        end: tongbao::time::format_rfc3339(sc.end()),
        days: sc.spec.window.days,
        registrants: sc.spec.lottery.registrants,
        winners: sc.spec.lottery.winners,
        claimed,
        stores: u64::from(w.layout.stores),
        online_shops: w.layout.online.len() as u64,
        couriers: u64::from(w.layout.couriers.1 - w.layout.couriers.0),
        wallets: claimed + (w.pool.len() + w.shops.len()) as u64,
        channels,
        envelope_payments: env.len() as u64,
        envelope_spent_fen,
        envelope_store_fen,
        envelope_online_fen,
        own_in_envelope_payments_fen,
        lag_p50_secs: percentile(&lags, 0.5),
        lag_p99_secs: percentile(&lags, 0.99),
        offline_lag_p50_secs: percentile(&off_lags, 0.5),
        offline_lag_p99_secs: percentile(&off_lags, 0.99),
        lag_buckets: buckets(&off_lags),
        double_spends,
        revocations: stats.revoked,
        syncs_refused: w.syncs_refused,
        refusals: w.refusals.clone(),
        published,
        invariant,
        daily: w.days.clone(),
    })
}

/// Lags into buckets for the chart.
fn buckets(lags: &[u64]) -> Vec<(String, u64)> {
    let edges: [(&str, u64); 9] = [
        ("at once", 0),
        ("< 1 h", 3600),
        ("< 6 h", 6 * 3600),
        ("< 12 h", 12 * 3600),
        ("< 1 d", 86_400),
        ("< 2 d", 2 * 86_400),
        ("< 3 d", 3 * 86_400),
        ("< 7 d", 7 * 86_400),
        ("7 d +", u64::MAX),
    ];
    let mut out: Vec<(String, u64)> = edges.iter().map(|(l, _)| (l.to_string(), 0)).collect();
    for &l in lags {
        let i = edges
            .iter()
            .position(|&(_, e)| if e == 0 { l == 0 } else { l < e })
            .unwrap_or(edges.len() - 1);
        out[i].1 += 1;
    }
    out
}

/// `12345` fen as `123.45`.
pub fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// `1234567` fen as `¥12,345.67`.
pub fn yuan_grouped(fen: u64) -> String {
    format!("¥{}.{:02}", grouped(fen / 100), fen % 100)
}

/// `1234567` as `1,234,567`.
pub fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn duration(secs: u64) -> String {
    if secs == 0 {
        "0 (at once)".into()
    } else if secs < 3600 {
        format!("{} min", secs.div_ceil(60))
    } else if secs < 2 * 86_400 {
        format!("{:.1} h", secs as f64 / 3600.0)
    } else {
        format!("{:.1} days", secs as f64 / 86_400.0)
    }
}

fn check(b: bool) -> &'static str {
    if b { "✔" } else { "✘ FAILED" }
}

impl Report {
    /// report.md
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Pilot report: {}\n", self.scenario);
        if !self.source.is_empty() {
            let _ = writeln!(s, "Source of the published figures: {}\n", self.source);
        }
        let _ = writeln!(
            s,
            "Window {} to {} ({} days), seed {}. {} wallets ran through the Tongbao wallet engine and ledger: {} winners claimed of {} drawn{}; {} stores, {} online shop(s), {} courier(s).\n",
            self.start,
            self.end,
            self.days,
            self.seed,
            grouped(self.wallets),
            grouped(self.claimed),
            grouped(self.winners),
            if self.registrants > 0 {
                format!(
                    " from {} registrants (win rate {:.2}%)",
                    grouped(self.registrants),
                    self.winners as f64 / self.registrants as f64 * 100.0
                )
            } else {
                String::new()
            },
            grouped(self.stores),
            self.online_shops,
            self.couriers
        );
        if !self.published.is_empty() {
            let _ = writeln!(s, "## Published and simulated\n");
            let _ = writeln!(s, "| figure | published | simulated | difference |");
            let _ = writeln!(s, "|---|---:|---:|---:|");
            for c in &self.published {
                let unit = if c.unit == "yuan" { "¥" } else { "" };
                let _ = writeln!(
                    s,
                    "| {} | {unit}{} | {unit}{} | {:+.1}% |",
                    c.figure,
                    grouped(c.published),
                    grouped(c.simulated),
                    c.diff_percent
                );
            }
            s.push('\n');
        }
        let _ = writeln!(s, "## Payments by channel\n");
        let _ = writeln!(
            s,
            "| channel | payments | value | of which envelope money | refused |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|");
        for c in &self.channels {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                c.channel,
                grouped(c.payments),
                yuan_grouped(c.value_fen),
                yuan_grouped(c.envelope_fen),
                grouped(c.refused)
            );
        }
        let _ = writeln!(
            s,
            "\nEnvelope money spent: {} in {} payments ({} at stores, {} online); own money added in the same payments: {}.\n",
            yuan_grouped(self.envelope_spent_fen),
            grouped(self.envelope_payments),
            yuan_grouped(self.envelope_store_fen),
            yuan_grouped(self.envelope_online_fen),
            yuan_grouped(self.own_in_envelope_payments_fen)
        );
        let _ = writeln!(s, "## Settlement lag\n");
        let _ = writeln!(
            s,
            "All settled payments: p50 {}, p99 {}. Offline payments only: p50 {}, p99 {}.\n",
            duration(self.lag_p50_secs),
            duration(self.lag_p99_secs),
            duration(self.offline_lag_p50_secs),
            duration(self.offline_lag_p99_secs)
        );
        let d = &self.double_spends;
        let _ = writeln!(s, "## Double spending\n");
        let _ = writeln!(
            s,
            "{} wallet(s) rolled back and spent the same money twice ({} second spends made). Caught: {} by the payee offline, {} online by the issuer, {} at settlement (first settled wins) — {}. Lost by payees: {} (ledger: {}); largest loss against one cheater {}, {} its offline limit. Keys revoked: {}. Syncs refused: {}.\n",
            d.cheaters,
            d.attempted,
            d.caught_by_payee,
            d.caught_online,
            d.caught_at_settlement,
            if d.all_detected {
                "every one"
            } else {
                "NOT every one"
            },
            yuan_grouped(d.lost_by_payees_fen),
            yuan_grouped(d.lost_fen),
            yuan_grouped(d.max_loss_per_cheater_fen),
            if d.within_offline_limits {
                "within"
            } else {
                "OVER"
            },
            self.revocations,
            self.syncs_refused
        );
        if !self.refusals.is_empty() {
            let _ = writeln!(s, "Refusals by reason:\n");
            for (why, n) in &self.refusals {
                let _ = writeln!(s, "- {why}: {}", grouped(*n));
            }
            s.push('\n');
        }
        let i = &self.invariant;
        let _ = writeln!(s, "## Clawback and the closing invariant\n");
        let _ = writeln!(
            s,
            "Clawed back at the end of the window: {}.\n",
            yuan_grouped(i.clawed_back_fen)
        );
        let _ = writeln!(
            s,
            "- {} ledger audit (issued = redeemed + outstanding, recomputed from every coin; every transfer, proof and revocation checked){}",
            check(i.audit_ok),
            if i.audit_problems.is_empty() {
                String::new()
            } else {
                format!(": {}", i.audit_problems.join("; "))
            }
        );
        let _ = writeln!(
            s,
            "- {} envelopes {} + topped up {} = wallets {} + frozen at revoked cheaters {} + clawed back {} + cashed out {}, to the fen",
            check(i.money_adds_up),
            yuan_grouped(i.envelopes_fen),
            yuan_grouped(i.topped_up_fen),
            yuan_grouped(i.wallets_fen),
            yuan_grouped(i.frozen_fen),
            yuan_grouped(i.clawed_back_fen),
            yuan_grouped(i.cashed_out_fen)
        );
        let _ = writeln!(
            s,
            "- {} every wallet holds what the ledger says it holds ({} differ)",
            check(i.mismatched_wallets == 0),
            i.mismatched_wallets
        );
        let _ = writeln!(
            s,
            "- {} offline payments accepted {} = settled {} + lost to double spends {}, to the fen (losses as booked by the ledger)",
            check(i.payees_add_up),
            yuan_grouped(i.accepted_offline_fen),
            yuan_grouped(i.settled_offline_fen),
            yuan_grouped(i.lost_offline_fen)
        );
        let _ = writeln!(
            s,
            "\nCharts: daily-spending.svg, settlement-lag.svg, double-spend-exposure.svg. Day by day: daily.csv."
        );
        s
    }

    /// report.json
    pub fn json(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(self)? + "\n")
    }

    /// daily.csv
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "day,date,claims,online,offline,dual_offline,cash_on_delivery,transfers,online_yuan,offline_yuan,dual_offline_yuan,cash_on_delivery_yuan,transfers_yuan,envelope_spent_yuan,own_spent_yuan,settled,exposure_yuan,double_spends,losses_yuan,syncs\n",
        );
        for r in &self.daily {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                r.day + 1,
                r.date,
                r.claims,
                r.payments[0],
                r.payments[1],
                r.payments[2],
                r.payments[3],
                r.payments[4],
                yuan(r.value_fen[0]),
                yuan(r.value_fen[1]),
                yuan(r.value_fen[2]),
                yuan(r.value_fen[3]),
                yuan(r.value_fen[4]),
                yuan(r.envelope_fen),
                yuan(r.own_fen),
                r.settled,
                yuan(r.exposure_fen),
                r.double_spends,
                yuan(r.losses_fen),
                r.syncs
            );
        }
        s
    }

    /// Whether the money in the pilot adds up.
    pub fn holds(&self) -> bool {
        self.invariant.holds
    }

    /// Total envelope money issued.
    pub fn envelopes(&self) -> Fen {
        Fen(self.invariant.envelopes_fen)
    }
}
