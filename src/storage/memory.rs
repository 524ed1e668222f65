//! In-memory store (tests).
