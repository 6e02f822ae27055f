//! hotspot-core: the domain, pure. No network, no storage, no async runtime.
//!
//! | module | holds |
//! |---|---|
//! | [`task`] | task parameters shared by every party (kind, bits, windows, search mode) |
//! | [`venue`] | venue categories and their stable wire codes |
//! | [`credential`] | credential policy: the kind a task accepts, valid key days, diagnosis codes |
//! | [`envelope`] | the report envelope: HPKE-encrypted Poplar1 input shares and their binding |
//! | [`search`] | the heavy-hitter search planner (registry and open modes) |
//! | [`dp`] | the discrete Gaussian sampler and the zCDP accountant |
//! | [`rules`] | the crowding and outbreak alert rules |
//! | [`city`] | the deterministic synthetic city used by tests, benches and the demo |

pub mod city;
pub mod credential;
pub mod dp;
pub mod envelope;
pub mod rules;
pub mod search;
pub mod task;
pub mod venue;
