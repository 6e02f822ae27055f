//! The report envelope: what a visitor's phone uploads for one check-in, and the HPKE sealing
//! of secret shares (RFC 9180, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base
//! mode).
//!
//! A report carries the task id, the window, a fresh 16-byte report id (also the Poplar1
//! nonce), the Poplar1 public share in clear, the leader's and the helper's input shares each
//! sealed to that aggregator, and one anonymous-credential presentation for (task, window),
//! which both aggregators verify (see [`crate::credential`] for the policy).
//!
//! Binding. Each input share is sealed with:
//! - `info` = [`INPUT_SHARE_INFO`] followed by the recipient's role byte, so that a leader share
//!   cannot be replayed to the helper or the other way round;
//! - `aad` = [`report_aad`]: task id, window, report id and the public share, so that a share
//!   cannot be moved to another report, window or task, nor paired with another public share.
//!
//! Aggregate shares travel to the collector the same way, with [`AGGREGATE_SHARE_INFO`] and an
//! `aad` naming the batch, the level, the aggregation parameter and the sending aggregator.
//!
//! Keys carry a `key_id` so that they can be rotated: an aggregator keeps every key it still
//! accepts in a [`HpkeKeyring`] and opens a ciphertext with the key it names.

use hpke::{
    Deserializable, Kem as _, OpModeR, OpModeS, Serializable, aead::AesGcm128, kdf::HkdfSha256,
    kem::X25519HkdfSha256,
};
use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::task::TaskId;

/// Domain separation for input shares; the recipient's [`Role`] byte follows.
pub const INPUT_SHARE_INFO: &[u8] = b"hotspot.v1 input share";
/// Domain separation for aggregate shares sealed to the collector; the sender's role follows.
pub const AGGREGATE_SHARE_INFO: &[u8] = b"hotspot.v1 aggregate share";

/// Largest accepted public share, in bytes (a 64-bit Poplar1 public share is about 2.5 KiB).
pub const MAX_PUBLIC_SHARE_LEN: usize = 8 * 1024;
/// Largest accepted sealed input share payload, in bytes.
pub const MAX_SHARE_PAYLOAD_LEN: usize = 4 * 1024;
/// Largest accepted credential presentation, in bytes.
pub const MAX_PRESENTATION_LEN: usize = 2 * 1024;
/// Length of an X25519 encapsulated key.
pub const ENC_LEN: usize = 32;
/// Length of a report id.
pub const REPORT_ID_LEN: usize = 16;

type Kem = X25519HkdfSha256;

/// Errors sealing or opening an envelope.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The ciphertext names a key id the recipient does not hold.
    #[error("unknown HPKE key id {0}")]
    UnknownKeyId(u32),
    /// The encapsulated key is not 32 bytes or not a valid X25519 point.
    #[error("malformed HPKE encapsulated key")]
    MalformedEnc,
    /// Decryption failed: wrong key, wrong binding or a tampered ciphertext.
    #[error("HPKE open failed")]
    Open,
    /// Encryption failed (cannot happen with a valid public key).
    #[error("HPKE seal failed")]
    Seal,
    /// A key is not a valid X25519 key.
    #[error("malformed HPKE key")]
    MalformedKey,
    /// Poplar1 refused the measurement (a venue code wider than the task's `bits`).
    #[error("Poplar1 sharding failed: {0}")]
    Shard(hotspot_vdaf::VdafError),
}

/// Which aggregator a share belongs to; its byte goes into the HPKE `info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The aggregator that takes uploads and drives aggregation.
    Leader = 0,
    /// The second, independent aggregator.
    Helper = 1,
}

impl Role {
    /// The Poplar1 aggregator id (0 for the leader, 1 for the helper).
    pub fn agg_id(self) -> usize {
        self as usize
    }
}

/// A 16-byte report id chosen at random by the client.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportId(pub [u8; REPORT_ID_LEN]);

impl ReportId {
    /// The id from its raw bytes; `None` unless exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(ReportId)
    }
}

impl std::fmt::Debug for ReportId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReportId({})", crate::task::encode_hex(&self.0))
    }
}

