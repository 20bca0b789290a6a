//! Ingest pipeline.
