//! Credential policy shared by the issuer, the aggregators and the visitor's wallet: which
//! credential kind a task accepts, which issuer-key days are valid for a window, and the two
//! identifiers the issuer takes in exchange for a credential (enrolment ids and diagnosis
//! codes). The cryptography is `hotspot-credentials`; this module only decides.
//!
//! # Which key days a window accepts
//!
//! Issuer keys rotate daily ([`Day`], UTC). A presentation names its key; the verifier accepts
//! it for window `w` only if the key's day lies in [`accepted_key_days`]:
//!
//! - **crowding**: from the day window `w` starts to the day it seals. A device obtains one
//!   crowding credential per day and reports as it checks in, so the window's own day is the
//!   rule; the seal day is added so that an upload in the grace period after midnight, made
//!   with the new day's credential, still counts. (A window that straddles midnight therefore
//!   admits up to `2 N` presentations from one device, one credential per day.)
//! - **outbreak**: from the day window `w` starts to [`OUTBREAK_CREDENTIAL_DAYS`] days later.
//!   A diagnosed person obtains one outbreak credential (against a one-time diagnosis code)
//!   and uploads the windows of the last 14 days with it.
//!
//! # Diagnosis codes and enrolment ids
//!
//! A [`DiagnosisCode`] is 80 random bits written as 16 Crockford base32 digits in groups of
//! four (`7K2M-Q9XD-...`); [`DiagnosisCode::parse`] accepts any case, spaces and dashes, and
//! Crockford's look-alikes (`O` for `0`, `I`/`L` for `1`). The health authority registers only
//! its digest with the issuer; the issuer keeps a keyed hash of that. Enrolment ids are chosen
//! by the operator (8 to 128 visible ASCII bytes, [`check_enrolment_id`]).

use std::ops::RangeInclusive;

use hotspot_credentials::{
    Day, PresentationContext, REQUEST_CONTEXT_CROWDING, REQUEST_CONTEXT_OUTBREAK,
};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::task::{TaskConfig, TaskKind};

/// Days after a window's own day during which an outbreak credential is accepted for it.
pub const OUTBREAK_CREDENTIAL_DAYS: u32 = 14;
/// Digits of a diagnosis code.
pub const DIAGNOSIS_CODE_DIGITS: usize = 16;
/// Shortest and longest enrolment id, in bytes.
pub const ENROLMENT_ID_LEN: RangeInclusive<usize> = 8..=128;

/// Domain separation of [`DiagnosisCode::digest`].
const CODE_DIGEST_LABEL: &[u8] = b"hotspot.v1 diagnosis code";
/// Crockford's base32 alphabet.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Why an enrolment id or a diagnosis code is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodeError {
    /// The enrolment id is too short, too long or not visible ASCII.
    #[error("must be {min} to {max} visible ASCII characters", min = ENROLMENT_ID_LEN.start(), max = ENROLMENT_ID_LEN.end())]
    EnrolmentId,
    /// The diagnosis code has the wrong number of digits or a character outside base32.
    #[error("must be {DIAGNOSIS_CODE_DIGITS} base32 digits (dashes and spaces are ignored)")]
    DiagnosisCode,
}

/// The credential kind (ARC request context) a task's uploads must present.
pub fn request_context(kind: TaskKind) -> &'static [u8] {
    match kind {
        TaskKind::Crowding => REQUEST_CONTEXT_CROWDING,
        TaskKind::Outbreak => REQUEST_CONTEXT_OUTBREAK,
    }
}

/// The issuer-key days accepted for presentations in window `window` of `task`.
pub fn accepted_key_days(task: &TaskConfig, window: u64) -> RangeInclusive<Day> {
    let first = Day::from_unix_seconds(task.window_start(window));
    let last = match task.kind {
        TaskKind::Crowding => Day::from_unix_seconds(task.seal_time(window)).max(first),
        TaskKind::Outbreak => first.plus(OUTBREAK_CREDENTIAL_DAYS),
    };
    first..=last
}

/// The presentation context of window `window` of `task`: its task id and window index.
pub fn presentation_context(task: &TaskConfig, window: u64) -> PresentationContext {
    #[allow(clippy::expect_used)]
    // expect safety: a task id is 32 bytes and the context refuses only task ids over 255.
    PresentationContext::new(&task.id.0, window).expect("a 32-byte task id is a valid context")
}

/// Checks an operator-provisioned enrolment id.
pub fn check_enrolment_id(id: &str) -> Result<(), CodeError> {
    let ok = ENROLMENT_ID_LEN.contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(CodeError::EnrolmentId)
    }
}

/// A one-time diagnosis code: 16 base32 digits. Zeroized on drop, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct DiagnosisCode([u8; DIAGNOSIS_CODE_DIGITS]);

impl std::fmt::Debug for DiagnosisCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DiagnosisCode(<redacted>)")
    }
}

