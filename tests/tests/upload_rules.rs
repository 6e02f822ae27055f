//! Every rejection rule of the leader's upload path, against a real leader process: the exact
//! gRPC status, a message naming the field, and nothing stored. The credential presentation's
//! rules too: forged proof, wrong context, a nonce at or above the limit, the wrong limit, a
//! reused tag, a stale or unknown key, the other credential kind, non-canonical encodings.
//! Also: a duplicated upload is stored once, and counts as a duplicate, not as a reused tag.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use hotspot_cli::cluster::Cluster;
use hotspot_client::credential::IssuerClient;
use hotspot_core::credential::presentation_context;
use hotspot_credentials::{
    CredentialRequest, Day, IssuerKey, REQUEST_CONTEXT_CROWDING, REQUEST_CONTEXT_OUTBREAK, issue,
};
use hotspot_proto::v1;
use rand::SeedableRng;
use tonic::Code;

use common::*;

fn expect_refused(
    result: Result<tonic::Response<v1::UploadResponse>, tonic::Status>,
    code: Code,
    field: &str,
) {
    let status = result.expect_err("upload should be refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(field),
        "message `{}` should name `{field}`",
        status.message()
    );
}

async fn check(cluster: &Cluster, mutate: impl FnOnce(&mut v1::Report), code: Code, field: &str) {
    let window = current_window(cluster);
    let mut report = report(cluster, 5, window);
    mutate(&mut report);
    refused(cluster, report, code, field).await;
}

