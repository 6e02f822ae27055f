//! Presentations from untrusted uploads: decoding never panics, anything that decodes
//! re-encodes to the same bytes, and nothing that decodes verifies under a fixed key unless
//! it was made with that key's credential (which random bytes never are).
#![no_main]

use std::sync::OnceLock;

use hotspot_credentials::labels::REQUEST_CONTEXT_CROWDING as KIND;
use hotspot_credentials::{IssuerKey, Presentation, PresentationContext, verify};
use libfuzzer_sys::fuzz_target;

fn fixture() -> &'static (IssuerKey, PresentationContext) {
    static FIXTURE: OnceLock<(IssuerKey, PresentationContext)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = IssuerKey::from_seed(&[1; 32]);
        let context = PresentationContext::new(b"fuzz", 1).expect("short task id");
        (key, context)
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(presentation) = Presentation::from_bytes(data) {
        assert_eq!(presentation.to_bytes(), data);
        let (key, context) = fixture();
        let limit = presentation.limit();
        assert!(verify(key, KIND, context, limit, &presentation).is_err());
    }
});
