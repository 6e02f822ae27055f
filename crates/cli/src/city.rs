//! An interim synthetic city for the demo: venues at random coordinates with random 32-bit
//! codes, ordinary visitors spread over them by popularity, and a few seeded hotspots that
//! receive extra check-ins. Deterministic from a seed. The search issue's city generator
//! (crates/core `city`, with routines, categories and capacities) replaces it.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// A venue.
#[derive(Clone, Debug)]
pub struct Venue {
    /// Its code.
    pub code: u64,
    /// Position in the unit square.
    pub x: f64,
    /// Position in the unit square.
    pub y: f64,
}

/// A city and its check-ins for one hour.
#[derive(Clone, Debug)]
pub struct City {
    /// The venues.
    pub venues: Vec<Venue>,
    /// One venue code per check-in.
    pub checkins: Vec<u64>,
    /// Indexes of the seeded hotspot venues.
    pub hotspots: Vec<usize>,
}

impl City {
    /// `venues` venues, `visitors` ordinary check-ins, `hotspots` venues with `extra` more.
    pub fn generate(
        seed: u64,
        venues: usize,
        visitors: usize,
        hotspots: usize,
        extra: usize,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let venues: Vec<Venue> = (0..venues)
            .map(|_| Venue {
                code: rng.random_range(1..u64::from(u32::MAX)),
                x: rng.random(),
                y: rng.random(),
            })
            .collect();
        let mut checkins = Vec::with_capacity(visitors + hotspots * extra);
        for _ in 0..visitors {
            // Popularity skewed towards low indexes, but bounded well under the hotspots.
            let a = rng.random_range(0..venues.len());
            let b = rng.random_range(0..venues.len());
            checkins.push(venues[a.min(b)].code);
        }
        let hot: Vec<usize> = (0..hotspots).map(|i| venues.len() - 1 - i * 3).collect();
        for &h in &hot {
            checkins.extend(std::iter::repeat_n(venues[h].code, extra));
        }
        City {
            venues,
            checkins,
            hotspots: hot,
        }
    }

    /// Plaintext count per venue code.
    pub fn counts(&self) -> std::collections::HashMap<u64, u64> {
        let mut m = std::collections::HashMap::new();
        for c in &self.checkins {
            *m.entry(*c).or_insert(0) += 1;
        }
        m
    }
}
