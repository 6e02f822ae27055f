//! `hotspot issuer enrol --config FILE --ids-file F`: the operator provisions the enrolment
//! ids of devices allowed to obtain crowding credentials. The ids go straight into the
//! issuer's own database (the operator runs this where the issuer runs; SQLite in WAL mode
//! takes the write while the issuer serves), hashed with the issuer's key, so the file of ids
//! is the only place they exist in clear.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use hotspot_server::config::{ProcessEnv, ServerConfig, ServerRole};
use hotspot_server::issuer::{IdHasher, enrol_ids};
use hotspot_server::storage::sqlite::SqliteStore;

/// `hotspot issuer`.
#[derive(Debug, Subcommand)]
pub enum IssuerCommand {
    /// Provision enrolment ids (one per line; `#` starts a comment).
    Enrol(EnrolArgs),
}

/// `hotspot issuer enrol` options.
#[derive(Debug, Args)]
pub struct EnrolArgs {
    /// The issuer's TOML config (its database and hash key are used).
    #[arg(long)]
    pub config: PathBuf,
    /// The file of enrolment ids.
    #[arg(long)]
    pub ids_file: PathBuf,
}

/// Runs an issuer command.
pub fn run(command: IssuerCommand) -> Result<()> {
    match command {
        IssuerCommand::Enrol(args) => enrol(args),
    }
}

fn enrol(args: EnrolArgs) -> Result<()> {
    let config = ServerConfig::load(&args.config, &ProcessEnv)
        .with_context(|| format!("config {}", args.config.display()))?;
    if config.role != ServerRole::Issuer {
        bail!("{}: role must be \"issuer\"", args.config.display());
    }
    let text = std::fs::read_to_string(&args.ids_file)
        .with_context(|| format!("reading {}", args.ids_file.display()))?;
    let hasher = IdHasher::from_config(&config)?;
    let store = SqliteStore::open(&config.database)
        .with_context(|| format!("database {}", config.database.display()))?;
    let added = enrol_ids(&store, &hasher, &text)
        .with_context(|| format!("{}", args.ids_file.display()))?;
    println!("enrolled {added} new ids");
    Ok(())
}
