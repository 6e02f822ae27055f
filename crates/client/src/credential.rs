//! The visitor's credential wallet: obtain anonymous upload credentials from the issuer over
//! gRPC, keep them, and present one per report with the next unused nonce of its (task,
//! window).
//!
//! A visitor holds at most one credential per kind and day:
//!
//! - a **crowding** credential, obtained each day with the device's enrolment id
//!   ([`IssuerClient::obtain_crowding`]); the issuer answers at most one request per device
//!   and day (the same request again gets the same answer, so a retry after a lost answer is
//!   safe);
//! - an **outbreak** credential, obtained once with the one-time diagnosis code the health
//!   authority handed out ([`IssuerClient::obtain_outbreak`]); it is accepted for the windows
//!   of the 14 days before the day it was issued.
//!
//! Each credential yields at most `N` (the task's `presentations_per_window`) presentations
//! per window, one per nonce `0..N`; a nonce used twice gives the same tag, which the
//! aggregators refuse. The wallet therefore hands out nonces in two steps, so that a report
//! and its presentation can be kept together in an outbox across retries:
//!
//! 1. [`Wallet::reserve`] picks a credential valid for the window (per
//!    `hotspot_core::credential::accepted_key_days`) and its next unused nonce, and returns
//!    a [`Ticket`]; the nonce is spent from then on (persist the wallet before uploading);
//! 2. [`Wallet::present`] makes the presentation for a ticket; calling it again for the same
//!    ticket (a retry of the same report) yields another presentation with the same tag,
//!    which the leader acknowledges as the duplicate of the stored report.
//!
//! [`Wallet::next_presentation`] does both at once. The issuer's response carries a proof that
//! it used the day's published key; the aggregators accept only the key they derive for that
//! day, so an issuer cannot mark one visitor with a key of its own.
//!
//! Randomness is an argument: requests and presentations take the caller's `CryptoRng`.

use std::collections::BTreeMap;

use rand::CryptoRng;
use zeroize::Zeroizing;

use hotspot_core::credential::{
    DiagnosisCode, accepted_key_days, check_enrolment_id, presentation_context, request_context,
};
use hotspot_core::task::{TaskConfig, TaskId, TaskKind};
use hotspot_credentials::{
    Credential, CredentialError, CredentialRequest, CredentialResponse, Day, IssuanceError,
    IssuerPublicKey, KeyId,
};
use hotspot_proto::v1::{self, issuance_client::IssuanceClient};

/// Magic and version of [`Wallet::to_bytes`].
const WALLET_MAGIC: &[u8; 4] = b"HSW1";
/// Days a credential is kept after the day of its key (outbreak credentials serve the
/// windows of the 14 days before it; crowding credentials only their own day).
const KEEP_DAYS: u32 = hotspot_core::credential::OUTBREAK_CREDENTIAL_DAYS + 1;

/// Why the wallet could not obtain or present a credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// The issuer could not be reached (worth retrying).
    #[error("issuer unreachable: {0}")]
    Transport(String),
    /// The issuer refused the request; `code` and `message` are its gRPC status.
    #[error("issuer refused ({code:?}): {message}")]
    Refused {
        /// The status code.
        code: tonic::Code,
        /// The issuer's message (it names the field).
        message: String,
    },
    /// The enrolment id or diagnosis code is malformed; nothing was sent.
    #[error("{field}: {reason}")]
    Input {
        /// `enrolment_id` or `diagnosis_code`.
        field: &'static str,
        /// What is wrong.
        reason: hotspot_core::credential::CodeError,
    },
    /// The issuer published no key for its current day, or a malformed one.
    #[error("the issuer published no usable key for day {0}")]
    NoKey(u32),
    /// The issuer's response does not decode or its proof fails: it did not use the
    /// published key.
    #[error("issuer response refused: {0}")]
    Response(#[from] IssuanceError),
    /// The wallet holds no credential of the task's kind valid for the window.
    #[error("no {kind:?} credential valid for window {window}")]
    NoCredential {
        /// The task's kind.
        kind: TaskKind,
        /// The window.
        window: u64,
    },
    /// Every valid credential has spent its `limit` presentations for the window.
    #[error("all {limit} presentations for window {window} are spent")]
    Exhausted {
        /// The window.
        window: u64,
        /// The task's limit per window.
        limit: u32,
    },
    /// The ticket names a credential the wallet does not hold, or a nonce out of range.
    #[error("the ticket does not belong to this wallet or task")]
    BadTicket,
    /// The presentation could not be made.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// A stored wallet does not decode.
    #[error("stored wallet is corrupt at byte {0}")]
    Corrupt(usize),
}

