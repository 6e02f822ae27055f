//! RFC 9497 conformance: every ristretto255-SHA512 vector of modes 0 (OPRF) and 1 (VOPRF),
//! byte for byte, read from the published vector file.
//!
//! The file is found through `$HOTSPOT_VECTORS`, or `../shared/vectors` beside the checkout.
//! With `HOTSPOT_VECTORS` set, a missing file fails the test; without it, the test is skipped
//! with a note (a developer checkout without the shared folder).

use std::path::PathBuf;

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use hotspot_credentials::oprf::{DleqProof, Mode, Suite};
use serde_json::Value;

const FILE: &str = "rfc9497/ristretto255-SHA512.json";

/// The vector file's contents, or `None` when it is absent and no one asked for it.
fn load_vectors() -> Option<Vec<Value>> {
    let (path, required) = match std::env::var_os("HOTSPOT_VECTORS") {
        Some(dir) => (PathBuf::from(dir).join(FILE), true),
        None => {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors");
            (dir.join(FILE), false)
        }
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(serde_json::from_str(&text).expect("vector file is valid JSON")),
        Err(err) if required => panic!(
            "HOTSPOT_VECTORS is set but {} is unreadable: {err}",
            path.display()
        ),
        Err(_) => {
            eprintln!(
                "skipping: {} not found and HOTSPOT_VECTORS unset",
                path.display()
            );
            None
        }
    }
}

fn field<'a>(value: &'a Value, name: &str) -> &'a str {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {name} missing"))
}

/// A hex field; batch vectors separate their items with commas.
fn hex_list(value: &Value, name: &str) -> Vec<Vec<u8>> {
    field(value, name)
        .split(',')
        .map(|item| hex::decode(item).expect("hex"))
        .collect()
}

fn scalar(bytes: &[u8]) -> Scalar {
    let array: [u8; 32] = bytes.try_into().expect("32-byte scalar");
    Option::from(Scalar::from_canonical_bytes(array)).expect("canonical scalar")
}

fn point(bytes: &[u8]) -> RistrettoPoint {
    let array: [u8; 32] = bytes.try_into().expect("32-byte element");
    CompressedRistretto(array)
        .decompress()
        .expect("valid element")
}

fn suite_for(mode: u64) -> Option<(Mode, Suite)> {
    let mode = match mode {
        0 => Mode::Oprf,
        1 => Mode::Voprf,
        _ => return None,
    };
    Some((mode, Suite::new(mode)))
}

/// Runs `check` on every (suite block, vector) of modes 0 and 1; returns how many ran.
fn for_each_vector(mut check: impl FnMut(Mode, &Suite, &Value, &Value)) -> usize {
    let Some(blocks) = load_vectors() else {
        return 0;
    };
    let mut count = 0;
    for block in &blocks {
        let Some((mode, suite)) = suite_for(block["mode"].as_u64().expect("mode")) else {
            continue;
        };
        assert_eq!(field(block, "identifier"), "ristretto255-SHA512");
        for vector in block["vectors"].as_array().expect("vectors") {
            check(mode, &suite, block, vector);
            count += 1;
        }
    }
    count
}

#[test]
fn context_strings_give_the_published_group_dsts() {
    for_each_vector(|_, suite, block, _| {
        let dst = [b"HashToGroup-".as_slice(), suite.context_string()].concat();
        assert_eq!(hex::encode(dst), field(block, "groupDST"));
    });
}

#[test]
fn derive_key_pair_reproduces_published_keys() {
    for_each_vector(|mode, suite, block, _| {
        let seed: [u8; 32] = hex::decode(field(block, "seed"))
            .expect("hex")
            .try_into()
            .expect("32");
        let info = hex::decode(field(block, "keyInfo")).expect("hex");
        let key = suite.derive_key_pair(&seed, &info).expect("derivable");
        assert_eq!(hex::encode(*key.secret_bytes()), field(block, "skSm"));
        if mode == Mode::Voprf {
            assert_eq!(
                hex::encode(key.public().compress().as_bytes()),
                field(block, "pkSm")
            );
        }
    });
}

