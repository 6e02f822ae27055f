//! The aggregators' check of a report's credential presentation (issue 4; docs/credentials.md
//! sections 6 and 11).
//!
//! Leader and helper hold the deployment's credential master secret (config
//! `credential_key_file` or `HOTSPOT_CREDENTIAL_KEY`) and derive each day's issuer key from it
//! ([`IssuerKey::derive_daily`]), as the issuer does, so no key file moves between them. For a
//! report in window `w` of a task, the [`Verifier`]:
//!
//! 1. takes the window's [`PresentationContext`] and the task's limit `N`
//!    (`presentations_per_window`) and credential kind (crowding or outbreak);
//! 2. looks the presentation's key id up among the keys of the days around the window: the
//!    accepted days of [`accepted_key_days`] and [`STALE_LOOKBACK_DAYS`] before them, so an
//!    old but genuine key is reported as stale (not accepted for this window) and anything
//!    else as unknown;
//! 3. verifies it (`KeySet::verify_bytes`: the clear header before any point is decoded) and
//!    returns the tag, which the caller stores in the same transaction as the report (leader)
//!    or the job (helper).
//!
//! Contexts (a hash to the group each) and key sets are built once per window and per range
//! of days and cached; derived keys are cached by day.

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

use hotspot_core::credential::{accepted_key_days, presentation_context, request_context};
use hotspot_core::task::{TaskConfig, TaskId};
use hotspot_credentials::{
    BatchItem, CredentialError, Day, IssuerKey, KeySet, Presentation, PresentationContext,
    verify_batch,
};

use crate::lock;
use crate::storage::Tag;

/// Days before a window's first accepted day whose keys the verifier still recognises, so
/// that a presentation under one of them is refused as stale rather than unknown.
pub const STALE_LOOKBACK_DAYS: u32 = 15;
/// Days after the last accepted day that are recognised too (a key of tomorrow is stale, not
/// unknown).
const LOOKAHEAD_DAYS: u32 = 1;
/// Derived keys kept in memory.
const MAX_CACHED_KEYS: usize = 128;
/// Windows whose contexts are kept in memory (a few hundred bytes each).
const MAX_CACHED_WINDOWS: usize = 8_192;

/// What a window's presentations are checked against.
#[derive(Debug)]
struct WindowCheck {
    context: PresentationContext,
    keys: Arc<KeySet>,
    accepted: RangeInclusive<Day>,
    request_context: &'static [u8],
    limit: u32,
}

/// A presentation decoded for its window by [`Verifier::decode`], its proof not yet checked.
#[derive(Debug)]
pub struct Decoded {
    check: Arc<WindowCheck>,
    presentation: Presentation,
}

/// Checks the proofs of decoded presentations as one batch
/// ([`hotspot_credentials::verify_batch`]); the verdict of each is what checking it alone
/// would give.
pub fn verify_decoded(decoded: &[&Decoded]) -> Vec<Result<Tag, CredentialError>> {
    let mut results: Vec<Result<Tag, CredentialError>> = Vec::with_capacity(decoded.len());
    let mut items = Vec::with_capacity(decoded.len());
    let mut at = Vec::with_capacity(decoded.len());
    for (i, d) in decoded.iter().enumerate() {
        let key_id = d.presentation.key_id();
        // `decode` found the key in this very set.
        match d.check.keys.get(&key_id) {
            Some((_, key)) => {
                items.push(BatchItem {
                    key,
                    request_context: d.check.request_context,
                    context: &d.check.context,
                    limit: d.check.limit,
                    presentation: &d.presentation,
                });
                at.push(i);
                results.push(Err(CredentialError::InvalidProof));
            }
            None => results.push(Err(CredentialError::UnknownKeyId(key_id))),
        }
    }
    for (i, verdict) in at.into_iter().zip(verify_batch(&items, &mut rand::rng())) {
        results[i] = verdict.map(|tag| tag.0);
    }
    results
}

/// Verifies presentations for the tasks of an aggregator. Holds the master secret; `Debug`
/// prints nothing of it.
pub struct Verifier {
    master: Zeroizing<[u8; 32]>,
    keys: Mutex<BTreeMap<Day, IssuerKey>>,
    sets: Mutex<HashMap<(Day, Day), Arc<KeySet>>>,
    windows: Mutex<HashMap<(TaskId, u64), Arc<WindowCheck>>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier(<redacted master secret>)")
    }
}

impl Verifier {
    /// A verifier for keys derived from `master`.
    pub fn new(master: &[u8; 32]) -> Self {
        Verifier {
            master: Zeroizing::new(*master),
            keys: Mutex::default(),
            sets: Mutex::default(),
            windows: Mutex::default(),
        }
    }

