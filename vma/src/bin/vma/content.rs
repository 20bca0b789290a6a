//! The header listing `vma list` prints (and `extract -r` / `verify -v` print first), in C's
//! `print_content` format, which qemu-server parses line by line:
//!
//! ```text
//! CFG: size: 417 name: qemu-server.conf
//! DEV: dev_id=1 size: 10737418240 devname: drive-scsi0
//! VMSTATE: dev_id=2 memory: 2147483648
//! CTIME: Sun Oct 31 11:43:42 2021
//! ```

use std::io::{self, Write};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use vma::Header;

/// `ctime(3)` of `secs` in the local time zone (`TZ`, else `/etc/localtime`), without the
/// trailing newline: `Sat Feb  3 15:10:31 2024`. glibc's `ctime` returns NULL for years it
/// cannot format and `printf("%s")` then shows `(null)`; we do the same beyond jiff's range.
pub fn ctime(secs: i64) -> String {
    match Timestamp::from_second(secs) {
        Ok(ts) => ts
            .to_zoned(TimeZone::system())
            .strftime("%a %b %e %H:%M:%S %Y")
            .to_string(),
        Err(_) => "(null)".to_owned(),
    }
}

/// The listing lines, each ending in `\n`.
pub fn content_lines(h: &Header) -> String {
    let mut s = String::new();
    for c in &h.configs {
        s.push_str(&format!("CFG: size: {} name: {}\n", c.data.len(), c.name));
    }
    for d in &h.devices {
        if d.is_vmstate() {
            s.push_str(&format!("VMSTATE: dev_id={} memory: {}\n", d.id, d.size));
        } else {
            s.push_str(&format!(
                "DEV: dev_id={} size: {} devname: {}\n",
                d.id, d.size, d.name
            ));
        }
    }
    s.push_str(&format!("CTIME: {}\n", ctime(h.ctime)));
    s
}

/// Prints the listing and flushes, so a reader of our stdout (qemu-server) sees it at once.
pub fn print_content(out: &mut impl Write, h: &Header) -> io::Result<()> {
    out.write_all(content_lines(h).as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vma::{Config, Device};

    #[test]
    fn ctime_format_and_padding() {
        // jiff reads TZ through TimeZone::system(); compute the expected zone the same way.
        let h = Header {
            uuid: [0; 16],
            ctime: 1_635_680_622,
            configs: vec![Config {
                name: "qemu-server.conf".into(),
                data: vec![b'x'; 417],
            }],
            devices: vec![
                Device {
                    id: 1,
                    name: "drive-scsi0".into(),
                    size: 10_737_418_240,
                },
                Device {
                    id: 2,
                    name: "vmstate".into(),
                    size: 1 << 31,
                },
            ],
        };
        let s = content_lines(&h);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "CFG: size: 417 name: qemu-server.conf");
        assert_eq!(
            lines[1],
            "DEV: dev_id=1 size: 10737418240 devname: drive-scsi0"
        );
        assert_eq!(lines[2], "VMSTATE: dev_id=2 memory: 2147483648");
        assert!(lines[3].starts_with("CTIME: "));
        // Day of month is space padded like ctime(3): check via a fixed UTC instant.
        let utc = Timestamp::from_second(1_706_972_431)
            .unwrap()
            .to_zoned(TimeZone::UTC)
            .strftime("%a %b %e %H:%M:%S %Y")
            .to_string();
        assert_eq!(utc, "Sat Feb  3 15:00:31 2024");
        assert_eq!(ctime(i64::MAX), "(null)");
    }
}
