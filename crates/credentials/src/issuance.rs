//! Credential issuance: the client's blinded request, the issuer's response, finalisation.
//!
//! ARC draft section 4.2, ported to ristretto255 and merlin, with one change: the second
//! attribute `m2 = HashToScalar(requestContext, "requestContext")` is *public* here. In the
//! draft the client hides `m2` in a commitment the issuer cannot check, because there the
//! request context belongs to an origin the issuer must not learn. In hotspot the request
//! context is the credential's kind (crowding or outbreak, see [`crate::presentation`]), which
//! the issuer must enforce, so it binds `m2` itself and the request carries only `m1`:
//!
//! ```text
//! client:  m1, r1 random;  m1Enc = m1*G + r1*H;  proof of (m1, r1)
//! issuer:  b random;  U = b*G;  encUPrime = b*(X0 + x1*m1Enc) + x2*m2*U
//!          X0Aux = b*x0Blinding*H;  X1Aux = b*X1;  HAux = b*H;  proof that all of these used
//!          the published (X0, X1, X2)
//! client:  UPrime = encUPrime - X0Aux - r1*X1Aux = (x0 + x1*m1 + x2*m2) * U
//! ```
//!
//! The credential `(m1, U, UPrime)` is an algebraic MAC (MAC_GGM of the KVAC paper) on
//! `(m1, m2)` under the issuer's key; `m1` never leaves the client in the clear.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::MultiscalarMul;
use merlin::Transcript;
use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::encoding::{EncodingError, POINT_LEN, Reader};
use crate::keys::{IssuerKey, IssuerPublicKey, KeyId, generators};
use crate::labels;
use crate::presentation::{Credential, request_attribute};
use crate::randomness::{Expander, draw_seed};
use crate::sigma::{Proof, ProofError, Relation};

/// Length of an encoded [`CredentialRequest`]: key id, `m1Enc`, 1 commitment, 2 responses.
pub const REQUEST_LEN: usize = 8 + 4 * POINT_LEN;
/// Length of an encoded [`CredentialResponse`]: key id, 5 elements, 9 commitments, 6 responses.
pub const RESPONSE_LEN: usize = 8 + 20 * POINT_LEN;

/// Why issuance failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuanceError {
    /// The request or response was made for another issuer key.
    #[error("made for key {found}, expected key {expected}")]
    WrongKey {
        /// The key id the message names.
        found: KeyId,
        /// The key id of the key at hand.
        expected: KeyId,
    },
    /// The client's proof of a well-formed request does not verify.
    #[error("the request proof does not verify: {0}")]
    InvalidRequestProof(ProofError),
    /// The issuer's proof that it used its published key does not verify.
    #[error("the response proof does not verify: {0}")]
    InvalidResponseProof(ProofError),
    /// A message failed to decode.
    #[error(transparent)]
    Encoding(#[from] EncodingError),
}

/// The client's blinded request: `m1Enc` and a proof that the client knows its opening.
#[derive(Clone)]
pub struct CredentialRequest {
    key_id: KeyId,
    m1_enc: (RistrettoPoint, [u8; 32]),
    proof: Proof,
}

impl std::fmt::Debug for CredentialRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialRequest")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// What the client keeps between its request and the issuer's response. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct PendingCredential {
    m1: Scalar,
    r1: Scalar,
    #[zeroize(skip)]
    m1_enc: (RistrettoPoint, [u8; 32]),
    #[zeroize(skip)]
    key: IssuerPublicKey,
    request_context: Vec<u8>,
}

impl std::fmt::Debug for PendingCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCredential")
            .field("key_id", &self.key.key_id())
            .finish_non_exhaustive()
    }
}

/// The issuer's response and its proof.
#[derive(Clone)]
pub struct CredentialResponse {
    key_id: KeyId,
    u: (RistrettoPoint, [u8; 32]),
    enc_u_prime: (RistrettoPoint, [u8; 32]),
    x0_aux: (RistrettoPoint, [u8; 32]),
    x1_aux: (RistrettoPoint, [u8; 32]),
    h_aux: (RistrettoPoint, [u8; 32]),
    proof: Proof,
}

impl std::fmt::Debug for CredentialResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialResponse")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A point with its canonical encoding.
fn encoded(point: RistrettoPoint) -> (RistrettoPoint, [u8; 32]) {
    (point, point.compress().to_bytes())
}

