//! A4 posters for venues, as SVG, PNG and PDF, and reading a QR code back from a photo.
//!
//! The poster carries what DESIGN.md section 3, step 1 and issue 5 ask for: a large QR code
//! (error correction level Q, which survives 25 % damage, with the standard 4-module quiet
//! zone), the venue's name and address so the visitor can confirm where they check in, the
//! short typed fallback code, the validity date and a one-line privacy notice.
//!
//! The SVG is the master: it is written by hand (millimetre units on a 210 × 297 viewBox) and
//! names the font family "DejaVu Sans". PNG and PDF are rendered from it in pure Rust: `usvg`
//! parses it with the DejaVu fonts loaded from the `dejavu` crate (Bitstream Vera / DejaVu
//! licence, which allows embedding and redistribution), `resvg`/`tiny-skia` rasterise it, and
//! `svg2pdf` writes a PDF with the text embedded (subset fonts, selectable text). No system
//! fonts, no C libraries, identical output on every machine.

use std::fmt::Write as _;
use std::sync::Arc;

use qrcode::{Color, EcLevel, QrCode};

use crate::civil::CivilDate;
use crate::fallback;
use crate::payload::VenueInfo;

/// A4 width in millimetres.
const PAGE_W: f64 = 210.0;
/// A4 height in millimetres.
const PAGE_H: f64 = 297.0;
/// Side of the QR code, quiet zone included, in millimetres.
const QR_SIDE: f64 = 150.0;
/// Top edge of the QR code.
const QR_TOP: f64 = 66.0;
/// Quiet zone in modules (ISO/IEC 18004 asks for 4).
const QUIET_ZONE: usize = 4;
/// The privacy notice, one line.
pub const PRIVACY_NOTICE: &str =
    "Your check-ins stay on your phone; only encrypted, anonymous counts ever leave it.";

/// What went wrong making or reading a poster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PosterError {
    /// The URL does not fit in a QR code.
    #[error("QR encoding failed: {0}")]
    Qr(String),
    /// SVG parsing or rendering failed.
    #[error("rendering failed: {0}")]
    Render(String),
    /// The image could not be read.
    #[error("cannot read image: {0}")]
    Image(String),
    /// No QR code was found in the image.
    #[error("no readable QR code in the image")]
    NoQrCode,
}

/// Everything printed on a poster.
#[derive(Clone, Debug)]
pub struct Poster {
    /// The venue, as signed.
    pub venue: VenueInfo,
    /// The QR code's URL.
    pub url: String,
}

impl Poster {
    /// The poster as an SVG document.
    pub fn to_svg(&self) -> Result<String, PosterError> {
        let code = QrCode::with_error_correction_level(self.url.as_bytes(), EcLevel::Q)
            .map_err(|e| PosterError::Qr(e.to_string()))?;
        let mut svg = String::new();
        let _ = write!(
            svg,
            r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{PAGE_W}mm" height="{PAGE_H}mm" viewBox="0 0 {PAGE_W} {PAGE_H}" font-family="DejaVu Sans, sans-serif" text-anchor="middle">
<rect width="{PAGE_W}" height="{PAGE_H}" fill="#ffffff"/>
"##
        );
        self.write_header(&mut svg);
        write_qr(&mut svg, &code);
        self.write_footer(&mut svg);
        svg.push_str("</svg>\n");
        Ok(svg)
    }

    fn write_header(&self, svg: &mut String) {
        let venue = &self.venue;
        let name_size = fitting_size(&venue.name, 12.0, 180.0);
        let address_size = fitting_size(&venue.address, 6.0, 180.0);
        let _ = write!(
            svg,
            r##"<text x="105" y="24" font-size="9" fill="#1a5fb4">Check in here</text>
<text x="105" y="42" font-size="{name_size:.2}" font-weight="bold">{}</text>
<text x="105" y="54" font-size="{address_size:.2}" fill="#333333">{}</text>
"##,
            escape(&venue.name),
            escape(&venue.address)
        );
    }

    fn write_footer(&self, svg: &mut String) {
        let code = fallback::encode(self.venue.venue_code, self.venue.bits);
        let until = CivilDate::from_unix_days(self.venue.valid_until_day);
        let _ = write!(
            svg,
            r##"<text x="105" y="{y1}" font-size="5">Scan with your phone camera or the hotspot app.</text>
<text x="105" y="{y2}" font-size="5">No camera? Type this code in the app:</text>
<text x="105" y="{y3}" font-size="11" font-weight="bold" font-family="DejaVu Sans Mono, monospace">{code}</text>
<text x="105" y="{y4}" font-size="4.5" fill="#333333">Valid until {until}</text>
<text x="105" y="285" font-size="3.6" fill="#555555">{notice}</text>
"##,
            y1 = QR_TOP + QR_SIDE + 10.0,
            y2 = QR_TOP + QR_SIDE + 20.0,
            y3 = QR_TOP + QR_SIDE + 33.0,
            y4 = QR_TOP + QR_SIDE + 44.0,
            notice = escape(PRIVACY_NOTICE),
        );
    }

