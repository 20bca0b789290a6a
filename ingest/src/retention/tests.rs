//! The PBS examples (proxmox-backup `tests/prune.rs`, docs/maintenance.rst, the prune
//! simulator's rules) plus the corners PBS handles implicitly: sticky Remove marks, ISO weeks
//! across a year boundary, DST in Europe/Berlin, protected backups.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::*;

fn at(rfc3339: &str) -> i64 {
    rfc3339.parse::<Timestamp>().unwrap().as_second()
}

fn backup(t: &str) -> Backup {
    Backup {
        name: t.to_string(),
        time: at(t),
        protected: false,
    }
}

fn berlin() -> TimeZone {
    TimeZone::get("Europe/Berlin").unwrap()
}

fn policy(f: impl FnOnce(&mut KeepPolicy)) -> KeepPolicy {
    let mut p = KeepPolicy::default();
    f(&mut p);
    p
}

/// Names kept (`want_kept`) or removed, oldest first — the shape of PBS's `get_prune_list`.
fn names(backups: &[Backup], p: &KeepPolicy, tz: &TimeZone, want_kept: bool) -> Vec<String> {
    let mut d = compute_prune_info(backups, p, tz).unwrap();
    d.reverse();
    d.into_iter()
        .filter(|d| d.verdict.is_keep() == want_kept)
        .map(|d| d.backup.name)
        .collect()
}

fn kept(backups: &[Backup], p: &KeepPolicy, tz: &TimeZone) -> Vec<String> {
    names(backups, p, tz, true)
}

fn removed(backups: &[Backup], p: &KeepPolicy, tz: &TimeZone) -> Vec<String> {
    names(backups, p, tz, false)
}

