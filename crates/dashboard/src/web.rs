//! The HTTP surface: an axum router the collector merges into its admin server.
//!
//! | path | access | what |
//! |---|---|---|
//! | `GET /dashboard` | token | the HTML dashboard (filters in the query string) |
//! | `GET /dashboard/login`, `POST /dashboard/login` | open | login form; sets the session cookie |
//! | `POST /dashboard/logout` | open | clears the session cookie |
//! | `GET /dashboard/api/alerts` | token | JSON alerts, same filters as the page |
//! | `GET /dashboard/api/alerts/after?cursor=C&limit=N` | token | JSON alerts in cursor order |
//! | `GET /dashboard/api/batches` | token | JSON batches |
//! | `GET /dashboard/api/venues` | token | JSON venues |
//! | `GET /exposure-list` | open | the signed exposure list (binary, see [`crate::exposure`]) |
//! | `GET /exposure-list/key` | open | the list's Ed25519 public key, 64 hex digits and a newline |
//!
//! "token" means the collector's bearer token in `Authorization: Bearer`, or the session cookie
//! the login form sets; anything else gets 401 and counts in
//! `hotspot_dashboard_refused_total{reason="no_valid_token"|"login"}`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Form, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use ed25519_dalek::SigningKey;
use serde::Deserialize;
use tracing::{info, instrument, warn};

use crate::auth::{BearerToken, SESSION_COOKIE};
use crate::civil::{DAY, parse_day};
use crate::exposure::{ExposureList, MAX_CELLS};
use crate::page::{self, PageModel, PageQuery};
use crate::source::{DashboardSource, SourceError, day_start};
use crate::view::{AlertCursor, AlertFilter, AlertLevel};

/// Cookie remembering the newest alert cursor a browser has seen ("new" marks).
const SEEN_COOKIE: &str = "hotspot_seen";
/// Lifetime of a login session.
const SESSION_MAX_AGE: u64 = 12 * 3600;
/// Largest page of the JSON alert APIs.
const API_MAX_LIMIT: usize = 10_000;

/// Everything the router needs. Cheap to clone.
#[derive(Clone)]
pub struct DashboardState {
    inner: Arc<Inner>,
}

struct Inner {
    source: Arc<dyn DashboardSource>,
    token: BearerToken,
    exposure_key: Option<SigningKey>,
    exposure_retention: Option<Duration>,
    secure_cookies: bool,
    exposure_cache: Mutex<Option<CachedList>>,
}

struct CachedList {
    version: u64,
    built_at: u64,
    bytes: axum::body::Bytes,
}

impl DashboardState {
    /// State serving `source`, guarded by the collector's `token`. No exposure list is served
    /// until a signing key is set; cookies are not marked `Secure` until enabled.
    pub fn new(source: Arc<dyn DashboardSource>, token: BearerToken) -> Self {
        Self::from_inner(Inner {
            source,
            token,
            exposure_key: None,
            exposure_retention: Some(Duration::from_secs(14 * DAY)),
            secure_cookies: false,
            exposure_cache: Mutex::new(None),
        })
    }

    /// Serves `GET /exposure-list`, signed with `key` (the health authority's Ed25519 key).
    pub fn with_exposure_signing_key(self, key: SigningKey) -> Self {
        self.map(|inner| inner.exposure_key = Some(key))
    }

    /// Only cells whose window started within `retention` of now are published (default 14
    /// days, the diary length); `None` publishes every outbreak alert stored.
    pub fn with_exposure_retention(self, retention: Option<Duration>) -> Self {
        self.map(|inner| inner.exposure_retention = retention)
    }

    /// Marks cookies `Secure` (set when the dashboard is served over HTTPS).
    pub fn with_secure_cookies(self, secure: bool) -> Self {
        self.map(|inner| inner.secure_cookies = secure)
    }

    fn from_inner(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    fn map(self, f: impl FnOnce(&mut Inner)) -> Self {
        // Builders run before the router is built, so the Arc is still unique; if it is not,
        // rebuild from the shared fields.
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            source: Arc::clone(&shared.source),
            token: shared.token.clone(),
            exposure_key: shared.exposure_key.clone(),
            exposure_retention: shared.exposure_retention,
            secure_cookies: shared.secure_cookies,
            exposure_cache: Mutex::new(None),
        });
        f(&mut inner);
        Self::from_inner(inner)
    }
}

