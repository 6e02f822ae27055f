//! Every rejection rule of the leader's upload path, against a real leader process: the exact
//! gRPC status, a message naming the field, and nothing stored. Also: a duplicated upload is
//! stored once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use hotspot_cli::cluster::Cluster;
use hotspot_proto::v1;
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
    let cluster = Cluster::prepare(&test_dir("rules"), exe(), &spec(2, vec![5], 100)).unwrap();
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
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
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
