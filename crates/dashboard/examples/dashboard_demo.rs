//! Serves the dashboard on demo data, without a collector:
//!
//! ```sh
//! HOTSPOT_DASHBOARD_TOKEN=some-long-random-token cargo run -p hotspot-dashboard --example dashboard_demo -- 8088
//! ```
//!
//! then open <http://127.0.0.1:8088/dashboard> and log in with the token. The data is the
//! made-up day of [`hotspot_dashboard::demo`], dated yesterday; nothing is persisted.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hotspot_dashboard::{BearerToken, DashboardState, demo, router};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args().nth(1).map_or(Ok(8088), |p| p.parse())?;
    let token = std::env::var("HOTSPOT_DASHBOARD_TOKEN")
        .map_err(|_| "set HOTSPOT_DASHBOARD_TOKEN (at least 16 visible ASCII characters)")?;
    let token = BearerToken::new(&token)?;

    // Yesterday, midnight UTC.
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let day = now - now % 86_400 - 86_400;
    let source = demo::demo_source(1, 80, day);

    let key = ed25519_dalek::SigningKey::from_bytes(&[0x5a; 32]);
    let state = DashboardState::new(Arc::new(source), token).with_exposure_signing_key(key);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("dashboard: http://{}/dashboard", listener.local_addr()?);
    axum::serve(listener, router(state)).await?;
    Ok(())
}