/// A credential obtained from the issuer, with its kind and the day of its key.
#[derive(Clone, Debug)]
pub struct Obtained {
    /// Crowding or outbreak.
    pub kind: TaskKind,
    /// The day of the key it was issued under.
    pub day: Day,
    /// The credential.
    pub credential: Credential,
}

/// A gRPC client of the issuer's `Issuance` service.
#[derive(Clone, Debug)]
pub struct IssuerClient {
    client: IssuanceClient<tonic::transport::Channel>,
}

/// A request with the client's call timeout, so a stalled issuer fails the call instead of
/// hanging it.
fn timed<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(crate::grpc::CALL_TIMEOUT);
    request
}

fn status(s: tonic::Status) -> WalletError {
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown => {
            WalletError::Transport(s.message().to_string())
        }
        code => WalletError::Refused {
            code,
            message: s.message().to_string(),
        },
    }
}

impl IssuerClient {
    /// Connects to the issuer at `url` (`http://host:port`, or `https://` with the system's
    /// TLS roots), within the same connect timeout as the uploader's channel.
    pub async fn connect(url: &str) -> Result<Self, WalletError> {
        let channel = crate::grpc::endpoint(url)
            .map_err(|reason| WalletError::Transport(format!("issuer URL `{url}`: {reason}")))?
            .connect()
            .await
            .map_err(|e| WalletError::Transport(e.to_string()))?;
        Ok(Self::new(channel))
    }

    /// A client over an existing channel.
    pub fn new(channel: tonic::transport::Channel) -> Self {
        IssuerClient {
            client: IssuanceClient::new(channel),
        }
    }

    /// The issuer's current day and that day's public key.
    pub async fn current_key(&mut self) -> Result<(Day, IssuerPublicKey), WalletError> {
        let reply = (self
            .client
            .get_issuer_keys(timed(v1::GetIssuerKeysRequest {}))
            .await)
            .map_err(status)?
            .into_inner();
        let day = reply.current_day;
        let key = reply
            .keys
            .iter()
            .find(|k| k.day == day)
            .ok_or(WalletError::NoKey(day))?;
        let public =
            IssuerPublicKey::from_bytes(&key.public_key).map_err(|_| WalletError::NoKey(day))?;
        if public.key_id().0[..] != key.key_id[..] {
            return Err(WalletError::NoKey(day));
        }
        Ok((Day(day), public))
    }

    /// Today's crowding credential for the device enrolled as `enrolment_id`.
    pub async fn obtain_crowding<R: CryptoRng + Send + ?Sized>(
        &mut self,
        enrolment_id: &str,
        rng: &mut R,
    ) -> Result<Obtained, WalletError> {
        check_enrolment_id(enrolment_id).map_err(|reason| WalletError::Input {
            field: "enrolment_id",
            reason,
        })?;
        self.obtain(&Ask::Crowding(enrolment_id.to_string()), rng)
            .await
    }

    /// An outbreak credential for the holder of a diagnosis code (as the person typed it).
    pub async fn obtain_outbreak<R: CryptoRng + Send + ?Sized>(
        &mut self,
        diagnosis_code: &str,
        rng: &mut R,
    ) -> Result<Obtained, WalletError> {
        let code = DiagnosisCode::parse(diagnosis_code).map_err(|reason| WalletError::Input {
            field: "diagnosis_code",
            reason,
        })?;
        self.obtain(&Ask::Outbreak(code.display()), rng).await
    }