/// The dashboard, its JSON API and the exposure list, to be merged into the collector's
/// admin router (`admin.merge(hotspot_dashboard::router(state))`).
pub fn router(state: DashboardState) -> Router {
    let protected = Router::new()
        .route("/dashboard", get(dashboard))
        .route("/dashboard/api/alerts", get(api_alerts))
        .route("/dashboard/api/alerts/after", get(api_alerts_after))
        .route("/dashboard/api/batches", get(api_batches))
        .route("/dashboard/api/venues", get(api_venues))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(protected)
        .route("/dashboard/login", get(login_form).post(login))
        .route("/dashboard/logout", post(logout))
        .route("/exposure-list", get(exposure_list))
        .route("/exposure-list/key", get(exposure_key))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// A refusal with a status and a message safe to show.
struct HttpError(StatusCode, String);

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (
            self.0,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.1,
        )
            .into_response()
    }
}

impl From<SourceError> for HttpError {
    fn from(error: SourceError) -> Self {
        warn!(%error, "dashboard source failed");
        HttpError(
            StatusCode::SERVICE_UNAVAILABLE,
            "alert store unavailable".into(),
        )
    }
}

fn bad_request(field: &str, expected: &str) -> HttpError {
    HttpError(
        StatusCode::BAD_REQUEST,
        format!("query parameter `{field}`: expected {expected}"),
    )
}

async fn require_token(
    State(state): State<DashboardState>,
    request: Request,
    next: Next,
) -> Response {
    if state.inner.token.authorizes(request.headers()) {
        return next.run(request).await;
    }
    info!(path = %request.uri().path(), "dashboard request refused: no valid token");
    metrics::counter!("hotspot_dashboard_refused_total", "reason" => "no_valid_token").increment(1);
    let wants_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let body = if wants_html {
        page::login_page(None)
    } else {
        "unauthorized\n".to_owned()
    };
    let mut response = (StatusCode::UNAUTHORIZED, Html(body)).into_response();
    if !wants_html {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer realm="hotspot""#),
    );
    response
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let csp = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Parses the dashboard's query string; unknown or malformed parameters are refused.
fn parse_page_query(raw: Option<&str>) -> Result<PageQuery, HttpError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|_| HttpError(StatusCode::BAD_REQUEST, "malformed query string".into()))?;
    let mut query = PageQuery::default();
    for (key, value) in pairs {
        match key.as_str() {
            "day" if value.is_empty() => {}
            "day" => {
                query.day =
                    Some(parse_day(&value).ok_or_else(|| bad_request("day", "a date YYYY-MM-DD"))?)
            }
            "hour" => query.hour = parse_hour(&value)?,
            "category" if value.is_empty() => {}
            "category" if value.len() <= 64 => query.category = Some(value),
            "category" => return Err(bad_request("category", "at most 64 characters")),
            "level" => {
                for name in value.split(',').filter(|n| !n.is_empty()) {
                    let level = AlertLevel::parse(name)
                        .ok_or_else(|| bad_request("level", "crowding, orange or red"))?;
                    if !query.levels.contains(&level) {
                        query.levels.push(level);
                    }
                }
            }
            other => {
                return Err(HttpError(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "unknown query parameter `{}`",
                        other.chars().take(32).collect::<String>()
                    ),
                ));
            }
        }
    }
    // All three levels ticked is the same as no level filter.
    if query.levels.len() == AlertLevel::ALL.len() {
        query.levels.clear();
    }
    Ok(query)
}

fn parse_hour(value: &str) -> Result<Option<u8>, HttpError> {
    match value {
        "" | "-1" | "all" => Ok(None),
        _ => match value.parse::<u8>() {
            Ok(h) if h < 24 => Ok(Some(h)),
            _ => Err(bad_request("hour", "0 to 23, or -1 for the whole day")),
        },
    }
}

/// Runs a blocking source call off the async runtime.
async fn blocking<T: Send + 'static>(
    state: &DashboardState,
    f: impl FnOnce(&dyn DashboardSource) -> Result<T, SourceError> + Send + 'static,
) -> Result<T, HttpError> {
    let source = Arc::clone(&state.inner.source);
    tokio::task::spawn_blocking(move || f(source.as_ref()))
        .await
        .map_err(|_| HttpError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()))?
        .map_err(HttpError::from)
}

