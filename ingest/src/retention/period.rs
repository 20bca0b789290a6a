//! Which period (hour, day, ISO week, month, year) a backup falls into, in local time.
//!
//! The keys are the strings PBS compares: `strftime_local` with `%Y/%m/%d/%H`, `%Y/%m/%d`,
//! `%G/%V`, `%Y/%m` and `%Y`. They are built from the civil fields directly instead of through
//! a strftime call, so formatting can never fail (or panic) on odd input.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::RetentionError;
use super::policy::Rule;

/// The period keys of one backup, one per [`Rule`] (indexed like [`Rule::ALL`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Periods([String; 6]);

impl Periods {
    /// Computes every key of a backup taken at `time` (epoch seconds), in `tz`.
    ///
    /// `keep-last` uses the exact time (PBS: the backup's own timestamp), so two backups only
    /// share a "last" period if they have the same time.
    pub fn of(name: &str, time: i64, tz: &TimeZone) -> Result<Periods, RetentionError> {
        let ts = Timestamp::from_second(time).map_err(|e| RetentionError::TimeOutOfRange {
            name: name.to_string(),
            time,
            detail: e.to_string(),
        })?;
        let dt = tz.to_datetime(ts);
        let (y, m, d, h) = (dt.year(), dt.month(), dt.day(), dt.hour());
        let week = dt.date().iso_week_date();
        Ok(Periods([
            time.to_string(),
            format!("{y:04}/{m:02}/{d:02}/{h:02}"),
            format!("{y:04}/{m:02}/{d:02}"),
            format!("{:04}/{:02}", week.year(), week.week()),
            format!("{y:04}/{m:02}"),
            format!("{y:04}"),
        ]))
    }

    /// The key for `rule`.
    pub fn key(&self, rule: Rule) -> &str {
        let i = Rule::ALL.iter().position(|&r| r == rule).unwrap_or(0);
        &self.0[i]
    }
}

/// A backup time for people: `Tue 2025-10-07 02:00` in `tz` (the weekday makes weekly
/// picks easy to follow); the raw number if it is out of range.
pub fn format_local(time: i64, tz: &TimeZone) -> String {
    match Timestamp::from_second(time) {
        Ok(ts) => {
            let dt = tz.to_datetime(ts);
            let wd = match dt.weekday() {
                jiff::civil::Weekday::Monday => "Mon",
                jiff::civil::Weekday::Tuesday => "Tue",
                jiff::civil::Weekday::Wednesday => "Wed",
                jiff::civil::Weekday::Thursday => "Thu",
                jiff::civil::Weekday::Friday => "Fri",
                jiff::civil::Weekday::Saturday => "Sat",
                jiff::civil::Weekday::Sunday => "Sun",
            };
            format!(
                "{wd} {:04}-{:02}-{:02} {:02}:{:02}",
                dt.year(),
                dt.month(),
                dt.day(),
                dt.hour(),
                dt.minute()
            )
        }
        Err(_) => format!("@{time}"),
    }
}

/// The zone's IANA name for output (`Europe/Berlin`), or a description when it has none.
pub fn zone_name(tz: &TimeZone) -> String {
    tz.iana_name().map_or_else(
        || "system local time (unnamed zone)".to_string(),
        str::to_string,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    fn at(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    #[test]
    fn iso_week_year_differs_from_calendar_year() {
        let p = Periods::of("a", at("2020-12-31T12:00:00Z"), &TimeZone::UTC).unwrap();
        assert_eq!(p.key(Rule::Weekly), "2020/53");
        assert_eq!(p.key(Rule::Yearly), "2020");
        let p = Periods::of("b", at("2021-01-03T12:00:00Z"), &TimeZone::UTC).unwrap();
        assert_eq!(p.key(Rule::Weekly), "2020/53");
        assert_eq!(p.key(Rule::Yearly), "2021");
        assert_eq!(p.key(Rule::Monthly), "2021/01");
        let p = Periods::of("c", at("2024-12-30T12:00:00Z"), &TimeZone::UTC).unwrap();
        assert_eq!(
            p.key(Rule::Weekly),
            "2025/01",
            "Monday 2024-12-30 is in ISO week 2025-W01"
        );
    }

    #[test]
    fn keys_use_local_time() {
        // 23:30 UTC on 31 Dec is already the next year in Berlin.
        let t = at("2021-12-31T23:30:00Z");
        let p = Periods::of("a", t, &berlin()).unwrap();
        assert_eq!(p.key(Rule::Hourly), "2022/01/01/00");
        assert_eq!(p.key(Rule::Daily), "2022/01/01");
        assert_eq!(p.key(Rule::Yearly), "2022");
        assert_eq!(p.key(Rule::Last), t.to_string());
        let p = Periods::of("a", t, &TimeZone::UTC).unwrap();
        assert_eq!(p.key(Rule::Hourly), "2021/12/31/23");
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(
            format_local(at("2025-10-05T00:00:00Z"), &berlin()),
            "Sun 2025-10-05 02:00"
        );
        assert_eq!(format_local(i64::MAX, &berlin()), format!("@{}", i64::MAX));
        assert_eq!(zone_name(&berlin()), "Europe/Berlin");
    }

    #[test]
    fn out_of_range_time_is_an_error_not_a_panic() {
        for t in [i64::MAX, i64::MIN, 400_000_000_000] {
            let err = Periods::of("2099_01_01-00_00_00", t, &TimeZone::UTC).unwrap_err();
            assert!(err.to_string().contains("2099_01_01-00_00_00"), "{err}");
        }
    }
}