/// A public HPKE key with its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HpkePublicKey {
    /// Identifies the key among the recipient's current keys.
    pub key_id: u32,
    /// Raw X25519 public key.
    pub public_key: [u8; 32],
}

/// An HPKE key pair. The private half zeroizes on drop and never prints.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct HpkeKeypair {
    #[zeroize(skip)]
    public: HpkePublicKey,
    secret: [u8; 32],
}

impl std::fmt::Debug for HpkeKeypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HpkeKeypair")
            .field("public", &self.public)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl HpkeKeypair {
    /// Derives a key pair from 32 bytes of secret keying material (RFC 9180 DeriveKeyPair).
    pub fn derive(key_id: u32, ikm: &[u8; 32]) -> Self {
        let (sk, pk) = Kem::derive_keypair(ikm);
        Self::from_parts(key_id, &sk, &pk)
    }

    /// A fresh random key pair.
    pub fn generate(key_id: u32, rng: &mut impl CryptoRng) -> Self {
        let mut ikm = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(ikm.as_mut());
        Self::derive(key_id, &ikm)
    }

    /// The key pair from its raw private key (as stored in a secret file).
    pub fn from_secret_bytes(key_id: u32, secret: &[u8]) -> Result<Self, EnvelopeError> {
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(secret)
            .map_err(|_| EnvelopeError::MalformedKey)?;
        let pk = Kem::sk_to_pk(&sk);
        Ok(Self::from_parts(key_id, &sk, &pk))
    }

    fn from_parts(
        key_id: u32,
        sk: &<Kem as hpke::Kem>::PrivateKey,
        pk: &<Kem as hpke::Kem>::PublicKey,
    ) -> Self {
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&sk.to_bytes());
        let mut public_key = [0u8; 32];
        public_key.copy_from_slice(&pk.to_bytes());
        HpkeKeypair {
            public: HpkePublicKey { key_id, public_key },
            secret,
        }
    }

    /// The public half.
    pub fn public(&self) -> HpkePublicKey {
        self.public
    }

    /// The raw private key, for writing a secret file. Handle with care.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret)
    }
}

/// The keys an aggregator or collector currently accepts, looked up by key id.
#[derive(Clone, Debug, Default)]
pub struct HpkeKeyring {
    keys: Vec<HpkeKeypair>,
}

impl HpkeKeyring {
    /// A keyring over these keys; the first is the current one.
    pub fn new(keys: Vec<HpkeKeypair>) -> Self {
        HpkeKeyring { keys }
    }

    /// The key with this id.
    pub fn get(&self, key_id: u32) -> Option<&HpkeKeypair> {
        self.keys.iter().find(|k| k.public.key_id == key_id)
    }

    /// The public halves, current first.
    pub fn public_keys(&self) -> Vec<HpkePublicKey> {
        self.keys.iter().map(HpkeKeypair::public).collect()
    }

    /// Opens `ct` with the key it names.
    pub fn open(
        &self,
        ct: &HpkeCiphertext,
        info: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let key = self
            .get(ct.key_id)
            .ok_or(EnvelopeError::UnknownKeyId(ct.key_id))?;
        open(key, ct, info, aad)
    }
}

/// An HPKE ciphertext with the id of the key it was sealed to.
#[derive(Clone, PartialEq, Eq)]
pub struct HpkeCiphertext {
    /// The recipient's key id.
    pub key_id: u32,
    /// The encapsulated key.
    pub enc: Vec<u8>,
    /// The AEAD ciphertext and tag.
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for HpkeCiphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HpkeCiphertext(key_id={}, {} bytes)",
            self.key_id,
            self.payload.len()
        )
    }
}

/// One uploaded report. Shares are sealed; nothing in it is secret to the leader except what
/// the sealed shares hide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportEnvelope {
    /// The task.
    pub task_id: TaskId,
    /// The window index.
    pub window: u64,
    /// The report id (Poplar1 nonce).
    pub report_id: ReportId,
    /// The Poplar1 public share (engine encoding).
    pub public_share: Vec<u8>,
    /// The leader's sealed input share.
    pub leader_share: HpkeCiphertext,
    /// The helper's sealed input share.
    pub helper_share: HpkeCiphertext,
    /// The anonymous-credential presentation (crates/credentials `Presentation` encoding).
    pub presentation: Vec<u8>,
}

