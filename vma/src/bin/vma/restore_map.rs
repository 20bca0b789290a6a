//! The `extract -r <fifo>` device map, as qemu-server writes it and C `vma` parses it:
//!
//! ```text
//! [throttling.bps=N:][throttling.group=G:][cache=M:]format=raw:1:drive-scsi0=/dev/pve/vm-100-disk-0
//! skip=drive-scsi1
//! done
//! ```
//!
//! Per line: `skip=<devname>`, or options `format=`, `throttling.bps=`, `throttling.group=`,
//! `cache=` in any order, each at most once and each ended by `:`, then `0:` or `1:` (write
//! zero blocks explicitly or not), then `<devname>=<path>` split at the first `=`. Input ends
//! at EOF, an empty line, or `done`. The error texts are C's (`read map failed - ...`).

use std::collections::HashMap;
use std::io::BufRead;

/// One mapped device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEntry {
    /// Archive device name, e.g. `drive-scsi0`.
    pub devname: String,
    /// Target path (empty for skip lines).
    pub path: String,
    /// `format=` (we only write raw).
    pub format: Option<String>,
    /// `throttling.bps=` (0 = none).
    pub throttling_bps: u64,
    /// `throttling.group=`
    pub throttling_group: Option<String>,
    /// `cache=` (validated, otherwise without effect: we write with plain `pwrite` and flush
    /// at the end, which is what every qemu cache mode guarantees on a clean exit).
    pub cache: Option<String>,
    /// `1:` write zero blocks explicitly, `0:` leave them (target already reads as zeros).
    pub write_zero: bool,
    /// `skip=`: read and discard this device.
    pub skip: bool,
}

/// Longest line C reads with `fgets(inbuf, 8192)`.
pub const MAX_LINE: usize = 8191;

/// Result of parsing one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// End of the map (`done`, empty line).
    End,
    /// A device entry.
    Entry(MapEntry),
}

fn fail(what: String) -> String {
    format!("read map failed - {what}")
}

/// C's `try_parse_option`: `name=value:` at the start of `line`.
fn try_option<'a>(
    line: &mut &'a str,
    name: &str,
    out: &mut Option<&'a str>,
    whole: &str,
) -> Result<bool, String> {
    let Some(rest) = line.strip_prefix(name).and_then(|r| r.strip_prefix('=')) else {
        return Ok(false);
    };
    if out.is_some() {
        return Err(fail(format!("duplicate value for option '{name}'")));
    }
    let Some((value, after)) = rest.split_once(':') else {
        return Err(fail(format!("option '{name}' not terminated ('{whole}')")));
    };
    *out = Some(value);
    *line = after;
    Ok(true)
}

/// `qemu_strtou64(text, base 0)`: decimal, `0x` hex or leading-0 octal, nothing else.
fn parse_u64(text: &str) -> Option<u64> {
    let t = text.trim_start();
    let t = t.strip_prefix('+').unwrap_or(t);
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if t.len() > 1 && t.starts_with('0') {
        u64::from_str_radix(&t[1..], 8).ok()
    } else {
        t.parse().ok()
    }
}

/// Parses one line as read by `fgets` (with its `\n`, if any).
pub fn parse_line(raw: &str) -> Result<Line, String> {
    if raw.is_empty() || raw == "done\n" || raw == "done" {
        return Ok(Line::End);
    }
    let line = raw.strip_suffix('\n').unwrap_or(raw);
    if line.is_empty() {
        return Ok(Line::End);
    }
    if let Some(rest) = line.strip_prefix("skip") {
        let Some(dev) = rest.strip_prefix('=').filter(|d| !d.is_empty()) else {
            return Err(fail(format!("option 'skip' has no value ('{line}')")));
        };
        return Ok(Line::Entry(MapEntry {
            devname: dev.to_owned(),
            path: String::new(),
            format: None,
            throttling_bps: 0,
            throttling_group: None,
            cache: None,
            write_zero: true,
            skip: true,
        }));
    }
    let mut rest = line;
    let (mut format, mut bps, mut group, mut cache) = (None, None, None, None);
    loop {
        if try_option(&mut rest, "format", &mut format, line)?
            || try_option(&mut rest, "throttling.bps", &mut bps, line)?
            || try_option(&mut rest, "throttling.group", &mut group, line)?
            || try_option(&mut rest, "cache", &mut cache, line)?
        {
            continue;
        }
        break;
    }
    let throttling_bps = match bps {
        Some(b) => parse_u64(b).ok_or_else(|| fail(format!("not a number: {b}")))?,
        None => 0,
    };
    let (write_zero, dev_path) = if let Some(r) = rest.strip_prefix("0:") {
        (false, r)
    } else if let Some(r) = rest.strip_prefix("1:") {
        (true, r)
    } else {
        return Err(fail(format!("parse error ('{line}')")));
    };
    let Some((devname, path)) = dev_path.split_once('=') else {
        return Err(fail(format!("no dev name specified ('{line}')")));
    };
    Ok(Line::Entry(MapEntry {
        devname: devname.to_owned(),
        path: path.to_owned(),
        format: format.map(str::to_owned),
        throttling_bps,
        throttling_group: group.map(str::to_owned),
        cache: cache.map(str::to_owned),
        write_zero,
        skip: false,
    }))
}

