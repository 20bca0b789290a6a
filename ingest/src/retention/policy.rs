//! The retention policy: PVE/PBS `keep-*` options, and the `[prune]` configuration tables.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One retention rule. The order of [`Rule::ALL`] is the order PBS applies them in, which
/// matters: a rule only looks at backups earlier rules left unmarked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Rule {
    /// Application order (PBS `compute_prune_info`): last → hourly → daily → weekly →
    /// monthly → yearly.
    pub const ALL: [Rule; 6] = [
        Rule::Last,
        Rule::Hourly,
        Rule::Daily,
        Rule::Weekly,
        Rule::Monthly,
        Rule::Yearly,
    ];

    /// The option name users know from PVE's `prune-backups` and PBS, e.g. `keep-daily`.
    pub fn option_name(self) -> &'static str {
        match self {
            Rule::Last => "keep-last",
            Rule::Hourly => "keep-hourly",
            Rule::Daily => "keep-daily",
            Rule::Weekly => "keep-weekly",
            Rule::Monthly => "keep-monthly",
            Rule::Yearly => "keep-yearly",
        }
    }

    /// Short name (`last`, `hourly`, …) for tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Last => "last",
            Rule::Hourly => "hourly",
            Rule::Daily => "daily",
            Rule::Weekly => "weekly",
            Rule::Monthly => "monthly",
            Rule::Yearly => "yearly",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many backups each rule keeps, with PVE's option names as (TOML/JSON) keys.
///
/// `None` and `Some(0)` mean the same: the rule does nothing. A policy where no option is
/// positive keeps **everything** (PBS `keep_all = !keeps_something()`, PVE's default
/// `keep-all=1`), so an empty policy can never delete a backup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct KeepPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_hourly: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_yearly: Option<u64>,
}

impl KeepPolicy {
    /// The count configured for `rule` (`None` when unset).
    pub fn get(&self, rule: Rule) -> Option<u64> {
        match rule {
            Rule::Last => self.keep_last,
            Rule::Hourly => self.keep_hourly,
            Rule::Daily => self.keep_daily,
            Rule::Weekly => self.keep_weekly,
            Rule::Monthly => self.keep_monthly,
            Rule::Yearly => self.keep_yearly,
        }
    }

    /// Sets the count for `rule`.
    pub fn set(&mut self, rule: Rule, count: Option<u64>) {
        let slot = match rule {
            Rule::Last => &mut self.keep_last,
            Rule::Hourly => &mut self.keep_hourly,
            Rule::Daily => &mut self.keep_daily,
            Rule::Weekly => &mut self.keep_weekly,
            Rule::Monthly => &mut self.keep_monthly,
            Rule::Yearly => &mut self.keep_yearly,
        };
        *slot = count;
    }

    /// Whether any option is positive (PBS `keeps_something`). If not, everything is kept.
    pub fn keeps_something(&self) -> bool {
        Rule::ALL
            .iter()
            .any(|&r| self.get(r).is_some_and(|n| n > 0))
    }
}

impl fmt::Display for KeepPolicy {
    /// PVE's property-string spelling (`keep-daily=7,keep-weekly=4`), or `keep-all` when the
    /// policy keeps everything.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.keeps_something() {
            return f.write_str("keep-all");
        }
        let mut first = true;
        for rule in Rule::ALL {
            if let Some(n) = self.get(rule).filter(|&n| n > 0) {
                if !first {
                    f.write_str(",")?;
                }
                write!(f, "{}={n}", rule.option_name())?;
                first = false;
            }
        }
        Ok(())
    }
}

fn default_true() -> bool {
    true
}

/// The `[prune]` configuration table:
///
/// ```toml
/// [prune]
/// keep-daily = 7          # default policy for every VM
/// keep-weekly = 4
/// keep-monthly = 6
/// after_ingest = true     # prune a VM right after each ingest (default true)
/// timezone = "Europe/Berlin"  # periods are computed in this zone (default: system local)
///
/// [prune.vm.100]          # VM 100 uses this policy INSTEAD of the default (no merging,
/// keep-last = 3           # like a vzdump job's prune-backups replacing the storage's);
///                         # an empty table keeps everything of that VM
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PruneConfig {
    // The default policy's keys sit directly in `[prune]`. They are spelled out rather than
    // `#[serde(flatten)]`ed from a `KeepPolicy`, because serde silently accepts unknown keys
    // when `flatten` and `deny_unknown_fields` are combined, and a typo must be an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_hourly: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_yearly: Option<u64>,
    /// Whether `vzsnap ingest` prunes a VM's volume after ingesting a backup into it.
    /// Spelled `after_ingest` like vzsnap's other own keys; only the `keep-*` keys use PVE's
    /// dashes, so they can be copied from a PVE `prune-backups` setting.
    #[serde(default = "default_true", rename = "after_ingest")]
    pub after_ingest: bool,
    /// IANA time zone for the hour/day/week/month/year periods; `None` = the system's local
    /// zone, which is also what vzdump used to name the backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Per-VM policies keyed by VMID (as a string, since TOML table keys are strings).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vm: BTreeMap<String, KeepPolicy>,
}

