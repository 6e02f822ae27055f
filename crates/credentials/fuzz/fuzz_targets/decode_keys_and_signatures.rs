//! Keys and signatures from configuration files and QR payloads: decoding never panics and
//! is canonical.
#![no_main]

use hotspot_credentials::{IssuerKey, IssuerPublicKey, Signature, SigningKey, VerifyingKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = IssuerPublicKey::from_bytes(data) {
        assert_eq!(key.to_bytes(), data);
    }
    if let Ok(key) = IssuerKey::from_secret_bytes(data) {
        assert_eq!(&key.to_secret_bytes()[..], data);
    }
    if let Ok(signature) = Signature::from_bytes(data) {
        assert_eq!(signature.to_bytes(), data);
    }
    if let Ok(key) = VerifyingKey::from_bytes(data) {
        assert_eq!(key.to_bytes(), data);
    }
    if let Ok(key) = SigningKey::from_bytes(data) {
        assert_eq!(&key.to_bytes()[..], data);
    }
});
