//! Server configuration: a TOML file, `HOTSPOT_`-prefixed environment overrides, and secrets
//! (HPKE private keys, the Poplar1 verification key) read only from the environment or from
//! files, never from the TOML itself and never printed.
//!
//! ```toml
//! role = "leader"                      # leader | helper | collector | issuer
//! listen = "127.0.0.1:7001"            # gRPC
//! admin_listen = "127.0.0.1:9001"      # /healthz /readyz /metrics
//! database = "leader.sqlite"
//! tasks = ["task.toml"]                # relative to this file
//! helper_url = "http://127.0.0.1:7002" # leader only
//! leader_url = "http://127.0.0.1:7001" # collector only
//! hpke_key_files = [{ key_id = 1, path = "leader.hpke" }]   # 64 hex digits each
//! verify_key_file = "verify.key"       # leader and helper: 64 hex digits
//! credential_key_file = "cred.key"     # leader, helper, issuer: credential master secret
//! issuer_hash_key_file = "ids.key"     # issuer: keys the hashes of enrolment ids and codes
//! issuer_token_file = "ha.token"       # issuer: the health authority's bearer token
//! job_size = 1000
//! dashboard_token_file = "dashboard.token"  # collector: dashboard on admin_listen (see docs/dashboard.md)
//! exposure_key_file = "exposure.key"   # collector: Ed25519 seed (64 hex digits) signing /exposure-list
//! registry_key_file = "registry.key"   # collector: the registry's key (`hotspot venue keygen`), signs posters
//! payload_host = "checkin.example.org" # collector: host of the payload URLs it signs
//! [[webhooks]]                         # collector: alert receivers, one table each
//! name = "ops"
//! url = "https://alerts.example/hook"
//! key_file = "ops.hmac"                # HMAC key, hex (>= 64 digits); or key_env = "VAR"
//! [tls]                                # optional mTLS between leader and helper
//! cert = "node.pem"
//! key = "node.key"
//! ca = "ca.pem"
//!
//! [[venues]]                           # collector: the venue registry, one entry per venue
//! code = 3735928559                    # non-zero, fits every task's `bits`
//! name = "Café du Nord"                # 1 to 80 characters
//! address = "1 rue du Nord"            # optional, at most 120 characters
//! lat = 48.86                          # degrees
//! lon = 2.35
//! category = "restaurant"              # a snake_case venue category
//! capacity = 40                        # persons, at least 1
//! default_minutes = 90                 # 1 to 1440
//! ```
//!
//! The collector upserts its `[[venues]]` into its database's `venues` table at start; the
//! table is the registry the search and the rules read.
//!
//! Overrides: `HOTSPOT_LISTEN`, `HOTSPOT_ADMIN_LISTEN`, `HOTSPOT_DATABASE`,
//! `HOTSPOT_HELPER_URL`, `HOTSPOT_LEADER_URL`, `HOTSPOT_JOB_SIZE`. Secrets:
//! `HOTSPOT_HPKE_KEY` (`<key_id>:<64 hex digits>`, replaces the key files),
//! `HOTSPOT_VERIFY_KEY` (64 hex digits, replaces the verify key file),
//! `HOTSPOT_CREDENTIAL_KEY`, `HOTSPOT_ISSUER_HASH_KEY` (64 hex digits each),
//! `HOTSPOT_ISSUER_TOKEN`, `HOTSPOT_DASHBOARD_TOKEN` and `HOTSPOT_EXPOSURE_KEY` (each replaces
//! the file of the same name), `HOTSPOT_REGISTRY_KEY` (64 hex digits, the registry key's
//! secret; replaces `registry_key_file`). `HOTSPOT_PAYLOAD_HOST` overrides `payload_host`.
//!
//! With a registry key the collector serves the `Registry` service (crates/server `registry`)
//! to holders of its dashboard token.
//!
//! The issuer needs no task and no HPKE key: `tasks` may be left out of its file.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroizing;

use hotspot_core::envelope::{HpkeKeypair, HpkeKeyring};
use hotspot_core::task::{TaskConfig, TaskId, decode_hex};
use hotspot_core::venue::VenueCategory;

