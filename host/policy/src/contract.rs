//! contract (next)
