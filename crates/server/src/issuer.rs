//! The issuer (`hotspot serve --role issuer`): hands out anonymous upload credentials
//! (DESIGN.md sections 1 and 4, issue 4; the operator's view is docs/credentials.md section 11).
//!
//! - **Keys.** Each day's key is derived from the deployment's credential master secret
//!   (`IssuerKey::derive_daily`), which the leader and helper hold too; requests are answered
//!   only under the current UTC day's key. [`GetIssuerKeys`](v1::issuance_server::Issuance)
//!   publishes yesterday's, today's and tomorrow's public keys.
//! - **Crowding credentials** go to enrolled devices, at most one per device per day. The
//!   operator provisions enrolment ids (`hotspot issuer enrol`), which are stored only as
//!   keyed hashes ([`IdHasher`]). The (enrolment, day) record keeps the request's digest and
//!   the response: the same request again that day gets the same response (a lost answer can
//!   be fetched again), any other request is refused.
//! - **Outbreak credentials** go to whoever holds a one-time diagnosis code that the health
//!   authority registered (`hotspot collect diagnosis-code`, bearer token); codes are stored
//!   as keyed hashes of their digests, expire, and are spent by their first request (the same
//!   request again gets the same response).
//!
//! The issuer learns who obtained a credential and when, never what it is presented for:
//! presentations carry nothing from issuance (crates/credentials, test
//! `presentation_carries_no_value_from_issuance`). Nothing here logs an enrolment id, a code,
//! a token, a request or a response.
//!
//! | call | rule | status |
//! |---|---|---|
//! | crowding | `enrolment_id` not 8 to 128 visible ASCII characters; `request` that does not decode or whose proof fails | `INVALID_ARGUMENT` |
//! | crowding | `enrolment_id` never enrolled | `NOT_FOUND` |
//! | crowding | another crowding credential already issued to `enrolment_id` today | `RESOURCE_EXHAUSTED` |
//! | both | `request.key_id` not the current day's key | `FAILED_PRECONDITION` |
//! | outbreak | `diagnosis_code` not 16 base32 digits; bad `request` | `INVALID_ARGUMENT` |
//! | outbreak | `diagnosis_code` unknown | `NOT_FOUND` |
//! | outbreak | `diagnosis_code` expired, or already used by another request | `FAILED_PRECONDITION` |
//! | register | no or wrong bearer token | `UNAUTHENTICATED` |
//! | register | `code_digest` not 32 bytes, `valid_seconds` outside 1 s to 30 days | `INVALID_ARGUMENT` |
//! | register | the code is registered already | `ALREADY_EXISTS` |

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use hotspot_core::credential::{CodeError, DiagnosisCode, check_enrolment_id};
use hotspot_credentials::{
    CredentialRequest, Day, IssuerKey, REQUEST_CONTEXT_CROWDING, REQUEST_CONTEXT_OUTBREAK, issue,
};
use hotspot_proto::v1;

use crate::config::{ServerConfig, Token};
use crate::credential::Verifier;
use crate::storage::{Issuance, IssuanceRefusal, IssuerStore, StoreError};
use crate::{blocking, now_unix};

/// Longest validity of a diagnosis code.
pub const MAX_CODE_VALIDITY_SECONDS: u32 = 30 * 86_400;
/// Days of crowding issuance records kept (today's and yesterday's are needed).
const ISSUANCE_DAYS_KEPT: u32 = 2;
/// Expired codes are forgotten this long after their expiry.
const EXPIRED_CODES_KEPT_SECONDS: i64 = 30 * 86_400;

