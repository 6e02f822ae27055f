//! Downloading the signed exposure list from the collector (`GET /exposure-list`, served by
//! crates/dashboard on the collector's admin port).
//!
//! The download is a plain HTTP GET of a public file: the server learns that someone fetched
//! the list, never what matched. The body is bounded before it is read whole, and the caller
//! verifies it ([`crate::exposure::verify_list`]); nothing here trusts the bytes.

use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub use crate::exposure::MAX_LIST_BYTES;
/// How long the whole download may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL is not an `http://` or `https://` URL.
    #[error("exposure list URL `{url}`: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The platform's root certificates could not be loaded (https only).
    #[error("TLS set-up: {0}")]
    Tls(String),
    /// Connecting or reading failed.
    #[error("downloading the exposure list: {0}")]
    Transport(String),
    /// The server answered with something other than 200.
    #[error("the collector answered HTTP {0} for the exposure list")]
    Status(u16),
    /// The body is larger than [`MAX_LIST_BYTES`].
    #[error("the exposure list is larger than {MAX_LIST_BYTES} bytes")]
    TooLarge,
    /// The download took longer than a minute.
    #[error("the exposure list download timed out")]
    Timeout,
}

/// Downloads the exposure list at `url` (for example
/// `http://127.0.0.1:9003/exposure-list`).
pub async fn fetch_exposure_list(url: &str) -> Result<Vec<u8>, FetchError> {
    let bad = |reason: &str| FetchError::BadUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(bad("must start with http:// or https://"));
    }
    let uri: hyper::Uri = url.parse().map_err(|_| bad("not a valid URL"))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| FetchError::Tls(e.to_string()))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let download = async {
        let response = client
            .get(uri)
            .await
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        if response.status() != hyper::StatusCode::OK {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let body = Limited::new(response.into_body(), MAX_LIST_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    FetchError::TooLarge
                } else {
                    FetchError::Transport(e.to_string())
                }
            })?;
        Ok(body.to_bytes().to_vec())
    };
    tokio::time::timeout(FETCH_TIMEOUT, download)
        .await
        .map_err(|_| FetchError::Timeout)?
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should panic")]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A one-shot HTTP server on loopback answering every request with `response`.
    async fn serve_once(response: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            socket.write_all(response.as_bytes()).await.unwrap();
            socket.shutdown().await.unwrap();
        });
        format!("http://{addr}/exposure-list")
    }

    #[tokio::test]
    async fn the_body_of_a_200_answer_is_returned() {
        let url = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc").await;
        assert_eq!(fetch_exposure_list(&url).await.unwrap(), b"abc");
    }

    #[tokio::test]
    async fn another_status_is_named() {
        let url = serve_once("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n").await;
        assert!(matches!(
            fetch_exposure_list(&url).await,
            Err(FetchError::Status(503))
        ));
    }

    #[tokio::test]
    async fn non_http_urls_are_refused_before_any_connection() {
        for url in ["ftp://collector/exposure-list", "collector:9003", ""] {
            assert!(matches!(
                fetch_exposure_list(url).await,
                Err(FetchError::BadUrl { .. })
            ));
        }
    }
}
