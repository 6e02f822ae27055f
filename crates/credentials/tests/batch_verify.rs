//! Batch verification gives, for every presentation, exactly the verdict of verifying it
//! alone: honest batches over several keys, limits and contexts pass whole; a forged member,
//! wherever it sits, is singled out without taking its honest neighbours down; every cheap
//! rejection keeps its own error.

use hotspot_credentials::issuance::{self, CredentialRequest};
use hotspot_credentials::keys::IssuerKey;
use hotspot_credentials::labels::{REQUEST_CONTEXT_CROWDING, REQUEST_CONTEXT_OUTBREAK};
use hotspot_credentials::presentation::{
    self, BatchItem, Credential, CredentialError, Presentation, PresentationContext, Tag,
};

fn credential(key: &IssuerKey, kind: &[u8], seed: u8) -> Credential {
    let (pending, request) =
        CredentialRequest::new_with_randomness(key.public(), kind, &[seed; 32]);
    let response =
        issuance::issue_with_randomness(key, kind, &request, &[seed ^ 0x33; 32]).expect("issued");
    pending.finalize(&response).expect("finalized")
}

/// One presentation with what it is checked against.
struct Case {
    key: IssuerKey,
    kind: &'static [u8],
    context: PresentationContext,
    limit: u32,
    presentation: Presentation,
}

impl Case {
    fn item(&self) -> BatchItem<'_> {
        BatchItem {
            key: &self.key,
            request_context: self.kind,
            context: &self.context,
            limit: self.limit,
            presentation: &self.presentation,
        }
    }

    fn alone(&self) -> Result<Tag, CredentialError> {
        presentation::verify(
            &self.key,
            self.kind,
            &self.context,
            self.limit,
            &self.presentation,
        )
    }
}

/// Honest presentations under two keys, both kinds, limits 1 to 4 and three windows.
fn honest_cases() -> Vec<Case> {
    let keys = [
        IssuerKey::from_seed(&[1; 32]),
        IssuerKey::from_seed(&[2; 32]),
    ];
    let mut cases = Vec::new();
    for (k, key) in keys.iter().enumerate() {
        for (kind, limit) in [
            (REQUEST_CONTEXT_CROWDING, 1u32),
            (REQUEST_CONTEXT_OUTBREAK, 3),
            (REQUEST_CONTEXT_CROWDING, 4),
        ] {
            let credential = credential(key, kind, (k * 16) as u8 + limit as u8);
            for window in [10u64, 11, 12] {
                let context = PresentationContext::new(b"task", window).expect("context");
                let nonce = (window as u32) % limit;
                let seed = [window as u8 ^ limit as u8; 32];
                let presentation = credential
                    .present_with_randomness(&context, limit, nonce, &seed)
                    .expect("in range");
                let presentation =
                    Presentation::from_bytes(&presentation.to_bytes()).expect("decodes");
                cases.push(Case {
                    key: key.clone(),
                    kind,
                    context,
                    limit,
                    presentation,
                });
            }
        }
    }
    cases
}

fn batch(cases: &[Case], seed: u8) -> Vec<Result<Tag, CredentialError>> {
    let items: Vec<BatchItem<'_>> = cases.iter().map(Case::item).collect();
    presentation::verify_batch_with_randomness(&items, &[seed; 32])
}

#[test]
fn an_honest_batch_passes_whole_with_the_tags_of_single_verification() {
    let cases = honest_cases();
    let alone: Vec<_> = cases.iter().map(Case::alone).collect();
    assert!(alone.iter().all(Result::is_ok));
    assert_eq!(batch(&cases, 9), alone);
    assert_eq!(
        batch(&cases, 10),
        alone,
        "the weights' seed changes nothing"
    );
    assert!(presentation::verify_batch(&[], &mut rand::rng()).is_empty());
}

#[test]
fn a_forged_member_is_singled_out_wherever_it_sits() {
    let honest = honest_cases();
    let bytes: Vec<Vec<u8>> = honest.iter().map(|c| c.presentation.to_bytes()).collect();
    for victim in [0, 7, honest.len() - 1] {
        let original = &bytes[victim];
        // Change a late byte (inside the responses, which always decode).
        let mut forged = original.clone();
        let at = forged.len() - 5;
        forged[at] ^= 0x01;
        let Ok(forged) = Presentation::from_bytes(&forged) else {
            continue;
        };
        let mut cases = honest_cases();
        cases[victim].presentation = forged;
        let results = batch(&cases, 3);
        for (i, result) in results.iter().enumerate() {
            if i == victim {
                assert_eq!(
                    result,
                    &Err(CredentialError::InvalidProof),
                    "victim {victim}"
                );
            } else {
                assert!(result.is_ok(), "member {i} of a batch with forged {victim}");
            }
        }
        let alone: Vec<_> = cases.iter().map(Case::alone).collect();
        assert_eq!(results, alone);
    }
}

#[test]
fn every_cheap_rejection_keeps_its_own_error_in_a_batch() {
    let mut cases = honest_cases();
    // Wrong key (the other key of the set), wrong context, wrong limit, wrong kind.
    cases[0].key = IssuerKey::from_seed(&[2; 32]);
    cases[1].context = PresentationContext::new(b"task", 99).expect("context");
    cases[3].limit = 2;
    cases[6].kind = REQUEST_CONTEXT_OUTBREAK;
    let results = batch(&cases, 5);
    assert!(matches!(results[0], Err(CredentialError::WrongKey { .. })));
    assert_eq!(results[1], Err(CredentialError::WrongContext));
    assert!(matches!(
        results[3],
        Err(CredentialError::LimitMismatch { .. })
    ));
    assert_eq!(results[6], Err(CredentialError::InvalidProof));
    let alone: Vec<_> = cases.iter().map(Case::alone).collect();
    assert_eq!(results, alone);
    assert!(results.iter().filter(|r| r.is_ok()).count() == cases.len() - 4);
}

#[test]
fn a_batch_of_forgeries_fails_every_member() {
    let mut cases = honest_cases();
    let mut forged_count = 0;
    for case in &mut cases {
        let mut bytes = case.presentation.to_bytes();
        let at = bytes.len() - 3;
        bytes[at] ^= 0x02;
        if let Ok(forged) = Presentation::from_bytes(&bytes) {
            case.presentation = forged;
            forged_count += 1;
        }
    }
    assert_eq!(
        forged_count,
        cases.len(),
        "a response byte flip still decodes"
    );
    assert!(
        batch(&cases, 4)
            .iter()
            .all(|r| *r == Err(CredentialError::InvalidProof))
    );
}
