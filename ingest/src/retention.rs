//! Retention: which backups a `keep-*` policy keeps, with Proxmox Backup Server semantics.
//!
//! [`compute_prune_info`] is a pure function (no store, no clock) re-stating PBS
//! `pbs-datastore/src/prune.rs` `compute_prune_info` + `mark_selections` exactly (see
//! shared/docs/ecosystem.md §4.1), because admins already know — and have tuned with the PBS
//! prune simulator — what `keep-daily=7,keep-weekly=4` means:
//!
//! - Backups are looked at newest first; rules run in the order last → hourly → daily →
//!   weekly → monthly → yearly, each only over backups earlier rules left unmarked.
//! - A rule keeps the newest backup of each of its `n` newest periods *that contain backups*;
//!   periods already holding a backup some earlier rule kept are skipped without counting.
//! - An older backup in a period the rule just kept is marked Remove, and that mark is
//!   sticky: coarser rules skip it (this matters where ISO weeks straddle months and years).
//! - Periods are in local time (the zone is a parameter, so tests can pin one); weeks are
//!   ISO-8601 (`%G/%V`, Monday-based, week-year at the year boundary).
//! - Protected backups are never removed and never counted: they neither fill a period nor
//!   use up a rule's count.
//! - `keep-X = 0` is the same as unset; a policy with no positive option keeps everything.
//!
//! Not copied: PBS's handling of unfinished backups (vzsnap never snapshots an unfinished
//! ingest, so there are none).

mod period;
mod policy;

use std::fmt;

/// The time zone type, re-exported so callers (the CLI) need no direct jiff dependency.
pub use jiff::tz::TimeZone;
pub use period::{Periods, format_local, zone_name};
pub use policy::{KeepPolicy, PruneConfig, Rule};

/// Retention input that cannot be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("backup {name}: time {time} is outside the supported range: {detail}")]
    TimeOutOfRange {
        name: String,
        time: i64,
        detail: String,
    },
    #[error("time zone {name:?}: {detail}")]
    TimeZone { name: String, detail: String },
}

/// One backup as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Backup {
    /// Identifies the backup in the result (the snapshot name).
    pub name: String,
    /// Backup time, seconds since the epoch (the time vzdump put in the file name).
    pub time: i64,
    /// Held/protected: never removed, never counted.
    pub protected: bool,
}

/// Why a backup is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeepReason {
    /// Selected by a rule (the newest backup of one of the rule's periods).
    Rule(Rule),
    /// Protected (held); rules never look at it.
    Protected,
    /// The policy has no positive `keep-*` option, so everything is kept.
    KeepAll,
}

impl fmt::Display for KeepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepReason::Rule(r) => f.write_str(r.as_str()),
            KeepReason::Protected => f.write_str("protected"),
            KeepReason::KeepAll => f.write_str("keep-all"),
        }
    }
}

/// Why a backup is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemoveReason {
    /// A newer backup in the same period of this rule was kept (PBS's sticky `Remove` mark).
    Superseded(Rule),
    /// No rule selected it (its periods were covered already, or every rule was used up).
    Unselected,
}

impl fmt::Display for RemoveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoveReason::Superseded(r) => write!(f, "superseded ({r})"),
            RemoveReason::Unselected => f.write_str("unselected"),
        }
    }
}

/// The verdict on one backup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Kept. `period` is the rule's period key (e.g. `2025/11/05` for daily, `2025/44` for an
    /// ISO week) when a rule kept it.
    Keep {
        reason: KeepReason,
        period: Option<String>,
    },
    /// Removed. `period` is the key of the rule period it was superseded in, if any.
    Remove {
        reason: RemoveReason,
        period: Option<String>,
    },
}

impl Verdict {
    pub fn is_keep(&self) -> bool {
        matches!(self, Verdict::Keep { .. })
    }
}

/// One backup with its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decision {
    pub backup: Backup,
    pub verdict: Verdict,
}

/// PBS's per-backup mark while the rules run.
#[derive(Debug, Clone)]
enum Mark {
    Keep(Rule),
    Remove(Rule),
}

/// Applies `policy` to `backups` in time zone `tz`; returns every backup with its verdict,
/// **newest first** (ties in time broken by name, so the result does not depend on the input
/// order). Deleting should go oldest first, i.e. in reverse.
pub fn compute_prune_info(
    backups: &[Backup],
    policy: &KeepPolicy,
    tz: &TimeZone,
) -> Result<Vec<Decision>, RetentionError> {
    let mut list: Vec<&Backup> = backups.iter().collect();
    list.sort_by(|a, b| (b.time, &b.name, b.protected).cmp(&(a.time, &a.name, a.protected)));

    if !policy.keeps_something() {
        return Ok(list
            .into_iter()
            .map(|b| Decision {
                backup: b.clone(),
                verdict: Verdict::Keep {
                    reason: if b.protected {
                        KeepReason::Protected
                    } else {
                        KeepReason::KeepAll
                    },
                    period: None,
                },
            })
            .collect());
    }

    let periods: Vec<Periods> = list
        .iter()
        .map(|b| Periods::of(&b.name, b.time, tz))
        .collect::<Result<_, _>>()?;
    let mut marks: Vec<Option<Mark>> = vec![None; list.len()];

    for rule in Rule::ALL {
        let Some(keep) = policy.get(rule) else {
            continue;
        };
        mark_selections(
            &list,
            &periods,
            &mut marks,
            rule,
            usize::try_from(keep).unwrap_or(usize::MAX),
        );
    }

    Ok(list
        .into_iter()
        .zip(periods)
        .zip(marks)
        .map(|((b, p), mark)| {
            let verdict = match (b.protected, mark) {
                (true, _) => Verdict::Keep {
                    reason: KeepReason::Protected,
                    period: None,
                },
                (false, Some(Mark::Keep(r))) => Verdict::Keep {
                    reason: KeepReason::Rule(r),
                    period: Some(p.key(r).to_string()),
                },
                (false, Some(Mark::Remove(r))) => Verdict::Remove {
                    reason: RemoveReason::Superseded(r),
                    period: Some(p.key(r).to_string()),
                },
                (false, None) => Verdict::Remove {
                    reason: RemoveReason::Unselected,
                    period: None,
                },
            };
            Decision {
                backup: b.clone(),
                verdict,
            }
        })
        .collect())
}

/// PBS `mark_selections` for one rule over the newest-first `list`.
fn mark_selections(
    list: &[&Backup],
    periods: &[Periods],
    marks: &mut [Option<Mark>],
    rule: Rule,
    keep: usize,
) {
    // Periods already represented by a backup an earlier rule kept: skipped, not counted.
    let already: std::collections::HashSet<&str> = marks
        .iter()
        .zip(periods)
        .filter(|(m, _)| matches!(m, Some(Mark::Keep(_))))
        .map(|(_, p)| p.key(rule))
        .collect();
    let mut chosen: std::collections::HashSet<&str> = std::collections::HashSet::new();

    for (i, b) in list.iter().enumerate() {
        // Anything marked by an earlier rule (Keep or the sticky Remove) is not looked at,
        // and protected backups are invisible to every rule.
        if marks[i].is_some() || b.protected {
            continue;
        }
        let key = periods[i].key(rule);
        if already.contains(key) {
            continue;
        }
        if chosen.contains(key) {
            marks[i] = Some(Mark::Remove(rule));
        } else {
            if chosen.len() >= keep {
                break;
            }
            chosen.insert(key);
            marks[i] = Some(Mark::Keep(rule));
        }
    }
}

#[cfg(test)]
mod tests;
