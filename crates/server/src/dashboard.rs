//! The collector's dashboard, webhooks and exposure list (DESIGN.md section 3, step 7): the
//! `hotspot-dashboard` crate mounted on the collector's admin port, fed from its SQLite store.
//!
//! - [`CollectorDashboard`] implements `DashboardSource` (alerts, batches, venues) and
//!   `webhook::Outbox` (durable delivery state) over a [`DashboardStore`], mapping the store's
//!   rows (window indices, level names) to the dashboard's views (Unix times, levels, venue
//!   names and coordinates from the registry).
//! - [`DashboardConfig`] is the collector's `dashboard_token_file`, `exposure_key_file` and
//!   `[[webhooks]]` settings, with their secrets read from files or the environment only.
//! - [`mount`] builds the router merged into the admin server and one webhook dispatcher per
//!   endpoint; `serve` spawns them.
//!
//! Alert ids are `<first 16 hex digits of the task id>-<window>-<venue code in hex>`: stable
//! across restarts and database rebuilds, and unique because a batch's alerts are stored once
//! (`Store::record_search`) with one alert per venue.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

use hotspot_core::task::{SearchMode, TaskConfig, TaskId, TaskKind, decode_hex};
use hotspot_dashboard::exposure::SigningKey;
use hotspot_dashboard::view::{
    AlertCursor, AlertFilter, AlertLevel, AlertSummary, AlertView, BatchView, SearchModeView,
    VenueView,
};
use hotspot_dashboard::webhook::{
    Outbox, OutboxError, PendingDelivery, RetryPolicy, UnixMillis, WebhookDispatcher,
    WebhookEndpoint, WebhookError, WebhookKey,
};
use hotspot_dashboard::{BearerToken, DashboardSource, DashboardState, SourceError};

use crate::config::{ConfigError, Env, env_or_file, field, parse_secret32_or, read_secret};
use crate::storage::dashboard::{DashboardStore, DeliveryRow};
use crate::storage::{AlertRow, StoreError};

/// Environment variable holding the dashboard token (replaces `dashboard_token_file`).
pub const TOKEN_ENV: &str = "HOTSPOT_DASHBOARD_TOKEN";
/// Environment variable holding the exposure-list signing key (replaces `exposure_key_file`).
pub const EXPOSURE_KEY_ENV: &str = "HOTSPOT_EXPOSURE_KEY";

/// Alerts a filtered dashboard query reads from the store at most before filtering by
/// category and level in memory (the window range is applied in SQL).
const MAX_SCAN: usize = 200_000;

// ---------------------------------------------------------------------------------------------
// Configuration

/// One `[[webhooks]]` entry of the collector's TOML.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookToml {
    /// The endpoint's name: the outbox's key for it (keep it stable across restarts).
    pub name: String,
    /// Where alerts are POSTed.
    pub url: String,
    /// File holding the HMAC key as hex (at least 64 digits), relative to the config file.
    pub key_file: Option<PathBuf>,
    /// Environment variable holding the HMAC key as hex (instead of `key_file`).
    pub key_env: Option<String>,
    /// Wait after the first failure, in milliseconds (doubled per failure; default 1000).
    pub initial_backoff_ms: Option<u64>,
    /// Longest wait between attempts, in milliseconds (default 300000).
    pub max_backoff_ms: Option<u64>,
}

/// The exposure list's Ed25519 signing key. Zeroized on drop; `Debug` is redacted.
#[derive(Clone)]
pub struct ExposureKey(SigningKey);

impl std::fmt::Debug for ExposureKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExposureKey(<redacted>)")
    }
}

impl ExposureKey {
    /// The public key apps pin, as 64 hex digits.
    pub fn public_hex(&self) -> String {
        hotspot_core::task::encode_hex(self.0.verifying_key().as_bytes())
    }
}

/// One configured webhook receiver.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Name, URL and key.
    pub endpoint: WebhookEndpoint,
    /// Backoff and timeouts.
    pub policy: RetryPolicy,
}

/// What the collector publishes besides its gRPC services.
#[derive(Clone, Debug, Default)]
pub struct DashboardConfig {
    /// The bearer token guarding the dashboard; no dashboard without it.
    pub token: Option<BearerToken>,
    /// The exposure list's signing key; no exposure list without it.
    pub exposure_key: Option<ExposureKey>,
    /// Webhook receivers.
    pub webhooks: Vec<WebhookConfig>,
}

