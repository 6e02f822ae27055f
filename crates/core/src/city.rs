//! A synthetic city, deterministic from a seed: venues, visitors with daily routines, their
//! check-ins over one day, an outbreak seeded at chosen venues, and the exact ground truth the
//! search is measured against (the venue-hour counts the reports carry, and the alerts the
//! rules raise on them).
//!
//! Nothing here is private or cryptographic: the city feeds tests, the accuracy bench and the
//! demo. Its randomness comes from a seeded `Xoshiro256PlusPlus`, which is portable, so a seed
//! names the same city on every machine and version of this crate.
//!
//! **The model.** Venues sit on a square map (a dense centre and a uniform spread), each with a
//! category, a capacity drawn from a category range and a popularity drawn from a heavy-tailed
//! law (a few venues attract far more people than their size, which is what crowding alerts
//! are for). Visitors live at a home point and are workers (at an office, or as staff of a
//! shop, restaurant, cafe, bar, gym or cinema), pupils, or at home during the day; their
//! routines add a morning coffee, lunch, shopping and evening leisure with fixed
//! probabilities. A destination is chosen by a gravity rule among a few random venues of the
//! wanted category: weight = popularity / (1 + distance / 1 km)^2.
//!
//! **Reports.** Crowding: a visitor reports a presence for every hour a check-in touches
//! ([`windows_touched`]), at most the credential limit per hour (further presences are the ones
//! the leader would refuse). Outbreak: the day's positives upload their diaries, each check-in
//! spread over its category's exposure time ([`OutbreakRule::exposure_secs`]), every hour
//! padded to the same number of reports with dummies ([`pad_to_fixed_shape`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, RngExt, SeedableRng};

use crate::rules::{
    AlertLevel, OutbreakRule, Role, Rules, VenueCategory, VenueInfo, pad_to_fixed_shape,
    windows_touched,
};
use crate::task::{DUMMY_VENUE_CODE, TaskKind};

/// Seconds per window (one hour).
pub const WINDOW_SECS: u64 = 3600;
/// Windows in the simulated day.
pub const WINDOWS: u64 = 24;

/// The size and shape of a city.
#[derive(Clone, Debug, PartialEq)]
pub struct CityConfig {
    /// The seed naming the city.
    pub seed: u64,
    /// Number of visitors.
    pub visitors: u32,
    /// Number of venues.
    pub venues: u32,
    /// Bits of a venue code.
    pub bits: u32,
    /// Venues where the outbreak is seeded.
    pub outbreak_sites: u32,
    /// Chance that a visitor present at an outbreak site is infected (per thousand).
    pub attack_permille: u32,
    /// Chance that any visitor is positive regardless (per hundred thousand).
    pub background_per_100k: u32,
}

impl CityConfig {
    /// A tiny city for unit tests: 300 visitors, 40 venues.
    pub fn tiny(seed: u64) -> Self {
        Self::sized(seed, 300, 40, 2)
    }

    /// The ordinary city of the accuracy bench: 20,000 visitors, 2,000 venues.
    pub fn ordinary(seed: u64) -> Self {
        Self::sized(seed, 20_000, 2_000, 8)
    }

    /// The large city: 100,000 visitors, 10,000 venues.
    pub fn large(seed: u64) -> Self {
        Self::sized(seed, 100_000, 10_000, 30)
    }

    /// A city of the given size with the default outbreak parameters.
    pub fn sized(seed: u64, visitors: u32, venues: u32, outbreak_sites: u32) -> Self {
        Self {
            seed,
            visitors,
            venues,
            bits: 32,
            outbreak_sites,
            attack_permille: 300,
            background_per_100k: 200,
        }
    }
}

/// A venue of the city.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Venue {
    /// Its venue code (non-zero, distinct, `bits` wide).
    pub code: u64,
    /// What the registry knows: category and capacity.
    pub info: VenueInfo,
    /// Position on the map, metres.
    pub x: f64,
    /// Position on the map, metres.
    pub y: f64,
    popularity: f64,
}

/// One check-in of a visitor's day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckIn {
    /// Visitor index.
    pub visitor: u32,
    /// Venue index into [`City::venues`].
    pub venue: u32,
    /// Arrival, seconds from the start of the day.
    pub arrival_secs: u64,
    /// Length of the stay, seconds (positive).
    pub stay_secs: u64,
    /// Customer or staff.
    pub role: Role,
}

