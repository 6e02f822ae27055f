//! The dashboard's HTTP surface on a real loopback server: access control, the login flow, the
//! JSON API and its filters, the map's colours by level, and the signed exposure list.
//!
//! The page in a real browser, against a real collector process, is tested in
//! `tests/tests/dashboard.rs` (package hotspot-tests).

mod common;

use common::{DEMO_DAY, TOKEN, bearer, demo_source, exposure_key, get, send, serve};
use hotspot_dashboard::exposure::{ExposureLevel, ExposureList};
use hotspot_dashboard::view::{AlertLevel, AlertView};
use hyper::{Method, StatusCode};

const PROTECTED: [&str; 5] = [
    "/dashboard",
    "/dashboard/api/alerts",
    "/dashboard/api/alerts/after?cursor=0",
    "/dashboard/api/batches",
    "/dashboard/api/venues",
];

/// Without a token, with a wrong one, or with the raw token as cookie, every protected path
/// answers 401 and reveals no data.
#[tokio::test]
async fn unauthorised_requests_are_refused_on_every_protected_path() {
    let addr = serve(demo_source()).await;
    let wrong = format!("Bearer {TOKEN}x");
    let raw_cookie = format!("hotspot_session={TOKEN}");
    let attempts: [&[(&str, &str)]; 5] = [
        &[],
        &[("authorization", &wrong)],
        &[("authorization", "Bearer test-token")],
        &[("authorization", TOKEN)],
        &[("cookie", &raw_cookie)],
    ];
    for path in PROTECTED {
        for headers in attempts {
            let reply = get(&format!("http://{addr}{path}"), headers).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{path} with {headers:?}"
            );
            assert!(reply.headers.contains_key("www-authenticate"));
            assert!(!reply.text().contains("Restaurant"), "{path} leaked data");
        }
        let ok = get(
            &format!("http://{addr}{path}"),
            &[("authorization", &bearer())],
        )
        .await;
        assert_eq!(ok.status, StatusCode::OK, "{path} with the token");
    }
}