impl DashboardConfig {
    /// Whether anything of it is configured.
    pub fn is_configured(&self) -> bool {
        self.token.is_some() || self.exposure_key.is_some() || !self.webhooks.is_empty()
    }

    /// Reads the settings and their secrets: the token from `HOTSPOT_DASHBOARD_TOKEN` or
    /// `token_file`, the signing key (64 hex digits, an Ed25519 seed) from
    /// `HOTSPOT_EXPOSURE_KEY` or `exposure_key_file`, each webhook key from its `key_env` or
    /// `key_file`. Files are relative to `base`. Errors name the field, never the secret.
    pub fn load(
        token_file: Option<&Path>,
        exposure_key_file: Option<&Path>,
        webhooks: &[WebhookToml],
        base: &Path,
        env: &dyn Env,
    ) -> Result<Self, ConfigError> {
        let token = secret_text(TOKEN_ENV, "dashboard_token_file", token_file, base, env)?
            .map(|(name, text)| BearerToken::new(text.trim()).map_err(|e| field(name, e)))
            .transpose()?;
        let exposure_key = secret_text(
            EXPOSURE_KEY_ENV,
            "exposure_key_file",
            exposure_key_file,
            base,
            env,
        )?
        .map(|(name, text)| {
            let seed = parse_secret32_or(&name, &text, "expected 64 hex digits (an Ed25519 seed)")?;
            Ok::<_, ConfigError>(ExposureKey(SigningKey::from_bytes(&seed)))
        })
        .transpose()?;

        let mut loaded: Vec<WebhookConfig> = Vec::new();
        for (i, hook) in webhooks.iter().enumerate() {
            let at = |what: &str| format!("webhooks[{i}].{what}");
            let text = match (&hook.key_file, &hook.key_env) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(field(
                        at("key_file"),
                        "give exactly one of key_file, key_env",
                    ));
                }
                (None, Some(var)) => Zeroizing::new(
                    env.var(var)
                        .ok_or_else(|| field(at("key_env"), format!("`{var}` is not set")))?,
                ),
                (Some(file), None) => read_secret(&base.join(file))?,
            };
            let key_field = if hook.key_env.is_some() {
                at("key_env")
            } else {
                at("key_file")
            };
            let bytes = Zeroizing::new(
                decode_hex(text.trim())
                    .ok_or_else(|| field(key_field.clone(), "expected hex digits"))?,
            );
            let key = WebhookKey::new(&bytes).map_err(|e| field(key_field, e))?;
            let endpoint = WebhookEndpoint::new(&hook.name, &hook.url, key).map_err(|e| {
                let which = match e {
                    WebhookError::BadName => "name",
                    _ => "url",
                };
                field(at(which), e)
            })?;
            if loaded.iter().any(|w| w.endpoint.name() == hook.name) {
                return Err(field(at("name"), "two webhooks have this name"));
            }
            let defaults = RetryPolicy::default();
            let initial = hook
                .initial_backoff_ms
                .map_or(defaults.initial_backoff, Duration::from_millis);
            let max = hook
                .max_backoff_ms
                .map_or(defaults.max_backoff, Duration::from_millis);
            if initial.is_zero() || max < initial {
                return Err(field(
                    at("max_backoff_ms"),
                    "backoffs must be positive with max_backoff_ms >= initial_backoff_ms",
                ));
            }
            loaded.push(WebhookConfig {
                endpoint,
                policy: RetryPolicy {
                    initial_backoff: initial,
                    max_backoff: max,
                    // Poll at least as often as the shortest backoff, and at most every second.
                    poll_interval: initial.min(defaults.poll_interval),
                    ..defaults
                },
            });
        }
        Ok(DashboardConfig {
            token,
            exposure_key,
            webhooks: loaded,
        })
    }
}

/// Checks the settings against the rest of the configuration: only a collector publishes, the
/// dashboard needs the admin port, the exposure list is served by the dashboard's router.
pub(crate) fn check_config(c: &crate::config::ServerConfig) -> Result<(), ConfigError> {
    let d = &c.dashboard;
    if c.role != crate::config::ServerRole::Collector && d.is_configured() {
        let which = if d.token.is_some() {
            "dashboard_token_file"
        } else if d.exposure_key.is_some() {
            "exposure_key_file"
        } else {
            "webhooks"
        };
        return Err(field(
            which,
            "only the collector serves a dashboard, exposure list or webhooks",
        ));
    }
    if d.token.is_some() && c.admin_listen.is_none() {
        return Err(field(
            "dashboard_token_file",
            "the dashboard is served on admin_listen, which is not set",
        ));
    }
    if d.exposure_key.is_some() && d.token.is_none() {
        return Err(field(
            "exposure_key_file",
            "the exposure list is served beside the dashboard: set dashboard_token_file too",
        ));
    }
    Ok(())
}

