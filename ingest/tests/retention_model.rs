//! Retention checked against an independent model:
//!
//! - `reference` re-states the PBS rules the "group, then take the n newest groups" way, not
//!   as PBS's single newest-first pass with a `break`, so a shared mistake is unlikely.
//! - A simulated year of daily backups (an injected clock, pruned after every backup like
//!   `vzsnap ingest` does) is compared with the model every day, and its final set is also
//!   asserted as concrete dates worked out by hand from the rules.
//! - Property tests: protected backups survive any policy; the result is a deterministic
//!   function of the input (not of its order); it matches the model; pruning is idempotent.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ingest::retention::{
    Backup, KeepPolicy, KeepReason, Periods, Rule, Verdict, compute_prune_info,
};
use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use proptest::prelude::*;

mod reference {
    use super::*;

    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Keep,
        Remove,
    }

    /// The names `policy` keeps, computed group-wise.
    pub fn kept(backups: &[Backup], policy: &KeepPolicy, tz: &TimeZone) -> BTreeSet<String> {
        let positive: Vec<(Rule, usize)> = Rule::ALL
            .iter()
            .filter_map(|&r| {
                policy
                    .get(r)
                    .filter(|&n| n > 0)
                    .map(|n| (r, n.min(usize::MAX as u64) as usize))
            })
            .collect();
        if positive.is_empty() {
            return backups.iter().map(|b| b.name.clone()).collect();
        }
        let mut sorted: Vec<&Backup> = backups.iter().collect();
        sorted.sort_by(|a, b| (b.time, &b.name, b.protected).cmp(&(a.time, &a.name, a.protected)));
        let periods: Vec<Periods> = sorted
            .iter()
            .map(|b| Periods::of(&b.name, b.time, tz).unwrap())
            .collect();
        let mut state: HashMap<usize, State> = HashMap::new();

        for (rule, n) in positive {
            let covered: HashSet<String> = state
                .iter()
                .filter(|(_, s)| **s == State::Keep)
                .map(|(&i, _)| periods[i].key(rule).to_string())
                .collect();
            // The periods of the still-open backups, newest period first, with their members.
            let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
            for (i, b) in sorted.iter().enumerate() {
                if b.protected || state.contains_key(&i) {
                    continue;
                }
                let key = periods[i].key(rule).to_string();
                if covered.contains(&key) {
                    continue;
                }
                match groups.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, members)) => members.push(i),
                    None => groups.push((key, vec![i])),
                }
            }
            for (_, members) in groups.into_iter().take(n) {
                state.insert(members[0], State::Keep);
                for &m in &members[1..] {
                    state.insert(m, State::Remove);
                }
            }
        }
        sorted
            .iter()
            .enumerate()
            .filter(|(i, b)| b.protected || state.get(i) == Some(&State::Keep))
            .map(|(_, b)| b.name.clone())
            .collect()
    }
}

fn kept_by_lib(backups: &[Backup], policy: &KeepPolicy, tz: &TimeZone) -> BTreeSet<String> {
    compute_prune_info(backups, policy, tz)
        .unwrap()
        .into_iter()
        .filter(|d| d.verdict.is_keep())
        .map(|d| d.backup.name)
        .collect()
}

fn berlin() -> TimeZone {
    TimeZone::get("Europe/Berlin").unwrap()
}

/// A vzdump-style backup at 02:00 local time on `day` (snapshot-name style name). On the
/// spring-forward day 02:00 does not exist; like vzdump's clock, it becomes 03:00.
fn nightly(day: Date, tz: &TimeZone) -> Backup {
    let zoned = day.at(2, 0, 0, 0).to_zoned(tz.clone()).unwrap();
    Backup {
        name: zoned.strftime("%Y_%m_%d-%H_%M_%S").to_string(),
        time: zoned.timestamp().as_second(),
        protected: false,
    }
}

fn year_policy() -> KeepPolicy {
    KeepPolicy {
        keep_daily: Some(7),
        keep_weekly: Some(4),
        keep_monthly: Some(6),
        ..Default::default()
    }
}

fn days(first: Date, last: Date) -> Vec<Date> {
    first
        .series(jiff::ToSpan::days(1))
        .take_while(|d| *d <= last)
        .collect()
}

/// What keep-daily=7, keep-weekly=4, keep-monthly=6 leaves after the backup of Wednesday
/// 2025-11-05, worked out by hand:
/// - daily: the 7 newest days, Nov 5 … Oct 30;
/// - weekly: ISO weeks 2025-W45 (Nov 3–) and W44 (Oct 27–Nov 2) are covered by dailies, so
///   Sundays Oct 26, 19, 12 and 5 (W43–W40);
/// - monthly: November and October are covered. W40 runs Mon Sep 29 – Sun Oct 5, so the
///   weekly rule marked Sep 29/30 Remove (sticky) and September's pick is Sun Sep 28; then
///   Aug 31, Jul 31, Jun 30, May 31, Apr 30.
const EXPECTED_2025_11_05: [&str; 17] = [
    "2025_04_30-02_00_00",
    "2025_05_31-02_00_00",
    "2025_06_30-02_00_00",
    "2025_07_31-02_00_00",
    "2025_08_31-02_00_00",
    "2025_09_28-02_00_00",
    "2025_10_05-02_00_00",
    "2025_10_12-02_00_00",
    "2025_10_19-02_00_00",
    "2025_10_26-02_00_00",
    "2025_10_30-02_00_00",
    "2025_10_31-02_00_00",
    "2025_11_01-02_00_00",
    "2025_11_02-02_00_00",
    "2025_11_03-02_00_00",
    "2025_11_04-02_00_00",
    "2025_11_05-02_00_00",
];

