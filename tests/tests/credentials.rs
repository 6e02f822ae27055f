//! Credentials through real processes: the issuer's refusals (an unknown or malformed
//! enrolment, a second crowding credential of the day, a reused, unknown or unregistered
//! diagnosis code, a missing or wrong bearer token), the operator's and the health
//! authority's commands (`hotspot issuer enrol`, `hotspot collect diagnosis-code`), outbreak
//! tasks taking outbreak credentials only, and the helper refusing reports that a leader
//! forwards with a bad or replayed presentation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use rand::SeedableRng;
use tonic::Code;

use hotspot_cli::cluster::Cluster;
use hotspot_client::credential::{IssuerClient, WalletError};
use hotspot_core::credential::{DiagnosisCode, presentation_context};
use hotspot_core::envelope::{HpkeKeypair, Role, input_share_info, open};
use hotspot_core::task::{TaskKind, decode_hex, encode_hex};
use hotspot_credentials::{CredentialRequest, REQUEST_CONTEXT_CROWDING};
use hotspot_proto::v1::{self, aggregation_client::AggregationClient};
use hotspot_vdaf::{AggregationParam, HelperMessage, Poplar1, ReportShare};

use common::*;

fn rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::from_rng(&mut rand::rng())
}

fn refused_with(err: WalletError, code: Code, field: &str) {
    match err {
        WalletError::Refused { code: c, message } => {
            assert_eq!(c, code, "{message}");
            assert!(message.contains(field), "`{message}` should name `{field}`");
        }
        other => panic!("expected a refusal, got {other}"),
    }
}

fn enrolled(cluster: &Cluster) -> String {
    let id = format!("device-{}", encode_hex(&rand::random::<[u8; 8]>()));
    cluster.enrol(std::slice::from_ref(&id)).unwrap();
    id
}

/// `hotspot collect diagnosis-code` as the health authority runs it; returns the printed code.
fn mint_code(cluster: &Cluster) -> String {
    let out = Command::new(exe())
        .args([
            "collect",
            "diagnosis-code",
            "--issuer",
            &cluster.url("issuer"),
        ])
        .arg("--token-file")
        .arg(cluster.dir.join(hotspot_cli::cluster::ISSUER_TOKEN_FILE))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(DiagnosisCode::parse(&code).is_ok(), "{code}");
    code
}

