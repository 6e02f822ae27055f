//! Issuer keys of the credential: generation, encodings, key ids and daily rotation.
//!
//! ARC draft section 4.1 (key generation), ported to ristretto255. The issuer's secret is four
//! scalars `(x0, x1, x2, x0Blinding)`; its public key is
//!
//! ```text
//! X0 = x0 * G + x0Blinding * H,   X1 = x1 * H,   X2 = x2 * H
//! ```
//!
//! where `G` is the ristretto255 base point and `H = HashToGroup(Ser(G), "generatorH")` with our
//! context string ([`crate::labels::ARC_CONTEXT`]), so nobody knows `log_G(H)`.
//!
//! Verification of a presentation needs the *secret* key (the credential is keyed-verification):
//! the issuer and both aggregators hold the same [`IssuerKey`]; clients hold only the
//! [`IssuerPublicKey`]. Keys rotate by day: a [`KeySet`] maps each [`KeyId`] (8 bytes of a hash
//! of the public key, carried in every presentation) to the key and the [`Day`] it belongs to,
//! and the verifier says which days it accepts for a given window. Keys can be drawn at random
//! ([`IssuerKey::generate`]) or derived from an operator's master seed and the day
//! ([`IssuerKey::derive_daily`]), so that the issuer and the aggregators share one secret in
//! their configuration instead of a new key file every day.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::{Arc, OnceLock};

use curve25519_dalek::constants::{RISTRETTO_BASEPOINT_POINT, RISTRETTO_BASEPOINT_TABLE};
use curve25519_dalek::ristretto::{
    RistrettoBasepointTable, RistrettoPoint, VartimeRistrettoPrecomputation,
};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimePrecomputedMultiscalarMul;
use rand_core::CryptoRng;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::encoding::{EncodingError, Reader, decode_nonzero_scalar};
use crate::h2c;
use crate::labels;
use crate::randomness::{Expander, draw_seed};

/// Length of an encoded [`IssuerPublicKey`].
pub const PUBLIC_KEY_LEN: usize = 96;
/// Length of an encoded [`IssuerKey`] secret.
pub const SECRET_KEY_LEN: usize = 128;
/// Length of a [`KeyId`].
pub const KEY_ID_LEN: usize = 8;

/// Why a key could not be added to a [`KeySet`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The set already holds a key for this day.
    #[error("a key for day {0} is already present")]
    DuplicateDay(u32),
    /// The set already holds a key with this id (the same key, or an id collision).
    #[error("key id {0} is already present")]
    DuplicateId(KeyId),
}

/// The two generators and a precomputed table for verifying proofs over them.
pub(crate) struct Generators {
    /// `G`, the ristretto255 base point.
    pub(crate) g: RistrettoPoint,
    /// `H = HashToGroup(Ser(G), "generatorH")`.
    pub(crate) h: RistrettoPoint,
    /// Variable-time table of `[G, H]`.
    pub(crate) table: VartimeRistrettoPrecomputation,
    /// Constant-time fixed-base table of `H` (the one of `G` is dalek's).
    pub(crate) h_table: RistrettoBasepointTable,
}

/// The crate's generators, computed once.
pub(crate) fn generators() -> &'static Generators {
    static GENERATORS: OnceLock<Generators> = OnceLock::new();
    GENERATORS.get_or_init(|| {
        let g = RISTRETTO_BASEPOINT_POINT;
        let h = h2c::hash_to_group(
            &[g.compress().as_bytes()],
            &[
                labels::ARC_HASH_TO_GROUP,
                labels::ARC_CONTEXT,
                labels::ARC_GENERATOR_H,
            ],
        );
        Generators {
            g,
            h,
            table: VartimeRistrettoPrecomputation::new([g, h]),
            h_table: RistrettoBasepointTable::create(&h),
        }
    })
}

/// A calendar day, counted from the Unix epoch (1970-01-01 is day 0), in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub u32);