#[instrument(skip_all, name = "dashboard_page")]
async fn dashboard(
    State(state): State<DashboardState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let query = parse_page_query(raw.as_deref())?;

    // 1. Fetch the day's alerts under the category and level filters (all hours, for the strip).
    let summary = blocking(&state, |s| s.alert_summary()).await?;
    let day = query
        .day
        .or(summary.last_window.map(day_start))
        .unwrap_or_else(|| day_start(now_secs()));
    let filter = AlertFilter {
        from: Some(day),
        to: Some(day + DAY),
        category: query.category.clone(),
        levels: query.levels.clone(),
        task: None,
    };
    let day_alerts = blocking(&state, move |s| s.alerts(&filter, 20_000)).await?;
    let venues = blocking(&state, |s| s.venues()).await?;
    let batches = blocking(&state, |s| s.batches(48)).await?;

    // 2. Render, marking alerts newer than the cursor this browser saw last.
    let seen = seen_cursor(&headers);
    let model = PageModel {
        query: &query,
        day,
        venues: &venues,
        day_alerts: &day_alerts,
        batches: &batches,
        seen,
        summary,
    };
    let html = page::render(&model);

    // 3. Remember the newest cursor for the next visit.
    let cookie = format!(
        "{SEEN_COOKIE}={}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=31536000{}",
        summary.last_cursor.0,
        secure_attr(&state)
    );
    Ok(([(header::SET_COOKIE, cookie)], Html(html)).into_response())
}

fn seen_cursor(headers: &HeaderMap) -> AlertCursor {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(SEEN_COOKIE)?.strip_prefix('='))
        .find_map(|v| v.parse().ok())
        .map_or(AlertCursor::START, AlertCursor)
}

fn secure_attr(state: &DashboardState) -> &'static str {
    if state.inner.secure_cookies {
        "; Secure"
    } else {
        ""
    }
}

#[instrument(skip_all, name = "dashboard_api_alerts")]
async fn api_alerts(
    State(state): State<DashboardState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, HttpError> {
    let query = parse_page_query(raw.as_deref())?;
    let (from, to) = match (query.day, query.hour) {
        (Some(day), Some(h)) => (
            Some(day + u64::from(h) * 3600),
            Some(day + u64::from(h) * 3600 + 3600),
        ),
        (Some(day), None) => (Some(day), Some(day + DAY)),
        (None, _) => (None, None),
    };
    let filter = AlertFilter {
        from,
        to,
        category: query.category,
        levels: query.levels,
        task: None,
    };
    let alerts = blocking(&state, move |s| s.alerts(&filter, API_MAX_LIMIT)).await?;
    Ok(axum::Json(alerts).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AfterQuery {
    cursor: u64,
    limit: Option<usize>,
}

#[instrument(skip_all, name = "dashboard_api_alerts_after")]
async fn api_alerts_after(
    State(state): State<DashboardState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, HttpError> {
    let q: AfterQuery = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|_| bad_request("cursor", "cursor=<u64>[&limit=<1..=10000>]"))?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=API_MAX_LIMIT).contains(&limit) {
        return Err(bad_request("limit", "1 to 10000"));
    }
    let alerts = blocking(&state, move |s| {
        s.alerts_after(AlertCursor(q.cursor), limit)
    })
    .await?;
    Ok(axum::Json(alerts).into_response())
}

async fn api_batches(State(state): State<DashboardState>) -> Result<Response, HttpError> {
    Ok(axum::Json(blocking(&state, |s| s.batches(1000)).await?).into_response())
}

async fn api_venues(State(state): State<DashboardState>) -> Result<Response, HttpError> {
    Ok(axum::Json(blocking(&state, |s| s.venues()).await?).into_response())
}

async fn login_form() -> Html<String> {
    Html(page::login_page(None))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

#[instrument(skip_all, name = "dashboard_login")]
async fn login(State(state): State<DashboardState>, Form(form): Form<LoginForm>) -> Response {
    if !state.inner.token.matches(form.token.as_bytes()) {
        warn!("dashboard login refused: wrong token");
        metrics::counter!("hotspot_dashboard_refused_total", "reason" => "login").increment(1);
        return (
            StatusCode::UNAUTHORIZED,
            Html(page::login_page(Some("Wrong token."))),
        )
            .into_response();
    }
    info!("dashboard login");
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={SESSION_MAX_AGE}{}",
        state.inner.token.session_value(),
        secure_attr(&state)
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/dashboard")).into_response()
}

async fn logout() -> Response {
    let cookie =
        format!("{SESSION_COOKIE}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0");
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/dashboard/login"),
    )
        .into_response()
}

/// Exposure lists are rebuilt at least this often even without new alerts (retention moves).
const EXPOSURE_REBUILD_SECS: u64 = 600;

#[instrument(skip_all, name = "exposure_list")]
async fn exposure_list(
    State(state): State<DashboardState>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let Some(key) = state.inner.exposure_key.clone() else {
        return Err(HttpError(
            StatusCode::NOT_FOUND,
            "no exposure list is published here".into(),
        ));
    };
    let (version, bytes) = current_exposure_list(&state, key).await?;
    let etag = format!("\"{version}\"");
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let head = [
        (
            header::CONTENT_TYPE,
            "application/vnd.hotspot.exposure-list.v1".to_owned(),
        ),
        (header::ETAG, etag),
        (header::CACHE_CONTROL, "public, max-age=60".to_owned()),
    ];
    if not_modified {
        return Ok((StatusCode::NOT_MODIFIED, head).into_response());
    }
    Ok((head, bytes).into_response())
}

/// The public half of the signing key, for apps to pin (and operators to compare with what
/// the apps ship).
async fn exposure_key(State(state): State<DashboardState>) -> Result<Response, HttpError> {
    let Some(key) = state.inner.exposure_key.as_ref() else {
        return Err(HttpError(
            StatusCode::NOT_FOUND,
            "no exposure list is published here".into(),
        ));
    };
    let public = format!("{}\n", hex::encode(key.verifying_key().as_bytes()));
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        public,
    )
        .into_response())
}