    /// Fetches the current key, sends a request made under it, checks the response. If the
    /// day turned between the two calls (the issuer refuses the key), fetches the key again
    /// once.
    async fn obtain<R: CryptoRng + Send + ?Sized>(
        &mut self,
        ask: &Ask,
        rng: &mut R,
    ) -> Result<Obtained, WalletError> {
        let kind = match ask {
            Ask::Crowding(_) => TaskKind::Crowding,
            Ask::Outbreak(_) => TaskKind::Outbreak,
        };
        let rc = request_context(kind);
        let mut attempt = 0;
        loop {
            let (day, key) = self.current_key().await?;
            let (pending, request) = CredentialRequest::new(&key, rc, rng);
            let request = request.to_bytes();
            let sent = match ask {
                Ask::Crowding(id) => {
                    self.client
                        .issue_crowding_credential(timed(v1::IssueCrowdingCredentialRequest {
                            enrolment_id: id.clone(),
                            request,
                        }))
                        .await
                }
                Ask::Outbreak(code) => {
                    self.client
                        .issue_outbreak_credential(timed(v1::IssueOutbreakCredentialRequest {
                            diagnosis_code: code.to_string(),
                            request,
                        }))
                        .await
                }
            };
            match sent {
                Ok(reply) => {
                    let reply = reply.into_inner();
                    let response = CredentialResponse::from_bytes(&reply.response)
                        .map_err(IssuanceError::from)?;
                    let credential = pending.finalize(&response)?;
                    return Ok(Obtained {
                        kind,
                        day,
                        credential,
                    });
                }
                Err(s)
                    if s.code() == tonic::Code::FailedPrecondition
                        && s.message().starts_with("request.key_id")
                        && attempt == 0 =>
                {
                    attempt += 1;
                }
                Err(s) => return Err(status(s)),
            }
        }
    }
}

/// What a request is made against.
enum Ask {
    /// An enrolment id.
    Crowding(String),
    /// A diagnosis code in its display form (secret until used).
    Outbreak(Zeroizing<String>),
}

/// A reserved presentation: which credential (by key id) and which nonce. Keep it with the
/// report it belongs to, so that a retry presents the same nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// The key id of the credential.
    pub key_id: KeyId,
    /// The nonce, below the task's limit.
    pub nonce: u32,
}

/// The visitor's credentials and the nonces they have spent. `Debug` shows kinds and days
/// only.
#[derive(Clone, Default)]
pub struct Wallet {
    entries: Vec<Obtained>,
    /// Next unused nonce per (task, window, credential).
    next: BTreeMap<(TaskId, u64, KeyId), u32>,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| (e.kind, e.day.0)))
            .finish()
    }
}

impl Wallet {
    /// An empty wallet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an obtained credential, replacing one of the same kind and day.
    pub fn insert(&mut self, obtained: Obtained) {
        self.entries
            .retain(|e| !(e.kind == obtained.kind && e.day == obtained.day));
        self.entries.push(obtained);
        self.entries
            .sort_by_key(|e| (e.day, e.kind == TaskKind::Outbreak));
    }

    /// Whether the wallet holds a credential of `kind` for `day`.
    pub fn has(&self, kind: TaskKind, day: Day) -> bool {
        self.entries.iter().any(|e| e.kind == kind && e.day == day)
    }

    /// Reserves the next unused nonce of a credential valid for `window` of `task`.
    pub fn reserve(&mut self, task: &TaskConfig, window: u64) -> Result<Ticket, WalletError> {
        let days = accepted_key_days(task, window);
        let limit = task.presentations_per_window;
        let mut valid = false;
        for entry in self
            .entries
            .iter()
            .filter(|e| e.kind == task.kind && days.contains(&e.day))
        {
            valid = true;
            let key_id = entry.credential.key_id();
            let next = self.next.entry((task.id, window, key_id)).or_insert(0);
            if *next < limit {
                let nonce = *next;
                *next += 1;
                return Ok(Ticket { key_id, nonce });
            }
        }
        Err(if valid {
            WalletError::Exhausted { window, limit }
        } else {
            WalletError::NoCredential {
                kind: task.kind,
                window,
            }
        })
    }

    /// The presentation of a reserved ticket for `window` of `task`.
    pub fn present<R: CryptoRng + ?Sized>(
        &self,
        task: &TaskConfig,
        window: u64,
        ticket: Ticket,
        rng: &mut R,
    ) -> Result<Vec<u8>, WalletError> {
        let entry = self
            .entries
            .iter()
            .find(|e| e.kind == task.kind && e.credential.key_id() == ticket.key_id)
            .ok_or(WalletError::BadTicket)?;
        if ticket.nonce >= task.presentations_per_window {
            return Err(WalletError::BadTicket);
        }
        let context = presentation_context(task, window);
        let presentation =
            entry
                .credential
                .present(&context, task.presentations_per_window, ticket.nonce, rng)?;
        Ok(presentation.to_bytes())
    }

