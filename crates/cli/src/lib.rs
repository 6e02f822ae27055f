//! The `hotspot` command line: `demo`, `serve`, `bench upload`, `issuer enrol`, `collect
//! diagnosis-code` (and, from other issues, `venue`, `visitor`, `bench accuracy`).
//!
//! The binary in `main.rs` is a one-line shim over [`main`], so that the end-to-end tests can
//! build the very same program as a binary of their own package and start it as a process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub mod bench;
pub mod cluster;
pub mod collect;
pub mod demo;
pub mod issuer;
pub mod serve;

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
    Demo(demo::DemoArgs),
    /// Run one server role.
    Serve(ServeArgs),
    /// Venues: register in the registry, render QR posters.
    Venue(venue::VenueArgs),
    /// The visitor client: scan posters, keep the diary, report, check exposure.
    Visitor(visitor::VisitorArgs),
    /// Benchmarks that print figures (not timed tests).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The issuer operator's commands.
    #[command(subcommand)]
    Issuer(issuer::IssuerCommand),
    /// The health authority's commands.
    #[command(subcommand)]
    Collect(collect::CollectCommand),
}

/// `hotspot serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The role; must match the config file's `role`.
    #[arg(long, value_parser = ["leader", "helper", "collector", "issuer"])]
    pub role: String,
    /// The TOML config file.
    #[arg(long)]
    pub config: PathBuf,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Drive real uploads into a leader on loopback.
    Upload(bench::UploadArgs),
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

/// A single-threaded async runtime for one command.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Bench(BenchCommand::Upload(args)) => bench::run_upload(args),
        Command::Venue(args) => venue::run(args),
        Command::Visitor(args) => visitor::run(args),
        Command::Bench(BenchCommand::Accuracy(args)) => accuracy::run(args),
        Command::Issuer(command) => issuer::run(command),
        Command::Collect(command) => collect::run(command),
    }
}