impl Day {
    /// The day holding a Unix timestamp in seconds.
    pub fn from_unix_seconds(seconds: u64) -> Self {
        Day(u32::try_from(seconds / 86_400).unwrap_or(u32::MAX))
    }

    /// The day `days` before this one (saturating at day 0).
    pub fn minus(self, days: u32) -> Self {
        Day(self.0.saturating_sub(days))
    }

    /// The day `days` after this one (saturating at the last representable day).
    pub fn plus(self, days: u32) -> Self {
        Day(self.0.saturating_add(days))
    }
}

/// Identifies an issuer key: the first 8 bytes of `SHA-512(ARC_KEY_ID || public key)`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// The issuer's public key `(X0, X1, X2)`, as clients and verifiers of proofs see it.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuerPublicKey {
    pub(crate) x0: RistrettoPoint,
    pub(crate) x1: RistrettoPoint,
    pub(crate) x2: RistrettoPoint,
    encoded: [u8; PUBLIC_KEY_LEN],
    id: KeyId,
}

impl std::fmt::Debug for IssuerPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerPublicKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl IssuerPublicKey {
    fn from_points(x0: RistrettoPoint, x1: RistrettoPoint, x2: RistrettoPoint) -> Self {
        let mut encoded = [0u8; PUBLIC_KEY_LEN];
        for (chunk, point) in encoded.chunks_exact_mut(32).zip([x0, x1, x2]) {
            chunk.copy_from_slice(point.compress().as_bytes());
        }
        let digest = Sha512::new()
            .chain_update(labels::ARC_KEY_ID)
            .chain_update(encoded)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self {
            x0,
            x1,
            x2,
            encoded,
            id: KeyId(id),
        }
    }

    /// `Ser(X0) || Ser(X1) || Ser(X2)` (ARC draft section 4.1).
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.encoded
    }

    /// Decodes a public key, rejecting non-canonical or identity elements and bad lengths.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        let mut reader = Reader::new(bytes);
        let (x0, _) = reader.read_point("public_key.X0")?;
        let (x1, _) = reader.read_point("public_key.X1")?;
        let (x2, _) = reader.read_point("public_key.X2")?;
        reader.finish()?;
        Ok(Self::from_points(x0, x1, x2))
    }

    /// The key id carried by presentations made under this key.
    pub fn key_id(&self) -> KeyId {
        self.id
    }
}

/// The issuer's secret scalars. Zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SecretScalars {
    pub(crate) x0: Scalar,
    pub(crate) x1: Scalar,
    pub(crate) x2: Scalar,
    pub(crate) x0_blinding: Scalar,
}

/// An issuer key: the secret scalars, the public key, and a verification table.
///
/// Held by the issuer (to answer requests) and by both aggregators (to verify presentations).
/// `Debug` prints only the key id.
#[derive(Clone)]
pub struct IssuerKey {
    pub(crate) secret: SecretScalars,
    pub(crate) public: IssuerPublicKey,
    /// Variable-time table of `[G, H, X1]`, the static points of the presentation proof.
    pub(crate) table: Arc<VartimeRistrettoPrecomputation>,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKey")
            .field("id", &self.public.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl IssuerKey {
    /// Draws a fresh key (the public entry point of [`IssuerKey::from_seed`]).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_seed(&draw_seed(rng))
    }

    /// The key whose four scalars are expanded from `seed` (ARC draft SetupServer).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let mut expander = Expander::new(seed, labels::PURPOSE_ISSUER_KEY);
        Self::from_scalars(SecretScalars {
            x0: expander.nonzero_scalar(),
            x1: expander.nonzero_scalar(),
            x2: expander.nonzero_scalar(),
            x0_blinding: expander.nonzero_scalar(),
        })
    }