async fn current_exposure_list(
    state: &DashboardState,
    key: SigningKey,
) -> Result<(u64, axum::body::Bytes), HttpError> {
    let now = now_secs();
    let summary = blocking(state, |s| s.alert_summary()).await?;
    if let Some(hit) = lock(&state.inner.exposure_cache).as_ref()
        && hit.version == summary.last_cursor.0
        && now.saturating_sub(hit.built_at) < EXPOSURE_REBUILD_SECS
    {
        return Ok((hit.version, hit.bytes.clone()));
    }

    // Rebuild: every outbreak alert within the retention period, versioned by the log's cursor.
    let from = state
        .inner
        .exposure_retention
        .map(|r| now.saturating_sub(r.as_secs()));
    let filter = AlertFilter {
        from,
        levels: vec![AlertLevel::Orange, AlertLevel::Red],
        ..AlertFilter::default()
    };
    let alerts = blocking(state, move |s| s.alerts(&filter, MAX_CELLS as usize)).await?;
    let mut list = ExposureList::from_alerts(&alerts, now);
    list = ExposureList::new(
        summary.last_cursor.0.max(list.version()),
        now,
        list.cells().to_vec(),
    );
    let bytes = axum::body::Bytes::from(list.sign(&key));
    *lock(&state.inner.exposure_cache) = Some(CachedList {
        version: list.version(),
        built_at: now,
        bytes: bytes.clone(),
    });
    Ok((list.version(), bytes))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The cache is replaced whole; a poisoned lock still holds a consistent value.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now_secs() -> u64 {
    // A clock before 1970 is a broken host; treat it as the epoch.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_query_accepts_the_documented_parameters() {
        let q = parse_page_query(Some(
            "day=2026-12-03&hour=14&category=bar&level=orange&level=red",
        ))
        .ok()
        .expect("valid");
        assert_eq!(q.day, parse_day("2026-12-03"));
        assert_eq!(q.hour, Some(14));
        assert_eq!(q.category.as_deref(), Some("bar"));
        assert_eq!(q.levels, vec![AlertLevel::Orange, AlertLevel::Red]);
        let all = parse_page_query(Some("hour=-1&level=crowding,orange,red&category="))
            .ok()
            .expect("valid");
        assert_eq!(all, PageQuery::default());
    }

    #[test]
    fn page_query_refuses_each_malformed_parameter_by_name() {
        for (raw, field) in [
            ("day=2026-02-30", "`day`"),
            ("hour=24", "`hour`"),
            ("hour=x", "`hour`"),
            ("level=purple", "`level`"),
            ("bogus=1", "`bogus`"),
        ] {
            let Err(HttpError(status, message)) = parse_page_query(Some(raw)) else {
                panic!("{raw} accepted")
            };
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(message.contains(field), "{raw}: {message}");
        }
        let long = format!("category={}", "x".repeat(65));
        assert!(parse_page_query(Some(&long)).is_err());
    }

    #[test]
    fn seen_cursor_reads_the_cookie_or_starts_at_zero() {
        let mut headers = HeaderMap::new();
        assert_eq!(seen_cursor(&headers), AlertCursor::START);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; hotspot_seen=42"),
        );
        assert_eq!(seen_cursor(&headers), AlertCursor(42));
    }
}