impl Default for PruneConfig {
    /// No `[prune]` table: keep everything, nothing to prune after ingest.
    fn default() -> Self {
        PruneConfig {
            keep_last: None,
            keep_hourly: None,
            keep_daily: None,
            keep_weekly: None,
            keep_monthly: None,
            keep_yearly: None,
            after_ingest: true,
            timezone: None,
            vm: BTreeMap::new(),
        }
    }
}

impl PruneConfig {
    /// The policy for one volume (VMID): its `[prune.vm.<VMID>]` table if there is one,
    /// otherwise the default.
    pub fn policy_for(&self, vmid: &str) -> KeepPolicy {
        self.vm
            .get(vmid)
            .copied()
            .unwrap_or_else(|| self.default_policy())
    }

    /// The policy from the `keep-*` keys directly in `[prune]`.
    pub fn default_policy(&self) -> KeepPolicy {
        KeepPolicy {
            keep_last: self.keep_last,
            keep_hourly: self.keep_hourly,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_yearly: self.keep_yearly,
        }
    }

    /// Resolves [`PruneConfig::timezone`] (the system zone when unset).
    pub fn time_zone(&self) -> Result<jiff::tz::TimeZone, crate::retention::RetentionError> {
        match &self.timezone {
            None => Ok(jiff::tz::TimeZone::system()),
            Some(name) => jiff::tz::TimeZone::get(name).map_err(|e| {
                crate::retention::RetentionError::TimeZone {
                    name: name.clone(),
                    detail: e.to_string(),
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_uses_pve_option_names() {
        let p: KeepPolicy =
            toml::from_str("keep-last = 3\nkeep-daily = 7\nkeep-yearly = 0\n").unwrap();
        assert_eq!(p.keep_last, Some(3));
        assert_eq!(p.keep_daily, Some(7));
        assert_eq!(p.keep_yearly, Some(0));
        assert_eq!(p.keep_hourly, None);
        assert_eq!(p.to_string(), "keep-last=3,keep-daily=7");
        assert!(
            toml::from_str::<KeepPolicy>("keep_daily = 7\n").is_err(),
            "snake_case is a typo"
        );
        assert!(toml::from_str::<KeepPolicy>("keep-dayly = 7\n").is_err());
        assert!(toml::from_str::<KeepPolicy>("keep-daily = -1\n").is_err());
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"keep-last":3,"keep-daily":7,"keep-yearly":0}"#);
    }

    #[test]
    fn zero_and_unset_keep_everything() {
        assert!(!KeepPolicy::default().keeps_something());
        let p = KeepPolicy {
            keep_last: Some(0),
            keep_monthly: Some(0),
            ..Default::default()
        };
        assert!(!p.keeps_something());
        assert_eq!(p.to_string(), "keep-all");
        let mut p = KeepPolicy::default();
        p.set(Rule::Weekly, Some(2));
        assert!(p.keeps_something());
        assert_eq!(p.get(Rule::Weekly), Some(2));
    }

    #[test]
    fn prune_table_with_per_vm_overrides() {
        let text = r#"
keep-daily = 7
keep-weekly = 4
timezone = "Europe/Berlin"

[vm.100]
keep-last = 3

[vm.101]
"#;
        let c: PruneConfig = toml::from_str(text).unwrap();
        assert!(c.after_ingest);
        assert_eq!(
            c.policy_for("102"),
            KeepPolicy {
                keep_daily: Some(7),
                keep_weekly: Some(4),
                ..Default::default()
            }
        );
        assert_eq!(
            c.policy_for("100"),
            KeepPolicy {
                keep_last: Some(3),
                ..Default::default()
            }
        );
        assert!(
            !c.policy_for("101").keeps_something(),
            "an empty override keeps everything"
        );
        assert_eq!(c.time_zone().unwrap().iana_name(), Some("Europe/Berlin"));

        assert!(toml::from_str::<PruneConfig>("keep-dayly = 7\n").is_err());
        assert!(
            !toml::from_str::<PruneConfig>("after_ingest = false\n")
                .unwrap()
                .after_ingest
        );
        assert!(toml::from_str::<PruneConfig>("after-ingest = false\n").is_err());
        assert!(toml::from_str::<PruneConfig>("[vm.100]\nkeep-dayly = 7\n").is_err());
        let bad_tz: PruneConfig = toml::from_str("timezone = \"Mars/Olympus\"\n").unwrap();
        assert!(bad_tz.time_zone().is_err());
        let empty: PruneConfig = toml::from_str("").unwrap();
        assert_eq!(empty, PruneConfig::default());
        assert!(!empty.policy_for("100").keeps_something());
    }
}