    /// The key of `day` derived from an operator's 32-byte master secret.
    ///
    /// Whoever holds the master secret can compute every day's key, past and future: keep it
    /// where the issuer and aggregator keys would be kept, and prefer [`IssuerKey::generate`]
    /// plus key distribution where forward secrecy across days matters.
    pub fn derive_daily(master: &[u8; 32], day: Day) -> Self {
        let digest = Sha512::new()
            .chain_update(labels::ARC_DAILY_KEY)
            .chain_update(master)
            .chain_update(day.0.to_be_bytes())
            .finalize();
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&digest[..32]);
        Self::from_seed(&seed)
    }

    fn from_scalars(secret: SecretScalars) -> Self {
        let generators = generators();
        let h = &generators.h_table;
        let x0 = RISTRETTO_BASEPOINT_TABLE * &secret.x0 + h * &secret.x0_blinding;
        let public = IssuerPublicKey::from_points(x0, h * &secret.x1, h * &secret.x2);
        let table = VartimeRistrettoPrecomputation::new([generators.g, generators.h, public.x1]);
        Self {
            secret,
            public,
            table: Arc::new(table),
        }
    }

    /// The public key, for clients.
    pub fn public(&self) -> &IssuerPublicKey {
        &self.public
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        self.public.id
    }

    /// `x0 || x1 || x2 || x0Blinding`, for storing the key (keep it secret).
    pub fn to_secret_bytes(&self) -> Zeroizing<[u8; SECRET_KEY_LEN]> {
        let mut out = Zeroizing::new([0u8; SECRET_KEY_LEN]);
        let s = &self.secret;
        for (chunk, scalar) in out
            .chunks_exact_mut(32)
            .zip([&s.x0, &s.x1, &s.x2, &s.x0_blinding])
        {
            chunk.copy_from_slice(scalar.as_bytes());
        }
        out
    }

    /// Decodes a stored key, rejecting unreduced or zero scalars and bad lengths.
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        let mut reader = Reader::new(bytes);
        let mut scalar = |field| {
            let mut raw = reader.read_array::<32>(field)?;
            let scalar = decode_nonzero_scalar(&raw, field);
            raw.zeroize();
            scalar
        };
        let secret = SecretScalars {
            x0: scalar("secret_key.x0")?,
            x1: scalar("secret_key.x1")?,
            x2: scalar("secret_key.x2")?,
            x0_blinding: scalar("secret_key.x0_blinding")?,
        };
        reader.finish()?;
        Ok(Self::from_scalars(secret))
    }
}