use hotspot_client::registry::RegistryKey;

use crate::registry::VenueField;
use crate::storage::VenueRecord;

/// Host of payload URLs when the configuration names none.
pub const DEFAULT_PAYLOAD_HOST: &str = "checkin.hotspot.example";

/// Errors loading a configuration. Each names the field or variable at fault; none carries a
/// secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML did not parse.
    #[error("{path}: {message}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A field or variable has an invalid value.
    #[error("`{field}`: {reason}")]
    Field {
        /// The field or environment variable.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A task file is invalid.
    #[error("task file {path}: {source}")]
    Task {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: hotspot_core::task::TaskError,
    },
}

/// A [`ConfigError::Field`] naming `field`.
pub(crate) fn field(field: impl Into<String>, reason: impl ToString) -> ConfigError {
    ConfigError::Field {
        field: field.into(),
        reason: reason.to_string(),
    }
}

/// Which role a server plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerRole {
    /// Takes uploads, drives aggregation.
    Leader,
    /// The second aggregator.
    Helper,
    /// The health authority: drives the search, stores and serves alerts.
    Collector,
    /// Issues anonymous upload credentials to enrolled devices and diagnosed people.
    Issuer,
}

impl ServerRole {
    /// The role's name as the config and the command line spell it.
    pub fn name(self) -> &'static str {
        match self {
            ServerRole::Leader => "leader",
            ServerRole::Helper => "helper",
            ServerRole::Collector => "collector",
            ServerRole::Issuer => "issuer",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigToml {
    role: ServerRole,
    listen: String,
    admin_listen: Option<String>,
    database: PathBuf,
    #[serde(default)]
    tasks: Vec<PathBuf>,
    helper_url: Option<String>,
    leader_url: Option<String>,
    #[serde(default)]
    hpke_key_files: Vec<KeyFile>,
    verify_key_file: Option<PathBuf>,
    credential_key_file: Option<PathBuf>,
    issuer_hash_key_file: Option<PathBuf>,
    issuer_token_file: Option<PathBuf>,
    job_size: Option<usize>,
    search_poll_seconds: Option<u64>,
    tls: Option<TlsToml>,
    dashboard_token_file: Option<PathBuf>,
    exposure_key_file: Option<PathBuf>,
    #[serde(default)]
    webhooks: Vec<crate::dashboard::WebhookToml>,
    #[serde(default)]
    venues: Vec<VenueToml>,
    registry_key_file: Option<PathBuf>,
    payload_host: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VenueToml {
    code: u64,
    name: String,
    #[serde(default)]
    address: String,
    lat: f64,
    lon: f64,
    category: String,
    capacity: u32,
    default_minutes: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    key_id: u32,
    path: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsToml {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

/// PEM material for mTLS between leader and helper.
#[derive(Clone)]
pub struct TlsFiles {
    /// This node's certificate chain (PEM).
    pub cert: Vec<u8>,
    /// This node's private key (PEM). Secret.
    pub key: Zeroizing<Vec<u8>>,
    /// The CA that signs the peer's certificate (PEM).
    pub ca: Vec<u8>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsFiles(<redacted key>)")
    }
}

/// A loaded, checked configuration.
#[derive(Debug)]
pub struct ServerConfig {
    /// The role.
    pub role: ServerRole,
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Admin HTTP listen address, if any.
    pub admin_listen: Option<SocketAddr>,
    /// SQLite file.
    pub database: PathBuf,
    /// Tasks by id.
    pub tasks: HashMap<TaskId, TaskConfig>,
    /// The helper's URL (leader).
    pub helper_url: Option<String>,
    /// The leader's URL (collector).
    pub leader_url: Option<String>,
    /// This server's HPKE keys (redacted in `Debug`).
    pub keyring: HpkeKeyring,
    /// The Poplar1 verification key shared by leader and helper.
    pub verify_key: Option<VerifyKey>,
    /// The credential master secret: every day's issuer key is derived from it (issuer,
    /// leader, helper).
    pub credential_key: Option<Secret32>,
    /// The key of the issuer's hashes of enrolment ids and diagnosis codes.
    pub issuer_hash_key: Option<Secret32>,
    /// The bearer token the health authority presents to register diagnosis codes (issuer).
    pub issuer_token: Option<Token>,
    /// start.
    pub venues: Vec<VenueRecord>,
    /// Reports per aggregation job.
    pub job_size: usize,
    /// How often the collector looks for sealed batches, in seconds (0: never).
    pub search_poll_seconds: u64,
    /// mTLS material, when configured.
    pub tls: Option<TlsFiles>,
    /// The collector's dashboard token, exposure-list key and webhooks.
    pub dashboard: crate::dashboard::DashboardConfig,
    /// The registry's signing key (collector): with it, the `Registry` service is served.
    pub registry_key: Option<std::sync::Arc<RegistryKey>>,
    /// Host of the venue payload URLs the registry signs.
    pub payload_host: String,
}

/// The 32-byte Poplar1 verification key. Zeroized on drop, never printed.
#[derive(Clone)]
pub struct VerifyKey(pub Zeroizing<[u8; 32]>);

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyKey(<redacted>)")
    }
}

/// A 32-byte secret from a file or the environment. Zeroized on drop, never printed.
#[derive(Clone)]
pub struct Secret32(pub Zeroizing<[u8; 32]>);

impl std::fmt::Debug for Secret32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret32(<redacted>)")
    }
}

