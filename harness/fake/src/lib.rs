//! mic fake
