//! Every domain separator of the crate, in one place.
//!
//! Merlin transcript labels, hash-to-curve DSTs and the context strings they are built from
//! live here, so a reviewer can check in one file that no label serves two purposes and that
//! none is built at run time. Labels of the credential and signature transcripts are ours (they
//! have no counterpart in the drafts, which use a SHAKE-based Fiat-Shamir instead of merlin);
//! the RFC 9497 strings are fixed by that RFC (section 4.1 and 3.2.1) and must not change.

// ---- RFC 9497 (OPRF, ristretto255-SHA512), fixed by the RFC ------------------------------

/// Prefix of every RFC 9497 context string (`"OPRFV1-" || mode || "-" || identifier`).
pub const OPRF_VERSION: &[u8] = b"OPRFV1-";
/// RFC 9497 section 4.1: the ciphersuite identifier of ristretto255 with SHA-512.
pub const OPRF_SUITE_ID: &[u8] = b"ristretto255-SHA512";
/// RFC 9497 section 4.1: DST prefix of HashToGroup.
pub const OPRF_HASH_TO_GROUP: &[u8] = b"HashToGroup-";
/// RFC 9497 section 4.1: DST prefix of HashToScalar.
pub const OPRF_HASH_TO_SCALAR: &[u8] = b"HashToScalar-";
/// RFC 9497 section 3.2.1: DST prefix of DeriveKeyPair.
pub const OPRF_DERIVE_KEY_PAIR: &[u8] = b"DeriveKeyPair";
/// RFC 9497 section 3.3.1: the last component of the Finalize hash input.
pub const OPRF_FINALIZE: &[u8] = b"Finalize";
/// RFC 9497 section 2.2.1: the seed DST prefix of ComputeComposites.
pub const OPRF_SEED: &[u8] = b"Seed-";
/// RFC 9497 section 2.2.1: the last component of each composite transcript.
pub const OPRF_COMPOSITE: &[u8] = b"Composite";
/// RFC 9497 section 2.2.1: the last component of the challenge transcript.
pub const OPRF_CHALLENGE: &[u8] = b"Challenge";

// ---- Anonymous rate-limited credentials (crate::keys, crate::issuance, crate::presentation) --

/// Our counterpart of the ARC draft's `contextString` (`"ARCV1-P256"` there). It enters every
/// hash-to-group and hash-to-scalar DST of the credential, so our points and scalars can never
/// collide with those of the draft's suites or of RFC 9497.
pub const ARC_CONTEXT: &[u8] = b"HOTSPOT-ARCV1-ristretto255";
/// ARC draft section 3.1: DST prefix of the credential's HashToGroup.
pub const ARC_HASH_TO_GROUP: &[u8] = b"HashToGroup-";
/// ARC draft section 3.1: DST prefix of the credential's HashToScalar.
pub const ARC_HASH_TO_SCALAR: &[u8] = b"HashToScalar-";
/// ARC draft section 3.1: info string of the second generator, `H = HashToGroup(Ser(G), info)`.
pub const ARC_GENERATOR_H: &[u8] = b"generatorH";
/// ARC draft section 4.2.1: info string of the public attribute `m2 = HashToScalar(ctx, info)`.
pub const ARC_REQUEST_CONTEXT: &[u8] = b"requestContext";
/// ARC draft section 4.3: info string of the tag generator `T = HashToGroup(ctx, info)`.
pub const ARC_TAG: &[u8] = b"Tag";
/// Domain string of the 8-byte presentation-context digest carried in presentations.
pub const ARC_CONTEXT_DIGEST: &[u8] = b"HOTSPOT-ARCV1 presentation context";
/// Request context (credential kind) of crowding credentials: one per enrolled device and day.
pub const REQUEST_CONTEXT_CROWDING: &[u8] = b"hotspot crowding credential v1";
/// Request context (credential kind) of outbreak credentials: one per diagnosis code.
pub const REQUEST_CONTEXT_OUTBREAK: &[u8] = b"hotspot outbreak credential v1";
/// Domain string of key ids: `KeyId = SHA-512(KEY_ID || public key)[..8]`.
pub const ARC_KEY_ID: &[u8] = b"HOTSPOT-ARCV1 key id";
/// Domain string of daily keys derived from an operator's master seed.
pub const ARC_DAILY_KEY: &[u8] = b"HOTSPOT-ARCV1 daily issuer key";

