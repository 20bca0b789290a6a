//! The TOML configuration (`/etc/vzsnap/vzsnap.toml` by default, `--config`).
//!
//! Sections are added by the subcommands that need them; every table uses
//! `deny_unknown_fields` so a typo is an error, not a silently ignored setting.
