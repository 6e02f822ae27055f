//! Non-interactive proofs of knowledge for linear relations over ristretto255.
//!
//! Every proof of the credential (the client's request proof, the issuer's response proof,
//! the presentation proof) states that the prover knows scalars `w` such that a list of
//! equations `P_e = sum_t c_t * w_(v_t) * Q_t` holds between public points. This is the
//! `LinearRelation` of draft-irtf-cfrg-sigma-protocols, which the ARC draft builds its proofs
//! on; here the relation is proven with the textbook Schnorr protocol made non-interactive
//! with a merlin transcript (the drafts use a SHAKE-based duplex sponge instead):
//!
//! 1. the prover draws a nonce `k_v` per scalar and sends one commitment per equation,
//!    `A_e = sum_t c_t * k_(v_t) * Q_t`;
//! 2. the challenge `c` is drawn from the transcript after the commitments;
//! 3. the prover answers `s_v = k_v + c * w_v`.
//!
//! The proof is sent in *batchable* form, commitments and responses (not the compact
//! challenge-and-responses form of the drafts), so the verifier checks every equation
//! `sum_t c_t * s_(v_t) * Q_t - c * P_e - A_e = 0` at once, folding them with weights drawn
//! from the transcript after the challenge into one variable-time multiscalar multiplication.
//!
//! Nonces are derived, not sampled: the prover clones the transcript (which already holds the
//! statement), absorbs the witness and 32 bytes of caller randomness, and draws the nonces
//! from that private clone. This is merlin's "transcript RNG" construction written out by
//! hand, because merlin 3's own builder speaks rand_core 0.6; it stays safe if the caller's
//! randomness is weak (the nonces still depend on the witness and statement) and if it
//! repeats (two statements never share nonces).

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::ristretto::VartimeRistrettoPrecomputation;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{
    Identity, IsIdentity, MultiscalarMul, VartimeMultiscalarMul, VartimePrecomputedMultiscalarMul,
};
use merlin::Transcript;
use zeroize::{Zeroize, Zeroizing};

use crate::encoding::{EncodingError, POINT_LEN, Reader, SCALAR_LEN};
use crate::keys::generators;
use crate::labels;

/// A proof that failed to verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The folded verification equation does not hold.
    #[error("the proof does not verify")]
    Invalid,
    /// The proof has a different number of commitments or responses than the relation.
    #[error("the proof does not match the relation's shape")]
    Shape,
}

/// One term `coefficient * w_var * point` of an equation.
#[derive(Clone, Copy)]
struct Term {
    var: usize,
    coefficient: Scalar,
    point: usize,
}

/// One equation `points[lhs] = sum of terms`.
struct Equation {
    lhs: usize,
    terms: Vec<Term>,
}

/// A linear relation: public points, scalar variables and equations between them.
///
/// The first points may be *static* (fixed generators, an issuer's public key) with a
/// precomputed table, which the verifier uses for its multiscalar multiplication.
pub(crate) struct Relation<'a> {
    table: Option<&'a VartimeRistrettoPrecomputation>,
    /// Whether points 0 and 1 are the generators `G` and `H`, whose constant-time
    /// fixed-base tables the prover then uses for its commitments.
    over_generators: bool,
    points: Vec<RistrettoPoint>,
    equations: Vec<Equation>,
    scalars: usize,
    /// A point that many checks of a batch may share (the presentation context's tag
    /// generator): [`Check::batch_holds`] multiplies each distinct one once.
    shared: Option<usize>,
}