/// A browser gets the login form with its 401; a correct token sets an HttpOnly session cookie
/// that then opens the dashboard; a wrong token sets nothing.
#[tokio::test]
async fn login_form_sets_an_http_only_session_cookie() {
    let addr = serve(demo_source()).await;
    let page = get(
        &format!("http://{addr}/dashboard"),
        &[("accept", "text/html")],
    )
    .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.text().contains(r#"name="token""#));

    let form = [("content-type", "application/x-www-form-urlencoded")];
    let bad = send(
        Method::POST,
        &format!("http://{addr}/dashboard/login"),
        &form,
        b"token=nope",
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(!bad.headers.contains_key("set-cookie"));

    let body = format!("token={TOKEN}");
    let good = send(
        Method::POST,
        &format!("http://{addr}/dashboard/login"),
        &form,
        body.as_bytes(),
    )
    .await;
    assert_eq!(good.status, StatusCode::SEE_OTHER);
    let cookie = good.headers["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(TOKEN),
        "the cookie must not carry the token"
    );
    let session = cookie.split(';').next().expect("name=value");
    let page = get(&format!("http://{addr}/dashboard"), &[("cookie", session)]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains(r#"<svg id="map""#));
}

async fn alerts(addr: std::net::SocketAddr, query: &str) -> Vec<AlertView> {
    let reply = get(
        &format!("http://{addr}/dashboard/api/alerts?{query}"),
        &[("authorization", &bearer())],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    serde_json::from_slice(&reply.body).expect("json alerts")
}

/// Day, hour, category and level filters each narrow the JSON answer as documented.
#[tokio::test]
async fn filters_narrow_the_alert_api() {
    let addr = serve(demo_source()).await;
    let all = alerts(addr, "day=2026-12-02").await;
    assert!(all.len() > 10, "demo day has alerts");
    let red = alerts(addr, "day=2026-12-02&level=red").await;
    assert!(!red.is_empty() && red.iter().all(|a| a.level == AlertLevel::Red));
    assert!(red.len() < all.len());
    let hour = alerts(addr, "day=2026-12-02&hour=19").await;
    assert!(!hour.is_empty() && hour.iter().all(|a| a.window_start == DEMO_DAY + 19 * 3600));
    let bars = alerts(addr, "day=2026-12-02&category=bar").await;
    assert!(bars.iter().all(|a| a.category == "bar"));
    assert!(alerts(addr, "day=2026-12-05").await.is_empty());

    let bad = get(
        &format!("http://{addr}/dashboard?level=purple"),
        &[("authorization", &bearer())],
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("`level`"));
}

/// `(venue hex, level)` of every alerted venue marker on a rendered page.
fn map_markers(html: &str) -> std::collections::BTreeSet<(String, String)> {
    html.split(r#"<circle class="alerted level-"#)
        .skip(1)
        .map(|rest| {
            let level = rest.split('"').next().expect("level").to_owned();
            let venue = rest
                .split(r#"data-venue=""#)
                .nth(1)
                .and_then(|v| v.split('"').next())
                .expect("venue");
            (venue.to_owned(), level)
        })
        .collect()
}

/// The map draws each alerted venue in the colour of its highest level of the selection (the
/// demo has crowding, orange and red), and a level filter keeps only the red ones.
#[tokio::test]
async fn map_colours_venues_by_their_highest_level_and_filters_by_level() {
    use hotspot_dashboard::DashboardSource;
    use hotspot_dashboard::view::AlertFilter;

    let source = demo_source();
    let addr = serve(source.clone()).await;
    for (query, levels) in [("", vec![]), ("&level=red", vec![AlertLevel::Red])] {
        let filter = AlertFilter {
            from: Some(DEMO_DAY),
            to: Some(DEMO_DAY + 86_400),
            levels,
            ..AlertFilter::default()
        };
        let mut highest = std::collections::BTreeMap::new();
        for a in source.alerts(&filter, 10_000).expect("alerts") {
            let level = highest.entry(a.venue_code).or_insert(a.level);
            *level = (*level).max(a.level);
        }
        let expected: std::collections::BTreeSet<(String, String)> = highest
            .into_iter()
            .map(|(code, level)| (format!("{code:x}"), level.as_str().to_owned()))
            .collect();
        let page = get(
            &format!("http://{addr}/dashboard?day=2026-12-02{query}"),
            &[("authorization", &bearer())],
        )
        .await;
        let markers = map_markers(&page.text());
        assert_eq!(markers, expected, "{query}");
        let levels: std::collections::BTreeSet<&str> =
            markers.iter().map(|(_, l)| l.as_str()).collect();
        if query.is_empty() {
            assert!(
                levels.contains("red") && levels.contains("crowding"),
                "{levels:?}"
            );
        } else {
            assert_eq!(levels, std::collections::BTreeSet::from(["red"]));
        }
    }
}

/// `alerts/after` pages through the log in cursor order with no gap and no repeat.
#[tokio::test]
async fn alerts_after_pages_in_cursor_order_without_gaps() {
    let addr = serve(demo_source()).await;
    let (mut cursor, mut seen) = (0u64, Vec::new());
    loop {
        let url = format!("http://{addr}/dashboard/api/alerts/after?cursor={cursor}&limit=7");
        let page: Vec<AlertView> =
            serde_json::from_slice(&get(&url, &[("authorization", &bearer())]).await.body)
                .expect("json");
        let Some(last) = page.last() else { break };
        cursor = last.cursor.0;
        seen.extend(page.iter().map(|a| a.cursor.0));
    }
    let expected: Vec<u64> = (1..=seen.len() as u64).collect();
    assert_eq!(seen, expected);
    let url = format!("http://{addr}/dashboard/api/alerts/after?cursor=0&limit=0");
    assert_eq!(
        get(&url, &[("authorization", &bearer())]).await.status,
        StatusCode::BAD_REQUEST
    );
}

/// The exposure list is public, verifies under the authority's key, holds exactly the outbreak
/// cells, and answers 304 to a matching ETag.
#[tokio::test]
async fn exposure_list_is_signed_and_holds_the_outbreak_cells() {
    let source = demo_source();
    let addr = serve(source.clone()).await;
    let reply = get(&format!("http://{addr}/exposure-list"), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let list =
        ExposureList::verify(&reply.body, &exposure_key().verifying_key()).expect("verifies");

    let outbreak: Vec<AlertView> = alerts(addr, "level=orange,red").await;
    assert_eq!(list.cells().len(), outbreak.len());
    for a in &outbreak {
        let expected = if a.level == AlertLevel::Red {
            ExposureLevel::Red
        } else {
            ExposureLevel::Orange
        };
        assert_eq!(
            list.lookup(a.venue_code, a.window_start + 1800),
            Some(expected)
        );
    }
    let all = alerts(addr, "").await;
    assert_eq!(
        list.version(),
        all.iter().map(|a| a.cursor.0).max().expect("alerts")
    );

    let etag = reply.headers["etag"].to_str().expect("ascii").to_owned();
    let again = get(
        &format!("http://{addr}/exposure-list"),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);

    let other = ed25519_dalek::SigningKey::from_bytes(&[0x12; 32]).verifying_key();
    assert!(ExposureList::verify(&reply.body, &other).is_err());

    // The public key is published beside the list, for apps to pin.
    let key = get(&format!("http://{addr}/exposure-list/key"), &[]).await;
    assert_eq!(key.status, StatusCode::OK);
    assert_eq!(
        key.text(),
        format!(
            "{}\n",
            hex::encode(exposure_key().verifying_key().as_bytes())
        )
    );
}

/// Pages carry a script-free-origin CSP, no caching and no sniffing; logout expires the session.
#[tokio::test]
async fn pages_carry_security_headers_and_logout_expires_the_session() {
    let addr = serve(demo_source()).await;
    let page = get(
        &format!("http://{addr}/dashboard"),
        &[("authorization", &bearer())],
    )
    .await;
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers["cache-control"], "no-store");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    let text = page.text();
    for external in [
        "src=\"http",
        "href=\"http",
        "url(http",
        "@import",
        "<script src",
    ] {
        assert!(
            !text.contains(external),
            "nothing loaded from elsewhere: {external}"
        );
    }

    let out = send(
        Method::POST,
        &format!("http://{addr}/dashboard/logout"),
        &[],
        b"",
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let cookie = out.headers["set-cookie"].to_str().expect("ascii");
    assert!(cookie.starts_with("hotspot_session=;") && cookie.contains("Max-Age=0"));
}

/// Without a configured signing key no exposure list is served.
#[tokio::test]
async fn exposure_list_is_absent_without_a_signing_key() {
    let state = hotspot_dashboard::DashboardState::new(
        std::sync::Arc::new(demo_source()),
        hotspot_dashboard::BearerToken::new(TOKEN).expect("token"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, hotspot_dashboard::router(state)).await });
    let reply = get(&format!("http://{addr}/exposure-list"), &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let key = get(&format!("http://{addr}/exposure-list/key"), &[]).await;
    assert_eq!(key.status, StatusCode::NOT_FOUND);
}