/// Merlin protocol label of every credential transcript.
pub const ARC_PROTOCOL: &[u8] = b"hotspot-arc-v1";
/// Transcript label: which of the three proofs this transcript belongs to.
pub const PROOF_KIND: &[u8] = b"proof-kind";
/// [`PROOF_KIND`] value of the client's request proof (ARC draft 5.1).
pub const KIND_REQUEST: &[u8] = b"CredentialRequest";
/// [`PROOF_KIND`] value of the issuer's response proof (ARC draft 5.2).
pub const KIND_RESPONSE: &[u8] = b"CredentialResponse";
/// [`PROOF_KIND`] value of the presentation proof (ARC draft 5.3).
pub const KIND_PRESENTATION: &[u8] = b"CredentialPresentation";
/// Transcript label: the issuer's key id.
pub const KEY_ID: &[u8] = b"key-id";
/// Transcript label: the issuer's encoded public key.
pub const PUBLIC_KEY: &[u8] = b"public-key";
/// Transcript label: the request context (credential kind).
pub const REQUEST_CONTEXT: &[u8] = b"request-context";
/// Transcript label: the encoded presentation context (task id and window).
pub const PRESENTATION_CONTEXT: &[u8] = b"presentation-context";
/// Transcript label: the presentation limit N, as 4 bytes big-endian.
pub const PRESENTATION_LIMIT: &[u8] = b"presentation-limit";
/// Transcript label: an encoded element of the statement (request, response, presentation).
pub const STATEMENT_POINT: &[u8] = b"statement-point";

// ---- The sigma-protocol engine (crate::sigma) -------------------------------------------------

/// Transcript label: the number of equations and scalar variables of a relation.
pub const RELATION_SHAPE: &[u8] = b"relation-shape";
/// Transcript label: one prover commitment (one per equation).
pub const COMMITMENT: &[u8] = b"commitment";
/// Transcript label: the Fiat-Shamir challenge.
pub const CHALLENGE: &[u8] = b"challenge";
/// Transcript label: the verifier's weights that fold all equations into one check.
pub const BATCH_WEIGHT: &[u8] = b"batch-weight";
/// Transcript label: a witness scalar, absorbed only by the prover's private nonce transcript.
pub const PROVER_WITNESS: &[u8] = b"prover-witness";
/// Transcript label: the caller's randomness, absorbed only by the prover's nonce transcript.
pub const PROVER_RANDOMNESS: &[u8] = b"prover-randomness";
/// Transcript label: one prover nonce drawn from the private nonce transcript.
pub const PROVER_NONCE: &[u8] = b"prover-nonce";

// ---- Expanding caller randomness into scalars (crate::randomness) -----------------------------

/// Merlin protocol label of the transcript that expands a caller's seed into scalars.
pub const RANDOMNESS_PROTOCOL: &[u8] = b"hotspot-randomness-v1";
/// Transcript label: the caller's seed.
pub const RANDOMNESS_SEED: &[u8] = b"rand-seed";
/// Transcript label: what the expanded scalars are for (one of the `PURPOSE_*` values).
pub const RANDOMNESS_PURPOSE: &[u8] = b"rand-purpose";
/// Transcript label: one expanded scalar.
pub const RANDOMNESS_SCALAR: &[u8] = b"rand-scalar";
/// Transcript label: raw proof randomness handed on to the sigma prover.
pub const RANDOMNESS_BYTES: &[u8] = b"rand-bytes";
/// Purpose: the four scalars of an issuer key.
pub const PURPOSE_ISSUER_KEY: &[u8] = b"issuer-key";
/// Purpose: the client's secret and blinding of a credential request.
pub const PURPOSE_REQUEST: &[u8] = b"credential-request";
/// Purpose: the issuer's per-response blinding `b`.
pub const PURPOSE_RESPONSE: &[u8] = b"credential-response";
/// Purpose: the per-presentation randomisers.
pub const PURPOSE_PRESENTATION: &[u8] = b"credential-presentation";
/// Purpose: a signing key.
pub const PURPOSE_SIGNING_KEY: &[u8] = b"signing-key";
/// Purpose: the verifier's weights that combine a batch of presentation checks into one.
pub const PURPOSE_BATCH_VERIFY: &[u8] = b"batch-verify";

// ---- Schnorr signatures (crate::signature) ----------------------------------------------------