/// A statement point the verifier knows only as `s_0 * Q_i0 + s_1 * Q_i1 + public` with
/// secret scalars `s_j` and other statement points `Q_ij` (the presentation's `V`, computed
/// from the issuer's secret key). Its value in the relation is never read by the verifier.
pub(crate) struct SecretCombination<'s> {
    /// Index of the point being replaced.
    pub(crate) replaced: usize,
    /// `(index of Q_ij, s_j)`, the secret scalars borrowed from the key.
    pub(crate) terms: [(usize, &'s Scalar); 2],
    /// The public remainder.
    pub(crate) public: RistrettoPoint,
}

/// The folded verification equation's coefficients.
struct Folded {
    points: Vec<Scalar>,
    commitments: Vec<Scalar>,
}

/// A folded verification equation as multiscalar terms that must sum to the identity:
/// coefficients of the relation's static points (multiplied through its table), public
/// `(scalar, point)` pairs (variable time), and scalars derived from a secret key with their
/// points (constant time). Checks of one relation's shape under one table can be combined
/// with random weights into a single evaluation ([`Check::batch_holds`]).
pub(crate) struct Check {
    statics: Vec<Scalar>,
    public: Vec<(Scalar, RistrettoPoint)>,
    /// A public term whose point other checks may share.
    shared: Option<(Scalar, RistrettoPoint)>,
    secret: Zeroizing<Vec<Scalar>>,
    secret_points: Vec<RistrettoPoint>,
}

/// Dynamic points from which one Pippenger multiplication beats the table's Straus.
const PIPPENGER_FROM: usize = 190;

impl Check {
    /// Whether the terms sum to the identity.
    pub(crate) fn is_identity(&self, table: Option<&VartimeRistrettoPrecomputation>) -> bool {
        let (scalars, points): (Vec<Scalar>, Vec<RistrettoPoint>) =
            self.public.iter().copied().chain(self.shared).unzip();
        let mut sum = match table {
            Some(table) if points.len() < PIPPENGER_FROM => {
                table.vartime_mixed_multiscalar_mul(&self.statics, &scalars, &points)
            }
            Some(table) => {
                table.vartime_multiscalar_mul(&self.statics)
                    + RistrettoPoint::vartime_multiscalar_mul(&scalars, &points)
            }
            None => RistrettoPoint::vartime_multiscalar_mul(&scalars, &points),
        };
        if !self.secret.is_empty() {
            sum += RistrettoPoint::multiscalar_mul(self.secret.iter(), &self.secret_points);
        }
        sum.is_identity()
    }

    /// Whether every check holds, tested at once: the checks, each multiplied by its own
    /// weight, must sum to the identity. With weights the prover cannot predict (uniform
    /// scalars drawn by the verifier), a batch holding any failed check passes with
    /// probability at most 2^-252. All checks must come from relations over the same static
    /// points (`table`). An empty batch holds.
    pub(crate) fn batch_holds(
        table: Option<&VartimeRistrettoPrecomputation>,
        checks: &[&Check],
        weights: &[Scalar],
    ) -> bool {
        assert_eq!(checks.len(), weights.len(), "one weight per check");
        let Some(first) = checks.first() else {
            return true;
        };
        let mut combined = Check {
            statics: vec![Scalar::ZERO; first.statics.len()],
            public: Vec::with_capacity(checks.iter().map(|c| c.public.len() + 1).sum()),
            shared: None,
            secret: Zeroizing::new(Vec::new()),
            secret_points: Vec::new(),
        };
        // Shared points: one term per distinct point, their weighted coefficients summed.
        let mut shared: Vec<(Scalar, RistrettoPoint)> = Vec::new();
        for (check, weight) in checks.iter().zip(weights) {
            assert_eq!(check.statics.len(), combined.statics.len(), "one table");
            for (sum, s) in combined.statics.iter_mut().zip(&check.statics) {
                *sum += weight * s;
            }
            (combined.public).extend(check.public.iter().map(|(s, p)| (weight * s, *p)));
            if let Some((scalar, point)) = &check.shared {
                match shared.iter_mut().find(|(_, p)| p == point) {
                    Some((sum, _)) => *sum += weight * scalar,
                    None => shared.push((weight * scalar, *point)),
                }
            }
            (combined.secret).extend(check.secret.iter().map(|s| weight * s));
            (combined.secret_points).extend_from_slice(&check.secret_points);
        }
        combined.public.extend(shared);
        combined.is_identity(table)
    }
}

/// A proof in batchable form: one commitment per equation, one response per scalar.
#[derive(Clone)]
pub(crate) struct Proof {
    commitments: Vec<(RistrettoPoint, [u8; POINT_LEN])>,
    responses: Vec<Scalar>,
}

impl<'a> Relation<'a> {
    /// A relation over `scalars` variables whose first points are the static points of
    /// `table`, given again (in the same order) in `static_points`.
    pub(crate) fn new(
        scalars: usize,
        table: Option<&'a VartimeRistrettoPrecomputation>,
        static_points: &[RistrettoPoint],
    ) -> Self {
        if let Some(table) = table {
            debug_assert_eq!(table.len(), static_points.len());
        }
        let generators = generators();
        let over_generators = static_points.len() >= 2
            && static_points[0] == generators.g
            && static_points[1] == generators.h;
        Self {
            table,
            over_generators,
            points: static_points.to_vec(),
            equations: Vec::new(),
            scalars,
            shared: None,
        }
    }

    /// Marks point `index` as one other checks of a batch may share: equal shared points
    /// of a batch are multiplied once.
    pub(crate) fn share_point(&mut self, index: usize) {
        debug_assert!(index >= self.table.map_or(0, |t| t.len()) && index < self.points.len());
        self.shared = Some(index);
    }

    /// Adds a public point and returns its index.
    pub(crate) fn point(&mut self, point: RistrettoPoint) -> usize {
        self.points.push(point);
        self.points.len() - 1
    }

    /// Adds `points[lhs] = sum w_var * points[point]` over `(var, point)` pairs.
    pub(crate) fn equation(&mut self, lhs: usize, terms: &[(usize, usize)]) {
        let terms = terms.iter().map(|&(var, point)| (var, Scalar::ONE, point));
        self.weighted_equation(lhs, terms);
    }

    /// Adds `points[lhs] = sum coefficient * w_var * points[point]`.
    pub(crate) fn weighted_equation(
        &mut self,
        lhs: usize,
        terms: impl IntoIterator<Item = (usize, Scalar, usize)>,
    ) {
        let terms = terms
            .into_iter()
            .map(|(var, coefficient, point)| {
                debug_assert!(var < self.scalars && point < self.points.len());
                Term {
                    var,
                    coefficient,
                    point,
                }
            })
            .collect();
        self.equations.push(Equation { lhs, terms });
    }

    /// Absorbs the relation's shape; the statement's own points are bound by the caller.
    fn bind_shape(&self, transcript: &mut Transcript) {
        let mut shape = [0u8; 8];
        shape[..4].copy_from_slice(&(self.equations.len() as u32).to_be_bytes());
        shape[4..].copy_from_slice(&(self.scalars as u32).to_be_bytes());
        transcript.append_message(labels::RELATION_SHAPE, &shape);
    }

    /// Proves knowledge of `witness` (one scalar per variable) with caller `randomness`.
    pub(crate) fn prove(
        &self,
        witness: &[Scalar],
        transcript: &mut Transcript,
        randomness: &[u8; 32],
    ) -> Proof {
        assert_eq!(
            witness.len(),
            self.scalars,
            "witness does not match the relation"
        );
        self.bind_shape(transcript);

        // 1. Nonces from a private clone of the transcript, then one commitment per equation.
        let nonces = self.derive_nonces(witness, transcript, randomness);
        let commitments: Vec<_> = (self.equations.iter())
            .map(|equation| {
                let point = self.commit(equation, &nonces);
                (point, point.compress().to_bytes())
            })
            .collect();

        // 2. The challenge binds the statement (absorbed by the caller) and the commitments.
        let challenge = self.challenge(transcript, &commitments);

        // 3. Responses s = k + c * w.
        let responses = nonces
            .iter()
            .zip(witness)
            .map(|(k, w)| k + challenge * w)
            .collect();
        Proof {
            commitments,
            responses,
        }
    }

    /// `A_e = sum_t c_t * k_(v_t) * Q_t` in constant time: terms on one point are merged, the
    /// generators go through their fixed-base tables, the rest through one multiscalar
    /// multiplication.
    fn commit(&self, equation: &Equation, nonces: &[Scalar]) -> RistrettoPoint {
        let mut merged: Zeroizing<Vec<(usize, Scalar)>> = Zeroizing::new(Vec::new());
        for term in &equation.terms {
            let scalar = term.coefficient * nonces[term.var];
            match merged.iter_mut().find(|(point, _)| *point == term.point) {
                Some((_, sum)) => *sum += scalar,
                None => merged.push((term.point, scalar)),
            }
        }
        let generators = generators();
        let mut fixed = RistrettoPoint::identity();
        let mut dynamic = Vec::with_capacity(merged.len());
        for (point, scalar) in merged.iter() {
            match (self.over_generators, *point) {
                (true, 0) => fixed += RISTRETTO_BASEPOINT_TABLE * scalar,
                (true, 1) => fixed += &generators.h_table * scalar,
                _ => dynamic.push((*scalar, self.points[*point])),
            }
        }
        let scalars = Zeroizing::new(dynamic.iter().map(|(s, _)| *s).collect::<Vec<_>>());
        fixed + RistrettoPoint::multiscalar_mul(scalars.iter(), dynamic.iter().map(|(_, p)| p))
    }

    /// Draws one nonce per variable from a clone of the transcript keyed by the witness.
    fn derive_nonces(
        &self,
        witness: &[Scalar],
        transcript: &Transcript,
        randomness: &[u8; 32],
    ) -> Zeroizing<Vec<Scalar>> {
        let mut private = transcript.clone();
        for w in witness {
            let mut bytes = w.to_bytes();
            private.append_message(labels::PROVER_WITNESS, &bytes);
            bytes.zeroize();
        }
        private.append_message(labels::PROVER_RANDOMNESS, randomness);
        let mut wide = Zeroizing::new([0u8; 64]);
        let nonces = (0..self.scalars).map(|_| {
            private.challenge_bytes(labels::PROVER_NONCE, wide.as_mut());
            Scalar::from_bytes_mod_order_wide(&wide)
        });
        Zeroizing::new(nonces.collect())
    }

    /// Absorbs the commitments and draws the challenge.
    fn challenge(
        &self,
        transcript: &mut Transcript,
        commitments: &[(RistrettoPoint, [u8; POINT_LEN])],
    ) -> Scalar {
        for (_, bytes) in commitments {
            transcript.append_message(labels::COMMITMENT, bytes);
        }
        let mut wide = [0u8; 64];
        transcript.challenge_bytes(labels::CHALLENGE, &mut wide);
        Scalar::from_bytes_mod_order_wide(&wide)
    }

    /// Checks a proof in variable time (every input of the check is public).
    pub(crate) fn vartime_verify(
        &self,
        proof: &Proof,
        transcript: &mut Transcript,
    ) -> Result<(), ProofError> {
        self.verify_inner(proof, transcript, None)
    }

    fn verify_inner(
        &self,
        proof: &Proof,
        transcript: &mut Transcript,
        combination: Option<&SecretCombination<'_>>,
    ) -> Result<(), ProofError> {
        let check = self.folded_check(proof, transcript, combination)?;
        if check.is_identity(self.table) {
            Ok(())
        } else {
            Err(ProofError::Invalid)
        }
    }

    /// The folded verification equation of `proof` as multiscalar terms, not yet evaluated:
    /// the proof holds iff they sum to the identity (see [`Check`]). Fails only on a proof of
    /// the wrong shape.
    pub(crate) fn folded_check(
        &self,
        proof: &Proof,
        transcript: &mut Transcript,
        combination: Option<&SecretCombination<'_>>,
    ) -> Result<Check, ProofError> {
        if proof.commitments.len() != self.equations.len() || proof.responses.len() != self.scalars
        {
            return Err(ProofError::Shape);
        }
        self.bind_shape(transcript);
        let challenge = self.challenge(transcript, &proof.commitments);
        let coefficients = self.fold(proof, transcript, challenge);

        // Substitute the secret combination: its coefficient kappa moves onto its points.
        let mut excluded = [usize::MAX; 3];
        let mut secret = Zeroizing::new(Vec::new());
        let mut secret_points = Vec::new();
        let mut extra = None;
        if let Some(combination) = combination {
            let kappa = coefficients.points[combination.replaced];
            excluded[0] = combination.replaced;
            for (j, (index, scalar)) in combination.terms.iter().enumerate() {
                debug_assert!(*index >= self.table.map_or(0, |t| t.len()));
                secret.push(coefficients.points[*index] + kappa * *scalar);
                secret_points.push(self.points[*index]);
                excluded[j + 1] = *index;
            }
            extra = Some((kappa, combination.public));
        }

        // Static points keep their coefficients (the table multiplies them); every other
        // public point and the commitments are dynamic.
        let n_static = self.table.map_or(0, |t| t.len());
        let shared = (self.shared).map(|i| (coefficients.points[i], self.points[i]));
        let kept = (n_static..self.points.len())
            .filter(|i| !excluded.contains(i) && Some(*i) != self.shared);
        let public = (kept.map(|i| (coefficients.points[i], self.points[i])))
            .chain(
                (coefficients.commitments.iter().copied())
                    .zip(proof.commitments.iter().map(|c| c.0)),
            )
            .chain(extra)
            .collect();
        Ok(Check {
            statics: coefficients.points[..n_static].to_vec(),
            public,
            shared,
            secret,
            secret_points,
        })
    }

    /// Folds every equation `e` with a 128-bit weight `rho_e` drawn after the challenge into
    /// one linear combination `sum_e rho_e * (sum_t c_t s_t Q_t - c P_e - A_e)`, which must be
    /// the identity; returns its coefficient on each statement point and each commitment.
    fn fold(&self, proof: &Proof, transcript: &mut Transcript, challenge: Scalar) -> Folded {
        let mut weight_bytes = vec![0u8; 16 * self.equations.len()];
        transcript.challenge_bytes(labels::BATCH_WEIGHT, &mut weight_bytes);
        let mut points = vec![Scalar::ZERO; self.points.len()];
        let mut commitments = Vec::with_capacity(self.equations.len());
        for (equation, bytes) in self.equations.iter().zip(weight_bytes.chunks_exact(16)) {
            let mut wide = [0u8; 32];
            wide[..16].copy_from_slice(bytes);
            let weight = Scalar::from_bytes_mod_order(wide);
            for term in &equation.terms {
                points[term.point] += weight * term.coefficient * proof.responses[term.var];
            }
            points[equation.lhs] -= weight * challenge;
            commitments.push(-weight);
        }
        Folded {
            points,
            commitments,
        }
    }

    /// Whether the witness satisfies every equation.
    #[cfg(test)]
    fn holds_for(&self, witness: &[Scalar]) -> bool {
        self.equations.iter().all(|equation| {
            let scalars = equation
                .terms
                .iter()
                .map(|t| t.coefficient * witness[t.var]);
            let points = equation.terms.iter().map(|t| self.points[t.point]);
            RistrettoPoint::multiscalar_mul(scalars, points) == self.points[equation.lhs]
        })
    }

    /// Reads a proof for this relation (commitments, then responses).
    #[cfg(test)]
    pub(crate) fn read_proof(&self, reader: &mut Reader<'_>) -> Result<Proof, EncodingError> {
        Proof::read(reader, self.equations.len(), self.scalars)
    }
}

impl Proof {
    /// A proof with no commitments or responses, replaced before the message leaves.
    pub(crate) fn empty() -> Proof {
        Proof {
            commitments: Vec::new(),
            responses: Vec::new(),
        }
    }

    /// Reads a proof of `equations` commitments and `scalars` responses.
    pub(crate) fn read(
        reader: &mut Reader<'_>,
        equations: usize,
        scalars: usize,
    ) -> Result<Proof, EncodingError> {
        let commitments = (0..equations)
            .map(|_| reader.read_point("proof.commitment"))
            .collect::<Result<_, _>>()?;
        let responses = (0..scalars)
            .map(|_| reader.read_scalar("proof.response"))
            .collect::<Result<_, _>>()?;
        Ok(Proof {
            commitments,
            responses,
        })
    }

    /// Appends the encoding: every commitment, then every response.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        self.commitments
            .iter()
            .for_each(|(_, bytes)| out.extend_from_slice(bytes));
        self.responses
            .iter()
            .for_each(|s| out.extend_from_slice(s.as_bytes()));
    }

    /// Encoded length.
    pub(crate) fn len(&self) -> usize {
        self.commitments.len() * POINT_LEN + self.responses.len() * SCALAR_LEN
    }
}