    /// The poster as a PNG at `dpi` (50 to 600) dots per inch (150 gives 1240 × 1754 pixels).
    pub fn to_png(&self, dpi: f32) -> Result<Vec<u8>, PosterError> {
        if !(50.0..=600.0).contains(&dpi) {
            return Err(render("resolution must be 50 to 600 dpi"));
        }
        let tree = parse_svg(&self.to_svg()?)?;
        // Size the page from millimetres, so 150 dpi gives exactly 1240 × 1754 pixels.
        let pixels = |mm: f64| (mm / 25.4 * f64::from(dpi)).round() as u32;
        let mut pixmap = resvg::tiny_skia::Pixmap::new(pixels(PAGE_W), pixels(PAGE_H))
            .ok_or_else(|| render("empty or oversized page"))?;
        let scale = pixmap.width() as f32 / tree.size().width();
        resvg::render(
            &tree,
            resvg::tiny_skia::Transform::from_scale(scale, scale),
            &mut pixmap.as_mut(),
        );
        pixmap.encode_png().map_err(|e| render(&e.to_string()))
    }

    /// The poster as a one-page A4 PDF with embedded, selectable text.
    pub fn to_pdf(&self) -> Result<Vec<u8>, PosterError> {
        let tree = parse_svg(&self.to_svg()?)?;
        // usvg measures in CSS pixels (96 per inch); PDF in points (72 per inch).
        let page = svg2pdf::PageOptions { dpi: 96.0 };
        svg2pdf::to_pdf(&tree, svg2pdf::ConversionOptions::default(), page)
            .map_err(|e| render(&e.to_string()))
    }
}

/// Dark modules as one path, scaled so the code plus its quiet zone spans [`QR_SIDE`].
fn write_qr(svg: &mut String, code: &QrCode) {
    let width = code.width();
    let module = QR_SIDE / (width + 2 * QUIET_ZONE) as f64;
    let left = (PAGE_W - QR_SIDE) / 2.0 + QUIET_ZONE as f64 * module;
    let top = QR_TOP + QUIET_ZONE as f64 * module;
    let _ = write!(
        svg,
        r##"<g transform="translate({left:.4} {top:.4}) scale({module:.5})"><path fill="#000000" shape-rendering="crispEdges" d=""##
    );
    for (i, color) in code.to_colors().into_iter().enumerate() {
        if color == Color::Dark {
            let _ = write!(svg, "M{} {}h1v1h-1z", i % width, i / width);
        }
    }
    svg.push_str("\"/></g>\n");
}

/// A font size that keeps `text` within `max_width` mm (DejaVu Sans averages ~0.6 em/char).
fn fitting_size(text: &str, largest: f64, max_width: f64) -> f64 {
    let chars = text.chars().count().max(1) as f64;
    largest.min(max_width / (0.6 * chars))
}

/// XML-escapes text content.
fn escape(text: &str) -> String {
    text.chars()
        .fold(String::with_capacity(text.len()), |mut out, c| {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&apos;"),
                c => out.push(c),
            }
            out
        })
}

fn render(reason: &str) -> PosterError {
    PosterError::Render(reason.to_owned())
}

/// Parses our SVG with the embedded DejaVu fonts, so text renders the same everywhere.
fn parse_svg(svg: &str) -> Result<resvg::usvg::Tree, PosterError> {
    let mut fonts = resvg::usvg::fontdb::Database::new();
    fonts.load_font_data(dejavu::sans::regular().to_vec());
    fonts.load_font_data(dejavu::sans::bold().to_vec());
    fonts.load_font_data(dejavu::sans_mono::bold().to_vec());
    let options = resvg::usvg::Options {
        font_family: "DejaVu Sans".into(),
        fontdb: Arc::new(fonts),
        ..resvg::usvg::Options::default()
    };
    resvg::usvg::Tree::from_str(svg, &options).map_err(|e| render(&e.to_string()))
}

/// Reads the first QR code in a PNG or JPEG image (a poster, or a photo of one).
pub fn decode_qr_image(bytes: &[u8]) -> Result<String, PosterError> {
    let image = image::load_from_memory(bytes).map_err(|e| PosterError::Image(e.to_string()))?;
    let mut prepared = rqrr::PreparedImage::prepare(image.to_luma8());
    prepared
        .detect_grids()
        .into_iter()
        .find_map(|grid| grid.decode().ok().map(|(_, content)| content))
        .ok_or(PosterError::NoQrCode)
}

#[cfg(test)]
mod tests;