/// The same policy and dates, but pruned after every backup. This differs from pruning once
/// (a real PBS property, not a bug): a month's last days leave the daily window, are kept by
/// keep-monthly for a few days, and are then marked Remove by keep-weekly when their ISO week
/// (ending on a Sunday of the next month, or on the month's last Sunday) gets its weekly
/// pick, e.g. Wed Apr 30 goes on May 12 when Sun May 4 becomes W18's weekly backup. What is
/// left of a month is then the Sunday that was its last weekly pick: Apr 27, May 25 (May
/// 26–31 belong to the week of Sun Jun 1), Jun 29, Jul 27, Aug 31, Sep 28. Daily and weekly
/// picks are as in [`EXPECTED_2025_11_05`].
const EXPECTED_2025_11_05_PRUNED_DAILY: [&str; 17] = [
    "2025_04_27-02_00_00",
    "2025_05_25-02_00_00",
    "2025_06_29-02_00_00",
    "2025_07_27-02_00_00",
    "2025_08_31-02_00_00",
    "2025_09_28-02_00_00",
    "2025_10_05-02_00_00",
    "2025_10_12-02_00_00",
    "2025_10_19-02_00_00",
    "2025_10_26-02_00_00",
    "2025_10_30-02_00_00",
    "2025_10_31-02_00_00",
    "2025_11_01-02_00_00",
    "2025_11_02-02_00_00",
    "2025_11_03-02_00_00",
    "2025_11_04-02_00_00",
    "2025_11_05-02_00_00",
];

#[test]
fn a_year_of_daily_backups_pruned_once() {
    let tz = berlin();
    let all: Vec<Backup> = days(date(2024, 11, 6), date(2025, 11, 5))
        .into_iter()
        .map(|d| nightly(d, &tz))
        .collect();
    assert_eq!(all.len(), 365);
    let got = kept_by_lib(&all, &year_policy(), &tz);
    assert_eq!(got, reference::kept(&all, &year_policy(), &tz));
    let want: BTreeSet<String> = EXPECTED_2025_11_05.iter().map(|s| s.to_string()).collect();
    assert_eq!(got, want);

    // And the reasons, for the table admins read.
    let d = compute_prune_info(&all, &year_policy(), &tz).unwrap();
    let reasons: BTreeMap<&str, KeepReason> = d
        .iter()
        .filter_map(|d| match &d.verdict {
            Verdict::Keep { reason, .. } => Some((d.backup.name.as_str(), *reason)),
            Verdict::Remove { .. } => None,
        })
        .collect();
    assert_eq!(
        reasons["2025_10_30-02_00_00"],
        KeepReason::Rule(Rule::Daily)
    );
    assert_eq!(
        reasons["2025_10_05-02_00_00"],
        KeepReason::Rule(Rule::Weekly)
    );
    assert_eq!(
        reasons["2025_09_28-02_00_00"],
        KeepReason::Rule(Rule::Monthly)
    );
    assert_eq!(
        reasons["2025_04_30-02_00_00"],
        KeepReason::Rule(Rule::Monthly)
    );
}

/// The injected clock: one backup per night for a year, pruned right after each one (as
/// after every ingest). Every day the survivors must equal the model's, the newest backup
/// must survive, and no day may keep more than 7 + 4 + 6.
#[test]
fn a_year_of_daily_backups_pruned_every_day() {
    let tz = berlin();
    let policy = year_policy();
    let mut store: Vec<Backup> = Vec::new();
    let mut model: Vec<Backup> = Vec::new();
    for day in days(date(2024, 11, 6), date(2025, 11, 5)) {
        let b = nightly(day, &tz);
        store.push(b.clone());
        model.push(b.clone());

        let keep = kept_by_lib(&store, &policy, &tz);
        store.retain(|x| keep.contains(&x.name));
        let keep_model = reference::kept(&model, &policy, &tz);
        model.retain(|x| keep_model.contains(&x.name));

        assert_eq!(keep, keep_model, "on {day}");
        assert!(keep.contains(&b.name), "the newest backup survives ({day})");
        assert!(store.len() <= 17, "{day}: {} kept", store.len());
    }
    let names: Vec<&str> = store.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, EXPECTED_2025_11_05_PRUNED_DAILY);
}