impl DiagnosisCode {
    /// Draws a fresh code (80 bits).
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut raw = [0u8; DIAGNOSIS_CODE_DIGITS];
        rng.fill_bytes(&mut raw);
        // 256 is a multiple of 32, so taking the low five bits of a uniform byte is uniform.
        let digits = raw.map(|b| CROCKFORD[usize::from(b & 31)]);
        raw.zeroize();
        DiagnosisCode(digits)
    }

    /// Reads a code as a person typed it: case, spaces and dashes are ignored, and `O`, `I`,
    /// `L` read as `0`, `1`, `1`.
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        let mut digits = [0u8; DIAGNOSIS_CODE_DIGITS];
        let mut n = 0;
        for c in text.bytes() {
            if c == b'-' || c == b' ' {
                continue;
            }
            let c = match c.to_ascii_uppercase() {
                b'O' => b'0',
                b'I' | b'L' => b'1',
                other => other,
            };
            if !CROCKFORD.contains(&c) || n == DIAGNOSIS_CODE_DIGITS {
                digits.zeroize();
                return Err(CodeError::DiagnosisCode);
            }
            digits[n] = c;
            n += 1;
        }
        if n != DIAGNOSIS_CODE_DIGITS {
            digits.zeroize();
            return Err(CodeError::DiagnosisCode);
        }
        Ok(DiagnosisCode(digits))
    }

    /// The code in groups of four, for printing once to the person it is handed to.
    pub fn display(&self) -> zeroize::Zeroizing<String> {
        let mut out = zeroize::Zeroizing::new(String::with_capacity(19));
        for (i, chunk) in self.0.chunks(4).enumerate() {
            if i > 0 {
                out.push('-');
            }
            out.extend(chunk.iter().map(|&b| b as char));
        }
        out
    }

    /// `SHA-256(label || digits)`: what the health authority registers with the issuer.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::new()
            .chain_update(CODE_DIGEST_LABEL)
            .chain_update(self.0)
            .finalize()
            .into()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn task(kind: TaskKind, window_seconds: u64, grace_seconds: u64) -> TaskConfig {
        TaskConfig {
            start_unix: 10 * 86_400,
            window_seconds,
            grace_seconds,
            privacy: crate::task::PrivacyParams::default_for(window_seconds),
            ..TaskConfig::example(kind)
        }
    }

    #[test]
    fn crowding_accepts_the_window_day_up_to_its_seal_day() {
        let t = task(TaskKind::Crowding, 3_600, 600);
        assert_eq!(accepted_key_days(&t, 0), Day(10)..=Day(10));
        // The last window of day 10 seals ten minutes into day 11.
        assert_eq!(accepted_key_days(&t, 23), Day(10)..=Day(11));
        assert_eq!(accepted_key_days(&t, 24), Day(11)..=Day(11));
    }

    #[test]
    fn outbreak_accepts_fourteen_days_after_the_window() {
        let t = task(TaskKind::Outbreak, 3_600, 15 * 86_400);
        assert_eq!(accepted_key_days(&t, 5), Day(10)..=Day(24));
        assert_eq!(request_context(t.kind), REQUEST_CONTEXT_OUTBREAK);
    }

    #[test]
    fn diagnosis_code_round_trips_through_its_display_form() {
        use rand::SeedableRng;
        let code = DiagnosisCode::generate(&mut rand::rngs::ChaCha20Rng::seed_from_u64(3));
        let shown = code.display();
        assert_eq!(shown.len(), 19);
        assert_eq!(DiagnosisCode::parse(&shown).unwrap(), code);
        let sloppy = shown.to_lowercase().replace('-', " ");
        assert_eq!(
            DiagnosisCode::parse(&sloppy).unwrap().digest(),
            code.digest()
        );
    }

    #[test]
    fn diagnosis_code_reads_look_alikes_and_refuses_bad_input() {
        let a = DiagnosisCode::parse("OIL0-1100-0000-0000").unwrap();
        let b = DiagnosisCode::parse("0110110000000000").unwrap();
        assert_eq!(a, b);
        for bad in [
            "",
            "0000-0000-0000-000",
            "0000-0000-0000-00000",
            "0000-0000-0000-000U",
        ] {
            assert_eq!(
                DiagnosisCode::parse(bad),
                Err(CodeError::DiagnosisCode),
                "{bad}"
            );
        }
        assert!(!format!("{a:?}").contains("0110"));
    }

    #[test]
    fn enrolment_ids_must_be_visible_ascii_of_bounded_length() {
        assert!(check_enrolment_id("device-0001").is_ok());
        for bad in [
            "short",
            "has space inside",
            "caf\u{e9}-device",
            &"x".repeat(129),
        ] {
            assert_eq!(
                check_enrolment_id(bad),
                Err(CodeError::EnrolmentId),
                "{bad}"
            );
        }
    }
}