/// The transcript both sides of one issuance proof start from.
fn issuance_transcript(
    kind: &'static [u8],
    key: &IssuerPublicKey,
    request_context: &[u8],
) -> Transcript {
    let mut transcript = Transcript::new(labels::ARC_PROTOCOL);
    transcript.append_message(labels::PROOF_KIND, kind);
    transcript.append_message(labels::KEY_ID, &key.key_id().0);
    transcript.append_message(labels::PUBLIC_KEY, &key.to_bytes());
    transcript.append_message(labels::REQUEST_CONTEXT, request_context);
    transcript
}

/// The request relation: `m1Enc = m1*G + r1*H` over variables `(m1, r1)`.
fn request_relation(m1_enc: RistrettoPoint) -> Relation<'static> {
    let generators = generators();
    let mut relation = Relation::new(2, Some(&generators.table), &[generators.g, generators.h]);
    let m1_enc = relation.point(m1_enc);
    relation.equation(m1_enc, &[(0, 0), (1, 1)]);
    relation
}

impl CredentialRequest {
    /// Starts issuance under `key` for `request_context` (the public entry point).
    pub fn new<R: CryptoRng + ?Sized>(
        key: &IssuerPublicKey,
        request_context: &[u8],
        rng: &mut R,
    ) -> (PendingCredential, CredentialRequest) {
        Self::new_with_randomness(key, request_context, &draw_seed(rng))
    }

    /// [`CredentialRequest::new`] with its randomness given as a seed.
    pub fn new_with_randomness(
        key: &IssuerPublicKey,
        request_context: &[u8],
        seed: &[u8; 32],
    ) -> (PendingCredential, CredentialRequest) {
        // m1 (the client's secret attribute) and r1 (its blinding), then m1Enc.
        let mut expander = Expander::new(seed, labels::PURPOSE_REQUEST);
        let (m1, r1) = (expander.nonzero_scalar(), expander.nonzero_scalar());
        let generators = generators();
        let m1_enc = encoded(RistrettoPoint::multiscalar_mul(
            [m1, r1],
            [generators.g, generators.h],
        ));

        // Proof of knowledge of (m1, r1), bound to the key, the context and m1Enc.
        let mut transcript = issuance_transcript(labels::KIND_REQUEST, key, request_context);
        transcript.append_message(labels::STATEMENT_POINT, &m1_enc.1);
        let proof = request_relation(m1_enc.0).prove(&[m1, r1], &mut transcript, &expander.bytes());

        let pending = PendingCredential {
            m1,
            r1,
            m1_enc,
            key: key.clone(),
            request_context: request_context.to_vec(),
        };
        (
            pending,
            CredentialRequest {
                key_id: key.key_id(),
                m1_enc,
                proof,
            },
        )
    }

    /// The key id the client asks to be issued under.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// `keyId || Ser(m1Enc) || proof`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(REQUEST_LEN);
        out.extend_from_slice(&self.key_id.0);
        out.extend_from_slice(&self.m1_enc.1);
        self.proof.write(&mut out);
        out
    }

    /// Decodes a request, rejecting non-canonical fields, truncation and trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        let mut reader = Reader::new(bytes);
        let key_id = KeyId(reader.read_array("request.key_id")?);
        let m1_enc = reader.read_point("request.m1Enc")?;
        let proof = Proof::read(&mut reader, 1, 2)?;
        reader.finish()?;
        Ok(Self {
            key_id,
            m1_enc,
            proof,
        })
    }

    /// The issuer's check of the request proof (public inputs only).
    fn vartime_verify(
        &self,
        key: &IssuerPublicKey,
        request_context: &[u8],
    ) -> Result<(), IssuanceError> {
        let mut transcript = issuance_transcript(labels::KIND_REQUEST, key, request_context);
        transcript.append_message(labels::STATEMENT_POINT, &self.m1_enc.1);
        (request_relation(self.m1_enc.0).vartime_verify(&self.proof, &mut transcript))
            .map_err(IssuanceError::InvalidRequestProof)
    }
}

/// The response elements the issuer's proof speaks about.
struct ResponseStatement {
    m1_enc: RistrettoPoint,
    m2: Scalar,
    u: RistrettoPoint,
    enc_u_prime: RistrettoPoint,
    x0_aux: RistrettoPoint,
    x1_aux: RistrettoPoint,
    h_aux: RistrettoPoint,
}

