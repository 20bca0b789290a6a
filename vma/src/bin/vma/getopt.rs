//! GNU `getopt`-style argument parsing, as Proxmox's C `vma` gets it from glibc.
//!
//! Why not clap: the drop-in must behave like glibc `getopt` for every command line PVE (and
//! people) use: options may follow positional arguments (`vma extract file.vma -v outdir`),
//! short options cluster (`-vd drive-scsi0`), an option's argument may be attached (`-cfoo`)
//! or separate, `--` ends options, a lone `-` is a positional (stdin), and
//! `POSIXLY_CORRECT` stops at the first positional. Errors print glibc's messages with the
//! subcommand as program name (C's `argv` is shifted by one before `getopt`). We add GNU-style
//! long options for our extensions (`--compress zstd` or `--compress=zstd`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// A parsed option: its key (a short letter or a long name) and argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    /// Short option letter, or the long option's name.
    pub key: OptKey,
    /// The argument, for options that take one.
    pub value: Option<OsString>,
}

/// Which option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptKey {
    /// `-x`
    Short(char),
    /// `--name`
    Long(&'static str),
}

/// The options a subcommand accepts.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// glibc `optstring`: letters, each followed by `:` if it takes an argument.
    pub short: &'static str,
    /// Long options and whether each takes an argument.
    pub long: &'static [(&'static str, bool)],
}

/// What getopt complains about (the message glibc prints, without the program name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetoptError(pub String);

impl Spec {
    fn short_takes_arg(&self, c: char) -> Option<bool> {
        let mut it = self.short.chars().peekable();
        while let Some(x) = it.next() {
            let takes = it.peek() == Some(&':');
            if takes {
                it.next();
            }
            if x == c {
                return Some(takes);
            }
        }
        None
    }
}