/// Merlin protocol label of every signature transcript.
pub const SIGNATURE_PROTOCOL: &[u8] = b"hotspot-schnorr-ristretto255-v1";
/// Transcript label: the caller's domain (what kind of document is signed).
pub const SIGNATURE_DOMAIN: &[u8] = b"sig-domain";
/// Transcript label: the signer's encoded public key.
pub const SIGNATURE_PUBLIC_KEY: &[u8] = b"sig-public-key";
/// Transcript label: the signed message.
pub const SIGNATURE_MESSAGE: &[u8] = b"sig-message";
/// Transcript label: the signature's commitment `R`.
pub const SIGNATURE_COMMITMENT: &[u8] = b"sig-commitment";
/// Transcript label: the signature's challenge.
pub const SIGNATURE_CHALLENGE: &[u8] = b"sig-challenge";
/// Transcript label: the signing key, absorbed only by the signer's nonce transcript.
pub const SIGNATURE_SECRET: &[u8] = b"sig-secret";
/// Transcript label: the caller's randomness, absorbed only by the signer's nonce transcript.
pub const SIGNATURE_RANDOMNESS: &[u8] = b"sig-randomness";
/// Transcript label: the signature nonce drawn from the signer's nonce transcript.
pub const SIGNATURE_NONCE: &[u8] = b"sig-nonce";
/// Domain string of signing key ids: `KeyId = SHA-512(SIGNING_KEY_ID || public key)[..8]`.
pub const SIGNING_KEY_ID: &[u8] = b"HOTSPOT-SCHNORR-V1 key id";
/// Signature domain of venue poster (QR) payloads signed by the registry.
pub const DOMAIN_VENUE_POSTER: &[u8] = b"hotspot venue poster v1";
/// Signature domain of exposure lists published by the collector.
pub const DOMAIN_EXPOSURE_LIST: &[u8] = b"hotspot exposure list v1";

#[cfg(test)]
mod tests {
    use super::*;

    /// No merlin label serves two purposes anywhere in the crate, not even across protocols.
    #[test]
    fn transcript_labels_are_pairwise_distinct() {
        let labels: &[&[u8]] = &[
            ARC_PROTOCOL,
            PROOF_KIND,
            KEY_ID,
            PUBLIC_KEY,
            REQUEST_CONTEXT,
            PRESENTATION_CONTEXT,
            PRESENTATION_LIMIT,
            STATEMENT_POINT,
            RELATION_SHAPE,
            COMMITMENT,
            CHALLENGE,
            BATCH_WEIGHT,
            PROVER_WITNESS,
            PROVER_RANDOMNESS,
            PROVER_NONCE,
            RANDOMNESS_PROTOCOL,
            RANDOMNESS_SEED,
            RANDOMNESS_PURPOSE,
            RANDOMNESS_SCALAR,
            RANDOMNESS_BYTES,
            SIGNATURE_PROTOCOL,
            SIGNATURE_DOMAIN,
            SIGNATURE_PUBLIC_KEY,
            SIGNATURE_MESSAGE,
            SIGNATURE_COMMITMENT,
            SIGNATURE_CHALLENGE,
            SIGNATURE_SECRET,
            SIGNATURE_RANDOMNESS,
            SIGNATURE_NONCE,
        ];
        let distinct: std::collections::BTreeSet<_> = labels.iter().collect();
        assert_eq!(distinct.len(), labels.len());
    }

    /// Values that separate domains (proof kinds, purposes, signature domains, credential
    /// kinds, hash domains) are pairwise distinct too.
    #[test]
    fn domain_values_are_pairwise_distinct() {
        let values: &[&[u8]] = &[
            KIND_REQUEST,
            KIND_RESPONSE,
            KIND_PRESENTATION,
            PURPOSE_ISSUER_KEY,
            PURPOSE_REQUEST,
            PURPOSE_RESPONSE,
            PURPOSE_PRESENTATION,
            PURPOSE_SIGNING_KEY,
            PURPOSE_BATCH_VERIFY,
            DOMAIN_VENUE_POSTER,
            DOMAIN_EXPOSURE_LIST,
            REQUEST_CONTEXT_CROWDING,
            REQUEST_CONTEXT_OUTBREAK,
            ARC_KEY_ID,
            ARC_DAILY_KEY,
            ARC_CONTEXT_DIGEST,
            SIGNING_KEY_ID,
        ];
        let distinct: std::collections::BTreeSet<_> = values.iter().collect();
        assert_eq!(distinct.len(), values.len());
    }
}