    /// Reserves a nonce and presents it: one presentation for one new report.
    pub fn next_presentation<R: CryptoRng + ?Sized>(
        &mut self,
        task: &TaskConfig,
        window: u64,
        rng: &mut R,
    ) -> Result<Vec<u8>, WalletError> {
        let ticket = self.reserve(task, window)?;
        self.present(task, window, ticket, rng)
    }

    /// Drops credentials whose key day is more than 15 days before `today`, and their nonce
    /// counters.
    pub fn prune(&mut self, today: Day) {
        let oldest = today.minus(KEEP_DAYS);
        self.entries.retain(|e| e.day >= oldest);
        let live: Vec<KeyId> = self.entries.iter().map(|e| e.credential.key_id()).collect();
        self.next.retain(|(_, _, key), _| live.contains(key));
    }

    /// The wallet as bytes, for the app's storage (secret: it holds the credentials).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(WALLET_MAGIC.to_vec());
        out.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        for e in &self.entries {
            out.push(match e.kind {
                TaskKind::Crowding => 0,
                TaskKind::Outbreak => 1,
            });
            out.extend_from_slice(&e.day.0.to_be_bytes());
            let credential = e.credential.to_bytes();
            out.extend_from_slice(&(credential.len() as u32).to_be_bytes());
            out.extend_from_slice(&credential);
        }
        out.extend_from_slice(&(self.next.len() as u32).to_be_bytes());
        for ((task, window, key), next) in &self.next {
            out.extend_from_slice(&task.0);
            out.extend_from_slice(&window.to_be_bytes());
            out.extend_from_slice(&key.0);
            out.extend_from_slice(&next.to_be_bytes());
        }
        out
    }

    /// Reads a wallet written by [`Wallet::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WalletError> {
        let mut r = Cursor { bytes, at: 0 };
        if r.take(4)? != WALLET_MAGIC {
            return Err(WalletError::Corrupt(0));
        }
        let mut wallet = Wallet::new();
        for _ in 0..r.u32()? {
            let at = r.at;
            let kind = match r.take(1)?[0] {
                0 => TaskKind::Crowding,
                1 => TaskKind::Outbreak,
                _ => return Err(WalletError::Corrupt(at)),
            };
            let day = Day(r.u32()?);
            let len = r.u32()? as usize;
            let at = r.at;
            let credential =
                Credential::from_bytes(r.take(len)?).map_err(|_| WalletError::Corrupt(at))?;
            wallet.insert(Obtained {
                kind,
                day,
                credential,
            });
        }
        for _ in 0..r.u32()? {
            let task = TaskId::from_slice(r.take(32)?).ok_or(WalletError::Corrupt(r.at))?;
            let window = u64::from_be_bytes(r.array()?);
            let key = KeyId(r.array()?);
            wallet.next.insert((task, window, key), r.u32()?);
        }
        if r.at != bytes.len() {
            return Err(WalletError::Corrupt(r.at));
        }
        Ok(wallet)
    }
}