/// Errors setting up the issuer or provisioning it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// The configuration lacks a secret the issuer needs.
    #[error("`{0}` is not configured")]
    Missing(&'static str),
    /// An enrolment id in a provisioning file is invalid (line numbers from 1).
    #[error("line {line}: enrolment id {reason}")]
    EnrolmentId {
        /// The line.
        line: usize,
        /// What is wrong.
        reason: CodeError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Keyed hashes of the issuer's identifiers: `HMAC-SHA256(key, label || value)`, so that a
/// copy of the database alone names nobody.
#[derive(Clone)]
pub struct IdHasher {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for IdHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdHasher(<redacted>)")
    }
}

impl IdHasher {
    /// A hasher under the deployment's 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        IdHasher {
            key: Zeroizing::new(*key),
        }
    }

    /// The hasher of an issuer's configuration.
    pub fn from_config(config: &ServerConfig) -> Result<Self, IssuerError> {
        let key = (config.issuer_hash_key.as_ref())
            .ok_or(IssuerError::Missing("issuer_hash_key_file"))?;
        Ok(Self::new(&key.0))
    }

    fn hash(&self, label: &[u8], value: &[u8]) -> [u8; 32] {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key[..])
            .unwrap_or_else(|_| unreachable!("HMAC accepts a 32-byte key"));
        mac.update(label);
        mac.update(value);
        mac.finalize().into_bytes().into()
    }

    /// The stored form of an enrolment id.
    pub fn enrolment(&self, id: &str) -> [u8; 32] {
        self.hash(b"hotspot.v1 enrolment id", id.as_bytes())
    }

    /// The stored form of a diagnosis code, from its digest.
    pub fn code(&self, digest: &[u8; 32]) -> [u8; 32] {
        self.hash(b"hotspot.v1 diagnosis code", digest)
    }
}

/// Provisions the enrolment ids of `text` (one per line; blank lines and `#` comments are
/// skipped); returns how many were new. Every line is checked before anything is written.
pub fn enrol_ids(
    store: &dyn IssuerStore,
    hasher: &IdHasher,
    text: &str,
) -> Result<usize, IssuerError> {
    let mut hashes = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let id = line.split('#').next().unwrap_or("").trim();
        if id.is_empty() {
            continue;
        }
        check_enrolment_id(id).map_err(|reason| IssuerError::EnrolmentId {
            line: n + 1,
            reason,
        })?;
        hashes.push(hasher.enrolment(id));
    }
    Ok(store.enrol(&hashes, now_unix() as i64)?)
}

/// The `Issuance` gRPC service.
#[derive(Clone)]
pub struct IssuanceService {
    store: Arc<dyn IssuerStore>,
    keys: Arc<Verifier>,
    hasher: IdHasher,
    token: Option<Token>,
}

impl std::fmt::Debug for IssuanceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssuanceService")
    }
}

/// Which credential a request is for.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Crowding,
    Outbreak,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Crowding => "crowding",
            Kind::Outbreak => "outbreak",
        }
    }

    fn request_context(self) -> &'static [u8] {
        match self {
            Kind::Crowding => REQUEST_CONTEXT_CROWDING,
            Kind::Outbreak => REQUEST_CONTEXT_OUTBREAK,
        }
    }
}

impl IssuanceService {
    /// The service of an issuer's configuration over `store`.
    pub fn new(config: &ServerConfig, store: Arc<dyn IssuerStore>) -> Result<Self, IssuerError> {
        let master =
            (config.credential_key.as_ref()).ok_or(IssuerError::Missing("credential_key_file"))?;
        if config.issuer_token.is_none() {
            tracing::warn!("no issuer_token_file: diagnosis codes cannot be registered");
        }
        Ok(IssuanceService {
            store,
            keys: Arc::new(Verifier::new(&master.0)),
            hasher: IdHasher::from_config(config)?,
            token: config.issuer_token.clone(),
        })
    }

    /// Forgets old issuance records and long-expired codes, hourly, for as long as it runs.
    pub async fn prune(self) {
        let mut tick = tokio::time::interval(Duration::from_secs(3_600));
        loop {
            tick.tick().await;
            let store = Arc::clone(&self.store);
            let now = now_unix();
            let before_day = Day::from_unix_seconds(now).minus(ISSUANCE_DAYS_KEPT).0;
            let before = now as i64 - EXPIRED_CODES_KEPT_SECONDS;
            if let Err(e) = blocking(move || store.prune_issuer(before_day, before)).await {
                tracing::warn!(error = %e.message(), "pruning the issuer's records failed");
            }
        }
    }