    /// The issuer key of `day`, derived once.
    pub fn key(&self, day: Day) -> IssuerKey {
        let mut keys = lock(&self.keys);
        if let Some(key) = keys.get(&day) {
            return key.clone();
        }
        let key = IssuerKey::derive_daily(&self.master, day);
        if keys.len() >= MAX_CACHED_KEYS {
            keys.pop_first();
        }
        keys.insert(day, key.clone());
        key
    }

    /// The keys of every day in `days`.
    fn key_set(&self, days: RangeInclusive<Day>) -> Arc<KeySet> {
        let span = (*days.start(), *days.end());
        if let Some(set) = lock(&self.sets).get(&span) {
            return Arc::clone(set);
        }
        let set = Arc::new(KeySet::from_days(days, |day| self.key(day)));
        let mut sets = lock(&self.sets);
        if sets.len() >= MAX_CACHED_KEYS {
            sets.clear();
        }
        sets.insert(span, Arc::clone(&set));
        set
    }

    fn window(&self, task: &TaskConfig, window: u64) -> Arc<WindowCheck> {
        if let Some(check) = lock(&self.windows).get(&(task.id, window)) {
            return Arc::clone(check);
        }
        let accepted = accepted_key_days(task, window);
        let known =
            accepted.start().minus(STALE_LOOKBACK_DAYS)..=accepted.end().plus(LOOKAHEAD_DAYS);
        let check = Arc::new(WindowCheck {
            context: presentation_context(task, window),
            keys: self.key_set(known),
            accepted,
            request_context: request_context(task.kind),
            limit: task.presentations_per_window,
        });
        let mut windows = lock(&self.windows);
        if windows.len() >= MAX_CACHED_WINDOWS {
            windows.clear();
        }
        windows.insert((task.id, window), Arc::clone(&check));
        check
    }

    /// Verifies the encoded presentations of one window of `task` at once (a helper's job);
    /// the result of each is what [`Verifier::verify`] would return for it alone.
    pub fn verify_batch(
        &self,
        task: &TaskConfig,
        window: u64,
        presentations: &[&[u8]],
    ) -> Vec<Result<Tag, CredentialError>> {
        let decoded: Vec<_> = (presentations.iter())
            .map(|bytes| self.decode(task, window, bytes))
            .collect();
        let ready: Vec<&Decoded> = decoded.iter().flatten().collect();
        let mut verdicts = verify_decoded(&ready).into_iter();
        (decoded.iter())
            .map(|d| match d {
                Ok(_) => verdicts
                    .next()
                    .unwrap_or(Err(CredentialError::InvalidProof)),
                Err(e) => Err(e.clone()),
            })
            .collect()
    }

    /// Everything of [`Verifier::verify`] but the proof: the window's context and keys, the
    /// clear header, the decoding. The proof is checked by [`verify_decoded`], alone or in a
    /// batch.
    pub fn decode(
        &self,
        task: &TaskConfig,
        window: u64,
        presentation: &[u8],
    ) -> Result<Decoded, CredentialError> {
        let check = self.window(task, window);
        let (_, presentation) = (check.keys).decode_for(
            check.accepted.clone(),
            &check.context,
            check.limit,
            presentation,
        )?;
        Ok(Decoded {
            check,
            presentation,
        })
    }

