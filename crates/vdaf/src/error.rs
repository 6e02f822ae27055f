//! The crate's error type: one enum, so callers (the aggregator service) can match on causes.
//!
//! Errors that concern one report inside a batch are not errors of the batch: they become a
//! [`crate::RejectReason`] in that report's verdict, and the batch goes on.

use thiserror::Error;

/// Everything that can go wrong in hotspot-vdaf.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VdafError {
    /// `bits` outside the supported range 1..=64.
    #[error("unsupported number of bits {0} (supported: 1 to 64)")]
    InvalidBits(usize),
    /// A measurement that does not fit in `bits` bits.
    #[error("measurement does not fit in {bits} bits")]
    MeasurementTooLarge {
        /// The instance's bit length.
        bits: usize,
    },
    /// The randomness passed to a `*_with_rand` function has the wrong length.
    #[error("randomness must be {expected} bytes, got {got}")]
    InvalidRandLength {
        /// Required length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// The application context exceeds what the XOF's length prefix can carry.
    #[error("application context too long ({0} bytes, at most 65,000)")]
    ContextTooLong(usize),
    /// An aggregator id other than 0 (leader) or 1 (helper).
    #[error("invalid aggregator id {0}")]
    InvalidAggregatorId(usize),
    /// A byte string that is not the canonical encoding of the expected message.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// The message being decoded.
        what: &'static str,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// An aggregation parameter breaking the draft's rules (section 8.2.6.6).
    #[error("invalid aggregation parameter: {0}")]
    InvalidAggParam(&'static str),
    /// Messages of one field used with state or parameters of the other, or of the wrong
    /// round.
    #[error("message does not match the verification state: {0}")]
    StateMismatch(&'static str),
    /// The combined sketch is not zero: the report is invalid (draft section 8.2.6.4).
    #[error("sketch verification failed")]
    VerifyFailed,
    /// A batch message for a different number of reports than the batch holds.
    #[error("batch message covers {got} reports, the batch has {expected}")]
    BatchLengthMismatch {
        /// Reports in the batch.
        expected: usize,
        /// Reports in the message.
        got: usize,
    },
    /// An aggregate value that is not a 64-bit count.
    #[error("aggregate value does not fit in 64 bits")]
    CountOverflow,
    /// The noise vector has a different length than the aggregate share.
    #[error("noise has {got} entries, the aggregate share {expected}")]
    NoiseLengthMismatch {
        /// Entries in the aggregate share.
        expected: usize,
        /// Entries in the noise vector.
        got: usize,
    },
}

impl VdafError {
    pub(crate) fn decode(what: &'static str, reason: &'static str) -> Self {
        VdafError::Decode { what, reason }
    }
}
