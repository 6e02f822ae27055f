//! The dashboard in a real browser: headless Chromium (Debian's `chromium` package) driven
//! over the DevTools protocol against a server on a loopback port holding demo data.
//!
//! It logs in through the form, checks that the map shows exactly the alerted venues, that a
//! level filter and the hour strip change what is shown, that a newly stored alert is marked
//! new, and writes screenshots under `target/tmp/dashboard-screenshots/` (paths printed).
//!
//! Without Chromium the test is skipped with a loud message, unless `$CI` is set: then it fails.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use hotspot_dashboard::DashboardSource;
use hotspot_dashboard::view::{AlertCursor, AlertFilter, AlertLevel};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Finds the browser: `$CHROMIUM`, else `chromium` or `chromium-browser` on the PATH.
fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A DevTools session on one page.
struct Browser {
    child: Child,
    socket: Socket,
    next_id: u64,
    profile: PathBuf,
}

impl Browser {
    async fn launch(chromium: &Path) -> Browser {
        let profile = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("chromium-profile-{}", std::process::id()));
        let mut child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
            ])
            .args([
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .args([
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1200,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromium");

        // Chromium prints "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID".
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = BufReader::new(stderr).lines();
        let browser_ws = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("read chromium stderr") {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!("chromium exited without a DevTools address");
        })
        .await
        .expect("chromium started within 30 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let port = browser_ws
            .trim_start_matches("ws://")
            .split(['/', ':'])
            .nth(1)
            .expect("port")
            .to_owned();
        let targets: Value = serde_json::from_slice(
            &common::get(&format!("http://127.0.0.1:{port}/json/list"), &[])
                .await
                .body,
        )
        .expect("target list");
        let page_ws = targets
            .as_array()
            .expect("array")
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page target")["webSocketDebuggerUrl"]
            .as_str()
            .expect("ws url")
            .to_owned();
        let (socket, _) = tokio_tungstenite::connect_async(page_ws)
            .await
            .expect("connect DevTools");
        let mut browser = Browser {
            child,
            socket,
            next_id: 0,
            profile,
        };
        browser.call("Page.enable", json!({})).await;
        browser.call("Runtime.enable", json!({})).await;
        browser
    }

    /// Sends a command and waits for its result (events received meanwhile are dropped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket
            .send(Message::Text(message.into()))
            .await
            .expect("send DevTools command");
        loop {
            let reply = self.receive().await;
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method} failed: {reply}");
                return reply["result"].clone();
            }
        }
    }

    async fn receive(&mut self) -> Value {
        let next = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
            .await
            .expect("DevTools answers within 30 s");
        match next.expect("socket open").expect("websocket frame") {
            Message::Text(text) => serde_json::from_str(&text).expect("json"),
            other => panic!("unexpected frame {other:?}"),
        }
    }

    async fn wait_for_load(&mut self) {
        loop {
            if self.receive().await["method"] == "Page.loadEventFired" {
                return;
            }
        }
    }

    async fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for_load().await;
    }

    /// Evaluates a JavaScript expression and returns its JSON value.
    async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Evaluates an expression that navigates, and waits for the new page.
    async fn eval_and_wait(&mut self, expression: &str) {
        self.eval(expression).await;
        self.wait_for_load().await;
    }

    /// Writes a PNG of the whole page (`full`) or of the 1200x1000 viewport.
    async fn screenshot(&mut self, name: &str, full: bool) -> PathBuf {
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": full }),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("data"))
            .expect("base64");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
            "a real PNG"
        );
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("write screenshot");
        println!("dashboard screenshot: {}", path.display());
        path
    }

    async fn close(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

const ALERTED: &str = "[...document.querySelectorAll('#map circle.alerted')].map(c => c.dataset.venue + ':' + c.classList[1])";
const ROWS: &str = "[...document.querySelectorAll('#alerts tr.alert')].map(r => r.dataset.venue + ':' + r.dataset.level + ':' + (r.classList.contains('new') ? 'new' : 'old'))";

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_str().expect("string").to_owned())
        .collect()
}