/// [`env_or_file`] with the name to blame, refusing an empty file path when `var` is unset.
fn secret_text(
    var: &str,
    file_field: &str,
    file: Option<&Path>,
    base: &Path,
    env: &dyn Env,
) -> Result<Option<(String, Zeroizing<String>)>, ConfigError> {
    let named = file.filter(|path| !path.as_os_str().is_empty());
    match env_or_file(env, base, var, file_field, named)? {
        None if file.is_some() => Err(field(file_field, "empty path")),
        found => Ok(found),
    }
}

// ---------------------------------------------------------------------------------------------
// The store as the dashboard's source and the webhooks' outbox

/// A registry venue as the dashboard shows it.
fn venue_view(v: crate::storage::VenueRecord) -> VenueView {
    VenueView {
        code: v.code,
        name: v.name,
        category: v.category.to_string(),
        capacity: v.capacity,
        lat: v.lat,
        lon: v.lon,
    }
}

/// The collector's store seen through the dashboard's traits.
#[derive(Clone)]
pub struct CollectorDashboard {
    store: Arc<dyn DashboardStore>,
    tasks: Arc<HashMap<TaskId, TaskConfig>>,
}

impl std::fmt::Debug for CollectorDashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectorDashboard")
            .field("tasks", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

fn unavailable(e: StoreError) -> SourceError {
    SourceError::Unavailable(e.to_string())
}

fn outbox_unavailable(e: StoreError) -> OutboxError {
    OutboxError::Unavailable(e.to_string())
}

/// How a task is named on the dashboard and in webhook payloads: its kind and the first
/// 8 hex digits of its id.
pub fn task_label(task: &TaskId, kind: Option<TaskKind>) -> String {
    let kind = match kind {
        Some(TaskKind::Crowding) => "crowding",
        Some(TaskKind::Outbreak) => "outbreak",
        None => "task",
    };
    format!("{kind}-{}", &task.to_hex()[..8])
}

/// The stable id of a stored alert (see the module documentation).
pub fn alert_id(row: &AlertRow) -> String {
    format!(
        "{}-{}-{:x}",
        &row.batch.task.to_hex()[..16],
        row.batch.window,
        row.venue_code
    )
}

impl CollectorDashboard {
    /// The dashboard over `store`, for `tasks` (their windows turn indices into times).
    pub fn new(
        store: Arc<dyn DashboardStore>,
        tasks: impl IntoIterator<Item = TaskConfig>,
    ) -> Self {
        let tasks = tasks.into_iter().map(|t| (t.id, t)).collect();
        CollectorDashboard {
            store,
            tasks: Arc::new(tasks),
        }
    }

    /// Start (Unix seconds) and length of window `window` of `task`. Alerts of a task no
    /// longer configured are placed as if it had hourly windows from the epoch.
    fn window_of(&self, task: &TaskId, window: u64) -> (u64, u32) {
        match self.tasks.get(task) {
            Some(t) => (
                t.window_start(window),
                u32::try_from(t.window_seconds).unwrap_or(u32::MAX),
            ),
            None => (window.saturating_mul(3600), 3600),
        }
    }

    /// Window indices of `task` whose start lies in `[from, to)`.
    fn windows_between(task: &TaskConfig, from: Option<u64>, to: Option<u64>) -> Range<u64> {
        let width = task.window_seconds.max(1);
        // The first window starting at or after `t`.
        let first_at = |t: u64| t.saturating_sub(task.start_unix).div_ceil(width);
        let lo = from.map_or(0, first_at);
        let hi = to.map_or(u64::MAX, first_at);
        lo..hi.max(lo)
    }

    /// The registered venues by code, from the store's registry.
    fn directory(&self) -> Result<HashMap<u64, VenueView>, SourceError> {
        let venues = self.store.venues().map_err(unavailable)?;
        Ok(venues
            .into_iter()
            .map(|v| (v.code, venue_view(v)))
            .collect())
    }

    fn view(&self, row: &AlertRow, venues: &HashMap<u64, VenueView>) -> AlertView {
        let task = self.tasks.get(&row.batch.task);
        let (window_start, window_secs) = self.window_of(&row.batch.task, row.batch.window);
        let fallback = match task.map(|t| t.kind) {
            Some(TaskKind::Outbreak) => AlertLevel::Orange,
            _ => AlertLevel::Crowding,
        };
        let venue = venues.get(&row.venue_code);
        AlertView {
            id: alert_id(row),
            cursor: AlertCursor(row.cursor),
            task: task_label(&row.batch.task, task.map(|t| t.kind)),
            venue_code: row.venue_code,
            venue_name: venue.map(|v| v.name.clone()).unwrap_or_default(),
            category: venue.map(|v| v.category.clone()).unwrap_or_default(),
            location: venue.map(|v| hotspot_dashboard::view::LatLon {
                lat: v.lat,
                lon: v.lon,
            }),
            window_start,
            window_secs,
            level: AlertLevel::parse(&row.level).unwrap_or(fallback),
            noisy_count: row.count,
            stddev: if row.stddev.is_finite() && row.stddev >= 0.0 {
                row.stddev
            } else {
                0.0
            },
            rule: row.rule.clone(),
            first_seen: u64::try_from(row.created_unix).unwrap_or(0),
        }
    }
}

impl DashboardSource for CollectorDashboard {
    fn alerts(&self, filter: &AlertFilter, limit: usize) -> Result<Vec<AlertView>, SourceError> {
        let venues = self.directory()?;
        // Window bounds go to SQL; category and level are applied here, so read more then.
        let narrow = filter.category.is_none() && filter.levels.is_empty();
        let scan = if narrow { limit } else { MAX_SCAN };
        let mut out = Vec::new();
        for task in self.tasks.values() {
            let windows = Self::windows_between(task, filter.from, filter.to);
            if windows.is_empty() {
                continue;
            }
            let rows = self
                .store
                .alerts_in_windows(task.id, windows, scan)
                .map_err(unavailable)?;
            out.extend(
                rows.iter()
                    .map(|r| self.view(r, &venues))
                    .filter(|a| filter.matches(a)),
            );
        }
        out.sort_by_key(|a| (a.window_start, a.venue_code, a.cursor));
        out.truncate(limit);
        Ok(out)
    }

    fn alerts_after(
        &self,
        cursor: AlertCursor,
        limit: usize,
    ) -> Result<Vec<AlertView>, SourceError> {
        let rows = self
            .store
            .alerts_after(cursor.0, limit)
            .map_err(unavailable)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let venues = self.directory()?;
        Ok(rows.iter().map(|r| self.view(r, &venues)).collect())
    }

    fn alert_summary(&self) -> Result<AlertSummary, SourceError> {
        let stats = self.store.alert_log_stats().map_err(unavailable)?;
        let starts = stats.tasks.iter().flat_map(|t| {
            [
                self.window_of(&t.task, t.first_window).0,
                self.window_of(&t.task, t.last_window).0,
            ]
        });
        Ok(AlertSummary {
            count: stats.tasks.iter().map(|t| t.count).sum(),
            first_window: starts.clone().min(),
            last_window: starts.max(),
            last_cursor: AlertCursor(stats.last_cursor),
        })
    }

    fn batches(&self, limit: usize) -> Result<Vec<BatchView>, SourceError> {
        let summaries = self.store.batch_summaries().map_err(unavailable)?;
        let mut out: Vec<BatchView> = summaries
            .iter()
            .map(|b| {
                let kind = self.tasks.get(&b.batch.task).map(|t| t.kind);
                let (window_start, window_secs) = self.window_of(&b.batch.task, b.batch.window);
                BatchView {
                    task: task_label(&b.batch.task, kind),
                    window_start,
                    window_secs,
                    accepted: b.accepted,
                    rejected: b.rejected,
                    search_mode: match b.mode {
                        SearchMode::Registry => SearchModeView::Registry,
                        SearchMode::Open => SearchModeView::Open,
                    },
                    epsilon_spent: b.epsilon_spent,
                    epsilon_left: b.epsilon_left,
                    delta: b.delta,
                    alerts: u32::try_from(b.alerts).unwrap_or(u32::MAX),
                    collected_at: u64::try_from(b.finished_unix).ok(),
                }
            })
            .collect();
        out.sort_by_key(|b| std::cmp::Reverse((b.window_start, b.task.clone())));
        out.truncate(limit);
        Ok(out)
    }

    fn venues(&self) -> Result<Vec<VenueView>, SourceError> {
        // The store lists each venue once, by code.
        let venues = self.store.venues().map_err(unavailable)?;
        Ok(venues.into_iter().map(venue_view).collect())
    }
}

impl Outbox for CollectorDashboard {
    fn enqueued_through(&self, endpoint: &str) -> Result<AlertCursor, OutboxError> {
        self.store
            .outbox_through(endpoint)
            .map(AlertCursor)
            .map_err(outbox_unavailable)
    }

    fn enqueue(
        &self,
        endpoint: &str,
        alerts: &[AlertView],
        through: AlertCursor,
    ) -> Result<(), OutboxError> {
        let rows = alerts
            .iter()
            .map(|a| {
                Ok(DeliveryRow {
                    alert_id: a.id.clone(),
                    cursor: a.cursor.0,
                    payload: serde_json::to_vec(a)
                        .map_err(|e| OutboxError::Unavailable(e.to_string()))?,
                    attempts: 0,
                    next_attempt_ms: 0,
                })
            })
            .collect::<Result<Vec<_>, OutboxError>>()?;
        self.store
            .outbox_enqueue(endpoint, &rows, through.0)
            .map_err(outbox_unavailable)
    }

    fn due(
        &self,
        endpoint: &str,
        now: UnixMillis,
        limit: usize,
    ) -> Result<Vec<PendingDelivery>, OutboxError> {
        let rows = self
            .store
            .outbox_due(endpoint, now, limit)
            .map_err(outbox_unavailable)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            match serde_json::from_slice::<AlertView>(&row.payload) {
                Ok(alert) => out.push(PendingDelivery {
                    alert,
                    attempts: row.attempts,
                    next_attempt_at: row.next_attempt_ms,
                }),
                // A row this build cannot read stays pending (and counted) rather than
                // blocking the deliveries behind it.
                Err(error) => tracing::error!(
                    endpoint,
                    cursor = row.cursor,
                    %error,
                    "unreadable webhook delivery skipped"
                ),
            }
        }
        Ok(out)
    }

    fn mark_delivered(&self, endpoint: &str, alert_id: &str) -> Result<(), OutboxError> {
        self.store
            .outbox_delivered(endpoint, alert_id, crate::now_unix().saturating_mul(1000))
            .map_err(outbox_unavailable)
    }

    fn mark_failed(
        &self,
        endpoint: &str,
        alert_id: &str,
        attempts: u32,
        next_attempt_at: UnixMillis,
    ) -> Result<(), OutboxError> {
        self.store
            .outbox_failed(endpoint, alert_id, attempts, next_attempt_at)
            .map_err(outbox_unavailable)
    }

    fn pending(&self, endpoint: &str) -> Result<usize, OutboxError> {
        self.store
            .outbox_pending(endpoint)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .map_err(outbox_unavailable)
    }
}

