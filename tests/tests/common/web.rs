//! Web helpers of the end-to-end tests: a minimal HTTP client, and headless Chromium (Debian's
//! `chromium` package) driven over the DevTools protocol.
//!
//! Included with `#[path = "common/web.rs"] mod web;` by the tests that need it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[path = "../../../crates/dashboard/tests/common/reply.rs"]
mod reply;
pub use reply::get;

/// Where screenshots go: `target/tmp/dashboard-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots")
}

/// The browser, or `None` when the test may skip: without Chromium it fails under `$CI`.
pub fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    match find_chromium() {
        Some(path) => Some(path),
        None if std::env::var_os("CI").is_some() => {
            panic!("chromium not found and $CI is set: install Debian's `chromium` package")
        }
        None => {
            eprintln!(
                "\n!!!!!!!! SKIPPED {test}: chromium not found (apt-get install -y chromium) !!!!!!!!\n"
            );
            None
        }
    }
}

/// Finds the browser: `$CHROMIUM`, else `chromium` or `chromium-browser` on the PATH.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A DevTools session on one page.
pub struct Browser {
    child: Child,
    socket: Socket,
    next_id: u64,
    profile: PathBuf,
}

impl Browser {
    pub async fn launch(chromium: &Path) -> Browser {
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
            &get(&format!("http://127.0.0.1:{port}/json/list"), &[])
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
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
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

    pub async fn wait_for_load(&mut self) {
        loop {
            if self.receive().await["method"] == "Page.loadEventFired" {
                return;
            }
        }
    }

    pub async fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for_load().await;
    }

    /// Evaluates a JavaScript expression and returns its JSON value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Evaluates an expression that navigates, and waits for the new page.
    pub async fn eval_and_wait(&mut self, expression: &str) {
        self.eval(expression).await;
        self.wait_for_load().await;
    }

    /// Writes a PNG of the whole page (`full`) or of the 1200x1000 viewport.
    pub async fn screenshot(&mut self, name: &str, full: bool) -> PathBuf {
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
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("write screenshot");
        println!("dashboard screenshot: {}", path.display());
        path
    }

    pub async fn close(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
