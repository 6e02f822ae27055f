//! Every scanner entry point (our payload, CWA/NotifyMe codes, typed codes) on arbitrary text
//! and bytes: errors are fine, panics are bugs.
#![no_main]

use hotspot_client::payload::{UrlConfig, parse_bytes};
use hotspot_client::registry::{RegistryKey, TrustedKeys};
use hotspot_client::scan::{ScanConfig, scan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys = TrustedKeys::new([RegistryKey::from_secret(&[1; 32]).public()]);
    let _ = parse_bytes(data, &keys, 1_800_000_000);
    if let Ok(text) = std::str::from_utf8(data) {
        let config = ScanConfig {
            url: UrlConfig { host: "checkin.example.org".into() },
            keys,
            legacy_bits: 32,
            typed_default_minutes: 60,
        };
        let _ = scan(text, &config, 1_800_000_000);
    }
});