    /// Verifies an encoded presentation for window `window` of `task`; returns its tag.
    pub fn verify(
        &self,
        task: &TaskConfig,
        window: u64,
        presentation: &[u8],
    ) -> Result<Tag, CredentialError> {
        let decoded = self.decode(task, window, presentation)?;
        verify_decoded(&[&decoded])
            .pop()
            .unwrap_or(Err(CredentialError::InvalidProof))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use hotspot_core::task::TaskKind;
    use hotspot_credentials::{CredentialRequest, issue};

    fn task(kind: TaskKind) -> TaskConfig {
        TaskConfig {
            id: TaskId([4; 32]),
            start_unix: 100 * 86_400,
            presentations_per_window: 2,
            privacy: hotspot_core::task::PrivacyParams::default_for(86_400),
            ..TaskConfig::example(kind)
        }
    }

    fn present(key: &IssuerKey, kind: TaskKind, task: &TaskConfig, window: u64) -> Vec<u8> {
        let rc = request_context(kind);
        let mut rng = rand::rng();
        let (pending, request) = CredentialRequest::new(key.public(), rc, &mut rng);
        let credential = pending
            .finalize(&issue(key, rc, &request, &mut rng).unwrap())
            .unwrap();
        let context = presentation_context(task, window);
        credential
            .present(&context, task.presentations_per_window, 1, &mut rng)
            .unwrap()
            .to_bytes()
    }

    #[test]
    fn accepts_the_window_day_and_names_stale_and_unknown_keys() {
        let verifier = Verifier::new(&[5; 32]);
        let crowding = task(TaskKind::Crowding);
        let today = verifier.key(Day(100));
        let tag = verifier
            .verify(
                &crowding,
                3,
                &present(&today, TaskKind::Crowding, &crowding, 3),
            )
            .unwrap();
        assert_eq!(tag.len(), 32);

        let old = verifier.key(Day(97));
        let err = verifier
            .verify(
                &crowding,
                3,
                &present(&old, TaskKind::Crowding, &crowding, 3),
            )
            .unwrap_err();
        assert!(
            matches!(err, CredentialError::StaleKey { day: 97, .. }),
            "{err}"
        );

        let foreign = IssuerKey::from_seed(&[9; 32]);
        let err = verifier
            .verify(
                &crowding,
                3,
                &present(&foreign, TaskKind::Crowding, &crowding, 3),
            )
            .unwrap_err();
        assert!(matches!(err, CredentialError::UnknownKeyId(_)), "{err}");
    }

    #[test]
    fn a_batch_gets_the_verdict_of_each_presentation_alone() {
        let verifier = Verifier::new(&[5; 32]);
        let crowding = task(TaskKind::Crowding);
        let today = verifier.key(Day(100));
        let mut forged = present(&today, TaskKind::Crowding, &crowding, 3);
        let at = forged.len() - 4;
        forged[at] ^= 1;
        let presentations = [
            present(&today, TaskKind::Crowding, &crowding, 3),
            present(&verifier.key(Day(97)), TaskKind::Crowding, &crowding, 3),
            forged,
            present(
                &IssuerKey::from_seed(&[9; 32]),
                TaskKind::Crowding,
                &crowding,
                3,
            ),
            present(&today, TaskKind::Crowding, &crowding, 4),
            vec![1, 2, 3],
            present(&today, TaskKind::Crowding, &crowding, 3),
        ];
        let bytes: Vec<&[u8]> = presentations.iter().map(Vec::as_slice).collect();
        let batch = verifier.verify_batch(&crowding, 3, &bytes);
        let alone: Vec<_> = (bytes.iter())
            .map(|b| verifier.verify(&crowding, 3, b))
            .collect();
        assert_eq!(batch, alone);
        let ok: Vec<bool> = batch.iter().map(Result::is_ok).collect();
        assert_eq!(ok, [true, false, false, false, false, false, true]);
        assert_ne!(batch[0], batch[6], "two presentations, two tags");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_upload_proof_checker_keeps_each_verdict_under_concurrency() {
        let verifier = Verifier::new(&[5; 32]);
        let crowding = task(TaskKind::Crowding);
        let today = verifier.key(Day(100));
        let presentations: Vec<Vec<u8>> = (0..40)
            .map(|i| {
                let mut bytes = present(&today, TaskKind::Crowding, &crowding, 3);
                if i % 7 == 3 {
                    let at = bytes.len() - 2;
                    bytes[at] ^= 0x10;
                }
                bytes
            })
            .collect();
        let checker = crate::upload::ProofChecker::spawn(1);
        let mut pending = tokio::task::JoinSet::new();
        for (i, bytes) in presentations.iter().enumerate() {
            let decoded = verifier.decode(&crowding, 3, bytes).unwrap();
            let checker = checker.clone();
            pending.spawn(async move { (i, checker.check(decoded).await.unwrap()) });
        }
        let mut verdicts = vec![None; presentations.len()];
        while let Some(done) = pending.join_next().await {
            let (i, verdict) = done.unwrap();
            verdicts[i] = Some(verdict);
        }
        for (i, bytes) in presentations.iter().enumerate() {
            let alone = verifier.verify(&crowding, 3, bytes);
            assert_eq!(verdicts[i].clone().unwrap(), alone, "presentation {i}");
            assert_eq!(alone.is_ok(), i % 7 != 3, "presentation {i}");
        }
    }

    #[test]
    fn outbreak_tasks_take_outbreak_credentials_of_the_next_fourteen_days() {
        let verifier = Verifier::new(&[5; 32]);
        let outbreak = task(TaskKind::Outbreak);
        let later = verifier.key(Day(114));
        assert!(
            verifier
                .verify(
                    &outbreak,
                    0,
                    &present(&later, TaskKind::Outbreak, &outbreak, 0)
                )
                .is_ok()
        );
        let err = verifier
            .verify(
                &outbreak,
                0,
                &present(&later, TaskKind::Crowding, &outbreak, 0),
            )
            .unwrap_err();
        assert_eq!(err, CredentialError::InvalidProof);
        let too_late = verifier.key(Day(115));
        let err = verifier
            .verify(
                &outbreak,
                0,
                &present(&too_late, TaskKind::Outbreak, &outbreak, 0),
            )
            .unwrap_err();
        assert!(matches!(err, CredentialError::StaleKey { .. }), "{err}");
    }

    #[test]
    fn debug_shows_no_secret() {
        let shown = format!("{:?}", Verifier::new(&[0xab; 32]));
        assert!(!shown.contains("171") && !shown.contains("ab"), "{shown}");
    }
}