/// The reports of one task over the day, per window, and the ground truth on them.
#[derive(Clone, Debug, PartialEq)]
pub struct Batches {
    /// The venue codes reported in each window (index = window), dummies included.
    pub reports: Vec<Vec<u64>>,
    /// Exact counts per (venue code, window), dummies excluded.
    pub counts: BTreeMap<(u64, u64), u64>,
    /// The true alerts: (venue code, window) and level.
    pub alerts: BTreeMap<(u64, u64), AlertLevel>,
}

/// A generated city.
#[derive(Clone, Debug)]
pub struct City {
    /// Its configuration.
    pub config: CityConfig,
    /// The venues.
    pub venues: Vec<Venue>,
    /// Every check-in of the day.
    pub checkins: Vec<CheckIn>,
    /// Visitors who test positive (sorted).
    pub positives: Vec<u32>,
    /// Venue indices where the outbreak was seeded.
    pub outbreak_sites: Vec<u32>,
}

/// Side of the map in metres for `venues` venues (constant density: 10 km for 10,000).
fn map_side(venues: u32) -> f64 {
    10_000.0 * (f64::from(venues.max(1)) / 10_000.0).sqrt()
}

impl City {
    /// Generates the city of `config`.
    pub fn generate(config: &CityConfig) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(config.seed);
        let venues = generate_venues(config, &mut rng);
        let index = VenueIndex::new(&venues);
        let side = map_side(config.venues);
        let mut checkins = Vec::new();
        for visitor in 0..config.visitors {
            let home = (rng.random::<f64>() * side, rng.random::<f64>() * side);
            routine(visitor, home, &index, &venues, &mut rng, &mut checkins);
        }
        let (outbreak_sites, positives) = seed_outbreak(config, &venues, &checkins, &mut rng);
        Self {
            config: config.clone(),
            venues,
            checkins,
            positives,
            outbreak_sites,
        }
    }

    /// What the registry knows, by venue code.
    pub fn directory(&self) -> HashMap<u64, VenueInfo> {
        self.venues.iter().map(|v| (v.code, v.info)).collect()
    }

    /// The registered venue codes.
    pub fn registry(&self) -> Vec<u64> {
        self.venues.iter().map(|v| v.code).collect()
    }

    /// Crowding reports: one presence per visitor, venue and hour touched, at most
    /// `limit` per visitor and hour.
    pub fn crowding(&self, rules: &Rules, limit: usize) -> Batches {
        let mut presences: BTreeMap<(u32, u64), BTreeSet<u64>> = BTreeMap::new();
        for c in &self.checkins {
            let code = self.venues[c.venue as usize].code;
            for w in hours(c.arrival_secs, c.stay_secs) {
                presences.entry((c.visitor, w)).or_default().insert(code);
            }
        }
        let mut reports = vec![Vec::new(); WINDOWS as usize];
        for ((_, w), codes) in presences {
            reports[w as usize].extend(codes.into_iter().take(limit));
        }
        self.batches(reports, rules)
    }

    /// Outbreak reports: every positive's diary, spread over exposure times and padded to
    /// `per_window` reports in every hour of the day.
    pub fn outbreak(&self, rule: &OutbreakRule, per_window: usize) -> Batches {
        let positives: HashSet<u32> = self.positives.iter().copied().collect();
        let mut diaries: BTreeMap<u32, BTreeMap<u64, BTreeSet<u64>>> = BTreeMap::new();
        for c in self
            .checkins
            .iter()
            .filter(|c| positives.contains(&c.visitor))
        {
            let venue = &self.venues[c.venue as usize];
            let exposure = rule.exposure_secs(venue.info.category, c.role);
            for w in hours(c.arrival_secs, exposure) {
                diaries
                    .entry(c.visitor)
                    .or_default()
                    .entry(w)
                    .or_default()
                    .insert(venue.code);
            }
        }
        let mut reports = vec![Vec::new(); WINDOWS as usize];
        for visitor in &self.positives {
            let diary = diaries.remove(visitor).unwrap_or_default();
            let presences: Vec<(u64, u64)> = diary
                .into_iter()
                .flat_map(|(w, codes)| codes.into_iter().take(per_window).map(move |c| (w, c)))
                .collect();
            // The presences were checked above (non-zero codes, windows of the day, at most
            // `per_window` each), so shaping cannot fail; an error would drop this upload only.
            if let Ok(shaped) = pad_to_fixed_shape(&presences, 0..=WINDOWS - 1, per_window) {
                for (w, codes) in shaped {
                    reports[w as usize].extend(codes);
                }
            }
        }
        self.batches(reports, &Rules::Outbreak(rule.clone()))
    }

    /// The reports of `kind` with default parameters (see the accuracy bench).
    pub fn reports(&self, kind: TaskKind, rules: &Rules, limit: usize) -> Batches {
        match (kind, rules) {
            (TaskKind::Outbreak, Rules::Outbreak(rule)) => self.outbreak(rule, limit),
            _ => self.crowding(rules, limit),
        }
    }

    /// Ground truth for per-window reports.
    fn batches(&self, reports: Vec<Vec<u64>>, rules: &Rules) -> Batches {
        let directory = self.directory();
        let mut counts = BTreeMap::new();
        for (w, codes) in reports.iter().enumerate() {
            for &code in codes.iter().filter(|&&c| c != DUMMY_VENUE_CODE) {
                *counts.entry((code, w as u64)).or_insert(0u64) += 1;
            }
        }
        let alerts = counts
            .iter()
            .filter_map(|(&(code, w), &n)| {
                let count = i64::try_from(n).ok()?;
                Some((
                    (code, w),
                    rules.evaluate(code, directory.get(&code), count)?,
                ))
            })
            .collect();
        Batches {
            reports,
            counts,
            alerts,
        }
    }
}

