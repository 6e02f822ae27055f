//! Benchmarks: criterion benches and the side-by-side comparison binaries.