#[test]
fn nightly_backups_on_the_dst_days_keep_their_local_day() {
    let tz = berlin();
    // 2025-03-30: 02:00 does not exist in Berlin; vzdump's clock would have said 03:00.
    assert_eq!(nightly(date(2025, 3, 30), &tz).name, "2025_03_30-03_00_00");
    let b = nightly(date(2025, 10, 26), &tz);
    assert_eq!(
        Periods::of(&b.name, b.time, &tz).unwrap().key(Rule::Daily),
        "2025/10/26"
    );
}

// ---------------------------------------------------------------------------------------
// Properties

const ZONES: [&str; 4] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
];

fn arb_backups() -> impl Strategy<Value = Vec<Backup>> {
    // Times over ~3 years (2019–2021, with both DST switches and the W53 year) in uneven
    // steps; several backups per hour, day and week happen often.
    prop::collection::vec(
        (0i64..3 * 366 * 24, 0i64..3600, prop::bool::weighted(0.15)),
        0..60,
    )
    .prop_map(|v| {
        let base = 1_546_300_800; // 2019-01-01T00:00:00Z
        v.into_iter()
            .enumerate()
            .map(|(i, (h, s, protected))| Backup {
                name: format!("b{i:03}"),
                time: base + h * 3600 + s,
                protected,
            })
            .collect()
    })
}

fn arb_count() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![Just(None), Just(Some(0)), (1u64..12).prop_map(Some)]
}

fn arb_policy() -> impl Strategy<Value = KeepPolicy> {
    (
        arb_count(),
        arb_count(),
        arb_count(),
        arb_count(),
        arb_count(),
        arb_count(),
    )
        .prop_map(|(l, h, d, w, m, y)| KeepPolicy {
            keep_last: l,
            keep_hourly: h,
            keep_daily: d,
            keep_weekly: w,
            keep_monthly: m,
            keep_yearly: y,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn protected_backups_survive_any_policy(backups in arb_backups(), policy in arb_policy(), zone in 0..ZONES.len()) {
        let tz = TimeZone::get(ZONES[zone]).unwrap();
        let d = compute_prune_info(&backups, &policy, &tz).unwrap();
        prop_assert_eq!(d.len(), backups.len());
        for x in &d {
            if x.backup.protected {
                prop_assert_eq!(&x.verdict, &Verdict::Keep { reason: KeepReason::Protected, period: None });
            }
        }
        // Protected ones are not counted: the unprotected survivors are exactly what the
        // policy keeps of the unprotected backups alone.
        let unprotected: Vec<Backup> = backups.iter().filter(|b| !b.protected).cloned().collect();
        let alone = kept_by_lib(&unprotected, &policy, &tz);
        let with: BTreeSet<String> =
            d.iter().filter(|x| x.verdict.is_keep() && !x.backup.protected).map(|x| x.backup.name.clone()).collect();
        prop_assert_eq!(with, alone);
    }

    #[test]
    fn deterministic_and_independent_of_input_order(
        backups in arb_backups(),
        policy in arb_policy(),
        zone in 0..ZONES.len(),
        seed in any::<u64>(),
    ) {
        let tz = TimeZone::get(ZONES[zone]).unwrap();
        let a = compute_prune_info(&backups, &policy, &tz).unwrap();
        prop_assert_eq!(&a, &compute_prune_info(&backups, &policy, &tz).unwrap());
        let mut shuffled = backups.clone();
        // A cheap deterministic shuffle from the seed (Fisher–Yates with an LCG).
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(&a, &compute_prune_info(&shuffled, &policy, &tz).unwrap());
        // Newest first.
        prop_assert!(a.windows(2).all(|w| w[0].backup.time >= w[1].backup.time));
    }

    #[test]
    fn matches_the_model_and_rule_counts(backups in arb_backups(), policy in arb_policy(), zone in 0..ZONES.len()) {
        let tz = TimeZone::get(ZONES[zone]).unwrap();
        prop_assert_eq!(kept_by_lib(&backups, &policy, &tz), reference::kept(&backups, &policy, &tz));
        let d = compute_prune_info(&backups, &policy, &tz).unwrap();
        for rule in Rule::ALL {
            let n = d.iter().filter(|x| matches!(x.verdict, Verdict::Keep { reason: KeepReason::Rule(r), .. } if r == rule)).count();
            prop_assert!(n as u64 <= policy.get(rule).unwrap_or(0), "{rule}: {n}");
        }
        // With any positive option the newest unprotected backup is always kept.
        if policy.keeps_something()
            && let Some(newest) = d.iter().find(|x| !x.backup.protected)
        {
            prop_assert!(newest.verdict.is_keep());
        }
    }

    #[test]
    fn pruning_twice_removes_nothing_more(backups in arb_backups(), policy in arb_policy(), zone in 0..ZONES.len()) {
        let tz = TimeZone::get(ZONES[zone]).unwrap();
        let keep = kept_by_lib(&backups, &policy, &tz);
        let survivors: Vec<Backup> = backups.iter().filter(|b| keep.contains(&b.name)).cloned().collect();
        prop_assert_eq!(kept_by_lib(&survivors, &policy, &tz), keep);
    }
}