/// A reader over a stored wallet.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WalletError> {
        let end = self
            .at
            .checked_add(n)
            .ok_or(WalletError::Corrupt(self.at))?;
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or(WalletError::Corrupt(self.at))?;
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WalletError> {
        let at = self.at;
        self.take(N)?
            .try_into()
            .map_err(|_| WalletError::Corrupt(at))
    }

    fn u32(&mut self) -> Result<u32, WalletError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use hotspot_credentials::{IssuerKey, KeySet, issue};

    const MASTER: [u8; 32] = [6; 32];

    fn task(kind: TaskKind, limit: u32) -> TaskConfig {
        TaskConfig {
            id: TaskId([8; 32]),
            start_unix: 200 * 86_400,
            presentations_per_window: limit,
            ..TaskConfig::example(kind)
        }
    }

    /// What the issuer does, in process.
    fn obtained(kind: TaskKind, day: u32) -> Obtained {
        let key = IssuerKey::derive_daily(&MASTER, Day(day));
        let rc = request_context(kind);
        let mut rng = rand::rng();
        let (pending, request) = CredentialRequest::new(key.public(), rc, &mut rng);
        let response = issue(&key, rc, &request, &mut rng).unwrap();
        Obtained {
            kind,
            day: Day(day),
            credential: pending.finalize(&response).unwrap(),
        }
    }

    fn verify(task: &TaskConfig, window: u64, bytes: &[u8]) -> Result<[u8; 32], CredentialError> {
        let keys = KeySet::derive_daily(&MASTER, Day(190)..=Day(230));
        let context = presentation_context(task, window);
        keys.verify_bytes(
            accepted_key_days(task, window),
            request_context(task.kind),
            &context,
            task.presentations_per_window,
            bytes,
        )
        .map(|t| t.0)
    }

    #[test]
    fn nonces_run_up_to_the_limit_per_window_then_the_wallet_refuses() {
        let t = task(TaskKind::Crowding, 2);
        let mut wallet = Wallet::new();
        wallet.insert(obtained(TaskKind::Crowding, 200));
        let mut rng = rand::rng();
        let a = wallet.next_presentation(&t, 3, &mut rng).unwrap();
        let b = wallet.next_presentation(&t, 3, &mut rng).unwrap();
        assert_ne!(verify(&t, 3, &a).unwrap(), verify(&t, 3, &b).unwrap());
        assert!(matches!(
            wallet.next_presentation(&t, 3, &mut rng),
            Err(WalletError::Exhausted {
                window: 3,
                limit: 2
            })
        ));
        // Another window has its own nonces.
        assert!(verify(&t, 4, &wallet.next_presentation(&t, 4, &mut rng).unwrap()).is_ok());
    }

    #[test]
    fn a_retried_ticket_presents_the_same_tag() {
        let t = task(TaskKind::Crowding, 1);
        let mut wallet = Wallet::new();
        wallet.insert(obtained(TaskKind::Crowding, 200));
        let mut rng = rand::rng();
        let ticket = wallet.reserve(&t, 0).unwrap();
        let first = wallet.present(&t, 0, ticket, &mut rng).unwrap();
        let again = wallet.present(&t, 0, ticket, &mut rng).unwrap();
        assert_ne!(first, again);
        assert_eq!(
            verify(&t, 0, &first).unwrap(),
            verify(&t, 0, &again).unwrap()
        );
        let bad = Ticket { nonce: 1, ..ticket };
        assert!(matches!(
            wallet.present(&t, 0, bad, &mut rng),
            Err(WalletError::BadTicket)
        ));
    }

    #[test]
    fn only_a_credential_of_the_task_kind_and_a_valid_day_is_used() {
        let crowding = task(TaskKind::Crowding, 1);
        let outbreak = task(TaskKind::Outbreak, 1);
        let mut wallet = Wallet::new();
        // Yesterday's crowding credential does not serve today's windows.
        wallet.insert(obtained(TaskKind::Crowding, 199));
        assert!(matches!(
            wallet.reserve(&crowding, 0),
            Err(WalletError::NoCredential { .. })
        ));
        // An outbreak credential of day 210 serves the windows of days 196 to 210.
        wallet.insert(obtained(TaskKind::Outbreak, 210));
        assert!(matches!(
            wallet.reserve(&crowding, 0),
            Err(WalletError::NoCredential { .. })
        ));
        let mut rng = rand::rng();
        let window = 5 * 24 + 3; // day 205
        let bytes = wallet
            .next_presentation(&outbreak, window, &mut rng)
            .unwrap();
        assert!(verify(&outbreak, window, &bytes).is_ok());
    }

    #[test]
    fn stored_wallet_round_trips_with_its_spent_nonces() {
        let t = task(TaskKind::Crowding, 2);
        let mut wallet = Wallet::new();
        wallet.insert(obtained(TaskKind::Crowding, 200));
        wallet.insert(obtained(TaskKind::Outbreak, 201));
        let mut rng = rand::rng();
        wallet.next_presentation(&t, 1, &mut rng).unwrap();
        let bytes = wallet.to_bytes();
        let mut restored = Wallet::from_bytes(&bytes).unwrap();
        assert_eq!(*restored.to_bytes(), *bytes);
        assert_eq!(restored.reserve(&t, 1).unwrap().nonce, 1);
        for cut in [0, 3, 10, bytes.len() - 1] {
            assert!(Wallet::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(Wallet::from_bytes(&longer).is_err());
        assert!(!format!("{restored:?}").contains("Credential {"));
    }

    #[test]
    fn prune_forgets_old_credentials_and_their_counters() {
        let t = task(TaskKind::Crowding, 1);
        let mut wallet = Wallet::new();
        wallet.insert(obtained(TaskKind::Crowding, 200));
        wallet.reserve(&t, 0).unwrap();
        wallet.prune(Day(216));
        assert!(!wallet.has(TaskKind::Crowding, Day(200)));
        assert!(wallet.next.is_empty());
    }
}