#[test]
fn every_mode_0_and_1_vector_reproduces_byte_for_byte() {
    let ran = for_each_vector(|mode, suite, block, vector| {
        let seed: [u8; 32] = hex::decode(field(block, "seed"))
            .expect("hex")
            .try_into()
            .expect("32");
        let key = suite
            .derive_key_pair(&seed, &hex::decode(field(block, "keyInfo")).expect("hex"))
            .expect("key");
        let inputs = hex_list(vector, "Input");
        let blinds: Vec<Scalar> = hex_list(vector, "Blind")
            .iter()
            .map(|b| scalar(b))
            .collect();
        assert_eq!(
            inputs.len() as u64,
            vector["Batch"].as_u64().expect("Batch")
        );

        // Client: Blind.
        let blinded: Vec<RistrettoPoint> = (inputs.iter().zip(&blinds))
            .map(|(input, blind)| suite.blind(input, blind).expect("blindable"))
            .collect();
        let encoded: Vec<String> = blinded
            .iter()
            .map(|p| hex::encode(p.compress().as_bytes()))
            .collect();
        assert_eq!(encoded.join(","), field(vector, "BlindedElement"));

        // Server: BlindEvaluate (with the published proof randomness in mode 1).
        let evaluated = match mode {
            Mode::Oprf => blinded
                .iter()
                .map(|b| key.blind_evaluate(b))
                .collect::<Vec<_>>(),
            _ => {
                let r =
                    scalar(&hex::decode(vector["Proof"]["r"].as_str().expect("r")).expect("hex"));
                let (evaluated, proof) =
                    key.blind_evaluate_batch(suite, &blinded, &r).expect("eval");
                assert_eq!(
                    hex::encode(proof.to_bytes()),
                    vector["Proof"]["proof"].as_str().expect("proof")
                );
                evaluated
            }
        };
        let encoded: Vec<String> = evaluated
            .iter()
            .map(|p| hex::encode(p.compress().as_bytes()))
            .collect();
        assert_eq!(encoded.join(","), field(vector, "EvaluationElement"));

        // Client: Finalize (verifying the published proof in mode 1).
        let input_refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let outputs = match mode {
            Mode::Oprf => (input_refs.iter().zip(&blinds).zip(&evaluated))
                .map(|((input, blind), e)| suite.finalize(input, blind, e).expect("finalize"))
                .collect::<Vec<_>>(),
            _ => {
                let proof_bytes: [u8; 64] =
                    hex::decode(vector["Proof"]["proof"].as_str().expect("proof"))
                        .expect("hex")
                        .try_into()
                        .expect("64");
                let proof = DleqProof::from_bytes(&proof_bytes).expect("canonical proof");
                let evaluated: Vec<_> = hex_list(vector, "EvaluationElement")
                    .iter()
                    .map(|e| point(e))
                    .collect();
                suite
                    .verifiable_finalize(
                        &key.public(),
                        &input_refs,
                        &blinds,
                        &evaluated,
                        &blinded,
                        &proof,
                    )
                    .expect("published proof verifies")
            }
        };
        let encoded: Vec<String> = outputs.iter().map(hex::encode).collect();
        assert_eq!(encoded.join(","), field(vector, "Output"));
    });
    if std::env::var_os("HOTSPOT_VECTORS").is_some() {
        assert_eq!(ran, 5, "modes 0 and 1 hold 2 + 3 vectors");
    }
}

#[test]
fn a_tampered_dleq_proof_is_rejected() {
    let suite = Suite::new(Mode::Voprf);
    let key = suite.derive_key_pair(&[7; 32], b"k").expect("key");
    let blinded = vec![suite.blind(b"input", &Scalar::from(5u64)).expect("blind")];
    let (evaluated, proof) = key
        .blind_evaluate_batch(&suite, &blinded, &Scalar::from(9u64))
        .expect("eval");
    let g = curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
    assert!(
        suite
            .vartime_verify_proof(&g, &key.public(), &blinded, &evaluated, &proof)
            .is_ok()
    );

    let mut bytes = proof.to_bytes();
    bytes[40] ^= 1;
    let forged = DleqProof::from_bytes(&bytes).expect("still canonical");
    assert!(
        suite
            .vartime_verify_proof(&g, &key.public(), &blinded, &evaluated, &forged)
            .is_err()
    );

    // A wrong evaluation (another key) fails under the honest proof.
    let other = suite.derive_key_pair(&[8; 32], b"k").expect("key");
    let wrong = vec![other.blind_evaluate(&blinded[0])];
    assert!(
        suite
            .vartime_verify_proof(&g, &key.public(), &blinded, &wrong, &proof)
            .is_err()
    );
}

#[test]
fn unreduced_proof_scalars_are_rejected() {
    assert!(DleqProof::from_bytes(&[0xff; 64]).is_err());
}
