//! Issuance messages from untrusted peers: decoding never panics and is canonical.
#![no_main]

use hotspot_credentials::{Credential, CredentialRequest, CredentialResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = CredentialRequest::from_bytes(data) {
        assert_eq!(request.to_bytes(), data);
    }
    if let Ok(response) = CredentialResponse::from_bytes(data) {
        assert_eq!(response.to_bytes(), data);
    }
    if let Ok(credential) = Credential::from_bytes(data) {
        assert_eq!(&credential.to_bytes()[..], data);
    }
});