impl ReportEnvelope {
    /// The associated data both sealed shares of this report are bound to.
    pub fn aad(&self) -> Vec<u8> {
        report_aad(
            &self.task_id,
            self.window,
            &self.report_id,
            &self.public_share,
        )
    }
}

/// What one report measures and where it belongs: the input of [`seal_report`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measurement {
    /// The task (also the Poplar1 application context).
    pub task_id: TaskId,
    /// The window index.
    pub window: u64,
    /// The report id (also the Poplar1 nonce).
    pub report_id: ReportId,
    /// The venue code, at most the task's `bits` wide.
    pub venue_code: u64,
}

/// The two aggregators' HPKE keys a report is sealed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShareKeys {
    /// The leader's current key.
    pub leader: HpkePublicKey,
    /// The helper's current key.
    pub helper: HpkePublicKey,
}

/// Builds the envelope of one report (DESIGN.md section 3, step 3): shards the venue code with
/// Poplar1 (nonce = report id, context = task id), then seals each input share to its
/// aggregator with the report's binding ([`report_aad`]) as associated data. Every random byte
/// (the sharding randomness, both HPKE ephemeral keys) comes from `rng`. The presentation is
/// left empty: the caller attaches one for (task, window).
pub fn seal_report<R: CryptoRng>(
    poplar: &hotspot_vdaf::Poplar1,
    measurement: &Measurement,
    keys: &ShareKeys,
    rng: &mut R,
) -> Result<ReportEnvelope, EnvelopeError> {
    let Measurement {
        task_id,
        window,
        report_id,
        venue_code,
    } = *measurement;
    let (public, [leader, helper]) = poplar
        .shard(&task_id.0, venue_code, &report_id.0, rng)
        .map_err(EnvelopeError::Shard)?;
    let public_share = public.encode();
    let aad = report_aad(&task_id, window, &report_id, &public_share);
    let leader_share = seal_with_rng(
        &keys.leader,
        &input_share_info(Role::Leader),
        &aad,
        &Zeroizing::new(leader.encode()),
        rng,
    )?;
    let helper_share = seal_with_rng(
        &keys.helper,
        &input_share_info(Role::Helper),
        &aad,
        &Zeroizing::new(helper.encode()),
        rng,
    )?;
    Ok(ReportEnvelope {
        task_id,
        window,
        report_id,
        public_share,
        leader_share,
        helper_share,
        presentation: Vec::new(),
    })
}

/// The associated data of an input share: a label, the task id, the window (big-endian), the
/// report id, and the public share with its length (so no two field splits collide).
pub fn report_aad(
    task_id: &TaskId,
    window: u64,
    report_id: &ReportId,
    public_share: &[u8],
) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + 32 + 8 + 16 + 4 + public_share.len());
    aad.extend_from_slice(b"hotspot.v1 report");
    aad.extend_from_slice(&task_id.0);
    aad.extend_from_slice(&window.to_be_bytes());
    aad.extend_from_slice(&report_id.0);
    aad.extend_from_slice(&(public_share.len() as u32).to_be_bytes());
    aad.extend_from_slice(public_share);
    aad
}

/// The HPKE `info` of an input share for `role`.
pub fn input_share_info(role: Role) -> Vec<u8> {
    let mut info = INPUT_SHARE_INFO.to_vec();
    info.push(role as u8);
    info
}

/// The HPKE `info` of an aggregate share sent by `role`.
pub fn aggregate_share_info(role: Role) -> Vec<u8> {
    let mut info = AGGREGATE_SHARE_INFO.to_vec();
    info.push(role as u8);
    info
}

