//! The admin HTTP port: `/healthz` (the process answers), `/readyz` (its database answers) and
//! `/metrics` (Prometheus text). Metric labels are fixed words (outcome, status code, role,
//! configured webhook names): never venue codes, report ids, tokens or addresses.
//!
//! On a collector with a dashboard token the same port also serves the dashboard, its JSON API
//! and the exposure list (`crate::dashboard`, routes in `hotspot_dashboard::web`).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::node::Node;

/// Installs the process-wide Prometheus recorder (once per process).
pub fn install_metrics() -> Option<PrometheusHandle> {
    PrometheusBuilder::new().install_recorder().ok()
}

#[derive(Clone)]
struct AdminState {
    node: Arc<Node>,
    metrics: Option<PrometheusHandle>,
}

/// Serves the admin endpoints, and `extra` routes beside them, on `listener` until `shutdown`
/// resolves.
pub async fn serve_admin(
    listener: tokio::net::TcpListener,
    node: Arc<Node>,
    metrics: Option<PrometheusHandle>,
    extra: Option<Router>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(render))
        .with_state(AdminState { node, metrics });
    if let Some(extra) = extra {
        app = app.merge(extra);
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn ready(State(s): State<AdminState>) -> (StatusCode, &'static str) {
    let store = Arc::clone(&s.node.store);
    let ok = tokio::task::spawn_blocking(move || store.alerts_after(0, 0).is_ok())
        .await
        .unwrap_or(false);
    if ok {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
    }
}

async fn render(State(s): State<AdminState>) -> String {
    s.metrics.map(|m| m.render()).unwrap_or_default()
}