/// Splits `args` (everything after the subcommand) into options, in order, and positional
/// arguments, in order.
pub fn getopt(args: &[OsString], spec: &Spec) -> Result<(Vec<Opt>, Vec<OsString>), GetoptError> {
    let posix = std::env::var_os("POSIXLY_CORRECT").is_some();
    let mut opts = Vec::new();
    let mut pos = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_bytes();
        i += 1;
        if a == b"--" {
            pos.extend(args[i..].iter().cloned());
            break;
        }
        if a.len() < 2 || a[0] != b'-' {
            pos.push(args[i - 1].clone());
            if posix {
                pos.extend(args[i..].iter().cloned());
                break;
            }
            continue;
        }
        if let Some(body) = a.strip_prefix(b"--") {
            let (name, attached) = match body.iter().position(|&b| b == b'=') {
                Some(eq) => (&body[..eq], Some(OsStr::from_bytes(&body[eq + 1..]))),
                None => (body, None),
            };
            let shown = String::from_utf8_lossy(a).into_owned();
            // GNU accepts unambiguous prefixes of long options.
            let exact = spec.long.iter().find(|(n, _)| n.as_bytes() == name);
            let mut prefixed = spec
                .long
                .iter()
                .filter(|(n, _)| n.as_bytes().starts_with(name));
            let found = match exact {
                Some(f) => Some(f),
                None => match (prefixed.next(), prefixed.next()) {
                    (Some(f), None) => Some(f),
                    (Some(_), Some(_)) => {
                        return Err(GetoptError(format!("option '{shown}' is ambiguous")));
                    }
                    _ => None,
                },
            };
            let Some(&(lname, takes)) = found else {
                return Err(GetoptError(format!("unrecognized option '{shown}'")));
            };
            let value = if takes {
                match attached {
                    Some(v) => Some(v.to_owned()),
                    None if i < args.len() => {
                        i += 1;
                        Some(args[i - 1].clone())
                    }
                    None => {
                        return Err(GetoptError(format!(
                            "option '--{lname}' requires an argument"
                        )));
                    }
                }
            } else {
                if attached.is_some() {
                    return Err(GetoptError(format!(
                        "option '--{lname}' doesn't allow an argument"
                    )));
                }
                None
            };
            opts.push(Opt {
                key: OptKey::Long(lname),
                value,
            });
            continue;
        }
        // A cluster of short options: -vd arg, -cname, -v -h ...
        let mut j = 1;
        while j < a.len() {
            let c = char::from(a[j]);
            j += 1;
            let Some(takes) = spec.short_takes_arg(c).filter(|_| c != ':') else {
                return Err(GetoptError(format!("invalid option -- '{c}'")));
            };
            if !takes {
                opts.push(Opt {
                    key: OptKey::Short(c),
                    value: None,
                });
                continue;
            }
            let value = if j < a.len() {
                let v = OsStr::from_bytes(&a[j..]).to_owned();
                j = a.len();
                v
            } else if i < args.len() {
                i += 1;
                args[i - 1].clone()
            } else {
                return Err(GetoptError(format!("option requires an argument -- '{c}'")));
            };
            opts.push(Opt {
                key: OptKey::Short(c),
                value: Some(value),
            });
        }
    }
    Ok((opts, pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    const EXTRACT: Spec = Spec {
        short: "hvd:r:",
        long: &[],
    };
    const CREATE: Spec = Spec {
        short: "hvc:d:",
        long: &[("compress", true), ("threads", true), ("level", true)],
    };

    #[test]
    fn permutes_like_glibc() {
        let (o, p) = getopt(&v(&["file.vma", "-v", "out", "-r", "/tmp/f"]), &EXTRACT).unwrap();
        assert_eq!(p, v(&["file.vma", "out"]));
        assert_eq!(o.len(), 2);
        assert_eq!(o[0].key, OptKey::Short('v'));
        assert_eq!(o[1].value.as_deref(), Some(OsStr::new("/tmp/f")));
    }

    #[test]
    fn clusters_attached_values_dash_and_double_dash() {
        let (o, p) = getopt(
            &v(&["-vddrive-scsi0,drive-scsi1", "-", "--", "-v"]),
            &EXTRACT,
        )
        .unwrap();
        assert_eq!(p, v(&["-", "-v"]));
        assert_eq!(o[0].key, OptKey::Short('v'));
        assert_eq!(
            o[1].value.as_deref(),
            Some(OsStr::new("drive-scsi0,drive-scsi1"))
        );
        let (o, _) = getopt(&v(&["-vd", "x"]), &EXTRACT).unwrap();
        assert_eq!(o[1].value.as_deref(), Some(OsStr::new("x")));
    }

    #[test]
    fn glibc_messages() {
        assert_eq!(
            getopt(&v(&["-x"]), &EXTRACT).unwrap_err().0,
            "invalid option -- 'x'"
        );
        assert_eq!(
            getopt(&v(&["a", "-r"]), &EXTRACT).unwrap_err().0,
            "option requires an argument -- 'r'"
        );
        assert_eq!(
            getopt(&v(&["--bogus"]), &EXTRACT).unwrap_err().0,
            "unrecognized option '--bogus'"
        );
        assert_eq!(
            getopt(&v(&["-:"]), &EXTRACT).unwrap_err().0,
            "invalid option -- ':'"
        );
    }

    #[test]
    fn long_options() {
        let (o, p) = getopt(
            &v(&["a.vma", "--compress=zstd", "--threads", "2", "--lev", "5"]),
            &CREATE,
        )
        .unwrap();
        assert_eq!(p, v(&["a.vma"]));
        assert_eq!(o[0].key, OptKey::Long("compress"));
        assert_eq!(o[0].value.as_deref(), Some(OsStr::new("zstd")));
        assert_eq!(o[1].value.as_deref(), Some(OsStr::new("2")));
        assert_eq!(o[2].key, OptKey::Long("level"));
        assert_eq!(
            getopt(&v(&["--threads"]), &CREATE).unwrap_err().0,
            "option '--threads' requires an argument"
        );
    }
}
