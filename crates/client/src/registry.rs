//! The registry's signing keys: the key file a registry (or a venue in `--offline` mode) keeps,
//! and the set of public keys a visitor's app trusts.
//!
//! Posters and exposure lists are signed with Ed25519 (RFC 8032, `ed25519-dalek`), one of the
//! two signature schemes DESIGN.md section 4 allows. A key is named by an 8-byte key id, the
//! first 8 bytes of SHA-256 over a domain separator and the public key, so that a payload says
//! which key signed it and keys can rotate.
//!
//! Key file format (JSON, one object): `{"version":1,"secret_key":"<64 hex digits>"}`. The
//! public key and the key id are derived from the secret; the file is created with mode 0600.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Domain separator of key ids.
const KEY_ID_DST: &[u8] = b"hotspot/v1/registry-key-id";

/// Length of a key id in bytes.
pub const KEY_ID_LEN: usize = 8;

/// An 8-byte key id.
pub type KeyId = [u8; KEY_ID_LEN];

/// What can go wrong with registry keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The key file could not be read or written.
    #[error("registry key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file is not the JSON object described in the module docs.
    #[error("registry key file {path}: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong, naming the field.
        reason: String,
    },
    /// A public key is not a valid Ed25519 point encoding.
    #[error("registry public key is not a valid Ed25519 key")]
    BadPublicKey,
}

/// The registry's signing key. Zeroized on drop (by `ed25519-dalek`); never printed.
pub struct RegistryKey {
    signing: SigningKey,
    key_id: KeyId,
}

impl fmt::Debug for RegistryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryKey")
            .field("key_id", &hex(&self.key_id))
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    version: u32,
    secret_key: String,
}

impl RegistryKey {
    /// The key with the given 32-byte secret (the public entry point [`Self::generate`] draws it).
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(secret);
        let key_id = key_id_of(&signing.verifying_key());
        Self { signing, key_id }
    }

    /// A fresh key from `rng`.
    pub fn generate<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(secret.as_mut());
        Self::from_secret(&secret)
    }

    /// This key's id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The public half, to hand to visitors' apps.
    pub fn public(&self) -> TrustedKey {
        TrustedKey {
            key: self.signing.verifying_key(),
            key_id: self.key_id,
        }
    }

    /// Signs `message` (already domain-separated by the caller).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Io {
            path: name.clone(),
            source,
        })?;
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| RegistryError::Format {
            path: name.clone(),
            reason: e.to_string(),
        })?;
        let format = |reason: &str| RegistryError::Format {
            path: name.clone(),
            reason: reason.into(),
        };
        if file.version != 1 {
            return Err(format("field `version`: only version 1 is known"));
        }
        let bytes = Zeroizing::new(
            unhex(&file.secret_key).ok_or_else(|| format("field `secret_key`: not hex"))?,
        );
        let secret: Zeroizing<[u8; 32]> = Zeroizing::new(
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| format("field `secret_key`: not 32 bytes"))?,
        );
        Ok(Self::from_secret(&secret))
    }

    /// Writes the key file, readable by its owner only; refuses to overwrite an existing file.
    pub fn save(&self, path: &Path) -> Result<(), RegistryError> {
        use std::io::Write;

        let name = path.display().to_string();
        let io = |source| RegistryError::Io {
            path: name.clone(),
            source,
        };
        let secret = Zeroizing::new(hex(self.signing.as_bytes()));
        let text = Zeroizing::new(format!(
            "{{\"version\":1,\"secret_key\":\"{}\"}}\n",
            *secret
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }
}

/// A public key a visitor's app trusts, with its key id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustedKey {
    key: VerifyingKey,
    key_id: KeyId,
}

impl TrustedKey {
    /// Parses a 32-byte Ed25519 public key.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, RegistryError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| RegistryError::BadPublicKey)?;
        Ok(Self {
            key,
            key_id: key_id_of(&key),
        })
    }

    /// Parses a public key written as 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, RegistryError> {
        let bytes = unhex(text.trim()).ok_or(RegistryError::BadPublicKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| RegistryError::BadPublicKey)?;
        Self::from_bytes(&bytes)
    }

    /// The key as 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex(self.key.as_bytes())
    }

    /// This key's id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The Ed25519 key itself (for formats that verify with it directly, such as the
    /// exposure list).
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key
    }

    /// Checks `signature` on `message` with the strict RFC 8032 rules (no small-order keys, no
    /// malleable signatures).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let signature = Signature::from_bytes(signature);
        self.key.verify_strict(message, &signature).is_ok()
    }
}

/// The keys a visitor's app trusts, by key id.
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys {
    keys: BTreeMap<KeyId, TrustedKey>,
}

impl TrustedKeys {
    /// A set holding the given keys.
    pub fn new(keys: impl IntoIterator<Item = TrustedKey>) -> Self {
        Self {
            keys: keys.into_iter().map(|k| (k.key_id, k)).collect(),
        }
    }

    /// The trusted keys, by key id.
    pub fn iter(&self) -> impl Iterator<Item = &TrustedKey> {
        self.keys.values()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key with this id, if trusted.
    pub fn get(&self, key_id: &[u8]) -> Option<&TrustedKey> {
        let key_id: KeyId = key_id.try_into().ok()?;
        self.keys.get(&key_id)
    }
}

fn key_id_of(key: &VerifyingKey) -> KeyId {
    let digest = Sha256::new()
        .chain_update(KEY_ID_DST)
        .chain_update(key.as_bytes())
        .finalize();
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest[..KEY_ID_LEN]);
    id
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses hex (either case); `None` on odd length or a non-hex digit.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should panic")]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trips_and_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.key");
        let key = RegistryKey::from_secret(&[7; 32]);
        key.save(&path).unwrap();
        let back = RegistryKey::load(&path).unwrap();
        assert_eq!(back.public(), key.public());
        assert!(matches!(key.save(&path), Err(RegistryError::Io { .. })));
    }

    #[test]
    fn malformed_key_files_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        for (text, field) in [
            ("{\"version\":2,\"secret_key\":\"00\"}", "version"),
            ("{\"version\":1,\"secret_key\":\"zz\"}", "secret_key"),
            ("{\"version\":1,\"secret_key\":\"0011\"}", "secret_key"),
            ("{\"version\":1}", "secret_key"),
        ] {
            let path = dir.path().join("k");
            std::fs::write(&path, text).unwrap();
            let err = RegistryKey::load(&path).unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let key = RegistryKey::from_secret(&[0xab; 32]);
        let text = format!("{key:?}");
        assert!(text.contains("redacted") && !text.contains("abab"));
    }

    #[test]
    fn signatures_verify_only_for_their_message() {
        let key = RegistryKey::from_secret(&[1; 32]);
        let signature = key.sign(b"message");
        assert!(key.public().verify(b"message", &signature));
        assert!(!key.public().verify(b"messagf", &signature));
    }
}