/// The issuer keys of several days, looked up by key id (verifiers) or by day (the issuer).
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    by_id: BTreeMap<KeyId, (Day, IssuerKey)>,
    by_day: BTreeMap<Day, KeyId>,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The set of daily keys derived from `master` for every day in `days`.
    pub fn derive_daily(master: &[u8; 32], days: RangeInclusive<Day>) -> Self {
        Self::from_days(days, |day| IssuerKey::derive_daily(master, day))
    }

    /// The set of `key(day)` for every day in `days`.
    pub fn from_days(days: RangeInclusive<Day>, mut key: impl FnMut(Day) -> IssuerKey) -> Self {
        let mut set = Self::new();
        for day in days.start().0..=days.end().0 {
            // The days are distinct, so insertion fails only on a key id collision between
            // two keys (probability about 2^-64 for derived keys); such a key is dropped, not
            // fatal, and then reads as unknown.
            let _ = set.insert(Day(day), key(Day(day)));
        }
        set
    }

    /// Adds the key of `day`.
    pub fn insert(&mut self, day: Day, key: IssuerKey) -> Result<(), KeyError> {
        if self.by_day.contains_key(&day) {
            return Err(KeyError::DuplicateDay(day.0));
        }
        let id = key.key_id();
        if self.by_id.contains_key(&id) {
            return Err(KeyError::DuplicateId(id));
        }
        self.by_day.insert(day, id);
        self.by_id.insert(id, (day, key));
        Ok(())
    }

    /// The key of `day`, which the issuer uses to answer requests on that day.
    pub fn for_day(&self, day: Day) -> Option<&IssuerKey> {
        self.by_day
            .get(&day)
            .and_then(|id| self.by_id.get(id))
            .map(|(_, key)| key)
    }

    /// The key with id `id` and its day.
    pub fn get(&self, id: &KeyId) -> Option<(Day, &IssuerKey)> {
        self.by_id.get(id).map(|(day, key)| (*day, key))
    }

    /// Drops every key older than `oldest`.
    pub fn retain_since(&mut self, oldest: Day) {
        self.by_day.retain(|day, _| *day >= oldest);
        self.by_id.retain(|_, (day, _)| *day >= oldest);
    }

    /// Every key's day, id and public key, oldest first (what the issuer publishes).
    pub fn public_keys(&self) -> impl Iterator<Item = (Day, KeyId, &IssuerPublicKey)> {
        (self.by_day.iter())
            .filter_map(|(day, id)| self.by_id.get(id).map(|(_, key)| (*day, *id, key.public())))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_h_is_not_g_and_is_stable() {
        let first = generators();
        assert_ne!(first.g, first.h);
        assert_eq!(first.h, generators().h);
    }

    #[test]
    fn public_key_round_trips_and_keeps_its_id() {
        let key = IssuerKey::from_seed(&[3; 32]);
        let decoded = IssuerPublicKey::from_bytes(&key.public().to_bytes()).expect("decodes");
        assert_eq!(&decoded, key.public());
        assert_eq!(decoded.key_id(), key.key_id());
    }

    #[test]
    fn secret_key_round_trips() {
        let key = IssuerKey::from_seed(&[3; 32]);
        let decoded = IssuerKey::from_secret_bytes(&*key.to_secret_bytes()).expect("decodes");
        assert_eq!(decoded.public(), key.public());
    }

    #[test]
    fn zero_secret_scalar_is_rejected() {
        let mut bytes = *IssuerKey::from_seed(&[3; 32]).to_secret_bytes();
        bytes[32..64].fill(0);
        assert_eq!(
            IssuerKey::from_secret_bytes(&bytes).err(),
            Some(EncodingError::ZeroScalar {
                field: "secret_key.x1"
            })
        );
    }

    #[test]
    fn debug_never_prints_secret_scalars() {
        let key = IssuerKey::from_seed(&[3; 32]);
        let printed = format!("{key:?}");
        let secret_hex: String = key.to_secret_bytes()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(printed.contains("redacted") && !printed.contains(&secret_hex));
        assert!(!printed.contains(&format!("{:?}", &key.to_secret_bytes()[..4])));
    }

    #[test]
    fn daily_keys_differ_by_day_and_are_reproducible() {
        let (a, b) = (
            IssuerKey::derive_daily(&[9; 32], Day(1)),
            IssuerKey::derive_daily(&[9; 32], Day(2)),
        );
        assert_ne!(a.key_id(), b.key_id());
        assert_eq!(
            a.key_id(),
            IssuerKey::derive_daily(&[9; 32], Day(1)).key_id()
        );
    }

    #[test]
    fn key_set_finds_keys_by_day_and_id_and_prunes() {
        let mut set = KeySet::derive_daily(&[9; 32], Day(10)..=Day(12));
        assert_eq!(set.len(), 3);
        let key = set.for_day(Day(11)).expect("present").clone();
        assert_eq!(set.get(&key.key_id()).map(|(day, _)| day), Some(Day(11)));
        assert_eq!(
            set.insert(Day(11), IssuerKey::from_seed(&[1; 32])),
            Err(KeyError::DuplicateDay(11))
        );
        assert_eq!(
            set.insert(Day(13), key.clone()),
            Err(KeyError::DuplicateId(key.key_id()))
        );
        set.retain_since(Day(12));
        assert_eq!(set.len(), 1);
        assert!(set.get(&key.key_id()).is_none());
        assert_eq!(set.public_keys().count(), 1);
    }

    #[test]
    fn day_of_unix_time() {
        assert_eq!(Day::from_unix_seconds(86_399), Day(0));
        assert_eq!(Day::from_unix_seconds(86_400), Day(1));
        assert_eq!(Day(3).minus(5), Day(0));
        assert_eq!(Day(3).plus(14), Day(17));
    }
}