// ---------------------------------------------------------------------------------------------
// Mounting

/// The dashboard's routes and the webhook dispatchers, ready to serve.
pub struct Mounted {
    /// `/dashboard`, its API and `/exposure-list`, to merge into the admin router (`None`
    /// without a token).
    pub router: Option<axum::Router>,
    /// One per configured webhook; spawn `run` on each.
    pub dispatchers: Vec<WebhookDispatcher>,
}

/// Builds what `config` asks for over `store`.
pub fn mount(
    config: &DashboardConfig,
    store: Arc<dyn DashboardStore>,
    tasks: impl IntoIterator<Item = TaskConfig>,
) -> Result<Mounted, WebhookError> {
    let source = Arc::new(CollectorDashboard::new(store, tasks));
    let router = config.token.clone().map(|token| {
        let mut state = DashboardState::new(source.clone(), token);
        if let Some(key) = &config.exposure_key {
            tracing::info!(
                public_key = %key.public_hex(),
                "exposure list served at /exposure-list, signed with this Ed25519 key"
            );
            state = state.with_exposure_signing_key(key.0.clone());
        }
        hotspot_dashboard::router(state)
    });
    let dispatchers = config
        .webhooks
        .iter()
        .map(|w| {
            WebhookDispatcher::new(source.clone(), source.clone(), w.endpoint.clone(), w.policy)
        })
        .collect::<Result<_, _>>()?;
    Ok(Mounted {
        router,
        dispatchers,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::storage::sqlite::SqliteStore;
    use crate::storage::{BatchKey, Store, VenueRecord};

    use hotspot_core::venue::VenueCategory;
    use hotspot_dashboard::conformance;

    fn task() -> TaskConfig {
        TaskConfig {
            id: TaskId([0xab; 32]),
            grace_seconds: 5,
            threshold: 2,
            ..TaskConfig::example(TaskKind::Crowding)
        }
    }

    fn db_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hotspot-dash-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("collector.sqlite")
    }

    fn store(name: &str) -> Arc<SqliteStore> {
        Arc::new(SqliteStore::open(&db_path(name)).unwrap())
    }
    /// Stores `alert` the way the collector does: as the search result of its own batch.
    fn record(store: &SqliteStore, dash: &CollectorDashboard, alert: &AlertView) -> AlertView {
        let task = task();
        let batch = BatchKey {
            task: task.id,
            window: (alert.window_start - task.start_unix) / task.window_seconds,
        };
        let row = AlertRow {
            cursor: 0,
            batch,
            venue_code: alert.venue_code,
            count: alert.noisy_count,
            rule: alert.rule.clone(),
            level: alert.level.as_str().to_owned(),
            stddev: alert.stddev,
            created_unix: 0,
        };
        let summary = crate::storage::BatchSummary {
            batch,
            mode: SearchMode::Registry,
            noise: true,
            accepted: 40 + batch.window,
            rejected: 2,
            alerts: 1,
            rho_spent: 0.01,
            rho_left: 0.2,
            epsilon_spent: 0.5,
            epsilon_left: 2.0,
            delta: 1e-9,
            finished_unix: 0,
        };
        let stored = store.record_search(&summary, &[row]).unwrap();
        let views = dash
            .alerts_after(AlertCursor(stored[0].cursor - 1), 1)
            .unwrap();
        views.into_iter().next().unwrap()
    }

    #[test]
    fn store_backed_source_meets_the_dashboard_contract() {
        let store = store("source");
        // The contract's venues 0 to 4: bars at even codes, gyms at odd ones.
        for code in 0..5u64 {
            store
                .put_venue(&VenueRecord {
                    code,
                    name: format!("venue {code}"),
                    address: String::new(),
                    lat: 50.0,
                    lon: 8.0 + code as f64 / 100.0,
                    category: if code % 2 == 0 {
                        VenueCategory::Bar
                    } else {
                        VenueCategory::Sports
                    },
                    capacity: 10,
                    default_minutes: 60,
                    registered_unix: 0,
                })
                .unwrap();
        }
        let dash = CollectorDashboard::new(store.clone(), [task()]);
        let pusher = dash.clone();
        conformance::check_source(&dash, move |alert| record(&store, &pusher, &alert));

        // Every alert carries its venue's registry entry; the filters saw real categories.
        let all = dash.alerts_after(AlertCursor::START, 100).unwrap();
        assert!(
            all.iter()
                .all(|a| a.venue_name == format!("venue {}", a.venue_code)
                    && a.location.is_some()
                    && a.category
                        == if a.venue_code % 2 == 0 {
                            "bar"
                        } else {
                            "sports"
                        })
        );
        let bars = AlertFilter {
            category: Some("bar".into()),
            ..AlertFilter::default()
        };
        assert_eq!(dash.alerts(&bars, 100).unwrap().len(), 15);
        assert_eq!(dash.venues().unwrap().len(), 5);
        assert_eq!(all[0].task, format!("crowding-{}", "ab".repeat(4)));
        assert!(all.iter().all(|a| a.window_secs == 3600 && a.stddev == 1.0));

        // One batch per stored search, newest window first, with its counts and budget.
        let batches = dash.batches(10).unwrap();
        assert_eq!(batches.len(), 10);
        assert!(
            batches
                .windows(2)
                .all(|b| b[0].window_start > b[1].window_start)
        );
        let newest = &batches[0];
        assert_eq!(newest.window_start, 24 * 3600);
        assert_eq!(
            (newest.accepted, newest.rejected, newest.alerts),
            (64, 2, 1)
        );
        assert_eq!(newest.search_mode, SearchModeView::Registry);
        assert_eq!(
            (newest.epsilon_spent, newest.epsilon_left, newest.delta),
            (0.5, 2.0, 1e-9)
        );
        assert_eq!(dash.batches(100).unwrap().len(), 25);
    }

    #[test]
    fn store_backed_outbox_meets_the_outbox_contract_and_survives_reopening() {
        let path = db_path("outbox");
        let dash = CollectorDashboard::new(Arc::new(SqliteStore::open(&path).unwrap()), [task()]);
        conformance::check_outbox(&dash);
        let before = dash.due("a", u64::MAX, 10).unwrap();
        drop(dash);

        let reopened =
            CollectorDashboard::new(Arc::new(SqliteStore::open(&path).unwrap()), [task()]);
        assert_eq!(reopened.pending("a").unwrap(), 2);
        assert_eq!(reopened.enqueued_through("a").unwrap(), AlertCursor(3));
        assert_eq!(reopened.due("a", u64::MAX, 10).unwrap(), before);
        assert_eq!(before[0].alert.id, "o1");
        assert_eq!(before[0].attempts, 1);
    }

    struct MapEnv(Vec<(&'static str, String)>);

    impl Env for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        }
    }

    const TOKEN: &str = "dashboard-token-0123456789";
    const HOOK_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    /// Writes a collector config with `extra` lines in a fresh folder and loads it.
    fn load(
        name: &str,
        role: &str,
        extra: &str,
        env: &[(&'static str, &str)],
    ) -> Result<crate::config::ServerConfig, ConfigError> {
        let dir = db_path(name).parent().unwrap().to_path_buf();
        std::fs::write(dir.join("task.toml"), task().to_toml()).unwrap();
        std::fs::write(dir.join("c.hpke"), "11".repeat(32)).unwrap();
        std::fs::write(dir.join("v.key"), "22".repeat(32)).unwrap();
        std::fs::write(dir.join("dashboard.token"), format!("{TOKEN}\n")).unwrap();
        std::fs::write(dir.join("exposure.key"), "33".repeat(32)).unwrap();
        std::fs::write(dir.join("hook.hmac"), HOOK_KEY).unwrap();
        let path = dir.join("collector.toml");
        std::fs::write(
            &path,
            format!(
                "role = \"{role}\"\nlisten = \"127.0.0.1:7003\"\ndatabase = \"c.sqlite\"\n\
                 tasks = [\"task.toml\"]\nleader_url = \"http://127.0.0.1:7001\"\n\
                 helper_url = \"http://127.0.0.1:7002\"\nverify_key_file = \"v.key\"\n\
                 hpke_key_files = [{{ key_id = 3, path = \"c.hpke\" }}]\n{extra}"
            ),
        )
        .unwrap();
        let env = MapEnv(env.iter().map(|(k, v)| (*k, v.to_string())).collect());
        crate::config::ServerConfig::load(&path, &env)
    }

    const FULL: &str = "admin_listen = \"127.0.0.1:9003\"\ndashboard_token_file = \"dashboard.token\"\n\
                        exposure_key_file = \"exposure.key\"\n";

    fn hook(lines: &str) -> String {
        format!("{FULL}[[webhooks]]\nname = \"ops\"\nurl = \"http://127.0.0.1:1/hook\"\n{lines}\n")
    }

    fn refused(name: &str, role: &str, extra: &str, env: &[(&'static str, &str)]) -> String {
        match load(name, role, extra, env) {
            Ok(_) => panic!("{name}: accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn collector_config_reads_token_key_and_webhooks_without_showing_them() {
        let config = load(
            "cfg-ok",
            "collector",
            &hook("key_file = \"hook.hmac\"\ninitial_backoff_ms = 50\nmax_backoff_ms = 400"),
            &[],
        )
        .unwrap();
        let d = &config.dashboard;
        assert!(d.token.as_ref().unwrap().matches(TOKEN.as_bytes()));
        let public = SigningKey::from_bytes(&[0x33; 32]).verifying_key();
        assert_eq!(
            d.exposure_key.as_ref().unwrap().public_hex(),
            hotspot_core::task::encode_hex(public.as_bytes())
        );
        assert_eq!(d.webhooks.len(), 1);
        assert_eq!(d.webhooks[0].endpoint.name(), "ops");
        assert_eq!(
            d.webhooks[0].policy.initial_backoff,
            Duration::from_millis(50)
        );
        assert_eq!(d.webhooks[0].policy.max_backoff, Duration::from_millis(400));
        let shown = format!("{config:?}");
        for secret in [TOKEN, "3333", HOOK_KEY] {
            assert!(!shown.contains(secret), "{shown}");
        }

        // The environment replaces the files.
        let other = "another-dashboard-token-xyz";
        let config = load(
            "cfg-env",
            "collector",
            &hook("key_env = \"OPS_KEY\""),
            &[
                (TOKEN_ENV, other),
                (EXPOSURE_KEY_ENV, &"44".repeat(32)),
                ("OPS_KEY", HOOK_KEY),
            ],
        )
        .unwrap();
        assert!(
            config
                .dashboard
                .token
                .as_ref()
                .unwrap()
                .matches(other.as_bytes())
        );
        let public = SigningKey::from_bytes(&[0x44; 32]).verifying_key();
        assert_eq!(
            config.dashboard.exposure_key.as_ref().unwrap().public_hex(),
            hotspot_core::task::encode_hex(public.as_bytes())
        );
    }

    #[test]
    fn each_bad_dashboard_setting_is_refused_by_name() {
        // (case, role, extra config lines, environment, what the message must name)
        type Case<'a> = (
            &'a str,
            &'a str,
            String,
            Vec<(&'static str, &'a str)>,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            (
                "short-token",
                "collector",
                FULL.into(),
                vec![(TOKEN_ENV, "short")],
                TOKEN_ENV,
            ),
            (
                "spaced-token",
                "collector",
                FULL.into(),
                vec![(TOKEN_ENV, "a token with spaces")],
                TOKEN_ENV,
            ),
            (
                "missing-token-file",
                "collector",
                "admin_listen = \"127.0.0.1:9003\"\ndashboard_token_file = \"nope.token\"\n".into(),
                vec![],
                "nope.token",
            ),
            (
                "bad-key",
                "collector",
                FULL.into(),
                vec![(EXPOSURE_KEY_ENV, "zz-secret-zz")],
                EXPOSURE_KEY_ENV,
            ),
            (
                "short-key",
                "collector",
                FULL.into(),
                vec![(EXPOSURE_KEY_ENV, "abcd")],
                EXPOSURE_KEY_ENV,
            ),
            (
                "no-admin",
                "collector",
                "dashboard_token_file = \"dashboard.token\"\n".into(),
                vec![],
                "admin_listen",
            ),
            (
                "key-no-token",
                "collector",
                "admin_listen = \"127.0.0.1:9003\"\nexposure_key_file = \"exposure.key\"\n".into(),
                vec![],
                "exposure_key_file",
            ),
            (
                "not-collector",
                "leader",
                FULL.into(),
                vec![],
                "dashboard_token_file",
            ),
            (
                "hook-two-keys",
                "collector",
                hook("key_file = \"hook.hmac\"\nkey_env = \"OPS_KEY\""),
                vec![],
                "webhooks[0].key_file",
            ),
            (
                "hook-no-key",
                "collector",
                hook(""),
                vec![],
                "webhooks[0].key_file",
            ),
            (
                "hook-env-unset",
                "collector",
                hook("key_env = \"OPS_KEY\""),
                vec![],
                "webhooks[0].key_env",
            ),
            (
                "hook-not-hex",
                "collector",
                hook("key_env = \"OPS_KEY\""),
                vec![("OPS_KEY", "zz-secret-zz")],
                "webhooks[0].key_env",
            ),
            (
                "hook-short",
                "collector",
                hook("key_env = \"OPS_KEY\""),
                vec![("OPS_KEY", "abcdef")],
                "webhooks[0].key_env",
            ),
            (
                "hook-backoff",
                "collector",
                hook("key_file = \"hook.hmac\"\ninitial_backoff_ms = 500\nmax_backoff_ms = 100"),
                vec![],
                "webhooks[0].max_backoff_ms",
            ),
            (
                "hook-zero-backoff",
                "collector",
                hook("key_file = \"hook.hmac\"\ninitial_backoff_ms = 0"),
                vec![],
                "webhooks[0].max_backoff_ms",
            ),
            (
                "hook-url",
                "collector",
                format!(
                    "{FULL}[[webhooks]]\nname = \"ops\"\nurl = \"ftp://x/\"\nkey_file = \"hook.hmac\"\n"
                ),
                vec![],
                "webhooks[0].url",
            ),
            (
                "hook-name",
                "collector",
                format!(
                    "{FULL}[[webhooks]]\nname = \"o p s\"\nurl = \"http://x/\"\nkey_file = \"hook.hmac\"\n"
                ),
                vec![],
                "webhooks[0].name",
            ),
            (
                "hook-twice",
                "collector",
                format!(
                    "{}[[webhooks]]\nname = \"ops\"\nurl = \"http://y/\"\nkey_file = \"hook.hmac\"\n",
                    hook("key_file = \"hook.hmac\"")
                ),
                vec![],
                "webhooks[1].name",
            ),
            (
                "hook-unknown-field",
                "collector",
                hook("key_file = \"hook.hmac\"\nsecret = \"x\""),
                vec![],
                "secret",
            ),
        ];
        for (name, role, extra, env, blamed) in cases {
            let message = refused(name, role, &extra, &env);
            assert!(message.contains(blamed), "{name}: {message}");
            assert!(!message.contains("zz-secret"), "{name}: {message}");
        }
    }
}
