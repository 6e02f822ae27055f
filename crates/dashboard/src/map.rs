//! The server-rendered SVG heat grid: the registry's area cut into square cells, each cell
//! shaded by the number of alerted venue-hours inside it and coloured by the highest level
//! among them, with every venue drawn as a dot (alerted venues larger, in their level's
//! colour). No tiles, no scripts: the page works offline.
//!
//! Projection: equirectangular around the area's mean latitude (x = longitude times
//! cos(latitude)), adequate for a city; north is up.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::page::esc;
use crate::view::{AlertLevel, AlertView, LatLon, VenueView};

/// Width of the drawing in SVG user units.
const WIDTH: f64 = 760.0;
/// Number of grid columns across the area.
const COLUMNS: f64 = 24.0;

/// Fill colour of a level (shared with the page's CSS).
pub fn colour(level: AlertLevel) -> &'static str {
    match level {
        AlertLevel::Crowding => "#6a3fc8",
        AlertLevel::Orange => "#f08a24",
        AlertLevel::Red => "#d7263d",
    }
}

/// Bounding box and projection of the area.
struct Frame {
    lat_max: f64,
    lon_min: f64,
    scale: f64,
    lon_factor: f64,
    height: f64,
}

impl Frame {
    fn new(points: &[(f64, f64)]) -> Option<Frame> {
        let finite = points
            .iter()
            .filter(|(lat, lon)| lat.is_finite() && lon.is_finite());
        let (mut lat_min, mut lat_max, mut lon_min, mut lon_max) = (90f64, -90f64, 180f64, -180f64);
        for &(lat, lon) in finite {
            (lat_min, lat_max) = (lat_min.min(lat), lat_max.max(lat));
            (lon_min, lon_max) = (lon_min.min(lon), lon_max.max(lon));
        }
        if lat_min > lat_max {
            return None;
        }
        let lon_factor = ((lat_min + lat_max) / 2.0).to_radians().cos().max(0.01);
        // Pad by 5% (and at least about 100 m) so edge venues are not cut.
        let pad = ((lat_max - lat_min).max((lon_max - lon_min) * lon_factor) * 0.05).max(0.001);
        let (lat_min, lat_max) = (lat_min - pad, lat_max + pad);
        let (lon_min, lon_max) = (lon_min - pad / lon_factor, lon_max + pad / lon_factor);
        let scale = WIDTH / ((lon_max - lon_min) * lon_factor);
        let height = ((lat_max - lat_min) * scale).clamp(120.0, 900.0);
        Some(Frame {
            lat_max,
            lon_min,
            scale,
            lon_factor,
            height,
        })
    }

    fn project(&self, lat: f64, lon: f64) -> (f64, f64) {
        (
            (lon - self.lon_min) * self.lon_factor * self.scale,
            (self.lat_max - lat) * self.scale,
        )
    }
}

/// Per alerted venue: where it is, how many venue-hours and the highest level.
struct VenueHeat<'a> {
    alert: &'a AlertView,
    at: LatLon,
    hours: usize,
    level: AlertLevel,
}

/// Renders the map of `alerts` over `venues`.
pub fn render(venues: &[VenueView], alerts: &[AlertView]) -> String {
    let points: Vec<(f64, f64)> = venues
        .iter()
        .map(|v| LatLon {
            lat: v.lat,
            lon: v.lon,
        })
        .chain(alerts.iter().filter_map(|a| a.location))
        .filter(LatLon::is_valid)
        .map(|p| (p.lat, p.lon))
        .collect();
    let Some(frame) = Frame::new(&points) else {
        return empty_map();
    };
    let heat = venue_heat(alerts);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {h:.0}" width="{WIDTH}" height="{h:.0}" role="img" aria-label="Map of alerted venue-hours">"#,
        h = frame.height
    );
    svg.push_str(r##"<rect width="100%" height="100%" fill="#f4f6f8"/>"##);
    grid_cells(&mut svg, &frame, &heat);
    venue_dots(&mut svg, &frame, venues, &heat);
    svg.push_str("</svg>");
    svg
}

