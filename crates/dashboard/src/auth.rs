//! Access control for the dashboard: the collector's bearer token, checked in constant time,
//! either in an `Authorization: Bearer` header (scripts, the JSON API) or in a session cookie
//! set by the login form (people in a browser).
//!
//! The cookie never holds the token itself: it holds HMAC-SHA256(token, a fixed label), so
//! a leaked cookie does not reveal the token (it still grants access until the token is
//! rotated, which invalidates every session). Comparisons use `subtle`; the only thing that
//! leaks through timing is the presented value's length, which is not secret.

use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Domain label of the session value derived from the token.
const SESSION_LABEL: &[u8] = b"hotspot/dashboard-session/v1";
/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "hotspot_session";
/// Shortest token accepted from the configuration.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why a token from the configuration was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Fewer than [`MIN_TOKEN_LEN`] bytes.
    #[error("dashboard token must be at least {MIN_TOKEN_LEN} characters")]
    TooShort,
    /// Characters outside visible ASCII (a header could not carry it).
    #[error("dashboard token must be visible ASCII without spaces")]
    BadCharacters,
}

/// The collector's bearer token. Zeroized on drop; `Debug` prints a placeholder.
#[derive(Clone)]
pub struct BearerToken {
    token: Zeroizing<Vec<u8>>,
    session: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl BearerToken {
    /// Wraps a token from the collector's configuration, checking its form.
    pub fn new(token: &str) -> Result<Self, TokenError> {
        if token.len() < MIN_TOKEN_LEN {
            return Err(TokenError::TooShort);
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::BadCharacters);
        }
        let session = hex::encode(hmac_sha256(token.as_bytes(), SESSION_LABEL));
        Ok(Self {
            token: Zeroizing::new(token.as_bytes().to_vec()),
            session: Zeroizing::new(session.into_bytes()),
        })
    }

    /// Whether `presented` equals the token (constant time in the token's content).
    pub fn matches(&self, presented: &[u8]) -> bool {
        bool::from(self.token.as_slice().ct_eq(presented))
    }

    /// Whether a session cookie value is the one the login form issues for this token.
    pub fn matches_session(&self, presented: &[u8]) -> bool {
        bool::from(self.session.as_slice().ct_eq(presented))
    }

    /// The session cookie value issued after a successful login.
    pub(crate) fn session_value(&self) -> &str {
        // Built from hex::encode, which yields ASCII only.
        std::str::from_utf8(&self.session).unwrap_or_default()
    }

    /// Whether the request headers carry this token (bearer header) or its session cookie.
    pub fn authorizes(&self, headers: &axum::http::HeaderMap) -> bool {
        if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
            let bytes = value.as_bytes();
            let prefix = b"Bearer ";
            return bytes.len() > prefix.len()
                && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
                && self.matches(&bytes[prefix.len()..]);
        }
        session_cookie(headers).is_some_and(|value| self.matches_session(value))
    }
}

/// The value of the session cookie, if the request has one.
fn session_cookie(headers: &axum::http::HeaderMap) -> Option<&[u8]> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b';'))
        .map(|pair| pair.trim_ascii())
        .find_map(|pair| {
            pair.strip_prefix(SESSION_COOKIE.as_bytes())?
                .strip_prefix(b"=")
        })
}

/// HMAC-SHA256 of `message` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::*;

    const TOKEN: &str = "correct-horse-battery-staple";

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_str(value).expect("ascii"));
        map
    }

    #[test]
    fn bearer_header_with_the_token_is_accepted() {
        let token = BearerToken::new(TOKEN).expect("valid");
        assert!(token.authorizes(&headers(header::AUTHORIZATION, &format!("Bearer {TOKEN}"))));
        assert!(token.authorizes(&headers(header::AUTHORIZATION, &format!("bearer {TOKEN}"))));
    }

    #[test]
    fn missing_wrong_or_prefixed_tokens_are_refused() {
        let token = BearerToken::new(TOKEN).expect("valid");
        assert!(!token.authorizes(&HeaderMap::new()));
        assert!(!token.authorizes(&headers(
            header::AUTHORIZATION,
            "Bearer wrong-token-of-length"
        )));
        assert!(!token.authorizes(&headers(header::AUTHORIZATION, &format!("Bearer {TOKEN}x"))));
        assert!(!token.authorizes(&headers(header::AUTHORIZATION, &format!("Basic {TOKEN}"))));
        assert!(!token.authorizes(&headers(header::AUTHORIZATION, "Bearer ")));
        // The raw token in the cookie is not a session.
        let cookie = format!("{SESSION_COOKIE}={TOKEN}");
        assert!(!token.authorizes(&headers(header::COOKIE, &cookie)));
    }

    #[test]
    fn session_cookie_is_derived_and_accepted_among_other_cookies() {
        let token = BearerToken::new(TOKEN).expect("valid");
        let cookie = format!("a=b; {SESSION_COOKIE}={}; c=d", token.session_value());
        assert!(token.authorizes(&headers(header::COOKIE, &cookie)));
        assert!(!token.session_value().contains(TOKEN));
        let other = BearerToken::new("another-token-entirely").expect("valid");
        assert!(!other.authorizes(&headers(header::COOKIE, &cookie)));
    }

    #[test]
    fn weak_or_unprintable_tokens_are_refused_at_configuration() {
        assert_eq!(BearerToken::new("short").err(), Some(TokenError::TooShort));
        assert_eq!(
            BearerToken::new("has a space in the token").err(),
            Some(TokenError::BadCharacters)
        );
    }

    #[test]
    fn debug_does_not_print_the_token() {
        let token = BearerToken::new(TOKEN).expect("valid");
        assert!(!format!("{token:?}").contains("horse"));
    }
}