/// The associated data of an aggregate share: batch, level and aggregation parameter.
pub fn aggregate_share_aad(task_id: &TaskId, window: u64, level: u32, agg_param: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + 8 + 4 + 4 + agg_param.len());
    aad.extend_from_slice(&task_id.0);
    aad.extend_from_slice(&window.to_be_bytes());
    aad.extend_from_slice(&level.to_be_bytes());
    aad.extend_from_slice(&(agg_param.len() as u32).to_be_bytes());
    aad.extend_from_slice(agg_param);
    aad
}

/// Seals `plaintext` to `recipient` with explicit randomness (the ephemeral key comes from
/// `rng`, so a fixed RNG pins every byte).
pub fn seal_with_rng(
    recipient: &HpkePublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<HpkeCiphertext, EnvelopeError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&recipient.public_key)
        .map_err(|_| EnvelopeError::MalformedKey)?;
    let (enc, payload) = hpke::single_shot_seal_with_rng::<AesGcm128, HkdfSha256, Kem>(
        &OpModeS::Base,
        &pk,
        info,
        plaintext,
        aad,
        rng,
    )
    .map_err(|_| EnvelopeError::Seal)?;
    Ok(HpkeCiphertext {
        key_id: recipient.key_id,
        enc: enc.to_bytes().to_vec(),
        payload,
    })
}

/// Seals with the operating system's RNG.
pub fn seal(
    recipient: &HpkePublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<HpkeCiphertext, EnvelopeError> {
    seal_with_rng(recipient, info, aad, plaintext, &mut SysRng)
}

/// Opens `ct` with `key` (which must be the key `ct.key_id` names).
pub fn open(
    key: &HpkeKeypair,
    ct: &HpkeCiphertext,
    info: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    if ct.key_id != key.public.key_id {
        return Err(EnvelopeError::UnknownKeyId(ct.key_id));
    }
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&key.secret)
        .map_err(|_| EnvelopeError::MalformedKey)?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&ct.enc)
        .map_err(|_| EnvelopeError::MalformedEnc)?;
    hpke::single_shot_open::<AesGcm128, HkdfSha256, Kem>(
        &OpModeR::Base,
        &sk,
        &enc,
        info,
        &ct.payload,
        aad,
    )
    .map(Zeroizing::new)
    .map_err(|_| EnvelopeError::Open)
}

/// The operating system's RNG as a `CryptoRng` (the public entry points draw from it).
struct SysRng;

impl rand_core::TryRng for SysRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        // The OS RNG failing is unrecoverable and, as in `hpke`'s own entry points, a panic.
        #[allow(clippy::expect_used)]
        getrandom::fill(dst).expect("operating system RNG failed");
        Ok(())
    }
}

impl rand_core::TryCryptoRng for SysRng {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    struct CountingRng(u8);

    impl rand_core::TryRng for CountingRng {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(u32::from(self.next_byte()))
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(u64::from(self.next_byte()))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            dst.iter_mut().for_each(|b| *b = self.next_byte());
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for CountingRng {}
    impl CountingRng {
        fn next_byte(&mut self) -> u8 {
            self.0 = self.0.wrapping_add(1);
            self.0
        }
    }

    fn report_binding() -> (TaskId, ReportId, Vec<u8>) {
        (TaskId([1; 32]), ReportId([2; 16]), vec![3; 40])
    }

    #[test]
    fn sealed_share_opens_under_its_binding() {
        let key = HpkeKeypair::generate(9, &mut CountingRng(0));
        let (task, rid, ps) = report_binding();
        let aad = report_aad(&task, 5, &rid, &ps);
        let info = input_share_info(Role::Helper);
        let ct = seal_with_rng(&key.public(), &info, &aad, b"share", &mut CountingRng(50)).unwrap();
        let ring = HpkeKeyring::new(vec![key]);
        assert_eq!(ring.open(&ct, &info, &aad).unwrap().as_slice(), b"share");
    }