/// The windows of the day a stay touches (stays that run past midnight are cut there).
fn hours(arrival: u64, stay: u64) -> impl Iterator<Item = u64> {
    windows_touched(arrival, stay.max(1), WINDOW_SECS)
        .unwrap_or(0..=0)
        .filter(|&w| w < WINDOWS)
}

/// Category mix (per thousand venues), capacity range, and whether the venue has staff.
const MIX: [(VenueCategory, u32, u32, u32); 8] = [
    (VenueCategory::Restaurant, 150, 20, 120),
    (VenueCategory::Bar, 100, 20, 150),
    (VenueCategory::Cafe, 140, 10, 60),
    (VenueCategory::Shop, 330, 10, 200),
    (VenueCategory::Office, 150, 20, 400),
    (VenueCategory::School, 20, 150, 900),
    (VenueCategory::Gym, 70, 20, 120),
    (VenueCategory::Cinema, 40, 80, 500),
];

fn generate_venues(config: &CityConfig, rng: &mut Xoshiro256PlusPlus) -> Vec<Venue> {
    let side = map_side(config.venues);
    let mut codes = HashSet::new();
    let mut venues = Vec::with_capacity(config.venues as usize);
    for i in 0..config.venues {
        // Category by the mix, cycling so that every category exists even in tiny cities.
        let slot = (u64::from(i) * 1000 / u64::from(config.venues.max(1))) as u32;
        let mut acc = 0;
        let (category, lo, hi) = MIX
            .iter()
            .find(|(_, share, _, _)| {
                acc += share;
                slot < acc
            })
            .map(|&(c, _, lo, hi)| (c, lo, hi))
            .unwrap_or((VenueCategory::Shop, 10, 200));
        let capacity = rng.random_range(lo..=hi);

        // A fresh non-zero code of `bits` bits.
        let code = loop {
            let c = rng.next_u64() >> (64 - config.bits);
            if c != DUMMY_VENUE_CODE && codes.insert(c) {
                break c;
            }
        };

        // 40 % downtown (a normal spread around the centre), the rest uniform.
        let (x, y) = if rng.random_bool(0.4) {
            let (a, b) = normal_pair(rng);
            (
                (side / 2.0 + a * side / 8.0).clamp(0.0, side),
                (side / 2.0 + b * side / 8.0).clamp(0.0, side),
            )
        } else {
            (rng.random::<f64>() * side, rng.random::<f64>() * side)
        };

        // Heavy-tailed popularity: log-normal with sigma 0.9.
        let popularity = (0.9 * normal_pair(rng).0).exp();
        venues.push(Venue {
            code,
            info: VenueInfo { category, capacity },
            x,
            y,
            popularity,
        });
    }
    venues
}

/// Two independent standard normals (Box-Muller); the city is not private, floats are fine.
fn normal_pair(rng: &mut Xoshiro256PlusPlus) -> (f64, f64) {
    let u1 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2 = rng.random::<f64>();
    let r = (-2.0 * u1.ln()).sqrt();
    let t = std::f64::consts::TAU * u2;
    (r * t.cos(), r * t.sin())
}

