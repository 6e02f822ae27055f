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
//! category and a popularity drawn from a heavy-tailed law; once the day is simulated, each
//! venue's capacity is sized for its usual demand (peak occupancy without events over a
//! log-normal utilisation with median 50 %, at least the category's minimum). A few venues
//! host an evening event that draws a crowd beyond their usual use; they, and the venues whose
//! usual peak runs close to their capacity, are the crowded ones. Visitors live at a home point
//! and are workers (at a workplace, or as staff of a shop, restaurant, bar, sports hall or
//! cinema), pupils, or at home during the day; their
//! routines add a morning coffee, lunch, shopping and evening leisure with fixed
//! probabilities. A destination is chosen by a gravity rule among a few random venues of the
//! wanted category: weight = popularity / (1 + distance / 1 km)^2.
//!
//! **Reports.** Crowding: occupancy at the middle of every hour, one report per person and hour
//! at most (the credential limit is 1). Outbreak: the day's positives upload their diaries, each check-in
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
    /// Median of a venue's usual peak utilisation (peak occupancy over capacity), per
    /// thousand.
    pub utilisation_median_permille: u32,
    /// Spread of the usual peak utilisation: sigma of its logarithm, per thousand.
    pub utilisation_sigma_permille: u32,
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
            utilisation_median_permille: 500,
            utilisation_sigma_permille: 250,
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
    /// Whether the visitor came for a special event at the venue.
    pub event: bool,
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

