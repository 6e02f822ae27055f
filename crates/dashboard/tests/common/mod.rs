//! Shared helpers of the dashboard's integration tests: a server on a loopback port with demo
//! data, and a minimal HTTP client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use hotspot_dashboard::{BearerToken, DashboardState, InMemorySource, demo, router};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

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

/// A response, fully read.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request with the given headers and body.
pub async fn send(method: Method, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    let response = client.request(request).await.expect("server answers");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes().to_vec();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// GET with headers.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    send(Method::GET, url, headers, b"").await
}

/// The `Authorization` header carrying the test token.
pub fn bearer() -> String {
    format!("Bearer {TOKEN}")
}
