//! The exposure list verifier (crates/dashboard's decoder behind the client's checks) on
//! arbitrary bytes.
#![no_main]

use hotspot_client::exposure::verify_list;
use hotspot_client::registry::{RegistryKey, TrustedKeys};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys = TrustedKeys::new([RegistryKey::from_secret(&[1; 32]).public()]);
    let _ = verify_list(data, &keys, 0, 1_800_000_000);
});
