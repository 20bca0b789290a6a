//! Pure parsers for `zfs … -H -p` output: one row per line, tab-separated, exact numbers.
//!
//! Every row's column count is checked; a mismatch is an error that quotes the line, never a
//! silent guess. Tested on output captured from OpenZFS in the test VM (see the fixtures in
//! the tests below and their version notes).

use std::collections::BTreeMap;

/// Output that does not have the shape we asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected zfs output, line {line}: {detail}: {text:?}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    pub detail: String,
    pub text: String,
}

fn perr(line: usize, detail: impl Into<String>, text: &str) -> ParseError {
    ParseError {
        line: line + 1,
        detail: detail.into(),
        text: text.chars().take(500).collect(),
    }
}

/// Splits `-H` output into rows of exactly `cols` columns. The last column may contain tabs
/// (user property values), so a row is split at most `cols - 1` times; fewer columns is an
/// error.
pub fn parse_rows(out: &str, cols: usize) -> Result<Vec<Vec<&str>>, ParseError> {
    let mut rows = Vec::new();
    for (i, line) in out.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let row: Vec<&str> = line.splitn(cols, '\t').collect();
        if row.len() != cols {
            return Err(perr(
                i,
                format!("expected {cols} tab-separated columns, got {}", row.len()),
                line,
            ));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// A `-p` number column.
pub fn parse_u64(s: &str, line: usize, what: &str) -> Result<u64, ParseError> {
    s.parse()
        .map_err(|_| perr(line, format!("{what} is not a number"), s))
}

/// A `-p` signed number column (timestamps).
pub fn parse_i64(s: &str, line: usize, what: &str) -> Result<i64, ParseError> {
    s.parse()
        .map_err(|_| perr(line, format!("{what} is not a number"), s))
}

/// One row of the snapshot listing
/// `zfs list -H -p -o name,createtxg,creation,used,referenced,written,userrefs,clones
///  -t snapshot -s createtxg -d 1 <ds>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    /// The part after `@`.
    pub snapshot: String,
    pub createtxg: u64,
    pub creation: i64,
    pub used: u64,
    pub referenced: u64,
    pub written: u64,
    pub userrefs: u64,
    /// Datasets cloned from this snapshot (empty if none).
    pub clones: Vec<String>,
}

/// The `-o` list [`parse_snapshot_rows`] expects, in order.
pub const SNAPSHOT_COLUMNS: &str =
    "name,createtxg,creation,used,referenced,written,userrefs,clones";

/// Parses the snapshot listing of dataset `ds`. Rows must belong to `ds` (name `ds@…`);
/// they are returned sorted by `createtxg` (the creation order), whatever order zfs printed.
pub fn parse_snapshot_rows(out: &str, ds: &str) -> Result<Vec<SnapshotRow>, ParseError> {
    let prefix = format!("{ds}@");
    let mut rows = Vec::new();
    for (i, line) in out.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let c: Vec<&str> = line.split('\t').collect();
        if c.len() != 8 {
            return Err(perr(
                i,
                format!("expected 8 tab-separated columns, got {}", c.len()),
                line,
            ));
        }
        let Some(snapshot) = c[0].strip_prefix(&prefix) else {
            return Err(perr(i, format!("not a snapshot of {ds}"), line));
        };
        rows.push(SnapshotRow {
            snapshot: snapshot.to_string(),
            createtxg: parse_u64(c[1], i, "createtxg")?,
            creation: parse_i64(c[2], i, "creation")?,
            used: parse_u64(c[3], i, "used")?,
            referenced: parse_u64(c[4], i, "referenced")?,
            written: parse_u64(c[5], i, "written")?,
            userrefs: parse_u64(c[6], i, "userrefs")?,
            clones: parse_list(c[7]),
        });
    }
    rows.sort_by_key(|r| r.createtxg);
    Ok(rows)
}

/// A comma-separated list property (`clones`); `-` or empty means none.
pub fn parse_list(s: &str) -> Vec<String> {
    if s == "-" || s.is_empty() {
        Vec::new()
    } else {
        s.split(',').map(str::to_string).collect()
    }
}