/// A bearer token. Zeroized on drop, never printed; compared in constant time.
#[derive(Clone)]
pub struct Token(pub Zeroizing<String>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Shortest accepted bearer token, in characters.
pub const MIN_TOKEN_LEN: usize = 32;

/// Where environment variables come from (a seam for tests).
pub trait Env {
    /// The variable's value, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl ServerConfig {
    /// Loads `path`, applies the `HOTSPOT_` overrides of `env` and reads the secrets.
    pub fn load(path: &Path, env: &dyn Env) -> Result<Self, ConfigError> {
        let text = read(path)?;
        let raw: ConfigToml = toml::from_str(&text).map_err(|e| ConfigError::Toml {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        build(raw, base, env)
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// [`read`] for a secret: the text is zeroized on drop.
pub(crate) fn read_secret(path: &Path) -> Result<Zeroizing<String>, ConfigError> {
    read(path).map(Zeroizing::new)
}

/// A secret from the variable `var` when it is set, else from `file` (relative to `base`),
/// with the name to blame for a bad value: `var`, or `file_field` for the file.
pub(crate) fn env_or_file(
    env: &dyn Env,
    base: &Path,
    var: &str,
    file_field: &str,
    file: Option<&Path>,
) -> Result<Option<(String, Zeroizing<String>)>, ConfigError> {
    if let Some(value) = env.var(var) {
        return Ok(Some((var.to_owned(), Zeroizing::new(value))));
    }
    file.map(|p| Ok((file_field.to_owned(), read_secret(&base.join(p))?)))
        .transpose()
}

/// A 32-byte hex secret from the variable `var` or from `file` (see [`env_or_file`]).
fn env_or_file_secret32(
    env: &dyn Env,
    base: &Path,
    var: &str,
    file_field: &str,
    file: Option<&Path>,
) -> Result<Option<Zeroizing<[u8; 32]>>, ConfigError> {
    env_or_file(env, base, var, file_field, file)?
        .map(|(name, text)| parse_secret32(&name, &text))
        .transpose()
}

fn build(raw: ConfigToml, base: &Path, env: &dyn Env) -> Result<ServerConfig, ConfigError> {
    let over = |name: &str, value: Option<String>| env.var(name).or(value);
    let listen = parse_addr(
        "listen",
        &over("HOTSPOT_LISTEN", Some(raw.listen)).unwrap_or_default(),
    )?;
    let admin_listen = over("HOTSPOT_ADMIN_LISTEN", raw.admin_listen)
        .map(|a| parse_addr("admin_listen", &a))
        .transpose()?;
    let database = env
        .var("HOTSPOT_DATABASE")
        .map(PathBuf::from)
        .unwrap_or_else(|| base.join(raw.database));
    let job_size = match env.var("HOTSPOT_JOB_SIZE") {
        Some(v) => v
            .parse()
            .map_err(|_| field("HOTSPOT_JOB_SIZE", "not a number"))?,
        None => raw.job_size.unwrap_or(2_000),
    };
    if job_size == 0 {
        return Err(field("job_size", "must be positive"));
    }

    // Tasks.
    let mut tasks = HashMap::new();
    for file in &raw.tasks {
        let path = base.join(file);
        let task = TaskConfig::from_toml(&read(&path)?).map_err(|source| ConfigError::Task {
            path: path.clone(),
            source,
        })?;
        tasks.insert(task.id, task);
    }
    if tasks.is_empty() && raw.role != ServerRole::Issuer {
        return Err(field("tasks", "at least one task file is needed"));
    }

    // Secrets.
    let keyring = load_keyring(&raw.hpke_key_files, base, env)?;
    let secret32 = |var: &str, name: &str, file: Option<PathBuf>| {
        env_or_file_secret32(env, base, var, name, file.as_deref())
    };
    let verify_key =
        secret32("HOTSPOT_VERIFY_KEY", "verify_key_file", raw.verify_key_file)?.map(VerifyKey);
    let credential_key = secret32(
        "HOTSPOT_CREDENTIAL_KEY",
        "credential_key_file",
        raw.credential_key_file,
    )?
    .map(Secret32);
    let issuer_hash_key = secret32(
        "HOTSPOT_ISSUER_HASH_KEY",
        "issuer_hash_key_file",
        raw.issuer_hash_key_file,
    )?
    .map(Secret32);
    let issuer_token = env_or_file(
        env,
        base,
        "HOTSPOT_ISSUER_TOKEN",
        "issuer_token_file",
        raw.issuer_token_file.as_deref(),
    )?
    .map(|(name, text)| parse_token(&name, &text))
    .transpose()?;
    let venues = parse_venues(&raw.venues, &tasks, crate::now_unix())?;
    let tls = raw.tls.map(|t| load_tls(&t, base)).transpose()?;
    let dashboard = crate::dashboard::DashboardConfig::load(
        raw.dashboard_token_file.as_deref(),
        raw.exposure_key_file.as_deref(),
        &raw.webhooks,
        base,
        env,
    )?;

    let registry_key = match env.var("HOTSPOT_REGISTRY_KEY") {
        Some(hex) => Some(RegistryKey::from_secret(&*parse_secret32(
            "HOTSPOT_REGISTRY_KEY",
            &hex,
        )?)),
        None => raw
            .registry_key_file
            .map(|p| {
                RegistryKey::load(&base.join(p))
                    .map_err(|e| field("registry_key_file", e.to_string()))
            })
            .transpose()?,
    }
    .map(std::sync::Arc::new);
    let payload_host = over("HOTSPOT_PAYLOAD_HOST", raw.payload_host)
        .unwrap_or_else(|| DEFAULT_PAYLOAD_HOST.to_owned());
    if payload_host.is_empty()
        || !payload_host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:".contains(c))
    {
        return Err(field(
            "payload_host",
            "must be a host name like checkin.example.org",
        ));
    }

    let config = ServerConfig {
        role: raw.role,
        listen,
        admin_listen,
        database,
        tasks,
        helper_url: over("HOTSPOT_HELPER_URL", raw.helper_url),
        leader_url: over("HOTSPOT_LEADER_URL", raw.leader_url),
        keyring,
        verify_key,
        credential_key,
        issuer_hash_key,
        issuer_token,
        venues,
        job_size,
        search_poll_seconds: raw.search_poll_seconds.unwrap_or(5),
        tls,
        dashboard,
        registry_key,
        payload_host,
    };
    check_role(&config)?;
    Ok(config)
}

fn check_role(c: &ServerConfig) -> Result<(), ConfigError> {
    if c.registry_key.is_some() {
        if c.role != ServerRole::Collector {
            return Err(field(
                "registry_key_file",
                "only the collector keeps the venue registry",
            ));
        }
        if c.dashboard.token.is_none() {
            return Err(field(
                "registry_key_file",
                "the registry needs the collector's bearer token (dashboard_token_file)",
            ));
        }
    }
    // What only the collector holds is refused for every other role, the issuer included.
    crate::dashboard::check_config(c)?;
    if c.role != ServerRole::Collector && !c.venues.is_empty() {
        return Err(field(
            "venues",
            "only the collector keeps the venue registry",
        ));
    }
    if c.role == ServerRole::Issuer {
        return match (&c.credential_key, &c.issuer_hash_key) {
            (None, _) => Err(field(
                "credential_key_file",
                "the issuer needs the credential master secret (or HOTSPOT_CREDENTIAL_KEY)",
            )),
            (_, None) => Err(field(
                "issuer_hash_key_file",
                "the issuer needs the key of its identifier hashes (or HOTSPOT_ISSUER_HASH_KEY)",
            )),
            _ => Ok(()),
        };
    }
    if c.keyring.public_keys().is_empty() {
        return Err(field(
            "hpke_key_files",
            "this role needs its HPKE private key",
        ));
    }
    match c.role {
        ServerRole::Leader if c.helper_url.is_none() => {
            Err(field("helper_url", "the leader needs it"))
        }
        ServerRole::Collector if c.leader_url.is_none() => {
            Err(field("leader_url", "the collector needs it"))
        }
        ServerRole::Leader | ServerRole::Helper if c.verify_key.is_none() => Err(field(
            "verify_key_file",
            "aggregators need the Poplar1 verification key (or HOTSPOT_VERIFY_KEY)",
        )),
        ServerRole::Leader | ServerRole::Helper if c.credential_key.is_none() => Err(field(
            "credential_key_file",
            "aggregators need the credential master secret to verify presentations \
             (or HOTSPOT_CREDENTIAL_KEY)",
        )),
        _ => Ok(()),
    }
}

fn parse_addr(name: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|_| {
        field(
            name,
            format!("`{text}` is not an address like 127.0.0.1:7001"),
        )
    })
}

fn parse_secret32(name: &str, text: &str) -> Result<Zeroizing<[u8; 32]>, ConfigError> {
    parse_secret32_or(name, text, "expected 64 hex digits")
}

/// 64 hex digits (surrounding whitespace ignored) as 32 bytes; otherwise a field error naming
/// `name` with `reason`.
pub(crate) fn parse_secret32_or(
    name: &str,
    text: &str,
    reason: &str,
) -> Result<Zeroizing<[u8; 32]>, ConfigError> {
    let bytes = Zeroizing::new(decode_hex(text.trim()).unwrap_or_default());
    let mut out = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(field(name, reason));
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}

fn parse_token(name: &str, text: &str) -> Result<Token, ConfigError> {
    let token = text.trim();
    if token.len() < MIN_TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(field(
            name,
            format!("expected at least {MIN_TOKEN_LEN} visible ASCII characters"),
        ));
    }
    Ok(Token(Zeroizing::new(token.to_string())))
}

fn load_keyring(files: &[KeyFile], base: &Path, env: &dyn Env) -> Result<HpkeKeyring, ConfigError> {
    if let Some(value) = env.var("HOTSPOT_HPKE_KEY") {
        let (id, hex) = value
            .split_once(':')
            .ok_or_else(|| field("HOTSPOT_HPKE_KEY", "expected <key_id>:<64 hex digits>"))?;
        let id = id
            .parse()
            .map_err(|_| field("HOTSPOT_HPKE_KEY", "key id is not a number"))?;
        return Ok(HpkeKeyring::new(vec![keypair(
            "HOTSPOT_HPKE_KEY",
            id,
            hex,
        )?]));
    }
    let mut keys = Vec::new();
    for f in files {
        keys.push(keypair(
            "hpke_key_files",
            f.key_id,
            &read(&base.join(&f.path))?,
        )?);
    }
    Ok(HpkeKeyring::new(keys))
}

fn keypair(name: &str, key_id: u32, hex: &str) -> Result<HpkeKeypair, ConfigError> {
    let secret = parse_secret32(name, hex)?;
    HpkeKeypair::from_secret_bytes(key_id, secret.as_ref())
        .map_err(|_| field(name, "not an X25519 private key"))
}

/// Checks every `[[venues]]` entry; errors name the entry and field (`venues[2].capacity`).
fn parse_venues(
    entries: &[VenueToml],
    tasks: &HashMap<TaskId, TaskConfig>,
    now: u64,
) -> Result<Vec<VenueRecord>, ConfigError> {
    let min_bits = tasks.values().map(|t| t.bits).min().unwrap_or(64);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for (i, v) in entries.iter().enumerate() {
        let bad = |name: &str, reason: &str| field(format!("venues[{i}].{name}"), reason);
        if !seen.insert(v.code) {
            return Err(bad("code", "registered twice"));
        }
        let category: VenueCategory = v
            .category
            .parse()
            .map_err(|e: hotspot_core::venue::VenueError| bad("category", &e.to_string()))?;
        let record = VenueRecord {
            code: v.code,
            name: v.name.clone(),
            address: v.address.clone(),
            lat: v.lat,
            lon: v.lon,
            category,
            capacity: v.capacity,
            default_minutes: v.default_minutes,
            registered_unix: now,
        };
        crate::registry::check_venue(&record, min_bits).map_err(|e| {
            let name = match e.field {
                VenueField::Code => "code",
                VenueField::Latitude => "lat",
                VenueField::Longitude => "lon",
                other => other.name(),
            };
            bad(name, &e.reason)
        })?;
        out.push(record);
    }
    Ok(out)
}

fn load_tls(t: &TlsToml, base: &Path) -> Result<TlsFiles, ConfigError> {
    let bytes = |p: &Path| {
        std::fs::read(base.join(p)).map_err(|source| ConfigError::Read {
            path: base.join(p),
            source,
        })
    };
    Ok(TlsFiles {
        cert: bytes(&t.cert)?,
        key: Zeroizing::new(bytes(&t.key)?),
        ca: bytes(&t.ca)?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    struct MapEnv(HashMap<&'static str, String>);

    impl Env for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    fn write_setup(dir: &Path) -> PathBuf {
        let task = TaskConfig {
            id: TaskId([1; 32]),
            window_seconds: 60,
            grace_seconds: 5,
            threshold: 2,
            privacy: hotspot_core::task::PrivacyParams::default_for(60),
            ..TaskConfig::example(hotspot_core::task::TaskKind::Crowding)
        };
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("task.toml"), task.to_toml()).unwrap();
        std::fs::write(dir.join("k.hpke"), "11".repeat(32)).unwrap();
        std::fs::write(dir.join("v.key"), "22".repeat(32)).unwrap();
        std::fs::write(dir.join("c.key"), "33".repeat(32)).unwrap();
        let path = dir.join("leader.toml");
        std::fs::write(
            &path,
            "role = \"leader\"\nlisten = \"127.0.0.1:7001\"\ndatabase = \"l.sqlite\"\n\
             tasks = [\"task.toml\"]\nhelper_url = \"http://127.0.0.1:7002\"\n\
             hpke_key_files = [{ key_id = 1, path = \"k.hpke\" }]\nverify_key_file = \"v.key\"\n\
             credential_key_file = \"c.key\"\n",
        )
        .unwrap();
        path
    }

    fn dir(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("hotspot-config-{}-{name}", std::process::id()))
    }

    #[test]
    fn environment_overrides_the_file() {
        let path = write_setup(&dir("env"));
        let env = MapEnv(HashMap::from([(
            "HOTSPOT_LISTEN",
            "127.0.0.1:9999".to_string(),
        )]));
        let config = ServerConfig::load(&path, &env).unwrap();
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.tasks.len(), 1);
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let path = write_setup(&dir("debug"));
        let config = ServerConfig::load(&path, &MapEnv(HashMap::new())).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("17, 17"), "{shown}");
        assert!(!shown.contains("34, 34"), "{shown}");
        assert!(!shown.contains("51, 51"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    const VENUE: &str = "[[venues]]\ncode = 7\nname = \"Nord\"\naddress = \"1 Main St\"\n\
                         lat = 48.5\nlon = 2.25\ncategory = \"bar\"\ncapacity = 40\n\
                         default_minutes = 90\n";

    /// The setup's leader turned collector, with `venues` appended.
    fn collector_with(dir_name: &str, venues: &str) -> Result<ServerConfig, ConfigError> {
        let path = write_setup(&dir(dir_name));
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("role = \"leader\"", "role = \"collector\"")
            .replace("helper_url", "leader_url");
        std::fs::write(&path, format!("{text}{venues}")).unwrap();
        ServerConfig::load(&path, &MapEnv(HashMap::new()))
    }

    #[test]
    fn a_registry_key_needs_the_collector_and_its_token() {
        let path = write_setup(&dir("registry"));
        let leader_text = std::fs::read_to_string(&path).unwrap();
        let key = ("HOTSPOT_REGISTRY_KEY", "44".repeat(32));
        let token = ("HOTSPOT_DASHBOARD_TOKEN", "a-long-enough-token".to_string());
        let err = ServerConfig::load(&path, &MapEnv(HashMap::from([key.clone()]))).unwrap_err();
        assert!(err.to_string().contains("registry_key_file"), "{err}");

        let collector = leader_text
            .replace("role = \"leader\"", "role = \"collector\"")
            .replace("helper_url", "leader_url")
            + "admin_listen = \"127.0.0.1:9003\"\n";
        std::fs::write(&path, &collector).unwrap();
        let err = ServerConfig::load(&path, &MapEnv(HashMap::from([key.clone()]))).unwrap_err();
        assert!(err.to_string().contains("bearer token"), "{err}");
        let config = ServerConfig::load(&path, &MapEnv(HashMap::from([key, token]))).unwrap();
        assert!(config.registry_key.is_some());
        assert_eq!(config.payload_host, DEFAULT_PAYLOAD_HOST);
        assert!(!format!("{config:?}").contains(&"44".repeat(8)));

        let bad_host = format!("{collector}payload_host = \"a b\"\n");
        std::fs::write(&path, bad_host).unwrap();
        let err = ServerConfig::load(&path, &MapEnv(HashMap::new())).unwrap_err();
        assert!(err.to_string().contains("payload_host"), "{err}");
    }

    #[test]
    fn venues_are_read_with_their_category() {
        let config = collector_with("venues", VENUE).unwrap();
        assert_eq!(config.venues.len(), 1);
        let v = &config.venues[0];
        assert_eq!(
            (v.code, v.category, v.capacity),
            (7, VenueCategory::Bar, 40)
        );
        assert_eq!((v.lat, v.lon, v.default_minutes), (48.5, 2.25, 90));
    }

    #[test]
    fn every_venue_rule_names_its_entry_and_field() {
        let long = "x".repeat(81);
        for (from, to, field_name) in [
            ("code = 7", "code = 0", "venues[1].code"),
            ("code = 7", "code = 4294967296", "venues[1].code"),
            ("code = 7", "code = 6", "venues[1].code"),
            ("name = \"Nord\"", "name = \"\"", "venues[1].name"),
            (
                "name = \"Nord\"",
                &format!("name = \"{long}\""),
                "venues[1].name",
            ),
            ("name = \"Nord\"", "name = \"a\\nb\"", "venues[1].name"),
            (
                "address = \"1 Main St\"",
                &format!("address = \"{long}{long}\""),
                "venues[1].address",
            ),
            ("lat = 48.5", "lat = 90.5", "venues[1].lat"),
            ("lat = 48.5", "lat = nan", "venues[1].lat"),
            ("lon = 2.25", "lon = -180.5", "venues[1].lon"),
            (
                "category = \"bar\"",
                "category = \"disco\"",
                "venues[1].category",
            ),
            ("capacity = 40", "capacity = 0", "venues[1].capacity"),
            (
                "default_minutes = 90",
                "default_minutes = 0",
                "venues[1].default_minutes",
            ),
            (
                "default_minutes = 90",
                "default_minutes = 1441",
                "venues[1].default_minutes",
            ),
        ] {
            // The first entry (code 6) is valid; the second carries the fault.
            let first = VENUE.replace("code = 7", "code = 6");
            let second = VENUE.replace(from, to);
            let err = collector_with("venue-rules", &format!("{first}{second}")).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Field { field, .. } if field == field_name),
                "{to}: {err}"
            );
        }
    }

    #[test]
    fn only_the_collector_takes_venues() {
        let path = write_setup(&dir("venues-leader"));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}{VENUE}")).unwrap();
        let err = ServerConfig::load(&path, &MapEnv(HashMap::new())).unwrap_err();
        assert!(
            matches!(err, ConfigError::Field { ref field, .. } if field == "venues"),
            "{err}"
        );
    }

    #[test]
    fn aggregator_without_credential_key_is_refused() {
        let path = write_setup(&dir("nocred"));
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("credential_key_file = \"c.key\"\n", "");
        std::fs::write(&path, text).unwrap();
        let err = ServerConfig::load(&path, &MapEnv(HashMap::new()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("credential_key_file"), "{err}");
    }

    /// A folder with the issuer's two secrets (`c.key`, `h.key`); returns the path its
    /// config is to be written to.
    fn issuer_setup(name: &str) -> PathBuf {
        let d = dir(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("c.key"), "33".repeat(32)).unwrap();
        std::fs::write(d.join("h.key"), "44".repeat(32)).unwrap();
        d.join("issuer.toml")
    }

    #[test]
    fn issuer_needs_no_task_but_its_secrets_and_a_long_token() {
        let path = issuer_setup("issuer");
        let base = "role = \"issuer\"\nlisten = \"127.0.0.1:7004\"\ndatabase = \"i.sqlite\"\n\
                    credential_key_file = \"c.key\"\n";
        std::fs::write(&path, base).unwrap();
        let err = ServerConfig::load(&path, &MapEnv(HashMap::new()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("issuer_hash_key_file"), "{err}");
        std::fs::write(&path, format!("{base}issuer_hash_key_file = \"h.key\"\n")).unwrap();
        let config = ServerConfig::load(&path, &MapEnv(HashMap::new())).unwrap();
        assert_eq!(config.role, ServerRole::Issuer);
        assert!(config.issuer_token.is_none());
        let short = MapEnv(HashMap::from([(
            "HOTSPOT_ISSUER_TOKEN",
            "short".to_string(),
        )]));
        let err = ServerConfig::load(&path, &short).unwrap_err().to_string();
        assert!(
            err.contains("HOTSPOT_ISSUER_TOKEN") && !err.contains("short"),
            "{err}"
        );
        let long = MapEnv(HashMap::from([("HOTSPOT_ISSUER_TOKEN", "t".repeat(40))]));
        let config = ServerConfig::load(&path, &long).unwrap();
        assert!(!format!("{config:?}").contains("tttt"));
    }

    #[test]
    fn issuer_refuses_what_only_the_collector_holds() {
        let path = issuer_setup("issuer-collector-only");
        std::fs::write(path.with_file_name("d.token"), "d".repeat(40)).unwrap();
        let base = "role = \"issuer\"\nlisten = \"127.0.0.1:7004\"\ndatabase = \"i.sqlite\"\n\
                    admin_listen = \"127.0.0.1:7005\"\n\
                    credential_key_file = \"c.key\"\nissuer_hash_key_file = \"h.key\"\n";
        for (extra, named) in [
            (VENUE, "venues"),
            (
                "dashboard_token_file = \"d.token\"\n",
                "dashboard_token_file",
            ),
        ] {
            // Top-level keys go before the first table.
            let text = if extra.starts_with("[[") {
                format!("{base}{extra}")
            } else {
                format!("{extra}{base}")
            };
            std::fs::write(&path, text).unwrap();
            let err = ServerConfig::load(&path, &MapEnv(HashMap::new()))
                .unwrap_err()
                .to_string();
            assert!(err.contains(named), "{named}: {err}");
        }
    }

    #[test]
    fn bad_secret_names_the_variable_not_the_value() {
        let path = write_setup(&dir("bad"));
        let env = MapEnv(HashMap::from([(
            "HOTSPOT_VERIFY_KEY",
            "zz-secret".to_string(),
        )]));
        let err = ServerConfig::load(&path, &env).unwrap_err().to_string();
        assert!(err.contains("HOTSPOT_VERIFY_KEY"), "{err}");
        assert!(!err.contains("zz-secret"), "{err}");
    }
}
