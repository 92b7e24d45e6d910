//! Backends: where a scenario's requests go. `fake` starts an isolated fake cloud per
//! scenario run on loopback.

pub mod fake;

pub use fake::FakeBackend;

/// Install rustls' `ring` crypto provider once per process (reqwest is built without a
/// default provider, to keep `aws-lc-sys` out of the build). Safe to call many times.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another provider is already installed, which is fine too.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