/// Uploads `report`, expects the refusal, and checks that nothing was stored.
async fn refused(cluster: &Cluster, report: v1::Report, code: Code, field: &str) {
    let before = stored_reports(cluster);
    let mut client = upload_client(cluster).await;
    expect_refused(
        client
            .upload(v1::UploadRequest {
                report: Some(report),
            })
            .await,
        code,
        field,
    );
    assert_eq!(
        stored_reports(cluster),
        before,
        "a refused upload stored something ({field})"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rejection_rule_has_its_status_and_stores_nothing() {
    // Minute windows from ten minutes ago: the current window has closed ones before it, and
    // a check never races a window's end (with windows of seconds it did on a loaded machine).
    let mut cluster = Cluster::prepare(&test_dir("rules"), exe(), &spec(60, vec![5], 100)).unwrap();
    cluster.rewrite_task(|t| t.start_unix -= 600).unwrap();
    let _procs = Procs::start_all(&cluster);

    // A missing report.
    let mut client = upload_client(&cluster).await;
    expect_refused(
        client.upload(v1::UploadRequest { report: None }).await,
        Code::InvalidArgument,
        "report",
    );

    // Identity of the report.
    check(
        &cluster,
        |r| r.task_id.truncate(31),
        Code::InvalidArgument,
        "report.task_id",
    )
    .await;
    check(
        &cluster,
        |r| r.task_id[0] ^= 1,
        Code::NotFound,
        "report.task_id",
    )
    .await;
    check(
        &cluster,
        |r| r.report_id.push(0),
        Code::InvalidArgument,
        "report.report_id",
    )
    .await;

    // Windows: closed, and not yet open.
    check(
        &cluster,
        |r| r.window -= 1,
        Code::FailedPrecondition,
        "report.window",
    )
    .await;
    check(
        &cluster,
        |r| r.window += 1_000,
        Code::FailedPrecondition,
        "report.window",
    )
    .await;

    // Sizes.
    check(
        &cluster,
        |r| r.public_share = vec![0; 9_000],
        Code::ResourceExhausted,
        "report.public_share",
    )
    .await;
    check(
        &cluster,
        |r| r.presentation = vec![0; 3_000],
        Code::ResourceExhausted,
        "report.presentation",
    )
    .await;
    check(
        &cluster,
        |r| r.leader_share.as_mut().unwrap().payload = vec![0; 5_000],
        Code::ResourceExhausted,
        "report.leader_share.payload",
    )
    .await;

    // Shapes and encodings.
    check(
        &cluster,
        |r| r.leader_share = None,
        Code::InvalidArgument,
        "report.leader_share",
    )
    .await;
    check(
        &cluster,
        |r| r.helper_share = None,
        Code::InvalidArgument,
        "report.helper_share",
    )
    .await;
    check(
        &cluster,
        |r| {
            r.leader_share
                .as_mut()
                .unwrap()
                .enc
                .pop()
                .map(drop)
                .unwrap_or(())
        },
        Code::InvalidArgument,
        "report.leader_share.enc",
    )
    .await;
    check(
        &cluster,
        |r| {
            r.helper_share
                .as_mut()
                .unwrap()
                .payload
                .pop()
                .map(drop)
                .unwrap_or(())
        },
        Code::InvalidArgument,
        "report.helper_share.payload",
    )
    .await;
    check(
        &cluster,
        |r| r.public_share.push(0),
        Code::InvalidArgument,
        "report.public_share",
    )
    .await;
    check(
        &cluster,
        |r| r.public_share.truncate(10),
        Code::InvalidArgument,
        "report.public_share",
    )
    .await;

    // Keys.
    check(
        &cluster,
        |r| r.leader_share.as_mut().unwrap().key_id = 77,
        Code::NotFound,
        "report.leader_share.key_id",
    )
    .await;
    check(
        &cluster,
        |r| r.helper_share.as_mut().unwrap().key_id = 77,
        Code::NotFound,
        "report.helper_share.key_id",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_upload_is_acknowledged_and_stored_once() {
    let cluster = Cluster::prepare(&test_dir("dup"), exe(), &spec(60, vec![5], 100)).unwrap();
    let _procs = Procs::start_all(&cluster);
    let report = report(&cluster, 5, current_window(&cluster));
    let mut client = upload_client(&cluster).await;
    let first = client
        .upload(v1::UploadRequest {
            report: Some(report.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    let second = client
        .upload(v1::UploadRequest {
            report: Some(report),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(stored_reports(&cluster), 1);
}

/// A report for the current window carrying `presentation`.
fn with_presentation(cluster: &Cluster, presentation: Vec<u8>) -> v1::Report {
    let mut report = unsigned_report(cluster, 5, current_window(cluster));
    report.presentation = presentation;
    report
}

/// A credential of `kind` issued in process under `key` (what a leaked or forged key gives).
fn local_credential(key: &IssuerKey, kind: &[u8]) -> hotspot_credentials::Credential {
    let mut rng = rand::rng();
    let (pending, request) = CredentialRequest::new(key.public(), kind, &mut rng);
    pending
        .finalize(&issue(key, kind, &request, &mut rng).unwrap())
        .unwrap()
}

async fn upload(
    cluster: &Cluster,
    report: v1::Report,
) -> Result<v1::UploadResponse, tonic::Status> {
    let mut client = upload_client(cluster).await;
    client
        .upload(v1::UploadRequest {
            report: Some(report),
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_presentation_rule_has_its_status_and_stores_nothing() {
    let mut cluster =
        Cluster::prepare(&test_dir("presentation"), exe(), &spec(120, vec![5], 100)).unwrap();
    cluster
        .rewrite_task(|t| t.presentations_per_window = 3)
        .unwrap();
    let _procs = Procs::start_all(&cluster);
    let task = cluster.task.clone();
    let window = window_with_margin(&cluster, 60).await;
    let context = presentation_context(&task, window);
    let mut rng = rand::rng();
    let honest = |rng: &mut rand::rngs::ThreadRng| {
        visitor(&cluster)
            .next_presentation(&task, window, rng)
            .unwrap()
    };

    // Encodings.
    refused(
        &cluster,
        with_presentation(&cluster, Vec::new()),
        Code::InvalidArgument,
        "report.presentation",
    )
    .await;
    let mut truncated = honest(&mut rng);
    truncated.pop();
    refused(
        &cluster,
        with_presentation(&cluster, truncated),
        Code::InvalidArgument,
        "report.presentation",
    )
    .await;
    let mut trailing = honest(&mut rng);
    trailing.push(0);
    refused(
        &cluster,
        with_presentation(&cluster, trailing),
        Code::InvalidArgument,
        "report.presentation",
    )
    .await;
    // U~ (bytes 20..52) as a non-canonical element: a field element >= p (all ones but the
    // top bit), then with the sign bit set on a valid encoding.
    let mut non_canonical = honest(&mut rng);
    non_canonical[20..52].fill(0xff);
    non_canonical[51] = 0x7f;
    refused(
        &cluster,
        with_presentation(&cluster, non_canonical),
        Code::InvalidArgument,
        "report.presentation",
    )
    .await;
    let mut high_bit = honest(&mut rng);
    high_bit[51] |= 0x80;
    refused(
        &cluster,
        with_presentation(&cluster, high_bit),
        Code::InvalidArgument,
        "report.presentation",
    )
    .await;
    // The last response scalar, unreduced (all ones is far above the group order).
    let mut unreduced = honest(&mut rng);
    let n = unreduced.len();
    unreduced[n - 32..].fill(0xff);
    refused(
        &cluster,
        with_presentation(&cluster, unreduced),
        Code::InvalidArgument,
        "report.presentation",
    )
    .await;

    // Context and limit.
    let other_window = visitor(&cluster)
        .next_presentation(&task, window + 1, &mut rng)
        .unwrap();
    refused(
        &cluster,
        with_presentation(&cluster, other_window),
        Code::InvalidArgument,
        "report.presentation",
    )
    .await;
    let obtained = IssuerClient::connect(&cluster.url("issuer")).await.unwrap();
    let mut issuer = obtained;
    let enrolled = format!(
        "device-{}",
        hotspot_core::task::encode_hex(&rand::random::<[u8; 8]>())
    );
    cluster.enrol(std::slice::from_ref(&enrolled)).unwrap();
    let credential = issuer
        .obtain_crowding(
            &enrolled,
            &mut rand::rngs::StdRng::from_rng(&mut rand::rng()),
        )
        .await
        .unwrap()
        .credential;
    let wrong_limit = credential
        .present(&context, 2, 0, &mut rng)
        .unwrap()
        .to_bytes();
    refused(
        &cluster,
        with_presentation(&cluster, wrong_limit),
        Code::InvalidArgument,
        "report.presentation",
    )
    .await;

    // Forged proof: one response scalar changed (still canonical).
    let mut forged = honest(&mut rng);
    forged[n - 32] ^= 1;
    refused(
        &cluster,
        with_presentation(&cluster, forged),
        Code::PermissionDenied,
        "report.presentation",
    )
    .await;
    // A nonce at or above the limit: nonce 3 proved for limit 4 has the shape of a limit-3
    // presentation (two bits); relabelled as limit 3 it must not verify.
    let mut above = credential
        .present(&context, 4, 3, &mut rng)
        .unwrap()
        .to_bytes();
    above[16..20].copy_from_slice(&3u32.to_be_bytes());
    refused(
        &cluster,
        with_presentation(&cluster, above),
        Code::PermissionDenied,
        "report.presentation",
    )
    .await;
    // An outbreak credential on a crowding task.
    let master = cluster.credential_master().unwrap();
    let today = Day::from_unix_seconds(hotspot_server::now_unix());
    let outbreak = local_credential(
        &IssuerKey::derive_daily(&master, today),
        REQUEST_CONTEXT_OUTBREAK,
    );
    let wrong_kind = outbreak
        .present(&context, 3, 0, &mut rng)
        .unwrap()
        .to_bytes();
    refused(
        &cluster,
        with_presentation(&cluster, wrong_kind),
        Code::PermissionDenied,
        "report.presentation",
    )
    .await;

    // Keys: a genuine key of three days ago is stale; a key from nowhere is unknown.
    let stale = local_credential(
        &IssuerKey::derive_daily(&master, today.minus(3)),
        REQUEST_CONTEXT_CROWDING,
    );
    let stale = stale.present(&context, 3, 0, &mut rng).unwrap().to_bytes();
    refused(
        &cluster,
        with_presentation(&cluster, stale),
        Code::FailedPrecondition,
        "report.presentation.key_id",
    )
    .await;
    let unknown = local_credential(&IssuerKey::generate(&mut rng), REQUEST_CONTEXT_CROWDING);
    let unknown = unknown
        .present(&context, 3, 0, &mut rng)
        .unwrap()
        .to_bytes();
    refused(
        &cluster,
        with_presentation(&cluster, unknown),
        Code::NotFound,
        "report.presentation.key_id",
    )
    .await;

    // Tags: the three nonces of one credential go through, a fourth use of a nonce does not,
    // even inside a new report.
    for nonce in 0..3 {
        let p = credential
            .present(&context, 3, nonce, &mut rng)
            .unwrap()
            .to_bytes();
        assert!(
            !upload(&cluster, with_presentation(&cluster, p))
                .await
                .unwrap()
                .duplicate
        );
    }
    let again = credential
        .present(&context, 3, 1, &mut rng)
        .unwrap()
        .to_bytes();
    refused(
        &cluster,
        with_presentation(&cluster, again),
        Code::AlreadyExists,
        "report.presentation",
    )
    .await;
    assert_eq!(stored_reports(&cluster), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn resent_report_is_a_duplicate_not_a_reused_tag() {
    let cluster = Cluster::prepare(&test_dir("resend"), exe(), &spec(120, vec![5], 100)).unwrap();
    let _procs = Procs::start_all(&cluster);
    let window = window_with_margin(&cluster, 60).await;
    let mut wallet = visitor(&cluster);
    let ticket = wallet.reserve(&cluster.task, window).unwrap();
    let mut rng = rand::rng();
    let mut report = unsigned_report(&cluster, 5, window);
    report.presentation = wallet
        .present(&cluster.task, window, ticket, &mut rng)
        .unwrap();
    assert!(!upload(&cluster, report.clone()).await.unwrap().duplicate);
    // The very same bytes again.
    assert!(upload(&cluster, report.clone()).await.unwrap().duplicate);
    // The same report presented afresh for the same ticket (a client that lost its sealed
    // copy): same report id, same tag, new bytes: still a duplicate.
    report.presentation = wallet
        .present(&cluster.task, window, ticket, &mut rng)
        .unwrap();
    assert!(upload(&cluster, report).await.unwrap().duplicate);
    assert_eq!(stored_reports(&cluster), 1);
    // The ticket's tag in a new report is a reuse.
    let mut other = unsigned_report(&cluster, 5, window);
    other.presentation = wallet
        .present(&cluster.task, window, ticket, &mut rng)
        .unwrap();
    refused(&cluster, other, Code::AlreadyExists, "report.presentation").await;
}