impl Batches {
    /// The exact count of venue `code` in `window` (0 where nobody was).
    pub fn count(&self, code: u64, window: u64) -> u64 {
        self.counts.get(&(code, window)).copied().unwrap_or(0)
    }
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
    /// Venue indices hosting an evening event (a concert, a match on screen, a sale).
    pub events: Vec<u32>,
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
        let events = choose_events(&venues, &mut rng);
        let index = VenueIndex::new(&venues, events.clone());
        let side = map_side(config.venues);
        let mut checkins = Vec::new();
        for visitor in 0..config.visitors {
            let home = (rng.random::<f64>() * side, rng.random::<f64>() * side);
            routine(visitor, home, &index, &venues, &mut rng, &mut checkins);
        }
        let mut city = Self {
            config: config.clone(),
            venues,
            checkins,
            positives: Vec::new(),
            outbreak_sites: Vec::new(),
            events,
        };
        city.size_capacities(&mut rng);
        let (sites, positives) = seed_outbreak(config, &city.venues, &city.checkins, &mut rng);
        (city.outbreak_sites, city.positives) = (sites, positives);
        city
    }

    /// Sizes every venue for its demand: capacity = peak occupancy / utilisation, where the
    /// utilisation is log-normal (median and sigma from the configuration: 50 % and 0.25 by
    /// default), never below the category's minimum.
    /// Venues are built for the crowds they usually get; the few whose day runs well above
    /// their usual utilisation are the crowded ones.
    fn size_capacities(&mut self, rng: &mut Xoshiro256PlusPlus) {
        let mut per_cell: HashMap<(u64, u64), u64> = HashMap::new();
        for ((_, w), (_, code)) in self.occupancy(false) {
            *per_cell.entry((code, w)).or_default() += 1;
        }
        let mut peak: HashMap<u64, u64> = HashMap::new();
        for ((code, _), n) in per_cell {
            let p = peak.entry(code).or_default();
            *p = (*p).max(n);
        }
        for venue in &mut self.venues {
            let minimum = MIX
                .iter()
                .find(|m| m.0 == venue.info.category)
                .map_or(10, |m| m.2);
            let median = f64::from(self.config.utilisation_median_permille.max(1)) / 1000.0;
            let sigma = f64::from(self.config.utilisation_sigma_permille) / 1000.0;
            let utilisation = (median.ln() + sigma * normal_pair(rng).0)
                .exp()
                .clamp(0.05, 2.0);
            let demand = peak.get(&venue.code).copied().unwrap_or(0) as f64;
            venue.info.capacity = ((demand / utilisation).ceil() as u32).max(minimum);
        }
    }

    /// Who is where at the middle of each hour: (visitor, window) to (arrival, venue code). A
    /// visitor is at the latest check-in covering the midpoint (having left earlier venues).
    /// Without `with_events`, event check-ins are left out (a venue's usual day).
    fn occupancy(&self, with_events: bool) -> HashMap<(u32, u64), (u64, u64)> {
        let mut present: HashMap<(u32, u64), (u64, u64)> = HashMap::new();
        for c in self.checkins.iter().filter(|c| with_events || !c.event) {
            let code = self.venues[c.venue as usize].code;
            for w in hours(c.arrival_secs, c.stay_secs) {
                let midpoint = w * WINDOW_SECS + WINDOW_SECS / 2;
                if (c.arrival_secs..c.arrival_secs + c.stay_secs).contains(&midpoint) {
                    let entry = present
                        .entry((c.visitor, w))
                        .or_insert((c.arrival_secs, code));
                    if c.arrival_secs >= entry.0 {
                        *entry = (c.arrival_secs, code);
                    }
                }
            }
        }
        present
    }

    /// The side of the square map the venues and homes lie on, in metres.
    pub fn side_metres(&self) -> f64 {
        map_side(self.config.venues)
    }

    /// What the registry knows, by venue code.
    pub fn directory(&self) -> HashMap<u64, VenueInfo> {
        self.venues.iter().map(|v| (v.code, v.info)).collect()
    }

    /// The registered venue codes.
    pub fn registry(&self) -> Vec<u64> {
        self.venues.iter().map(|v| v.code).collect()
    }

    /// Crowding reports: occupancy at the middle of each hour. A visitor checked in somewhere
    /// at `hh:30` reports that venue for hour `hh` (the latest check-in if stays overlap, as
    /// the visitor left the earlier venue), so one person makes at most one report per hour.
    pub fn crowding(&self, rules: &Rules) -> Batches {
        let mut reports = vec![Vec::new(); WINDOWS as usize];
        let mut cells: Vec<_> = self.occupancy(true).into_iter().collect();
        cells.sort_unstable();
        for ((_, w), (_, code)) in cells {
            reports[w as usize].push(code);
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

    /// The reports of a task: crowding, or outbreak padded to `limit` reports per hour.
    pub fn reports(&self, kind: TaskKind, rules: &Rules, limit: usize) -> Batches {
        match (kind, rules) {
            (TaskKind::Outbreak, Rules::Outbreak(rule)) => self.outbreak(rule, limit),
            _ => self.crowding(rules),
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

/// Category mix (per thousand venues) and capacity range (the low end is also the minimum
/// capacity).
/// Restaurants include cafes and canteens, hence their wide capacity range.
const MIX: [(VenueCategory, u32, u32, u32); 7] = [
    (VenueCategory::Restaurant, 290, 10, 120),
    (VenueCategory::Bar, 100, 20, 150),
    (VenueCategory::Retail, 330, 10, 200),
    (VenueCategory::Workplace, 150, 20, 400),
    (VenueCategory::Education, 20, 150, 900),
    (VenueCategory::Sports, 70, 20, 120),
    (VenueCategory::Culture, 40, 80, 500),
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
            .unwrap_or((VenueCategory::Retail, 10, 200));
        // A first capacity from the category's range; `size_capacities` resizes it for demand.
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
    events: Vec<u32>,
}

impl VenueIndex {
    fn new(venues: &[Venue], events: Vec<u32>) -> Self {
        let mut by_category: HashMap<VenueCategory, Vec<u32>> = HashMap::new();
        for (i, v) in venues.iter().enumerate() {
            by_category
                .entry(v.info.category)
                .or_default()
                .push(i as u32);
        }
        Self {
            by_category,
            events,
        }
    }

    /// An event to go to, weighted by closeness: 1 / (1 + distance / 2 km)^2.
    fn choose_event(
        &self,
        at: (f64, f64),
        venues: &[Venue],
        rng: &mut Xoshiro256PlusPlus,
    ) -> Option<u32> {
        let weights: Vec<f64> = self
            .events
            .iter()
            .map(|&i| {
                let v = &venues[i as usize];
                let d = ((v.x - at.0).powi(2) + (v.y - at.1).powi(2)).sqrt();
                1.0 / (1.0 + d / 2000.0).powi(2)
            })
            .collect();
        let mut target = rng.random::<f64>() * weights.iter().sum::<f64>();
        for (i, w) in self.events.iter().zip(&weights) {
            if target < *w {
                return Some(*i);
            }
            target -= w;
        }
        self.events.last().copied()
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
                    event: false,
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
            VenueCategory::Workplace
        } else {
            [
                VenueCategory::Retail,
                VenueCategory::Restaurant,
                VenueCategory::Sports,
                VenueCategory::Culture,
                VenueCategory::Bar,
            ][rng.random_range(0..5)]
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
            let cafe = index.choose(VenueCategory::Restaurant, home, venues, rng);
            visit(
                cafe,
                start.saturating_sub(30 * MIN),
                20 * MIN,
                Role::Customer,
                out,
            );
        }
    } else if kind < 78 {
        let school = index.choose(VenueCategory::Education, home, venues, rng);
        visit(school, 8 * HOUR, 8 * HOUR, Role::Customer, out);
        day_anchor = school.map_or(home, |s| (venues[s as usize].x, venues[s as usize].y));
    }

    // Lunch near where the day is spent.
    if rng.random_bool(0.55) {
        let lunch = index.choose(VenueCategory::Restaurant, day_anchor, venues, rng);
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
        let shop = index.choose(VenueCategory::Retail, home, venues, rng);
        let at = rng.random_range(10 * HOUR..=19 * HOUR);
        visit(
            shop,
            at,
            rng.random_range(15 * MIN..=60 * MIN),
            Role::Customer,
            out,
        );
    }

    // Evening leisure, over by 23:00: one in eight goes to an event.
    if rng.random_bool(0.45) {
        if rng.random_bool(0.125)
            && let Some(venue) = index.choose_event(home, venues, rng)
        {
            let at = rng.random_range(19 * HOUR..=19 * HOUR + 45 * MIN);
            let stay = rng.random_range(120 * MIN..=180 * MIN).min(23 * HOUR - at);
            let role = Role::Customer;
            out.push(CheckIn {
                visitor,
                venue,
                arrival_secs: at,
                stay_secs: stay,
                role,
                event: true,
            });
            return;
        }
        let (category, lo, hi) = match rng.random_range(0..100u32) {
            0..35 => (VenueCategory::Bar, 60 * MIN, 150 * MIN),
            35..65 => (VenueCategory::Restaurant, 60 * MIN, 120 * MIN),
            65..85 => (VenueCategory::Sports, 45 * MIN, 90 * MIN),
            _ => (VenueCategory::Culture, 120 * MIN, 150 * MIN),
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

/// One venue in 200 (at least one) hosts an evening event: bars, restaurants, cinemas,
/// sports halls and shops.
fn choose_events(venues: &[Venue], rng: &mut Xoshiro256PlusPlus) -> Vec<u32> {
    let hosts: Vec<u32> = (0..venues.len() as u32)
        .filter(|&i| {
            !matches!(
                venues[i as usize].info.category,
                VenueCategory::Workplace | VenueCategory::Education
            )
        })
        .collect();
    let wanted = (venues.len() / 200).max(1).min(hosts.len());
    let mut events = BTreeSet::new();
    while events.len() < wanted {
        events.insert(hosts[rng.random_range(0..hosts.len())]);
    }
    events.into_iter().collect()
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
                    | VenueCategory::Sports
                    | VenueCategory::Workplace
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
        assert_eq!(categories.len(), MIX.len());
    }

    #[test]
    fn crowding_reports_one_venue_per_person_and_hour_and_match_the_counts() {
        let city = City::generate(&CityConfig::tiny(2));
        let rules = Rules::Crowding(CrowdingRule::new(800, 1).expect("valid"));
        let batches = city.crowding(&rules);
        let total: usize = batches.reports.iter().map(Vec::len).sum();
        for reports in &batches.reports {
            assert!(reports.len() <= city.config.visitors as usize);
        }
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