#[tokio::test(flavor = "multi_thread")]
async fn issuer_refuses_what_it_must_and_answers_a_retry_the_same() {
    let cluster = Cluster::prepare(&test_dir("issuer"), exe(), &spec(60, vec![5], 100)).unwrap();
    let _issuer = Procs(vec![(
        "issuer".into(),
        cluster.start("issuer").expect("start issuer"),
    )]);
    let mut issuer = IssuerClient::connect(&cluster.url("issuer")).await.unwrap();

    // Enrolment ids.
    let err = issuer
        .obtain_crowding("device-never-enrolled", &mut rng())
        .await
        .unwrap_err();
    refused_with(err, Code::NotFound, "enrolment_id");
    let mut raw = v1::issuance_client::IssuanceClient::connect(cluster.url("issuer"))
        .await
        .unwrap();
    let status = raw
        .issue_crowding_credential(v1::IssueCrowdingCredentialRequest {
            enrolment_id: "bad id".into(),
            request: vec![1, 2, 3],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("enrolment_id"), "{status:?}");

    // One crowding credential per device and day; the same request again is answered again.
    let id = enrolled(&cluster);
    let (day, key) = issuer.current_key().await.unwrap();
    let (_, request) = CredentialRequest::new(&key, REQUEST_CONTEXT_CROWDING, &mut rng());
    let ask = |request: Vec<u8>| v1::IssueCrowdingCredentialRequest {
        enrolment_id: id.clone(),
        request,
    };
    let first = raw
        .issue_crowding_credential(ask(request.to_bytes()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.day, day.0);
    let retry = raw
        .issue_crowding_credential(ask(request.to_bytes()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry.response, first.response);
    let err = issuer.obtain_crowding(&id, &mut rng()).await.unwrap_err();
    refused_with(err, Code::ResourceExhausted, "enrolment_id");

    // A request under another key, or malformed.
    let (_, wrong) = CredentialRequest::new(
        hotspot_credentials::IssuerKey::generate(&mut rng()).public(),
        REQUEST_CONTEXT_CROWDING,
        &mut rng(),
    );
    let status = raw
        .issue_crowding_credential(ask(wrong.to_bytes()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("request.key_id"), "{status:?}");
    let mut broken = request.to_bytes();
    broken.pop();
    let status = raw
        .issue_crowding_credential(ask(broken))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("request"), "{status:?}");
    // A forged request proof (its last response scalar changed) for a device with no
    // credential yet today.
    let other = enrolled(&cluster);
    let mut forged = request.to_bytes();
    let n = forged.len();
    forged[n - 32] ^= 1;
    let status = raw
        .issue_crowding_credential(v1::IssueCrowdingCredentialRequest {
            enrolment_id: other,
            request: forged,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("request"), "{status:?}");

    // Diagnosis codes: minted by the health authority's command, used once.
    let code = mint_code(&cluster);
    let obtained = issuer.obtain_outbreak(&code, &mut rng()).await.unwrap();
    assert_eq!(obtained.kind, TaskKind::Outbreak);
    let err = issuer
        .obtain_outbreak(&code.to_lowercase(), &mut rng())
        .await
        .unwrap_err();
    refused_with(err, Code::FailedPrecondition, "diagnosis_code");
    let unknown = DiagnosisCode::generate(&mut rng());
    let err = issuer
        .obtain_outbreak(&unknown.display(), &mut rng())
        .await
        .unwrap_err();
    refused_with(err, Code::NotFound, "diagnosis_code");

    // Registering needs the health authority's token.
    let register = |token: Option<&str>| {
        let mut request = tonic::Request::new(v1::RegisterDiagnosisCodeRequest {
            code_digest: unknown.digest().to_vec(),
            valid_seconds: 3_600,
        });
        if let Some(t) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        request
    };
    for token in [None, Some("not-the-token-of-this-health-authority")] {
        let status = raw
            .register_diagnosis_code(register(token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    let token = cluster.issuer_token().unwrap();
    raw.register_diagnosis_code(register(Some(&token)))
        .await
        .unwrap();
    let status = raw
        .register_diagnosis_code(register(Some(&token)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(
        issuer
            .obtain_outbreak(&unknown.display(), &mut rng())
            .await
            .is_ok()
    );

    // Malformed registrations, then a code that expires before it is used.
    let malformed = [
        (vec![0u8; 31], 3_600, "code_digest"),
        (vec![0u8; 32], 0, "valid_seconds"),
        (vec![0u8; 32], 31 * 86_400, "valid_seconds"),
    ];
    for (code_digest, valid_seconds, field) in malformed {
        let mut request = tonic::Request::new(v1::RegisterDiagnosisCodeRequest {
            code_digest,
            valid_seconds,
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let status = raw.register_diagnosis_code(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(field), "{status:?}");
    }
    let brief = DiagnosisCode::generate(&mut rng());
    let mut request = tonic::Request::new(v1::RegisterDiagnosisCodeRequest {
        code_digest: brief.digest().to_vec(),
        valid_seconds: 1,
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    raw.register_diagnosis_code(request).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let err = issuer
        .obtain_outbreak(&brief.display(), &mut rng())
        .await
        .unwrap_err();
    refused_with(err, Code::FailedPrecondition, "diagnosis_code");
}

/// What the issuer keeps (its database, requests and responses included) shares no 8-byte
/// string with the body of a presentation, so it cannot recognise one.
#[tokio::test(flavor = "multi_thread")]
async fn issuer_keeps_nothing_a_presentation_carries() {
    let cluster = Cluster::prepare(&test_dir("unlink"), exe(), &spec(60, vec![5], 100)).unwrap();
    let _issuer = Procs(vec![("issuer".into(), cluster.start("issuer").unwrap())]);
    let mut wallets = cluster.wallets(3, None).await.unwrap();
    let window = current_window(&cluster);
    let mut stored = std::fs::read(cluster.dir.join("issuer.sqlite")).unwrap();
    stored.extend(std::fs::read(cluster.dir.join("issuer.sqlite-wal")).unwrap_or_default());
    let kept: std::collections::HashSet<&[u8]> = stored.windows(8).collect();
    for wallet in &mut wallets {
        let presentation = wallet
            .next_presentation(&cluster.task, window, &mut rng())
            .unwrap();
        // The header (key id, context digest, limit) is common to every presentation.
        assert!(presentation[20..].windows(8).all(|w| !kept.contains(w)));
    }
}

#[test]
fn diagnosis_code_command_refuses_bad_arguments() {
    let out = Command::new(exe())
        .args([
            "collect",
            "diagnosis-code",
            "--issuer",
            "http://127.0.0.1:9",
            "--valid-days",
            "0",
        ])
        .env_remove("HOTSPOT_ISSUER_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--valid-days"));
    let out = Command::new(exe())
        .args([
            "collect",
            "diagnosis-code",
            "--issuer",
            "http://127.0.0.1:9",
        ])
        .env_remove("HOTSPOT_ISSUER_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOTSPOT_ISSUER_TOKEN"));
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_enrols_from_a_file_with_the_cli() {
    let cluster = Cluster::prepare(&test_dir("enrol"), exe(), &spec(60, vec![5], 100)).unwrap();
    let ids = cluster.dir.join("ids.txt");
    std::fs::write(&ids, "# phones\nphone-000001\nphone-000002\nphone-000001\n").unwrap();
    let enrol = || {
        Command::new(exe())
            .args(["issuer", "enrol", "--config"])
            .arg(cluster.dir.join("issuer.toml"))
            .arg("--ids-file")
            .arg(&ids)
            .output()
            .unwrap()
    };
    let out = enrol();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("enrolled 2 new ids"));
    // A bad line refuses the whole file, naming the line.
    std::fs::write(&ids, "phone-000003\nno\n").unwrap();
    let out = enrol();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));

    let _issuer = Procs(vec![("issuer".into(), cluster.start("issuer").unwrap())]);
    let mut issuer = IssuerClient::connect(&cluster.url("issuer")).await.unwrap();
    assert!(
        issuer
            .obtain_crowding("phone-000002", &mut rng())
            .await
            .is_ok()
    );
    let err = issuer
        .obtain_crowding("phone-000003", &mut rng())
        .await
        .unwrap_err();
    refused_with(err, Code::NotFound, "enrolment_id");
    // Nothing in the issuer's database names a device.
    let db = std::fs::read(cluster.dir.join("issuer.sqlite")).unwrap();
    let wal = std::fs::read(cluster.dir.join("issuer.sqlite-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!bytes.windows(12).any(|w| w == b"phone-000002"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn outbreak_task_takes_outbreak_credentials_only() {
    let mut cluster =
        Cluster::prepare(&test_dir("outbreak"), exe(), &spec(60, vec![5], 100)).unwrap();
    cluster
        .rewrite_task(|t| {
            t.kind = TaskKind::Outbreak;
            t.rules = hotspot_core::rules::Rules::default_for(TaskKind::Outbreak);
        })
        .unwrap();
    let _procs = Procs::start_all(&cluster);
    let window = current_window(&cluster);
    let mut client = upload_client(&cluster).await;

    // A crowding credential's presentation does not verify for an outbreak task (the wallet
    // would not even offer it; a client that bypasses the wallet gets refused).
    let mut issuer = IssuerClient::connect(&cluster.url("issuer")).await.unwrap();
    let credential = issuer
        .obtain_crowding(&enrolled(&cluster), &mut rng())
        .await
        .unwrap()
        .credential;
    let mut crowding = unsigned_report(&cluster, 5, window);
    crowding.presentation = credential
        .present(
            &presentation_context(&cluster.task, window),
            1,
            0,
            &mut rng(),
        )
        .unwrap()
        .to_bytes();
    let status = client
        .upload(v1::UploadRequest {
            report: Some(crowding),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // A diagnosed visitor's outbreak credential does.
    let code = mint_code(&cluster);
    let mut wallet = hotspot_client::credential::Wallet::new();
    wallet.insert(issuer.obtain_outbreak(&code, &mut rng()).await.unwrap());
    let mut upload = unsigned_report(&cluster, 5, window);
    upload.presentation = wallet
        .next_presentation(&cluster.task, window, &mut rng())
        .unwrap();
    client
        .upload(v1::UploadRequest {
            report: Some(upload),
        })
        .await
        .unwrap();
    assert_eq!(stored_reports(&cluster), 1);
}

/// The test plays a leader that forwards what it likes: one honest report, one whose
/// presentation was tampered with, one that replays the honest report's tag, then (in a
/// second job, after the first is committed) another replay of that tag and an honest one.
#[tokio::test(flavor = "multi_thread")]
async fn helper_drops_forwarded_reports_with_bad_or_replayed_presentations() {
    let cluster = Cluster::prepare(&test_dir("helper"), exe(), &spec(60, vec![5], 100)).unwrap();
    let _procs = Procs(
        ["helper", "issuer"]
            .iter()
            .map(|r| (r.to_string(), cluster.start(r).unwrap()))
            .collect(),
    );
    let task = cluster.task.clone();
    let window = current_window(&cluster);
    let poplar = Poplar1::new(task.bits as usize).unwrap();
    let secret = |file: &str| {
        decode_hex(
            std::fs::read_to_string(cluster.dir.join(file))
                .unwrap()
                .trim(),
        )
        .unwrap()
    };
    let leader_key = HpkeKeypair::from_secret_bytes(1, &secret("leader.hpke")).unwrap();
    let verify_key: [u8; 32] = secret("verify.key").try_into().unwrap();
    let param = AggregationParam::new(task.bits as u16 - 1, vec![5]).unwrap();
    let helper = AggregationClient::connect(cluster.url("helper"))
        .await
        .unwrap();

    // One visitor with a reserved nonce; its tag is what the replays reuse.
    let mut wallet = visitor(&cluster);
    let ticket = wallet.reserve(&task, window).unwrap();
    let tagged = |presentation: Vec<u8>| {
        let mut r = unsigned_report(&cluster, 5, window);
        r.presentation = presentation;
        r
    };
    let mut rng = rng();
    let honest = tagged(wallet.present(&task, window, ticket, &mut rng).unwrap());
    let mut forged = report(&cluster, 5, window);
    let n = forged.presentation.len();
    forged.presentation[n - 32] ^= 1;
    let replay = tagged(wallet.present(&task, window, ticket, &mut rng).unwrap());
    let replay_later = tagged(wallet.present(&task, window, ticket, &mut rng).unwrap());
    let fresh = report(&cluster, 5, window);

    let run_job = |job: u64, reports: Vec<v1::Report>| {
        let mut helper = helper.clone();
        let (poplar, param, leader_key) = (poplar, param.clone(), leader_key.clone());
        let task_id = task.id;
        async move {
            let opened: Vec<_> = reports
                .iter()
                .map(|r| {
                    let ct = r.leader_share.clone().unwrap();
                    let ct = hotspot_core::envelope::HpkeCiphertext {
                        key_id: ct.key_id,
                        enc: ct.enc,
                        payload: ct.payload,
                    };
                    let id = hotspot_core::envelope::ReportId::from_slice(&r.report_id).unwrap();
                    let aad =
                        hotspot_core::envelope::report_aad(&task_id, window, &id, &r.public_share);
                    open(&leader_key, &ct, &input_share_info(Role::Leader), &aad).unwrap()
                })
                .collect();
            let shares: Vec<ReportShare<'_>> = reports
                .iter()
                .zip(&opened)
                .map(|(r, s)| ReportShare {
                    nonce: r.report_id.clone().try_into().unwrap(),
                    public_share: &r.public_share,
                    input_share: s,
                })
                .collect();
            let (state, round1) = poplar
                .batch_init(&verify_key, &task_id.0, 0, &param, &shares)
                .unwrap();
            let job_id = v1::JobId {
                batch: Some(v1::BatchId {
                    task_id: task_id.0.to_vec(),
                    window,
                }),
                level: u32::from(param.level()),
                job,
            };
            let reply = helper
                .init_job(v1::InitJobRequest {
                    job: Some(job_id.clone()),
                    agg_param: param.encode(),
                    reports: reports
                        .iter()
                        .map(|r| v1::ReportShare {
                            report_id: r.report_id.clone(),
                            public_share: r.public_share.clone(),
                            helper_share: r.helper_share.clone(),
                            presentation: r.presentation.clone(),
                        })
                        .collect(),
                    leader_round1: round1.encode(),
                })
                .await
                .unwrap()
                .into_inner();
            let message = HelperMessage::decode(&poplar, &param, &reply.helper_message).unwrap();
            let (_, verdicts) = poplar.leader_finish(state, &message).unwrap();
            helper
                .continue_job(v1::ContinueJobRequest {
                    job: Some(job_id),
                    verdicts: verdicts.encode(),
                })
                .await
                .unwrap();
            reply.helper_reasons
        }
    };

    use v1::RejectReason as R;
    let first = run_job(0, vec![honest, forged, replay]).await;
    assert_eq!(
        first,
        vec![
            R::Unspecified as i32,
            R::PresentationInvalid as i32,
            R::TagReplayed as i32
        ]
    );
    let second = run_job(1, vec![replay_later, fresh]).await;
    assert_eq!(second, vec![R::TagReplayed as i32, R::Unspecified as i32]);
}