/// Venue indices by category, for the gravity choice.
struct VenueIndex {
    by_category: HashMap<VenueCategory, Vec<u32>>,
}

impl VenueIndex {
    fn new(venues: &[Venue]) -> Self {
        let mut by_category: HashMap<VenueCategory, Vec<u32>> = HashMap::new();
        for (i, v) in venues.iter().enumerate() {
            by_category
                .entry(v.info.category)
                .or_default()
                .push(i as u32);
        }
        Self { by_category }
    }

    /// A venue of `category` near `at`: the gravity rule over 8 random candidates.
    fn choose(
        &self,
        category: VenueCategory,
        at: (f64, f64),
        venues: &[Venue],
        rng: &mut Xoshiro256PlusPlus,
    ) -> Option<u32> {
        let pool = self.by_category.get(&category)?;
        let picks: Vec<u32> = (0..8)
            .map(|_| pool[rng.random_range(0..pool.len())])
            .collect();
        let weights: Vec<f64> = picks
            .iter()
            .map(|&i| {
                let v = &venues[i as usize];
                let d = ((v.x - at.0).powi(2) + (v.y - at.1).powi(2)).sqrt();
                v.popularity / (1.0 + d / 1000.0).powi(2)
            })
            .collect();
        let total: f64 = weights.iter().sum();
        let mut target = rng.random::<f64>() * total;
        for (i, w) in picks.iter().zip(&weights) {
            if target < *w {
                return Some(*i);
            }
            target -= w;
        }
        picks.last().copied()
    }
}

const MIN: u64 = 60;
const HOUR: u64 = 3600;

/// Appends one visitor's day of check-ins.
fn routine(
    visitor: u32,
    home: (f64, f64),
    index: &VenueIndex,
    venues: &[Venue],
    rng: &mut Xoshiro256PlusPlus,
    out: &mut Vec<CheckIn>,
) {
    let visit =
        |venue: Option<u32>, arrival: u64, stay: u64, role: Role, out: &mut Vec<CheckIn>| {
            if let Some(venue) = venue {
                out.push(CheckIn {
                    visitor,
                    venue,
                    arrival_secs: arrival,
                    stay_secs: stay,
                    role,
                });
            }
        };
    let kind = rng.random_range(0..100u32);
    let mut day_anchor = home;

    // Work or school.
    if kind < 60 {
        let category = if rng.random_bool(0.75) {
            VenueCategory::Office
        } else {
            [
                VenueCategory::Shop,
                VenueCategory::Restaurant,
                VenueCategory::Cafe,
                VenueCategory::Gym,
                VenueCategory::Cinema,
                VenueCategory::Bar,
            ][rng.random_range(0..6)]
        };
        let work = index.choose(category, home, venues, rng);
        let start = rng.random_range(7 * HOUR..=10 * HOUR) / (15 * MIN) * (15 * MIN);
        visit(
            work,
            start,
            rng.random_range(7 * HOUR..=9 * HOUR),
            Role::Staff,
            out,
        );
        if let Some(w) = work {
            day_anchor = (venues[w as usize].x, venues[w as usize].y);
        }
        if rng.random_bool(0.2) {
            let cafe = index.choose(VenueCategory::Cafe, home, venues, rng);
            visit(
                cafe,
                start.saturating_sub(30 * MIN),
                20 * MIN,
                Role::Customer,
                out,
            );
        }
    } else if kind < 78 {
        let school = index.choose(VenueCategory::School, home, venues, rng);
        visit(school, 8 * HOUR, 8 * HOUR, Role::Customer, out);
        day_anchor = school.map_or(home, |s| (venues[s as usize].x, venues[s as usize].y));
    }

    // Lunch near where the day is spent.
    if rng.random_bool(0.55) {
        let category = if rng.random_bool(0.6) {
            VenueCategory::Restaurant
        } else {
            VenueCategory::Cafe
        };
        let lunch = index.choose(category, day_anchor, venues, rng);
        let at = rng.random_range(11 * HOUR + 45 * MIN..=13 * HOUR + 30 * MIN);
        visit(
            lunch,
            at,
            rng.random_range(25 * MIN..=70 * MIN),
            Role::Customer,
            out,
        );
    }

    // Shopping.
    if rng.random_bool(0.4) {
        let shop = index.choose(VenueCategory::Shop, home, venues, rng);
        let at = rng.random_range(10 * HOUR..=19 * HOUR);
        visit(
            shop,
            at,
            rng.random_range(15 * MIN..=60 * MIN),
            Role::Customer,
            out,
        );
    }

    // Evening leisure, over by 23:00.
    if rng.random_bool(0.45) {
        let (category, lo, hi) = match rng.random_range(0..100u32) {
            0..35 => (VenueCategory::Bar, 60 * MIN, 150 * MIN),
            35..65 => (VenueCategory::Restaurant, 60 * MIN, 120 * MIN),
            65..85 => (VenueCategory::Gym, 45 * MIN, 90 * MIN),
            _ => (VenueCategory::Cinema, 120 * MIN, 150 * MIN),
        };
        let place = index.choose(category, home, venues, rng);
        let at = rng.random_range(18 * HOUR..=20 * HOUR + 30 * MIN);
        visit(
            place,
            at,
            rng.random_range(lo..=hi).min(23 * HOUR - at),
            Role::Customer,
            out,
        );
    }
}