fn empty_map() -> String {
    concat!(
        r#"<svg id="map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 760 120" width="760" height="120">"#,
        r##"<rect width="100%" height="100%" fill="#f4f6f8"/>"##,
        r#"<text x="20" y="64">No venues registered yet.</text></svg>"#
    )
    .to_owned()
}

fn venue_heat(alerts: &[AlertView]) -> BTreeMap<u64, VenueHeat<'_>> {
    let mut heat: BTreeMap<u64, VenueHeat<'_>> = BTreeMap::new();
    // Alerts without a valid location (unregistered codes) stay off the map.
    let located = alerts
        .iter()
        .filter_map(|a| Some((a, a.location.filter(LatLon::is_valid)?)));
    for (alert, at) in located {
        let entry = heat.entry(alert.venue_code).or_insert(VenueHeat {
            alert,
            at,
            hours: 0,
            level: alert.level,
        });
        entry.hours += 1;
        entry.level = entry.level.max(alert.level);
    }
    heat
}

/// The shaded squares: alerted venue-hours summed per cell, opacity by share of the maximum.
fn grid_cells(svg: &mut String, frame: &Frame, heat: &BTreeMap<u64, VenueHeat<'_>>) {
    let side = WIDTH / COLUMNS;
    let mut cells: BTreeMap<(i64, i64), (usize, AlertLevel)> = BTreeMap::new();
    for v in heat.values() {
        let (x, y) = frame.project(v.at.lat, v.at.lon);
        let key = ((x / side).floor() as i64, (y / side).floor() as i64);
        let cell = cells.entry(key).or_insert((0, v.level));
        cell.0 += v.hours;
        cell.1 = cell.1.max(v.level);
    }
    let max = cells.values().map(|c| c.0).max().unwrap_or(1).max(1) as f64;
    for ((cx, cy), (hours, level)) in &cells {
        let opacity = 0.18 + 0.6 * (*hours as f64 / max);
        let _ = write!(
            svg,
            r#"<rect class="heat level-{l}" x="{x:.1}" y="{y:.1}" width="{side:.1}" height="{side:.1}" fill="{c}" fill-opacity="{opacity:.2}"><title>{hours} alerted venue-hours</title></rect>"#,
            l = level.as_str(),
            x = *cx as f64 * side,
            y = *cy as f64 * side,
            c = colour(*level),
        );
    }
}

/// Every venue as a grey dot; alerted venues on top, sized by their alerted hours.
fn venue_dots(
    svg: &mut String,
    frame: &Frame,
    venues: &[VenueView],
    heat: &BTreeMap<u64, VenueHeat<'_>>,
) {
    let plain = venues.iter().filter(|v| !heat.contains_key(&v.code));
    for venue in plain.filter(|v| {
        LatLon {
            lat: v.lat,
            lon: v.lon,
        }
        .is_valid()
    }) {
        let (x, y) = frame.project(venue.lat, venue.lon);
        let _ = write!(
            svg,
            r##"<circle class="venue" cx="{x:.1}" cy="{y:.1}" r="2.2" fill="#9aa5b1"><title>{}</title></circle>"##,
            esc(&venue.name)
        );
    }
    for (code, v) in heat {
        let (x, y) = frame.project(v.at.lat, v.at.lon);
        let r = 4.0 + (v.hours as f64).sqrt() * 1.6;
        let _ = write!(
            svg,
            r##"<circle class="alerted level-{l}" data-venue="{code:x}" cx="{x:.1}" cy="{y:.1}" r="{r:.1}" fill="{c}" stroke="#222" stroke-width="0.8"><title>{name}: {hours} alerted hour(s), highest level {l}</title></circle>"##,
            l = v.level.as_str(),
            c = colour(v.level),
            name = esc(&v.alert.venue_name),
            hours = v.hours,
        );
    }
}