/// Parses `zfs get -H -p -o name,property,value -s local -t snapshot -d 1 all <ds>` into
/// snapshot name (after `@`) → metadata key (without `prefix`) → value, keeping only
/// properties that start with `prefix` (e.g. `vzsnap:`).
pub fn parse_snapshot_user_props(
    out: &str,
    ds: &str,
    prefix: &str,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, ParseError> {
    let snap_prefix = format!("{ds}@");
    let mut map: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (i, row) in parse_rows(out, 3)?.into_iter().enumerate() {
        let Some(snap) = row[0].strip_prefix(&snap_prefix) else {
            return Err(perr(i, format!("not a snapshot of {ds}"), row[0]));
        };
        if let Some(key) = row[1].strip_prefix(prefix) {
            map.entry(snap.to_string())
                .or_default()
                .insert(key.to_string(), row[2].to_string());
        }
    }
    Ok(map)
}

/// Parses `zfs get -H -p -o property,value <props> <ds>` into property → value.
pub fn parse_props(out: &str) -> Result<BTreeMap<String, String>, ParseError> {
    Ok(parse_rows(out, 2)?
        .into_iter()
        .map(|r| (r[0].to_string(), r[1].to_string()))
        .collect())
}

/// Parses `zfs holds -H <snap>` (columns NAME, TAG, TIMESTAMP; the timestamp is text in 2.1
/// and epoch seconds with `-p` in 2.3, we use neither) into the sorted tags.
pub fn parse_holds(out: &str) -> Result<Vec<String>, ParseError> {
    let mut tags: Vec<String> = parse_rows(out, 3)?
        .into_iter()
        .map(|r| r[1].to_string())
        .collect();
    tags.sort();
    tags.dedup();
    Ok(tags)
}

/// One row of `zfs list -H -p -o name,origin -t filesystem -d 1 <parent>`.
pub fn parse_name_origin(out: &str) -> Result<Vec<(String, Option<String>)>, ParseError> {
    Ok(parse_rows(out, 2)?
        .into_iter()
        .map(|r| {
            (
                r[0].to_string(),
                if r[1] == "-" {
                    None
                } else {
                    Some(r[1].to_string())
                },
            )
        })
        .collect())
}

/// The `-o` list [`parse_written_and_latest`] expects.
pub const WRITTEN_COLUMNS: &str = "name,written,createtxg";

/// Parses `zfs list -H -p -o name,written,createtxg -t filesystem,snapshot -d 1 <ds>`: the
/// dataset's own `written` and the name (after `@`) of its newest snapshot, if any.
pub fn parse_written_and_latest(out: &str, ds: &str) -> Result<(u64, Option<String>), ParseError> {
    let snap_prefix = format!("{ds}@");
    let mut written = None;
    let mut latest: Option<(u64, String)> = None;
    for (i, line) in out.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let c: Vec<&str> = line.split('\t').collect();
        if c.len() != 3 {
            return Err(perr(
                i,
                format!("expected 3 tab-separated columns, got {}", c.len()),
                line,
            ));
        }
        if c[0] == ds {
            written = Some(parse_u64(c[1], i, "written")?);
        } else if let Some(snap) = c[0].strip_prefix(&snap_prefix) {
            let txg = parse_u64(c[2], i, "createtxg")?;
            if latest.as_ref().is_none_or(|(t, _)| txg > *t) {
                latest = Some((txg, snap.to_string()));
            }
        }
        // Child filesystems (none in a volume normally) are not ours to judge.
    }
    let written = written.ok_or_else(|| perr(0, format!("no row for {ds} itself"), out))?;
    Ok((written, latest.map(|(_, s)| s)))
}

/// A human size as accepted by `zfs create -o` (`4096`, `4K`, `1.5M`, `128k`) → bytes, for
/// comparing a requested property with its `-p` value. `None` if it is not a size.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return None;
    }
    let shift = match unit.to_ascii_uppercase().trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        "P" => 50,
        "E" => 60,
        _ => return None,
    };
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(1u64 << shift);
    }
    let f: f64 = num.parse().ok()?;
    let v = f * (1u64 << shift) as f64;
    (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then_some(v as u64)
}

/// Whether a property value read back with `-p` matches what was requested (`on`/`off`
/// literally; sizes by value, so `64K` matches `65536`; `compression=on` may read back as the
/// algorithm `on` stands for, so `on` accepts any value but `off`).
pub fn prop_matches(property: &str, wanted: &str, actual: &str) -> bool {
    if wanted == actual {
        return true;
    }
    if let (Some(a), Some(b)) = (parse_size(wanted), parse_size(actual)) {
        return a == b;
    }
    property == "compression" && wanted == "on" && actual != "off"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_check_column_counts() {
        assert_eq!(
            parse_rows("a\tb\n\nc\td\n", 2).unwrap(),
            vec![vec!["a", "b"], vec!["c", "d"]]
        );
        // The last column keeps any further tabs.
        assert_eq!(parse_rows("a\tb\tc\n", 2).unwrap(), vec![vec!["a", "b\tc"]]);
        let e = parse_rows("a\tb\nc\n", 2).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("expected 2"), "{e}");
    }

    #[test]
    fn snapshot_rows_reject_foreign_or_malformed_lines() {
        let ok = "t/a@s1\t10\t1700000000\t0\t100\t100\t0\t-\n";
        assert_eq!(parse_snapshot_rows(ok, "t/a").unwrap().len(), 1);
        assert!(parse_snapshot_rows(ok, "t/b").is_err());
        assert!(parse_snapshot_rows("t/a@s1\t10\t1700000000\t0\t100\t100\t0\n", "t/a").is_err());
        assert!(parse_snapshot_rows("t/a@s1\tx\t1700000000\t0\t100\t100\t0\t-\n", "t/a").is_err());
        // Sorted by createtxg whatever the input order.
        let two = "t/a@late\t20\t1\t0\t1\t1\t0\t-\nt/a@early\t10\t2\t0\t1\t1\t0\tt/c1,t/c2\n";
        let r = parse_snapshot_rows(two, "t/a").unwrap();
        assert_eq!(r[0].snapshot, "early");
        assert_eq!(r[0].clones, vec!["t/c1", "t/c2"]);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("4K"), Some(4096));
        assert_eq!(parse_size("128k"), Some(131072));
        assert_eq!(parse_size("1.5M"), Some(1572864));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("lz4"), None);
        assert_eq!(parse_size("on"), None);
        assert!(prop_matches("recordsize", "64K", "65536"));
        assert!(!prop_matches("recordsize", "64K", "131072"));
        assert!(prop_matches("atime", "off", "off"));
        assert!(prop_matches("compression", "on", "lz4"));
        assert!(!prop_matches("compression", "zstd", "lz4"));
    }

    #[test]
    fn holds_and_props() {
        let holds = "t/a@s1\tvzsnap-protected\tFri Nov 27 01:02 2026\nt/a@s1\tkeep\tFri Nov 27 01:03 2026\n";
        assert_eq!(
            parse_holds(holds).unwrap(),
            vec!["keep", "vzsnap-protected"]
        );
        assert_eq!(parse_holds("").unwrap(), Vec::<String>::new());
        let props = parse_props("mounted\tyes\nmountpoint\t/mnt/x y\n").unwrap();
        assert_eq!(props["mountpoint"], "/mnt/x y");
    }
}