    /// Checks the request, consults the store, issues, records: one credential.
    async fn answer(
        &self,
        kind: Kind,
        id_hash: [u8; 32],
        request: Vec<u8>,
    ) -> Result<Response<v1::IssueCredentialResponse>, Status> {
        let parsed = CredentialRequest::from_bytes(&request)
            .map_err(|e| Status::invalid_argument(format!("request: {e}")))?;
        let day = Day::from_unix_seconds(now_unix());
        let keys = Arc::clone(&self.keys);
        let key: IssuerKey = blocking(move || Ok::<_, Status>(keys.key(day))).await?;
        if parsed.key_id() != key.key_id() {
            return Err(Status::failed_precondition(format!(
                "request.key_id: not the key of the current day {}; fetch the keys again",
                day.0
            )));
        }
        let digest: [u8; 32] = Sha256::digest(&request).into();
        let store = Arc::clone(&self.store);
        let outcome = blocking(move || {
            let record = |response: Option<&[u8]>| match kind {
                Kind::Crowding => store.crowding_issuance(&id_hash, day.0, &digest, response),
                Kind::Outbreak => {
                    store.outbreak_issuance(&id_hash, now_unix() as i64, &digest, response)
                }
            };
            match record(None)? {
                Issuance::Fresh => {}
                other => return Ok(other),
            }
            let response = issue(&key, kind.request_context(), &parsed, &mut rand::rng())
                .map_err(|e| Status::invalid_argument(format!("request: {e}")))?
                .to_bytes();
            Ok::<_, Status>(match record(Some(&response))? {
                Issuance::Fresh => Issuance::Repeat(response),
                other => other,
            })
        })
        .await?;
        let label = kind.label();
        match outcome {
            Issuance::Repeat(response) => {
                metrics::counter!("hotspot_credentials_issued_total", "kind" => label).increment(1);
                Ok(Response::new(v1::IssueCredentialResponse {
                    response,
                    day: day.0,
                }))
            }
            Issuance::Refused(why) => {
                metrics::counter!("hotspot_credentials_refused_total", "kind" => label)
                    .increment(1);
                Err(refusal(why))
            }
            Issuance::Fresh => Err(Status::internal("issuance not recorded")),
        }
    }

    fn authorise<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let denied = || Status::unauthenticated("authorization: a valid bearer token is needed");
        let expected = self.token.as_ref().ok_or_else(denied)?;
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(denied)?;
        // Constant time in the token's contents; the length of the expected token may leak.
        if bool::from(given.as_bytes().ct_eq(expected.0.as_bytes())) {
            Ok(())
        } else {
            Err(denied())
        }
    }
}

fn refusal(why: IssuanceRefusal) -> Status {
    match why {
        IssuanceRefusal::NotEnrolled => Status::not_found("enrolment_id: not enrolled"),
        IssuanceRefusal::AlreadyIssued => Status::resource_exhausted(
            "enrolment_id: a crowding credential was already issued to this device today",
        ),
        IssuanceRefusal::UnknownCode => Status::not_found("diagnosis_code: unknown code"),
        IssuanceRefusal::Expired => Status::failed_precondition("diagnosis_code: expired"),
        IssuanceRefusal::Used => Status::failed_precondition("diagnosis_code: already used"),
    }
}

#[tonic::async_trait]
impl v1::issuance_server::Issuance for IssuanceService {
    async fn get_issuer_keys(
        &self,
        _request: Request<v1::GetIssuerKeysRequest>,
    ) -> Result<Response<v1::GetIssuerKeysResponse>, Status> {
        let today = Day::from_unix_seconds(now_unix());
        let keys = Arc::clone(&self.keys);
        let keys = blocking(move || {
            Ok::<_, Status>(
                [today.minus(1), today, today.plus(1)]
                    .into_iter()
                    .map(|day| {
                        let key = keys.key(day);
                        v1::IssuerPublicKey {
                            key_id: key.key_id().0.to_vec(),
                            day: day.0,
                            public_key: key.public().to_bytes().to_vec(),
                        }
                    })
                    .collect(),
            )
        })
        .await?;
        Ok(Response::new(v1::GetIssuerKeysResponse {
            current_day: today.0,
            keys,
        }))
    }