/// Venues with an alert on the demo day under `levels`, as "hex:level-<max>".
fn expected_markers(
    source: &hotspot_dashboard::InMemorySource,
    levels: Vec<AlertLevel>,
) -> BTreeSet<String> {
    let filter = AlertFilter {
        from: Some(common::DEMO_DAY),
        to: Some(common::DEMO_DAY + 86_400),
        levels,
        ..AlertFilter::default()
    };
    let mut max = std::collections::BTreeMap::new();
    for a in source.alerts(&filter, 10_000).expect("alerts") {
        let level = max.entry(a.venue_code).or_insert(a.level);
        *level = (*level).max(a.level);
    }
    max.into_iter()
        .map(|(code, level)| format!("{code:x}:level-{}", level.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium_shows_and_filters_alerted_venues() {
    let Some(chromium) = find_chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium not found and $CI is set: install Debian's `chromium` package");
        }
        eprintln!(
            "\n!!!!!!!! SKIPPED: chromium not found (apt-get install -y chromium); the browser test did not run !!!!!!!!\n"
        );
        return;
    };
    let source = common::demo_source();
    let addr = common::serve(source.clone()).await;
    let mut browser = Browser::launch(&chromium).await;

    // 1. Unauthenticated: the login form; log in through it.
    browser.navigate(&format!("http://{addr}/dashboard")).await;
    assert_eq!(
        browser
            .eval("document.querySelectorAll('input[name=token]').length")
            .await,
        1
    );
    let submit = format!(
        "document.querySelector('input[name=token]').value = '{}'; document.querySelector('form').submit()",
        common::TOKEN
    );
    browser.eval_and_wait(&submit).await;

    // 2. The whole demo day: the map shows every alerted venue in its highest level's colour.
    assert_eq!(browser.eval("location.pathname").await, "/dashboard");
    let markers: BTreeSet<String> = strings(&browser.eval(ALERTED).await).into_iter().collect();
    assert_eq!(markers, expected_markers(&source, vec![]));
    assert!(
        markers.iter().any(|m| m.ends_with("red"))
            && markers.iter().any(|m| m.ends_with("crowding"))
    );
    let rows = strings(&browser.eval(ROWS).await);
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r.ends_with(":new")),
        "first visit: all new"
    );
    assert!(
        browser
            .eval("document.querySelectorAll('#batches tbody tr').length")
            .await
            .as_u64()
            >= Some(24)
    );
    let whole_day = browser.screenshot("dashboard.png", true).await;
    browser.screenshot("dashboard-top.png", false).await;

    // 3. A level filter from the query string: only red venues remain, on map and table.
    browser
        .navigate(&format!("http://{addr}/dashboard?day=2026-12-02&level=red"))
        .await;
    let red: BTreeSet<String> = strings(&browser.eval(ALERTED).await).into_iter().collect();
    assert_eq!(red, expected_markers(&source, vec![AlertLevel::Red]));
    assert!(!red.is_empty() && red.len() < markers.len());
    assert!(
        strings(&browser.eval(ROWS).await)
            .iter()
            .all(|r| r.contains(":red:"))
    );
    browser.screenshot("dashboard-red.png", true).await;

    // 4. The hour strip (time slider): clicking 19:00 shows only that hour's alerts.
    browser
        .navigate(&format!("http://{addr}/dashboard?day=2026-12-02"))
        .await;
    browser
        .eval_and_wait("document.querySelectorAll('a.hour')[19].click()")
        .await;
    assert!(
        browser
            .eval("location.search")
            .await
            .as_str()
            .expect("search")
            .contains("hour=19")
    );
    let hour_rows = browser.eval("[...document.querySelectorAll('#alerts tr.alert td:nth-child(4)')].map(td => td.textContent)").await;
    let hour_rows = strings(&hour_rows);
    assert!(
        !hour_rows.is_empty() && hour_rows.iter().all(|t| t == "2026-12-02 19:00–20:00"),
        "{hour_rows:?}"
    );

    // 5. A newly stored alert is the only one marked new on the next visit.
    let mut fresh = source.alerts_after(AlertCursor::START, 1).expect("alerts")[0].clone();
    fresh.id = "fresh".into();
    fresh.window_start = common::DEMO_DAY + 23 * 3600;
    source.push_alert(fresh.clone());
    browser
        .navigate(&format!("http://{addr}/dashboard?day=2026-12-02"))
        .await;
    let new_rows: Vec<String> = strings(&browser.eval(ROWS).await)
        .into_iter()
        .filter(|r| r.ends_with(":new"))
        .collect();
    assert_eq!(
        new_rows,
        vec![format!(
            "{:x}:{}:new",
            fresh.venue_code,
            fresh.level.as_str()
        )]
    );

    println!(
        "dashboard screenshot (whole demo day): {}",
        whole_day.display()
    );
    browser.close().await;
}