/// Reads map lines until the end marker or EOF. A later line for the same device replaces an
/// earlier one (C's hash table insert).
pub fn read_map<R: BufRead>(r: &mut R) -> Result<HashMap<String, MapEntry>, String> {
    let mut map = HashMap::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = <&mut R as std::io::Read>::take(&mut *r, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| fail(format!("read error: {e}")))?;
        if n > MAX_LINE {
            return Err(fail(format!("line longer than {MAX_LINE} bytes")));
        }
        let line =
            std::str::from_utf8(&buf).map_err(|_| fail("line is not valid UTF-8".to_owned()))?;
        match parse_line(line)? {
            Line::End => return Ok(map),
            Line::Entry(e) => {
                map.insert(e.devname.clone(), e);
            }
        }
    }
}

/// qemu's cache modes (`bdrv_parse_cache_mode`).
pub fn valid_cache_mode(m: &str) -> bool {
    matches!(
        m,
        "none" | "off" | "writeback" | "writethrough" | "directsync" | "unsafe"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(s: &str) -> MapEntry {
        match parse_line(s).unwrap() {
            Line::Entry(e) => e,
            Line::End => panic!("end"),
        }
    }

    #[test]
    fn qemu_server_lines() {
        let e = entry("format=raw:1:drive-scsi0=/dev/pve/vm-100-disk-0\n");
        assert_eq!(e.devname, "drive-scsi0");
        assert_eq!(e.path, "/dev/pve/vm-100-disk-0");
        assert_eq!(e.format.as_deref(), Some("raw"));
        assert!(e.write_zero && !e.skip);

        let e = entry(
            "throttling.bps=1048576:throttling.group=local:format=raw:0:drive-virtio0=/x/y=z.raw\n",
        );
        assert_eq!(e.throttling_bps, 1 << 20);
        assert_eq!(e.throttling_group.as_deref(), Some("local"));
        assert_eq!(e.path, "/x/y=z.raw");
        assert!(!e.write_zero);

        // Any order, hex and octal numbers.
        let e = entry("cache=unsafe:throttling.bps=0x10:format=raw:0:d=p");
        assert_eq!(e.throttling_bps, 16);
        assert_eq!(e.cache.as_deref(), Some("unsafe"));
        assert_eq!(entry("throttling.bps=010:1:d=p").throttling_bps, 8);
        // No format at all is allowed by the grammar.
        assert_eq!(entry("1:d=p").format, None);

        let s = entry("skip=drive-scsi1\n");
        assert!(s.skip);
        assert_eq!(s.devname, "drive-scsi1");
    }

    #[test]
    fn ends() {
        for s in ["", "\n", "done\n", "done"] {
            assert_eq!(parse_line(s), Ok(Line::End), "{s:?}");
        }
    }

    #[test]
    fn c_error_messages() {
        let err = |s: &str| parse_line(s).unwrap_err();
        assert_eq!(
            err("format=raw:format=raw:1:d=p"),
            "read map failed - duplicate value for option 'format'"
        );
        assert_eq!(
            err("format=raw"),
            "read map failed - option 'format' not terminated ('format=raw')"
        );
        assert_eq!(
            err("format=raw:2:d=p"),
            "read map failed - parse error ('format=raw:2:d=p')"
        );
        assert_eq!(
            err("format=raw:1:nodevname"),
            "read map failed - no dev name specified ('format=raw:1:nodevname')"
        );
        assert_eq!(
            err("throttling.bps=12k:1:d=p"),
            "read map failed - not a number: 12k"
        );
        assert_eq!(
            err("skip="),
            "read map failed - option 'skip' has no value ('skip=')"
        );
        assert_eq!(
            err("skipx"),
            "read map failed - option 'skip' has no value ('skipx')"
        );
    }

    #[test]
    fn read_map_stops_at_done_and_last_wins() {
        let mut input: &[u8] =
            b"format=raw:1:a=/p1\nformat=raw:0:b=/p2\nformat=raw:0:a=/p3\ndone\nformat=raw:1:c=/x\n";
        let m = read_map(&mut input).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["a"].path, "/p3");
        assert!(!m.contains_key("c"));
        let mut long = vec![b'x'; 9000];
        long.push(b'\n');
        assert!(
            read_map(&mut &long[..])
                .unwrap_err()
                .contains("longer than")
        );
    }
}