/// Number of equations of the response relation.
const RESPONSE_EQUATIONS: usize = 9;
/// Number of scalar variables of the response relation.
const RESPONSE_SCALARS: usize = 6;

/// The response relation over `(x0, x1, x2, x0Blinding, b, t1 = b*x1)`.
fn response_relation(key: &IssuerPublicKey, s: &ResponseStatement) -> Relation<'static> {
    const X0: usize = 0;
    const X1: usize = 1;
    const X2: usize = 2;
    const X0_BLINDING: usize = 3;
    const B: usize = 4;
    const T1: usize = 5;
    let generators = generators();
    let mut r = Relation::new(
        RESPONSE_SCALARS,
        Some(&generators.table),
        &[generators.g, generators.h],
    );
    let (g, h) = (0, 1);
    let [x0, x1, x2, m1_enc, u, enc_u_prime, x0_aux, x1_aux, h_aux] = [
        key.x0,
        key.x1,
        key.x2,
        s.m1_enc,
        s.u,
        s.enc_u_prime,
        s.x0_aux,
        s.x1_aux,
        s.h_aux,
    ]
    .map(|point| r.point(point));

    // The published key: X0 = x0*G + x0Blinding*H, X1 = x1*H, X2 = x2*H.
    r.equation(x0, &[(X0, g), (X0_BLINDING, h)]);
    r.equation(x1, &[(X1, h)]);
    r.equation(x2, &[(X2, h)]);

    // The auxiliary points: HAux = b*H, X0Aux = x0Blinding*HAux, X1Aux = t1*H = b*X1.
    r.equation(h_aux, &[(B, h)]);
    r.equation(x0_aux, &[(X0_BLINDING, h_aux)]);
    r.equation(x1_aux, &[(T1, h)]);
    r.equation(x1_aux, &[(B, x1)]);

    // The MAC: U = b*G, encUPrime = b*X0 + t1*m1Enc + x2*(m2*U).
    r.equation(u, &[(B, g)]);
    r.weighted_equation(
        enc_u_prime,
        [
            (B, Scalar::ONE, x0),
            (T1, Scalar::ONE, m1_enc),
            (X2, s.m2, u),
        ],
    );
    r
}

impl CredentialResponse {
    fn statement(&self, request_m1_enc: RistrettoPoint, m2: Scalar) -> ResponseStatement {
        ResponseStatement {
            m1_enc: request_m1_enc,
            m2,
            u: self.u.0,
            enc_u_prime: self.enc_u_prime.0,
            x0_aux: self.x0_aux.0,
            x1_aux: self.x1_aux.0,
            h_aux: self.h_aux.0,
        }
    }

    fn bind(&self, transcript: &mut Transcript, m1_enc: &[u8; 32]) {
        let elements = [
            &self.u,
            &self.enc_u_prime,
            &self.x0_aux,
            &self.x1_aux,
            &self.h_aux,
        ];
        bind_response(transcript, m1_enc, elements);
    }

    /// `keyId || U || encUPrime || X0Aux || X1Aux || HAux || proof`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(RESPONSE_LEN);
        out.extend_from_slice(&self.key_id.0);
        for (_, bytes) in [
            &self.u,
            &self.enc_u_prime,
            &self.x0_aux,
            &self.x1_aux,
            &self.h_aux,
        ] {
            out.extend_from_slice(bytes);
        }
        self.proof.write(&mut out);
        out
    }

    /// Decodes a response, rejecting non-canonical fields, truncation and trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        let mut reader = Reader::new(bytes);
        let key_id = KeyId(reader.read_array("response.key_id")?);
        let u = reader.read_point("response.U")?;
        let enc_u_prime = reader.read_point("response.encUPrime")?;
        let x0_aux = reader.read_point("response.X0Aux")?;
        let x1_aux = reader.read_point("response.X1Aux")?;
        let h_aux = reader.read_point("response.HAux")?;
        let proof = Proof::read(&mut reader, RESPONSE_EQUATIONS, RESPONSE_SCALARS)?;
        reader.finish()?;
        Ok(Self {
            key_id,
            u,
            enc_u_prime,
            x0_aux,
            x1_aux,
            h_aux,
            proof,
        })
    }
}

/// The issuer's answer to a request (public entry point of [`issue_with_randomness`]).
pub fn issue<R: CryptoRng + ?Sized>(
    key: &IssuerKey,
    request_context: &[u8],
    request: &CredentialRequest,
    rng: &mut R,
) -> Result<CredentialResponse, IssuanceError> {
    issue_with_randomness(key, request_context, request, &draw_seed(rng))
}

