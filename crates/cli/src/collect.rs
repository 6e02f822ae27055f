//! `hotspot collect ...`: the health authority's commands.
//!
//! `hotspot collect diagnosis-code --issuer URL` mints a one-time diagnosis code (80 random
//! bits, printed once, in groups of four), registers its digest with the issuer over gRPC
//! with the health authority's bearer token, and prints the code on stdout for the person
//! diagnosed. The issuer never sees the code until that person uses it, and keeps only a
//! keyed hash of its digest. Registration goes over the network rather than into the issuer's
//! database because the health authority and the issuer may be different organisations on
//! different machines; the token is read from a file or `HOTSPOT_ISSUER_TOKEN`, never from the
//! command line (where other users of the machine could read it).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use tonic::metadata::MetadataValue;

use hotspot_core::credential::DiagnosisCode;
use hotspot_proto::v1;

/// `hotspot collect`.
#[derive(Debug, Subcommand)]
pub enum CollectCommand {
    /// Mint a one-time diagnosis code and register it with the issuer.
    DiagnosisCode(DiagnosisCodeArgs),
}

/// `hotspot collect diagnosis-code` options.
#[derive(Debug, Args)]
pub struct DiagnosisCodeArgs {
    /// The issuer's URL.
    #[arg(long, env = "HOTSPOT_ISSUER_URL")]
    pub issuer: String,
    /// File holding the health authority's bearer token (or set `HOTSPOT_ISSUER_TOKEN`).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Days the code stays usable (1 to 30).
    #[arg(long, default_value_t = 3)]
    pub valid_days: u32,
}

/// Runs a collector-side command.
pub fn run(command: CollectCommand) -> Result<()> {
    match command {
        CollectCommand::DiagnosisCode(args) => diagnosis_code(args),
    }
}

fn token(args: &DiagnosisCodeArgs) -> Result<zeroize::Zeroizing<String>> {
    let text = match (&args.token_file, std::env::var("HOTSPOT_ISSUER_TOKEN")) {
        (Some(path), _) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, Ok(token)) => token,
        (None, Err(_)) => bail!("--token-file or HOTSPOT_ISSUER_TOKEN is needed"),
    };
    Ok(zeroize::Zeroizing::new(text.trim().to_string()))
}

fn diagnosis_code(args: DiagnosisCodeArgs) -> Result<()> {
    if !(1..=30).contains(&args.valid_days) {
        bail!("--valid-days: must be 1 to 30");
    }
    let token = token(&args)?;
    let mut bearer: MetadataValue<_> = format!("Bearer {}", token.as_str())
        .parse()
        .context("the token is not a valid header value")?;
    bearer.set_sensitive(true);
    let code = DiagnosisCode::generate(&mut rand::rng());
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let expires = runtime.block_on(async {
        let mut client = v1::issuance_client::IssuanceClient::connect(args.issuer.clone())
            .await
            .with_context(|| format!("connecting to the issuer at {}", args.issuer))?;
        let mut request = tonic::Request::new(v1::RegisterDiagnosisCodeRequest {
            code_digest: code.digest().to_vec(),
            valid_seconds: args.valid_days * 86_400,
        });
        request.metadata_mut().insert("authorization", bearer);
        let reply = client
            .register_diagnosis_code(request)
            .await
            .map_err(|s| anyhow::anyhow!("issuer refused ({:?}): {}", s.code(), s.message()))?;
        anyhow::Ok(reply.into_inner().expires_unix)
    })?;
    eprintln!("diagnosis code registered; valid until unix time {expires}; shown once:");
    println!("{}", code.display().as_str());
    Ok(())
}