#[cfg(test)]
mod tests {
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT as G;

    use super::*;
    use crate::encoding::Reader;

    /// The relation `X = x * G, Y = x * P` (a DLEQ) with witness `x`.
    fn dleq(x: Scalar, p: RistrettoPoint) -> Relation<'static> {
        let mut relation = Relation::new(1, None, &[]);
        let (g, p_i) = (relation.point(G), relation.point(p));
        let (big_x, big_y) = (relation.point(x * G), relation.point(x * p));
        relation.equation(big_x, &[(0, g)]);
        relation.equation(big_y, &[(0, p_i)]);
        relation
    }

    fn transcript() -> Transcript {
        Transcript::new(b"sigma test")
    }

    #[test]
    fn honest_proof_verifies() {
        let x = Scalar::from(42u64);
        let relation = dleq(x, G * Scalar::from(7u64));
        let proof = relation.prove(&[x], &mut transcript(), &[0; 32]);
        assert_eq!(relation.vartime_verify(&proof, &mut transcript()), Ok(()));
    }

    #[test]
    fn proof_for_another_statement_is_rejected() {
        let x = Scalar::from(42u64);
        let proof = dleq(x, G * Scalar::from(7u64)).prove(&[x], &mut transcript(), &[0; 32]);
        let other = dleq(x, G * Scalar::from(8u64));
        assert_eq!(
            other.vartime_verify(&proof, &mut transcript()),
            Err(ProofError::Invalid)
        );
    }

    #[test]
    fn proof_under_another_transcript_is_rejected() {
        let x = Scalar::from(42u64);
        let relation = dleq(x, G * Scalar::from(7u64));
        let proof = relation.prove(&[x], &mut transcript(), &[0; 32]);
        let mut other = Transcript::new(b"another protocol");
        assert_eq!(
            relation.vartime_verify(&proof, &mut other),
            Err(ProofError::Invalid)
        );
    }

    #[test]
    fn every_tampered_byte_is_rejected() {
        let x = Scalar::from(42u64);
        let relation = dleq(x, G * Scalar::from(7u64));
        let mut bytes = Vec::new();
        relation
            .prove(&[x], &mut transcript(), &[0; 32])
            .write(&mut bytes);
        for i in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[i] ^= 0x01;
            let mut reader = Reader::new(&tampered);
            if let Ok(proof) = relation.read_proof(&mut reader) {
                assert!(
                    relation.vartime_verify(&proof, &mut transcript()).is_err(),
                    "byte {i}"
                );
            }
        }
    }

    #[test]
    fn proof_with_a_wrong_witness_is_rejected() {
        let x = Scalar::from(42u64);
        let relation = dleq(x, G * Scalar::from(7u64));
        let wrong = [Scalar::from(43u64)];
        assert!(!relation.holds_for(&wrong));
        let proof = relation.prove(&wrong, &mut transcript(), &[0; 32]);
        assert_eq!(
            relation.vartime_verify(&proof, &mut transcript()),
            Err(ProofError::Invalid)
        );
        assert!(relation.holds_for(&[x]));
    }

    #[test]
    fn nonces_depend_on_randomness_and_witness() {
        let x = Scalar::from(42u64);
        let relation = dleq(x, G * Scalar::from(7u64));
        let a = relation.prove(&[x], &mut transcript(), &[0; 32]);
        let b = relation.prove(&[x], &mut transcript(), &[1; 32]);
        assert_ne!(a.commitments[0].1, b.commitments[0].1);
    }
}