fn list(ts: &[&str]) -> Vec<Backup> {
    ts.iter().map(|t| backup(t)).collect()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// PBS's test suite runs with a UTC clock; its timestamps are `Z`.
const UTC: TimeZone = TimeZone::UTC;

#[test]
fn pbs_test_prune_simple() {
    let l = list(&[
        "2019-12-02T11:59:15Z",
        "2019-12-03T11:59:15Z",
        "2019-12-04T11:59:15Z",
        "2019-12-04T12:59:15Z",
    ]);
    let r = |p: KeepPolicy| removed(&l, &p, &UTC);

    // keep-last
    assert_eq!(r(policy(|p| p.keep_last = Some(4))), strs(&[]));
    assert_eq!(
        r(policy(|p| p.keep_last = Some(3))),
        strs(&["2019-12-02T11:59:15Z"])
    );
    assert_eq!(
        r(policy(|p| p.keep_last = Some(2))),
        strs(&["2019-12-02T11:59:15Z", "2019-12-03T11:59:15Z"])
    );
    assert_eq!(
        r(policy(|p| p.keep_last = Some(1))),
        strs(&[
            "2019-12-02T11:59:15Z",
            "2019-12-03T11:59:15Z",
            "2019-12-04T11:59:15Z"
        ])
    );
    // PBS's bare compute_prune_info removes everything for keep-last=0, but its API (and
    // PVE) first checks `keeps_something()` and keeps all; vzsnap behaves like the API.
    assert_eq!(r(policy(|p| p.keep_last = Some(0))), strs(&[]));
    assert!(
        compute_prune_info(&l, &policy(|p| p.keep_last = Some(0)), &UTC)
            .unwrap()
            .iter()
            .all(|d| d.verdict
                == Verdict::Keep {
                    reason: KeepReason::KeepAll,
                    period: None
                })
    );

    // keep-last + keep-daily
    assert_eq!(
        r(policy(|p| {
            p.keep_last = Some(2);
            p.keep_daily = Some(2);
        })),
        strs(&[])
    );
    // keep-daily
    assert_eq!(
        r(policy(|p| p.keep_daily = Some(3))),
        strs(&["2019-12-04T11:59:15Z"])
    );
    assert_eq!(
        r(policy(|p| p.keep_daily = Some(2))),
        strs(&["2019-12-02T11:59:15Z", "2019-12-04T11:59:15Z"])
    );
    // all in one week / month / year: only one is kept
    let all_but_newest = strs(&[
        "2019-12-02T11:59:15Z",
        "2019-12-03T11:59:15Z",
        "2019-12-04T11:59:15Z",
    ]);
    assert_eq!(r(policy(|p| p.keep_weekly = Some(5))), all_but_newest);
    assert_eq!(
        r(policy(|p| {
            p.keep_daily = Some(1);
            p.keep_weekly = Some(5);
        })),
        all_but_newest
    );
    assert_eq!(r(policy(|p| p.keep_monthly = Some(6))), all_but_newest);
    assert_eq!(r(policy(|p| p.keep_yearly = Some(7))), all_but_newest);
    assert_eq!(
        r(policy(|p| {
            p.keep_weekly = Some(5);
            p.keep_monthly = Some(6);
            p.keep_yearly = Some(7);
        })),
        all_but_newest
    );
}

#[test]
fn pbs_test_prune_simple2() {
    let l = list(&[
        "2018-11-15T11:59:15Z",
        "2019-11-15T11:59:15Z",
        "2019-11-21T11:59:15Z",
        "2019-11-22T11:59:15Z",
        "2019-11-29T11:59:15Z",
        "2019-12-01T11:59:15Z",
        "2019-12-02T11:59:15Z",
        "2019-12-03T11:59:15Z",
        "2019-12-04T11:59:15Z",
    ]);
    let k = |p: KeepPolicy| kept(&l, &p, &UTC);

    assert_eq!(
        k(policy(|p| p.keep_daily = Some(1))),
        strs(&["2019-12-04T11:59:15Z"])
    );
    assert_eq!(
        k(policy(|p| {
            p.keep_last = Some(1);
            p.keep_daily = Some(1);
        })),
        strs(&["2019-12-03T11:59:15Z", "2019-12-04T11:59:15Z"])
    );
    // Sunday 2019-12-01 is the previous ISO week of Wednesday 2019-12-04.
    assert_eq!(
        k(policy(|p| {
            p.keep_daily = Some(1);
            p.keep_weekly = Some(1);
        })),
        strs(&["2019-12-01T11:59:15Z", "2019-12-04T11:59:15Z"])
    );
    assert_eq!(
        k(policy(|p| {
            p.keep_daily = Some(1);
            p.keep_weekly = Some(1);
            p.keep_monthly = Some(1);
        })),
        strs(&[
            "2019-11-22T11:59:15Z",
            "2019-12-01T11:59:15Z",
            "2019-12-04T11:59:15Z"
        ])
    );
    assert_eq!(
        k(policy(|p| {
            p.keep_monthly = Some(1);
            p.keep_yearly = Some(1);
        })),
        strs(&["2018-11-15T11:59:15Z", "2019-12-04T11:59:15Z"])
    );
}

#[test]
fn pbs_test_prune_hourly_several_per_hour() {
    let l = list(&[
        "2019-11-15T09:39:15Z",
        "2019-11-15T10:49:15Z",
        "2019-11-15T10:59:15Z",
        "2019-11-15T11:39:15Z",
        "2019-11-15T11:49:15Z",
        "2019-11-15T11:59:15Z",
    ]);
    assert_eq!(
        removed(&l, &policy(|p| p.keep_hourly = Some(3)), &UTC),
        strs(&[
            "2019-11-15T10:49:15Z",
            "2019-11-15T11:39:15Z",
            "2019-11-15T11:49:15Z"
        ])
    );
    assert_eq!(
        kept(&l, &policy(|p| p.keep_hourly = Some(2)), &UTC),
        strs(&["2019-11-15T10:59:15Z", "2019-11-15T11:59:15Z"])
    );
    // The older backups of a kept hour carry the sticky Remove mark; 09:39 was never reached.
    let d = compute_prune_info(&l, &policy(|p| p.keep_hourly = Some(2)), &UTC).unwrap();
    let by_name = |n: &str| {
        d.iter()
            .find(|d| d.backup.name == n)
            .unwrap()
            .verdict
            .clone()
    };
    assert_eq!(
        by_name("2019-11-15T11:39:15Z"),
        Verdict::Remove {
            reason: RemoveReason::Superseded(Rule::Hourly),
            period: Some("2019/11/15/11".into())
        }
    );
    assert_eq!(
        by_name("2019-11-15T10:59:15Z"),
        Verdict::Keep {
            reason: KeepReason::Rule(Rule::Hourly),
            period: Some("2019/11/15/10".into())
        }
    );
    assert_eq!(
        by_name("2019-11-15T09:39:15Z"),
        Verdict::Remove {
            reason: RemoveReason::Unselected,
            period: None
        }
    );
}

/// ecosystem.md §4.1: A = Monday 10:00, B = Monday 09:00, C = the Sunday before;
/// keep-daily=1, keep-weekly=1 keeps A and C.
#[test]
fn sticky_remove_daily_then_weekly() {
    let l = list(&[
        "2019-12-01T12:00:00Z",
        "2019-12-02T09:00:00Z",
        "2019-12-02T10:00:00Z",
    ]);
    let p = policy(|p| {
        p.keep_daily = Some(1);
        p.keep_weekly = Some(1);
    });
    let d = compute_prune_info(&l, &p, &UTC).unwrap();
    let v: Vec<(&str, &Verdict)> = d
        .iter()
        .map(|d| (d.backup.name.as_str(), &d.verdict))
        .collect();
    assert_eq!(
        v,
        [
            (
                "2019-12-02T10:00:00Z",
                &Verdict::Keep {
                    reason: KeepReason::Rule(Rule::Daily),
                    period: Some("2019/12/02".into())
                }
            ),
            (
                "2019-12-02T09:00:00Z",
                &Verdict::Remove {
                    reason: RemoveReason::Superseded(Rule::Daily),
                    period: Some("2019/12/02".into())
                }
            ),
            (
                "2019-12-01T12:00:00Z",
                &Verdict::Keep {
                    reason: KeepReason::Rule(Rule::Weekly),
                    period: Some("2019/48".into())
                }
            ),
        ]
    );
}

/// Where stickiness changes the outcome: an ISO week straddling a month boundary. The
/// weekly rule keeps Tue 2019-10-01 and marks Mon 2019-09-30 (same week) Remove; the monthly
/// rule must then skip 09-30 and keep 09-15 for September. A non-sticky implementation would
/// keep 09-30.
#[test]
fn sticky_remove_week_straddling_a_month() {
    let l = list(&[
        "2019-09-15T12:00:00Z",
        "2019-09-30T12:00:00Z",
        "2019-10-01T12:00:00Z",
    ]);
    let p = policy(|p| {
        p.keep_weekly = Some(1);
        p.keep_monthly = Some(2);
    });
    assert_eq!(
        kept(&l, &p, &UTC),
        strs(&["2019-09-15T12:00:00Z", "2019-10-01T12:00:00Z"])
    );
    let d = compute_prune_info(&l, &p, &UTC).unwrap();
    assert_eq!(
        d[1].verdict,
        Verdict::Remove {
            reason: RemoveReason::Superseded(Rule::Weekly),
            period: Some("2019/40".into())
        }
    );
    assert_eq!(
        d[2].verdict,
        Verdict::Keep {
            reason: KeepReason::Rule(Rule::Monthly),
            period: Some("2019/09".into())
        }
    );
}

/// Thu 2020-12-31 and Sun 2021-01-03 are both in ISO week 2020-W53 (%G/%V), although their
/// calendar years differ; Mon 2021-01-04 starts 2021-W01.
#[test]
fn iso_week_across_the_year_boundary() {
    let l = list(&[
        "2020-12-20T12:00:00Z",
        "2020-12-31T12:00:00Z",
        "2021-01-03T12:00:00Z",
        "2021-01-04T12:00:00Z",
    ]);
    let d = compute_prune_info(&l, &policy(|p| p.keep_weekly = Some(2)), &UTC).unwrap();
    let v: Vec<(&str, bool, Option<&str>)> = d
        .iter()
        .map(|d| {
            (
                d.backup.name.as_str(),
                d.verdict.is_keep(),
                period_of(&d.verdict),
            )
        })
        .collect();
    assert_eq!(
        v,
        [
            ("2021-01-04T12:00:00Z", true, Some("2021/01")),
            ("2021-01-03T12:00:00Z", true, Some("2020/53")),
            ("2020-12-31T12:00:00Z", false, Some("2020/53")),
            ("2020-12-20T12:00:00Z", false, None),
        ]
    );

    // weekly=1 keeps Jan 3 for W53 and marks Dec 31 Remove; yearly then skips the marked
    // Dec 31 and keeps Dec 20 as 2020's backup.
    let l = list(&[
        "2020-12-20T12:00:00Z",
        "2020-12-31T12:00:00Z",
        "2021-01-03T12:00:00Z",
    ]);
    let p = policy(|p| {
        p.keep_weekly = Some(1);
        p.keep_yearly = Some(2);
    });
    assert_eq!(
        kept(&l, &p, &UTC),
        strs(&["2020-12-20T12:00:00Z", "2021-01-03T12:00:00Z"])
    );
}

fn period_of(v: &Verdict) -> Option<&str> {
    match v {
        Verdict::Keep { period, .. } | Verdict::Remove { period, .. } => period.as_deref(),
    }
}

/// Autumn: 2021-10-31 03:00 CEST → 02:00 CET, so 02:30 happens twice. Both are local hour
/// 02 of the same day; in UTC they are different hours.
#[test]
fn dst_fall_back_in_berlin() {
    let l = list(&[
        "2021-10-31T00:30:00Z", // 02:30 CEST
        "2021-10-31T01:30:00Z", // 02:30 CET
        "2021-10-31T02:30:00Z", // 03:30 CET
    ]);
    let p = policy(|p| p.keep_hourly = Some(2));
    assert_eq!(
        kept(&l, &p, &berlin()),
        strs(&["2021-10-31T01:30:00Z", "2021-10-31T02:30:00Z"])
    );
    let d = compute_prune_info(&l, &p, &berlin()).unwrap();
    assert_eq!(
        d[2].verdict,
        Verdict::Remove {
            reason: RemoveReason::Superseded(Rule::Hourly),
            period: Some("2021/10/31/02".into())
        }
    );
    // In UTC the three are distinct hours: the two newest are kept, the oldest unselected.
    assert_eq!(
        kept(&l, &p, &UTC),
        strs(&["2021-10-31T01:30:00Z", "2021-10-31T02:30:00Z"])
    );
    assert_eq!(
        compute_prune_info(&l, &p, &UTC).unwrap()[2].verdict,
        Verdict::Remove {
            reason: RemoveReason::Unselected,
            period: None
        }
    );
    // keep-hourly=3 keeps all three in UTC but not in Berlin.
    let p3 = policy(|p| p.keep_hourly = Some(3));
    assert_eq!(kept(&l, &p3, &UTC).len(), 3);
    assert_eq!(kept(&l, &p3, &berlin()).len(), 2);
    // The doubled hour is one day too: keep-daily=1 keeps only the newest.
    assert_eq!(
        kept(&l, &policy(|p| p.keep_daily = Some(1)), &berlin()),
        strs(&["2021-10-31T02:30:00Z"])
    );
}

/// Spring: 2021-03-28 02:00 CET → 03:00 CEST. Local midnight is 23:00 UTC before and 22:00
/// UTC after the switch, so day boundaries differ from UTC's.
#[test]
fn dst_spring_forward_in_berlin() {
    // One second apart, but local hours 01 and 03 (02 does not exist that night).
    let l = list(&["2021-03-28T00:59:59Z", "2021-03-28T01:00:00Z"]);
    let d = compute_prune_info(&l, &policy(|p| p.keep_hourly = Some(2)), &berlin()).unwrap();
    let periods: Vec<Option<&str>> = d.iter().map(|d| period_of(&d.verdict)).collect();
    assert_eq!(periods, [Some("2021/03/28/03"), Some("2021/03/28/01")]);

    let l = list(&[
        "2021-03-27T22:30:00Z", // Sat 23:30 CET (27th)
        "2021-03-27T23:30:00Z", // Sun 00:30 CET (28th) — still the 27th in UTC
        "2021-03-28T21:30:00Z", // Sun 23:30 CEST (28th)
    ]);
    let p = policy(|p| p.keep_daily = Some(2));
    assert_eq!(
        kept(&l, &p, &berlin()),
        strs(&["2021-03-27T22:30:00Z", "2021-03-28T21:30:00Z"])
    );
    assert_eq!(
        kept(&l, &p, &UTC),
        strs(&["2021-03-27T23:30:00Z", "2021-03-28T21:30:00Z"])
    );
    // A week that ends on the switch day: Sunday 23:30 CEST is still ISO week 12 locally,
    // while in UTC (21:30) too — but 2021-03-28T22:30Z is Monday 00:30 CEST, week 13.
    let p = Periods::of("x", at("2021-03-28T22:30:00Z"), &berlin()).unwrap();
    assert_eq!(p.key(Rule::Weekly), "2021/13");
    let p = Periods::of("x", at("2021-03-28T22:30:00Z"), &UTC).unwrap();
    assert_eq!(p.key(Rule::Weekly), "2021/12");
}

#[test]
fn protected_backups_are_kept_and_not_counted() {
    let mut l = list(&[
        "2019-12-01T12:00:00Z",
        "2019-12-02T12:00:00Z",
        "2019-12-03T12:00:00Z",
        "2019-12-04T12:00:00Z",
    ]);
    l[3].protected = true; // the newest
    let d = compute_prune_info(&l, &policy(|p| p.keep_last = Some(1)), &UTC).unwrap();
    let v: Vec<(&str, bool)> = d
        .iter()
        .map(|d| (d.backup.name.as_str(), d.verdict.is_keep()))
        .collect();
    assert_eq!(
        v,
        [
            ("2019-12-04T12:00:00Z", true),
            ("2019-12-03T12:00:00Z", true),
            ("2019-12-02T12:00:00Z", false),
            ("2019-12-01T12:00:00Z", false),
        ]
    );
    assert_eq!(
        d[0].verdict,
        Verdict::Keep {
            reason: KeepReason::Protected,
            period: None
        }
    );
    assert_eq!(
        d[1].verdict,
        Verdict::Keep {
            reason: KeepReason::Rule(Rule::Last),
            period: Some(at("2019-12-03T12:00:00Z").to_string())
        }
    );

    // A protected backup does not fill its day: the older one of that day is the daily pick.
    let mut l = list(&["2019-12-04T09:00:00Z", "2019-12-04T12:00:00Z"]);
    l[1].protected = true;
    assert_eq!(kept(&l, &policy(|p| p.keep_daily = Some(1)), &UTC).len(), 2);

    // An old protected backup survives a policy that removes everything around it.
    let mut l = list(&[
        "2019-01-01T12:00:00Z",
        "2019-06-01T12:00:00Z",
        "2019-12-04T12:00:00Z",
    ]);
    l[0].protected = true;
    assert_eq!(
        kept(&l, &policy(|p| p.keep_last = Some(1)), &UTC),
        strs(&["2019-01-01T12:00:00Z", "2019-12-04T12:00:00Z"])
    );
}

#[test]
fn no_positive_option_keeps_everything() {
    let mut l = list(&["2019-12-01T12:00:00Z", "2019-12-02T12:00:00Z"]);
    l[0].protected = true;
    let all_zero = KeepPolicy {
        keep_last: Some(0),
        keep_hourly: Some(0),
        keep_daily: Some(0),
        keep_weekly: Some(0),
        keep_monthly: Some(0),
        keep_yearly: Some(0),
    };
    for p in [KeepPolicy::default(), all_zero] {
        let d = compute_prune_info(&l, &p, &UTC).unwrap();
        assert_eq!(
            d[0].verdict,
            Verdict::Keep {
                reason: KeepReason::KeepAll,
                period: None
            }
        );
        assert_eq!(
            d[1].verdict,
            Verdict::Keep {
                reason: KeepReason::Protected,
                period: None
            }
        );
    }
    // Zero next to a positive option is simply ignored.
    let p = policy(|p| {
        p.keep_last = Some(0);
        p.keep_daily = Some(1);
    });
    assert_eq!(kept(&l, &p, &UTC).len(), 2);
    assert_eq!(
        compute_prune_info(&l, &p, &UTC).unwrap()[0].verdict,
        Verdict::Keep {
            reason: KeepReason::Rule(Rule::Daily),
            period: Some("2019/12/02".into())
        }
    );
}

#[test]
fn huge_counts_and_empty_input() {
    let l = list(&["2019-12-01T12:00:00Z", "2019-12-02T12:00:00Z"]);
    assert_eq!(
        kept(&l, &policy(|p| p.keep_last = Some(u64::MAX)), &UTC).len(),
        2
    );
    assert!(
        compute_prune_info(&[], &policy(|p| p.keep_last = Some(1)), &UTC)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn result_does_not_depend_on_input_order() {
    let l = list(&[
        "2019-12-03T12:00:00Z",
        "2019-12-01T12:00:00Z",
        "2019-12-04T12:00:00Z",
        "2019-12-02T12:00:00Z",
    ]);
    let mut rev = l.clone();
    rev.reverse();
    let p = policy(|p| p.keep_last = Some(2));
    let a = compute_prune_info(&l, &p, &UTC).unwrap();
    assert_eq!(a, compute_prune_info(&rev, &p, &UTC).unwrap());
    assert_eq!(a[0].backup.name, "2019-12-04T12:00:00Z", "newest first");
}

#[test]
fn out_of_range_time_is_reported() {
    let l = [Backup {
        name: "bad".into(),
        time: i64::MAX,
        protected: false,
    }];
    let err = compute_prune_info(&l, &policy(|p| p.keep_last = Some(1)), &UTC).unwrap_err();
    assert!(
        matches!(err, RetentionError::TimeOutOfRange { ref name, .. } if name == "bad"),
        "{err}"
    );
    // Keep-all never needs the periods, so it cannot fail.
    assert!(compute_prune_info(&l, &KeepPolicy::default(), &UTC).is_ok());
}
