//! A crash-injection hook for the crash-safety tests: makes the process `abort()` (a real
//! crash: no destructors, no cleanup, like `kill -9`) at a chosen point of an ingest.
//!
//! The CLI builds it from `VZSNAP_TEST_CRASH_AT` (documented in docs/ingest.md as a test
//! facility); the library never reads the environment. Forms:
//! - `byte:<N>`: once the archive stream (uncompressed) reached byte `N` — i.e. somewhere in
//!   the middle of syncing the images;
//! - `<phase>`: at a named point: `after-prepare`, `after-sync`, `before-snapshot`,
//!   `after-snapshot`, `after-hold`, `after-delete`.

/// Named crash points, in the order an ingest passes them.
pub const PHASES: [&str; 6] = [
    "after-prepare",
    "after-sync",
    "before-snapshot",
    "after-snapshot",
    "after-hold",
    "after-delete",
];

/// See the module docs. The default never crashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrashHook {
    at_byte: Option<u64>,
    at_phase: Option<&'static str>,
}

impl CrashHook {
    /// Parses `byte:<N>` or a phase name.
    pub fn parse(spec: &str) -> Result<Self, String> {
        if let Some(n) = spec.strip_prefix("byte:") {
            let n = n
                .parse()
                .map_err(|_| format!("crash hook {spec:?}: bad byte offset"))?;
            return Ok(CrashHook {
                at_byte: Some(n),
                at_phase: None,
            });
        }
        match PHASES.iter().find(|p| **p == spec) {
            Some(p) => Ok(CrashHook {
                at_byte: None,
                at_phase: Some(p),
            }),
            None => Err(format!(
                "crash hook {spec:?}: expected byte:<N> or one of {}",
                PHASES.join(", ")
            )),
        }
    }

    /// True if this hook can fire at all.
    pub fn is_armed(&self) -> bool {
        self.at_byte.is_some() || self.at_phase.is_some()
    }

    /// Aborts if the archive offset reached the configured byte.
    pub fn at_offset(&self, offset: u64) {
        if self.at_byte.is_some_and(|n| offset >= n) {
            eprintln!("vzsnap: test crash hook: abort at archive byte {offset}");
            std::process::abort();
        }
    }

    /// Aborts at the configured phase.
    pub fn at(&self, phase: &'static str) {
        debug_assert!(PHASES.contains(&phase));
        if self.at_phase == Some(phase) {
            eprintln!("vzsnap: test crash hook: abort at {phase}");
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_stays_quiet_elsewhere() {
        let h = CrashHook::parse("byte:1000").unwrap();
        assert!(h.is_armed());
        h.at_offset(999);
        h.at("after-sync");
        let h = CrashHook::parse("before-snapshot").unwrap();
        h.at_offset(u64::MAX);
        h.at("after-sync");
        assert!(CrashHook::parse("byte:x").is_err());
        assert!(CrashHook::parse("later").is_err());
        assert!(!CrashHook::default().is_armed());
    }
}