/// Chooses the outbreak sites and the day's positives.
fn seed_outbreak(
    config: &CityConfig,
    venues: &[Venue],
    checkins: &[CheckIn],
    rng: &mut Xoshiro256PlusPlus,
) -> (Vec<u32>, Vec<u32>) {
    let candidates: Vec<u32> = (0..venues.len() as u32)
        .filter(|&i| {
            matches!(
                venues[i as usize].info.category,
                VenueCategory::Restaurant
                    | VenueCategory::Bar
                    | VenueCategory::Gym
                    | VenueCategory::Office
            )
        })
        .collect();
    let mut sites = BTreeSet::new();
    while sites.len() < (config.outbreak_sites as usize).min(candidates.len()) {
        sites.insert(candidates[rng.random_range(0..candidates.len())]);
    }
    let mut positives = BTreeSet::new();
    for c in checkins {
        if sites.contains(&c.venue) && rng.random_range(0..1000) < config.attack_permille {
            positives.insert(c.visitor);
        }
    }
    for v in 0..config.visitors {
        if rng.random_range(0..100_000) < config.background_per_100k {
            positives.insert(v);
        }
    }
    (sites.into_iter().collect(), positives.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::CrowdingRule;

    #[test]
    fn a_seed_names_one_city() {
        let a = City::generate(&CityConfig::tiny(7));
        let b = City::generate(&CityConfig::tiny(7));
        let c = City::generate(&CityConfig::tiny(8));
        assert_eq!(a.checkins, b.checkins);
        assert_eq!(a.registry(), b.registry());
        assert_ne!(a.checkins, c.checkins);
    }

    #[test]
    fn venue_codes_are_distinct_non_zero_and_fit_the_bits() {
        let city = City::generate(&CityConfig::tiny(1));
        let codes: HashSet<u64> = city.registry().into_iter().collect();
        assert_eq!(codes.len(), city.venues.len());
        assert!(codes.iter().all(|&c| c != 0 && c >> 32 == 0));
        let categories: HashSet<_> = city.venues.iter().map(|v| v.info.category).collect();
        assert_eq!(categories.len(), VenueCategory::ALL.len());
    }

    #[test]
    fn crowding_reports_respect_the_credential_limit_and_match_the_counts() {
        let city = City::generate(&CityConfig::tiny(2));
        let rules = Rules::Crowding(CrowdingRule::new(800).expect("valid"));
        let batches = city.crowding(&rules, 2);
        let total: usize = batches.reports.iter().map(Vec::len).sum();
        assert_eq!(total as u64, batches.counts.values().sum::<u64>());
        assert!(total > 300);
        for (&(code, w), level) in &batches.alerts {
            assert_eq!(*level, AlertLevel::Crowded);
            assert!(batches.counts[&(code, w)] > 0);
        }
    }

    #[test]
    fn outbreak_uploads_have_a_fixed_shape_and_dummies_never_count() {
        let city = City::generate(&CityConfig::tiny(3));
        assert!(!city.positives.is_empty());
        let batches = city.outbreak(&OutbreakRule::default_rules(), 3);
        for reports in &batches.reports {
            assert_eq!(reports.len(), 3 * city.positives.len());
        }
        assert!(
            batches
                .counts
                .keys()
                .all(|&(code, _)| code != DUMMY_VENUE_CODE)
        );
        assert!(
            batches
                .alerts
                .keys()
                .all(|&(code, _)| code != DUMMY_VENUE_CODE)
        );
        // The outbreak sites' visitors are positive, so some site alerts.
        assert!(!batches.alerts.is_empty());
    }
}