/// Checks the request proof, then computes the blinded MAC and proves it (ARC draft 4.2.2).
pub fn issue_with_randomness(
    key: &IssuerKey,
    request_context: &[u8],
    request: &CredentialRequest,
    seed: &[u8; 32],
) -> Result<CredentialResponse, IssuanceError> {
    // 1. The request must name this key and prove knowledge of m1Enc's opening.
    if request.key_id != key.key_id() {
        return Err(IssuanceError::WrongKey {
            found: request.key_id,
            expected: key.key_id(),
        });
    }
    request.vartime_verify(key.public(), request_context)?;

    // 2. The blinded MAC under a fresh b, with m2 bound by the issuer.
    let secret = &key.secret;
    let m2 = request_attribute(request_context);
    let mut expander = Expander::new(seed, labels::PURPOSE_RESPONSE);
    let b = Zeroizing::new(expander.nonzero_scalar());
    let generators = generators();
    let u = RISTRETTO_BASEPOINT_TABLE * &*b;
    let x2_m2 = Zeroizing::new(secret.x2 * m2);
    let enc_u_prime = *b * (key.public.x0 + secret.x1 * request.m1_enc.0) + *x2_m2 * u;
    let h_aux = *b * generators.h;
    let (u, enc_u_prime, h_aux) = (encoded(u), encoded(enc_u_prime), encoded(h_aux));
    let x0_aux = encoded(secret.x0_blinding * h_aux.0);
    let x1_aux = encoded(*b * key.public.x1);

    // 3. Proof that the response used the published key.
    let statement = ResponseStatement {
        m1_enc: request.m1_enc.0,
        m2,
        u: u.0,
        enc_u_prime: enc_u_prime.0,
        x0_aux: x0_aux.0,
        x1_aux: x1_aux.0,
        h_aux: h_aux.0,
    };
    let mut transcript = issuance_transcript(labels::KIND_RESPONSE, key.public(), request_context);
    bind_response(
        &mut transcript,
        &request.m1_enc.1,
        [&u, &enc_u_prime, &x0_aux, &x1_aux, &h_aux],
    );
    let witness = Zeroizing::new([
        secret.x0,
        secret.x1,
        secret.x2,
        secret.x0_blinding,
        *b,
        *b * secret.x1,
    ]);
    let relation = response_relation(key.public(), &statement);
    let proof = relation.prove(&witness[..], &mut transcript, &expander.bytes());
    Ok(CredentialResponse {
        key_id: key.key_id(),
        u,
        enc_u_prime,
        x0_aux,
        x1_aux,
        h_aux,
        proof,
    })
}

/// Absorbs `m1Enc` and the five response elements.
fn bind_response(
    transcript: &mut Transcript,
    m1_enc: &[u8; 32],
    elements: [&(RistrettoPoint, [u8; 32]); 5],
) {
    transcript.append_message(labels::STATEMENT_POINT, m1_enc);
    for (_, bytes) in elements {
        transcript.append_message(labels::STATEMENT_POINT, bytes);
    }
}

impl PendingCredential {
    /// Verifies the issuer's response and unblinds the credential (ARC draft 4.2.3).
    pub fn finalize(self, response: &CredentialResponse) -> Result<Credential, IssuanceError> {
        // 1. The response must come from the key we asked, with a valid proof.
        if response.key_id != self.key.key_id() {
            return Err(IssuanceError::WrongKey {
                found: response.key_id,
                expected: self.key.key_id(),
            });
        }
        let m2 = request_attribute(&self.request_context);
        let mut transcript =
            issuance_transcript(labels::KIND_RESPONSE, &self.key, &self.request_context);
        response.bind(&mut transcript, &self.m1_enc.1);
        (response_relation(&self.key, &response.statement(self.m1_enc.0, m2)))
            .vartime_verify(&response.proof, &mut transcript)
            .map_err(IssuanceError::InvalidResponseProof)?;

        // 2. UPrime = encUPrime - X0Aux - r1*X1Aux = (x0 + x1*m1 + x2*m2) * U.
        let u_prime = response.enc_u_prime.0 - response.x0_aux.0 - self.r1 * response.x1_aux.0;
        Ok(Credential::new(
            self.m1,
            response.u.0,
            u_prime,
            self.key.clone(),
            self.request_context.clone(),
        ))
    }
}
