//! Posters in every format, and the PNG read back to the very payload it carries.
#![allow(clippy::unwrap_used, reason = "a failing test should panic")]

use super::*;
use crate::payload::{UrlConfig, VenueCategory, parse_url};
use crate::registry::{RegistryKey, TrustedKeys};

fn poster() -> (Poster, TrustedKeys) {
    let key = RegistryKey::from_secret(&[3; 32]);
    let venue = VenueInfo {
        venue_code: 0x0123_4567_89ab_cdef,
        bits: 64,
        name: "Théâtre <du> Soleil & Co".into(),
        address: "12 rue de la Paix, 75002 Paris".into(),
        category: VenueCategory::Culture,
        capacity: 300,
        default_minutes: 150,
        valid_until_day: 21_000,
    };
    let url = venue.sign(&key).unwrap().to_url(&UrlConfig {
        host: "checkin.example.org".into(),
    });
    (Poster { venue, url }, TrustedKeys::new([key.public()]))
}

#[test]
fn svg_carries_name_address_code_date_and_notice_escaped() {
    let (poster, _) = poster();
    let svg = poster.to_svg().unwrap();
    assert!(svg.contains("Théâtre &lt;du&gt; Soleil &amp; Co"));
    assert!(svg.contains("12 rue de la Paix"));
    assert!(svg.contains(&fallback::encode(0x0123_4567_89ab_cdef, 64)));
    assert!(svg.contains("Valid until 2027-07-01"));
    assert!(svg.contains(PRIVACY_NOTICE));
    assert!(svg.contains(r#"width="210mm" height="297mm""#));
}

#[test]
fn poster_png_decodes_back_to_the_same_payload() {
    let (poster, keys) = poster();
    let png = poster.to_png(150.0).unwrap();
    let image = image::load_from_memory(&png).unwrap();
    assert_eq!((image.width(), image.height()), (1240, 1754));
    let url = decode_qr_image(&png).unwrap();
    assert_eq!(url, poster.url);
    let config = UrlConfig {
        host: "checkin.example.org".into(),
    };
    assert_eq!(parse_url(&url, &config, &keys, 0).unwrap(), poster.venue);
}

#[test]
fn poster_pdf_is_one_a4_page_with_embedded_text() {
    let (poster, _) = poster();
    let pdf = poster.to_pdf().unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let text = String::from_utf8_lossy(&pdf);
    // 210 mm × 297 mm in PostScript points.
    assert!(text.contains("/MediaBox [0 0 595.27"), "MediaBox not A4");
    assert!(text.contains(" 841.8"), "MediaBox not A4");
    assert!(text.contains("/FontFile2"), "no embedded font");
}

#[test]
fn image_without_a_qr_code_is_reported() {
    let blank = resvg::tiny_skia::Pixmap::new(200, 200)
        .unwrap()
        .encode_png()
        .unwrap();
    assert!(matches!(
        decode_qr_image(&blank),
        Err(PosterError::NoQrCode)
    ));
    assert!(matches!(
        decode_qr_image(b"not an image"),
        Err(PosterError::Image(_))
    ));
}

#[test]
fn a_typical_payload_fits_a_version_13_symbol_at_level_q() {
    // The 229-byte URL of docs/client.md ("Café Zürich", 32-bit code, the default host). The
    // filler is lowercase so the symbol is coded in byte mode, as a base64url fragment is; a run
    // of capitals would go to the denser alphanumeric mode and a smaller version.
    let url = format!("https://checkin.hotspot.example/c#{}", "a".repeat(229 - 34));
    let code = QrCode::with_error_correction_level(url.as_bytes(), EcLevel::Q).unwrap();
    assert_eq!(code.version(), qrcode::Version::Normal(13));
    assert_eq!(code.width(), 69);
}