    #[tracing::instrument(name = "issue_crowding", skip_all)]
    async fn issue_crowding_credential(
        &self,
        request: Request<v1::IssueCrowdingCredentialRequest>,
    ) -> Result<Response<v1::IssueCredentialResponse>, Status> {
        let req = request.into_inner();
        check_enrolment_id(&req.enrolment_id)
            .map_err(|e| Status::invalid_argument(format!("enrolment_id: {e}")))?;
        let id_hash = self.hasher.enrolment(&req.enrolment_id);
        self.answer(Kind::Crowding, id_hash, req.request).await
    }

    #[tracing::instrument(name = "issue_outbreak", skip_all)]
    async fn issue_outbreak_credential(
        &self,
        request: Request<v1::IssueOutbreakCredentialRequest>,
    ) -> Result<Response<v1::IssueCredentialResponse>, Status> {
        let req = request.into_inner();
        let code = DiagnosisCode::parse(&req.diagnosis_code)
            .map_err(|e| Status::invalid_argument(format!("diagnosis_code: {e}")))?;
        let code_hash = self.hasher.code(&code.digest());
        self.answer(Kind::Outbreak, code_hash, req.request).await
    }

    #[tracing::instrument(name = "register_code", skip_all)]
    async fn register_diagnosis_code(
        &self,
        request: Request<v1::RegisterDiagnosisCodeRequest>,
    ) -> Result<Response<v1::RegisterDiagnosisCodeResponse>, Status> {
        self.authorise(&request)?;
        let req = request.into_inner();
        let digest: [u8; 32] = req
            .code_digest
            .as_slice()
            .try_into()
            .map_err(|_| Status::invalid_argument("code_digest: must be 32 bytes"))?;
        if !(1..=MAX_CODE_VALIDITY_SECONDS).contains(&req.valid_seconds) {
            return Err(Status::invalid_argument(format!(
                "valid_seconds: must be 1 to {MAX_CODE_VALIDITY_SECONDS}"
            )));
        }
        let now = now_unix() as i64;
        let expires = now + i64::from(req.valid_seconds);
        let hash = self.hasher.code(&digest);
        let store = Arc::clone(&self.store);
        let fresh = blocking(move || store.register_code(&hash, now, expires)).await?;
        if !fresh {
            return Err(Status::already_exists(
                "code_digest: this code is registered already",
            ));
        }
        metrics::counter!("hotspot_diagnosis_codes_registered_total").increment(1);
        Ok(Response::new(v1::RegisterDiagnosisCodeResponse {
            expires_unix: expires,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hashes_depend_on_the_key_and_the_kind_of_identifier() {
        let (a, b) = (IdHasher::new(&[1; 32]), IdHasher::new(&[2; 32]));
        assert_ne!(a.enrolment("device-0001"), b.enrolment("device-0001"));
        assert_ne!(a.enrolment("device-0001"), a.enrolment("device-0002"));
        assert_eq!(a.enrolment("device-0001"), a.enrolment("device-0001"));
        let digest = [7u8; 32];
        assert_ne!(a.code(&digest), a.hash(b"hotspot.v1 enrolment id", &digest));
        assert!(!format!("{a:?}").contains("1, 1"));
    }

    #[test]
    fn enrolment_file_is_checked_whole_before_anything_is_written() {
        let dir = std::env::temp_dir().join(format!("hotspot-issuer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = crate::storage::sqlite::SqliteStore::open(&dir.join("i.sqlite")).unwrap();
        let hasher = IdHasher::new(&[1; 32]);
        let err = enrol_ids(&store, &hasher, "device-0001\nbad id\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let text = "# devices\ndevice-0001\n\ndevice-0002  # second\ndevice-0001\n";
        assert_eq!(enrol_ids(&store, &hasher, text).unwrap(), 2);
        assert_eq!(enrol_ids(&store, &hasher, text).unwrap(), 0);
    }
}
