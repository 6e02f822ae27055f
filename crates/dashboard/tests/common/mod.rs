//! Shared helpers of the dashboard's integration tests: a server on a loopback port with demo
//! data, and a minimal HTTP client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use hotspot_dashboard::{BearerToken, DashboardState, InMemorySource, demo, router};

mod reply;
#[allow(unused_imports)] // not every test binary sends requests
pub use reply::{Reply, get, send};

/// The token every test server is configured with.
pub const TOKEN: &str = "test-token-0123456789abcdef";

/// Midnight UTC of the demo day (2026-12-02).
pub const DEMO_DAY: u64 = 1_796_169_600;

/// The exposure-list signing key of the test servers.
pub fn exposure_key() -> SigningKey {
    SigningKey::from_bytes(&[0x11; 32])
}

/// Demo data with 60 venues on [`DEMO_DAY`].
pub fn demo_source() -> InMemorySource {
    demo::demo_source(7, 60, DEMO_DAY)
}

/// Serves the dashboard for `source` on 127.0.0.1 and returns its address.
pub async fn serve(source: InMemorySource) -> SocketAddr {
    let state = DashboardState::new(
        Arc::new(source),
        BearerToken::new(TOKEN).expect("valid token"),
    )
    .with_exposure_signing_key(exposure_key())
    .with_exposure_retention(None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    addr
}

/// The `Authorization` header carrying the test token.
pub fn bearer() -> String {
    format!("Bearer {TOKEN}")
}