    #[test]
    fn share_moved_to_another_window_or_role_does_not_open() {
        let key = HpkeKeypair::generate(9, &mut CountingRng(0));
        let (task, rid, ps) = report_binding();
        let aad = report_aad(&task, 5, &rid, &ps);
        let info = input_share_info(Role::Helper);
        let ct = seal_with_rng(&key.public(), &info, &aad, b"share", &mut CountingRng(50)).unwrap();
        let ring = HpkeKeyring::new(vec![key]);
        let other_window = report_aad(&task, 6, &rid, &ps);
        assert_eq!(
            ring.open(&ct, &info, &other_window).unwrap_err(),
            EnvelopeError::Open
        );
        let leader_info = input_share_info(Role::Leader);
        assert!(ring.open(&ct, &leader_info, &aad).is_err());
        let mut other_public = ps.clone();
        other_public[0] ^= 1;
        assert!(
            ring.open(&ct, &info, &report_aad(&task, 5, &rid, &other_public))
                .is_err()
        );
    }

    #[test]
    fn unknown_key_id_is_named() {
        let key = HpkeKeypair::generate(9, &mut CountingRng(0));
        let mut ct = seal_with_rng(&key.public(), b"i", b"a", b"p", &mut CountingRng(7)).unwrap();
        ct.key_id = 10;
        let ring = HpkeKeyring::new(vec![key]);
        assert_eq!(
            ring.open(&ct, b"i", b"a").unwrap_err(),
            EnvelopeError::UnknownKeyId(10)
        );
    }

    #[test]
    fn fixed_rng_pins_every_byte() {
        let key = HpkeKeypair::generate(1, &mut CountingRng(0));
        let a = seal_with_rng(&key.public(), b"i", b"a", b"p", &mut CountingRng(7)).unwrap();
        let b = seal_with_rng(&key.public(), b"i", b"a", b"p", &mut CountingRng(7)).unwrap();
        assert_eq!(a, b);
    }

    fn measurement(venue_code: u64) -> Measurement {
        Measurement {
            task_id: TaskId([4; 32]),
            window: 7,
            report_id: ReportId([5; 16]),
            venue_code,
        }
    }

    #[test]
    fn sealed_report_opens_for_each_aggregator_and_decodes() {
        let poplar = hotspot_vdaf::Poplar1::new(32).unwrap();
        let (leader, helper) = (
            HpkeKeypair::generate(1, &mut CountingRng(0)),
            HpkeKeypair::generate(2, &mut CountingRng(100)),
        );
        let keys = ShareKeys {
            leader: leader.public(),
            helper: helper.public(),
        };
        let report = seal_report(&poplar, &measurement(77), &keys, &mut CountingRng(9)).unwrap();
        assert_eq!((report.window, report.report_id), (7, ReportId([5; 16])));
        assert!(poplar.decode_public_share(&report.public_share).is_ok());
        for (agg, key, ct) in [
            (Role::Leader, leader, &report.leader_share),
            (Role::Helper, helper, &report.helper_share),
        ] {
            let share = open(&key, ct, &input_share_info(agg), &report.aad()).unwrap();
            assert!(poplar.decode_input_share(agg.agg_id(), &share).is_ok());
        }
        // A fixed RNG pins every byte.
        let again = seal_report(&poplar, &measurement(77), &keys, &mut CountingRng(9)).unwrap();
        assert_eq!(again, report);
    }

    #[test]
    fn venue_code_wider_than_the_task_is_refused() {
        let poplar = hotspot_vdaf::Poplar1::new(32).unwrap();
        let key = HpkeKeypair::generate(1, &mut CountingRng(0)).public();
        let keys = ShareKeys {
            leader: key,
            helper: key,
        };
        let err = seal_report(&poplar, &measurement(1 << 40), &keys, &mut CountingRng(9));
        assert!(matches!(err, Err(EnvelopeError::Shard(_))));
    }

    #[test]
    fn secret_file_round_trips_and_debug_hides_it() {
        let key = HpkeKeypair::generate(4, &mut CountingRng(0));
        let again = HpkeKeypair::from_secret_bytes(4, key.secret_bytes().as_ref()).unwrap();
        assert_eq!(again.public(), key.public());
        let shown = format!("{key:?}");
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&format!("{:?}", key.secret_bytes().as_ref())));
    }
}
