//! The `hotspot` command line: `demo`, `serve`, `venue`, `visitor`, `collect`, `bench`.
//!
//! The binary in `main.rs` is a one-line shim over [`main`], so that the end-to-end tests can
//! build the very same program as a binary of their own package and start it as a process.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod accuracy;
pub mod venue;
pub mod visitor;

/// hotspot: privacy-preserving hotspot detection from venue check-ins.
#[derive(Debug, Parser)]
#[command(name = "hotspot", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole pipeline on a small synthetic city, on loopback, with no setup.
    Demo,
    /// Venues: register in the registry, render QR posters.
    Venue(venue::VenueArgs),
    /// The visitor client: scan posters, keep the diary, report, check exposure.
    Visitor(visitor::VisitorArgs),
    /// Benchmarks that print figures (not timed tests).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Precision and recall of the real search with noise on, over the synthetic city.
    Accuracy(accuracy::AccuracyArgs),
}

/// Parses the arguments, runs the command and maps its outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hotspot: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo => {
            println!("demo: the pipeline is being built; nothing to run yet");
            Ok(())
        }
        Command::Venue(args) => venue::run(args),
        Command::Visitor(args) => visitor::run(args),
        Command::Bench(BenchCommand::Accuracy(args)) => accuracy::run(args),
    }
}
