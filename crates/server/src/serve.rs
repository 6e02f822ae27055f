//! Starts one role: opens its database, builds its gRPC services with health and reflection,
//! the admin port, optional mTLS between leader and helper, and stops gracefully when the
//! shutdown future resolves (the binary wires it to SIGTERM and Ctrl-C): the listeners stop
//! accepting, requests in flight finish, the upload committer drains.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig,
};

use hotspot_proto::v1;

use crate::collector::CollectorService;
use crate::config::{ServerConfig, ServerRole, TlsFiles};
use crate::helper::AggregationService;
use crate::issuer::IssuanceService;
use crate::leader::CollectionService;
use crate::node::Node;
use crate::registry::RegistryService;
use crate::storage::Store;
use crate::storage::sqlite::SqliteStore;
use crate::upload::{Committer, ProofChecker, UploadService};

/// Errors starting or running a role.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The database could not be opened.
    #[error("database {path}: {source}")]
    Store {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: crate::storage::StoreError,
    },
    /// The node could not be built from the config.
    #[error(transparent)]
    Node(#[from] crate::node::NodeError),
    /// A peer URL or TLS setting is invalid.
    #[error("{0}")]
    Config(String),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The admin server failed.
    #[error("admin server: {0}")]
    Admin(#[from] std::io::Error),
    /// The issuer could not be set up.
    #[error(transparent)]
    Issuer(#[from] crate::issuer::IssuerError),
}

/// Runs the role of `config` until `shutdown` resolves.
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let store =
        Arc::new(
            SqliteStore::open(&config.database).map_err(|source| ServeError::Store {
                path: config.database.clone(),
                source,
            })?,
        );
    for venue in &config.venues {
        store.put_venue(venue).map_err(|source| ServeError::Store {
            path: config.database.clone(),
            source,
        })?;
    }
    let node = Arc::new(Node::new(&config, store.clone())?);
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = move |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    // The collector's dashboard, exposure list and webhook dispatchers.
    let mut dashboard = None;
    if config.role == ServerRole::Collector {
        let tasks = config.tasks.values().cloned();
        let mounted = crate::dashboard::mount(&config.dashboard, store.clone(), tasks)
            .map_err(|e| ServeError::Config(format!("webhooks: {e}")))?;
        for dispatcher in mounted.dispatchers {
            tokio::spawn(dispatcher.run(stopped(stop_rx.clone())));
        }
        dashboard = mounted.router;
    }

    // Admin port (bound here, so that a port in use fails the start).
    if let Some(addr) = config.admin_listen {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        if dashboard.is_some() {
            tracing::info!(url = %format!("http://{addr}/dashboard"), "dashboard served");
        }
        let metrics = crate::admin::install_metrics();
        let (node, stop) = (Arc::clone(&node), stopped(stop_rx.clone()));
        tokio::spawn(async move {
            if let Err(e) =
                crate::admin::serve_admin(listener, node, metrics, dashboard, stop).await
            {
                tracing::error!(error = %e, "admin server failed");
            }
        });
    }

    // gRPC: health, reflection and the role's services.
    let (health, health_service) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(hotspot_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Config(format!("reflection: {e}")))?;
    let mut server = Server::builder();
    if let (ServerRole::Helper, Some(tls)) = (config.role, &config.tls) {
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(&tls.cert, tls.key.as_slice()))
            .client_ca_root(Certificate::from_pem(&tls.ca));
        server = server.tls_config(tls)?;
    }
    let router = server.add_service(health_service).add_service(reflection);
    let router = match config.role {
        ServerRole::Leader => {
            let helper = peer_channel(config.helper_url.as_deref(), config.tls.as_ref())?;
            let committer = Committer::spawn(Arc::clone(&node.store));
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            let checker = ProofChecker::spawn(cores);
            health
                .set_serving::<v1::upload_server::UploadServer<UploadService>>()
                .await;
            router
                .add_service(v1::upload_server::UploadServer::new(UploadService::new(
                    Arc::clone(&node),
                    checker,
                    committer,
                )))
                .add_service(
                    v1::collection_server::CollectionServer::new(CollectionService::new(
                        Arc::clone(&node),
                        v1::aggregation_client::AggregationClient::new(helper)
                            .max_decoding_message_size(256 << 20)
                            .max_encoding_message_size(256 << 20),
                    ))
                    .max_decoding_message_size(64 << 20)
                    .max_encoding_message_size(64 << 20),
                )
        }
        ServerRole::Helper => {
            health
                .set_serving::<v1::aggregation_server::AggregationServer<AggregationService>>()
                .await;
            router.add_service(
                v1::aggregation_server::AggregationServer::new(AggregationService::new(
                    Arc::clone(&node),
                ))
                .max_decoding_message_size(256 << 20)
                .max_encoding_message_size(256 << 20),
            )
        }
        ServerRole::Collector => {
            let leader = peer_channel(config.leader_url.as_deref(), None)?;
            let client = v1::collection_client::CollectionClient::new(leader)
                .max_decoding_message_size(64 << 20);
            let service = CollectorService::new(Arc::clone(&node), client);
            if config.search_poll_seconds > 0 {
                tokio::spawn(
                    service
                        .clone()
                        .poll_sealed(Duration::from_secs(config.search_poll_seconds)),
                );
            }
            health
                .set_serving::<v1::collector_server::CollectorServer<CollectorService>>()
                .await;
            let registry = match (&config.registry_key, &config.dashboard.token) {
                (Some(key), Some(token)) => Some(v1::registry_server::RegistryServer::new(
                    RegistryService::new(
                        Arc::clone(&node),
                        Arc::clone(key),
                        config.payload_host.clone(),
                        token.clone(),
                    ),
                )),
                _ => None,
            };
            router
                .add_service(v1::collector_server::CollectorServer::new(service))
                .add_optional_service(registry)
        }
        ServerRole::Issuer => {
            let service = IssuanceService::new(&config, store)?;
            tokio::spawn(service.clone().prune());
            health
                .set_serving::<v1::issuance_server::IssuanceServer<IssuanceService>>()
                .await;
            router.add_service(v1::issuance_server::IssuanceServer::new(service))
        }
    };
    tracing::info!(role = ?config.role, listen = %config.listen, "serving");
    router
        .serve_with_shutdown(config.listen, stopped(stop_rx))
        .await?;
    tracing::info!("stopped");
    Ok(())
}

/// A lazily connected channel to a peer, with mTLS when configured.
fn peer_channel(url: Option<&str>, tls: Option<&TlsFiles>) -> Result<Channel, ServeError> {
    let url = url.ok_or_else(|| ServeError::Config("peer URL missing".into()))?;
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| ServeError::Config(format!("peer URL `{url}`: {e}")))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(600))
        .tcp_nodelay(true);
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&tls.ca))
                .identity(Identity::from_pem(&tls.cert, tls.key.as_slice())),
        )?;
    }
    Ok(endpoint.connect_lazy())
}
