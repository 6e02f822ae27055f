//! Demo data for the dashboard: a small made-up city with venues, a day of alerts and the
//! batches that produced them, loaded into an [`InMemorySource`].
//!
//! Tests and the standalone example use it; the collector's demo feeds the dashboard from its
//! own store instead. The numbers are invented for display (deterministic from `seed`), not the
//! output of a search.

use crate::source::InMemorySource;
use crate::view::{
    AlertCursor, AlertLevel, AlertView, BatchView, LatLon, SearchModeView, VenueView,
};

/// Categories used by the demo, with capacities.
const CATEGORIES: [(&str, u32); 5] = [
    ("restaurant", 60),
    ("bar", 80),
    ("gym", 40),
    ("school", 300),
    ("office", 150),
];

/// A 64-bit linear congruential generator (Knuth's MMIX constants): enough for made-up data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 42) as f64
    }
}

/// `venues` venues around a city centre and alerts over the day starting at `day_start`
/// (midnight UTC): crowding alerts at lunch and evening peaks, and one outbreak cluster.
pub fn demo_source(seed: u64, venues: usize, day_start: u64) -> InMemorySource {
    let source = InMemorySource::new();
    let mut rng = Lcg(seed ^ 0x5eed);
    let registry: Vec<VenueView> = (0..venues).map(|i| demo_venue(&mut rng, i)).collect();
    for venue in &registry {
        source.push_venue(venue.clone());
    }

    // Crowding: a few popular venues at lunch (12-13 h) and in the evening (18-21 h).
    for (i, venue) in registry.iter().enumerate().filter(|(i, _)| i % 7 == 3) {
        for hour in [12u64, 13, 18, 19, 20] {
            if rng.below(3) == 0 {
                continue;
            }
            let count = (f64::from(venue.capacity) * (0.8 + 0.3 * rng.unit())) as i64;
            let rule = format!("crowding: >= 80% of capacity {}", venue.capacity);
            source.push_alert(alert(
                venue,
                day_start + hour * 3600,
                AlertLevel::Crowding,
                count,
                &rule,
                i,
            ));
        }
    }

    // Outbreak: two neighbouring venues, orange then red over the evening.
    for (offset, venue) in registry.iter().take(2).enumerate() {
        for hour in 17..22u64 {
            let red = hour >= 19 && offset == 0;
            let (level, count) = if red {
                (AlertLevel::Red, 3 + rng.below(3) as i64)
            } else {
                (AlertLevel::Orange, 1 + rng.below(2) as i64)
            };
            let rule = format!(
                "outbreak {}: >= {} positive presences ({})",
                level.as_str(),
                if red { 3 } else { 1 },
                venue.category
            );
            source.push_alert(alert(
                venue,
                day_start + hour * 3600,
                level,
                count,
                &rule,
                offset,
            ));
        }
    }

    for hour in 0..24u64 {
        source.push_batch(demo_batch(&mut rng, day_start + hour * 3600, hour));
    }
    source
}

fn demo_venue(rng: &mut Lcg, i: usize) -> VenueView {
    let (category, capacity) = CATEGORIES[i % CATEGORIES.len()];
    // A disc of about 4 km around a made-up centre; the first venues sit near the middle.
    let spread = if i < 2 { 0.004 } else { 0.035 };
    VenueView {
        code: 0x1000_0000 + rng.below(0x0fff_ffff),
        name: format!("{} {}", capitalised(category), i + 1),
        category: category.to_owned(),
        capacity,
        lat: 50.0 + spread * (2.0 * rng.unit() - 1.0),
        lon: 8.0 + 1.5 * spread * (2.0 * rng.unit() - 1.0),
    }
}

fn alert(
    venue: &VenueView,
    window_start: u64,
    level: AlertLevel,
    noisy_count: i64,
    rule: &str,
    n: usize,
) -> AlertView {
    AlertView {
        id: format!("demo-{}-{:x}-{window_start}", level.as_str(), venue.code),
        cursor: AlertCursor::START,
        task: if level == AlertLevel::Crowding {
            "crowding".into()
        } else {
            "outbreak".into()
        },
        venue_code: venue.code,
        venue_name: venue.name.clone(),
        category: venue.category.clone(),
        location: Some(LatLon {
            lat: venue.lat,
            lon: venue.lon,
        }),
        window_start,
        window_secs: 3600,
        level,
        noisy_count,
        stddev: if level == AlertLevel::Crowding {
            4.2
        } else {
            0.9
        },
        rule: rule.to_owned(),
        first_seen: window_start + 3600 + 600 + 60 * n as u64,
    }
}

fn demo_batch(rng: &mut Lcg, window_start: u64, hour: u64) -> BatchView {
    let busy = matches!(hour, 11..=14 | 17..=21);
    let accepted = if busy { 8_000 } else { 1_500 } + rng.below(500);
    BatchView {
        task: "crowding".into(),
        window_start,
        window_secs: 3600,
        accepted,
        rejected: rng.below(12),
        search_mode: SearchModeView::Registry,
        epsilon_spent: 0.8,
        epsilon_left: (24 - hour) as f64 * 0.8 - 0.8,
        delta: 1e-9,
        alerts: if busy { 3 } else { 0 },
        collected_at: Some(window_start + 3600 + 600),
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}
