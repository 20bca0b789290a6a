//! Restore.
