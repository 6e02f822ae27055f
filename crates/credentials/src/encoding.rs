//! Canonical encodings of ristretto255 elements and scalars, and a strict byte reader.
//!
//! Every wire format of the crate is a fixed sequence of fields: 32-byte ristretto255
//! encodings (RFC 9496 section 4.3.2, decoded with `CompressedRistretto::decompress`, which
//! rejects every non-canonical string), 32-byte little-endian scalars (accepted only when
//! below the group order, RFC 9496 section 4.4's reduced form), and small big-endian integers.
//! The decoders here reject, with the name of the field:
//!
//! - truncated input and trailing bytes (the crate-private `Reader::finish`),
//! - non-canonical point encodings and the identity element (ARC draft section 6: an element
//!   that deserialises to the identity is an input validation error),
//! - scalars at or above the group order, and zero where a non-zero scalar is required.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;

/// Length of an encoded ristretto255 element.
pub const POINT_LEN: usize = 32;
/// Length of an encoded scalar.
pub const SCALAR_LEN: usize = 32;

/// Why a byte string is not a valid encoding. Every variant names the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodingError {
    /// The input ended inside a field.
    #[error("{field}: input truncated")]
    Truncated {
        /// The field that was being read.
        field: &'static str,
    },
    /// Bytes were left over after the last field.
    #[error("{count} trailing bytes after the last field")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// The 32 bytes are not the canonical encoding of any ristretto255 element.
    #[error("{field}: not a canonical ristretto255 encoding")]
    NonCanonicalPoint {
        /// The field at fault.
        field: &'static str,
    },
    /// The element is the identity, which no field of ours may hold.
    #[error("{field}: the identity element is not allowed")]
    IdentityPoint {
        /// The field at fault.
        field: &'static str,
    },
    /// The 32 bytes encode an integer at or above the group order.
    #[error("{field}: scalar not reduced modulo the group order")]
    NonCanonicalScalar {
        /// The field at fault.
        field: &'static str,
    },
    /// The scalar is zero where a non-zero one is required (secret keys).
    #[error("{field}: scalar must not be zero")]
    ZeroScalar {
        /// The field at fault.
        field: &'static str,
    },
    /// A length or count field holds a value the format does not allow.
    #[error("{field}: value {value} out of range")]
    OutOfRange {
        /// The field at fault.
        field: &'static str,
        /// The value read.
        value: u64,
    },
}

/// Decodes a canonical, non-identity ristretto255 element.
pub fn decode_point(
    bytes: &[u8; POINT_LEN],
    field: &'static str,
) -> Result<RistrettoPoint, EncodingError> {
    let point = CompressedRistretto(*bytes)
        .decompress()
        .ok_or(EncodingError::NonCanonicalPoint { field })?;
    if point.is_identity() {
        return Err(EncodingError::IdentityPoint { field });
    }
    Ok(point)
}

/// Decodes a scalar in canonical (fully reduced) little-endian form; zero is allowed.
pub fn decode_scalar(
    bytes: &[u8; SCALAR_LEN],
    field: &'static str,
) -> Result<Scalar, EncodingError> {
    Option::from(Scalar::from_canonical_bytes(*bytes))
        .ok_or(EncodingError::NonCanonicalScalar { field })
}

/// Decodes a canonical non-zero scalar (for secret keys, where zero would be a weak key).
pub fn decode_nonzero_scalar(
    bytes: &[u8; SCALAR_LEN],
    field: &'static str,
) -> Result<Scalar, EncodingError> {
    let scalar = decode_scalar(bytes, field)?;
    if scalar == Scalar::ZERO {
        return Err(EncodingError::ZeroScalar { field });
    }
    Ok(scalar)
}

/// A cursor over an encoded message that reads fixed-size fields in order.
///
/// Every `read_*` names the field it reads, so errors say which field was truncated or
/// malformed; [`Reader::finish`] rejects trailing bytes.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

#[allow(dead_code)] // read_u8 and read_point serve the credential wire formats (next commit)
impl<'a> Reader<'a> {
    /// Starts reading `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Reads `N` raw bytes.
    pub(crate) fn read_array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], EncodingError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(EncodingError::Truncated { field })?;
        self.rest = tail;
        Ok(*head)
    }

    /// Reads one byte.
    pub(crate) fn read_u8(&mut self, field: &'static str) -> Result<u8, EncodingError> {
        Ok(self.read_array::<1>(field)?[0])
    }

    /// Reads a canonical non-identity element.
    pub(crate) fn read_point(
        &mut self,
        field: &'static str,
    ) -> Result<(RistrettoPoint, [u8; POINT_LEN]), EncodingError> {
        let bytes = self.read_array::<POINT_LEN>(field)?;
        Ok((decode_point(&bytes, field)?, bytes))
    }

    /// Reads a canonical scalar.
    pub(crate) fn read_scalar(&mut self, field: &'static str) -> Result<Scalar, EncodingError> {
        decode_scalar(&self.read_array::<SCALAR_LEN>(field)?, field)
    }

    /// Succeeds only if every byte was consumed.
    pub(crate) fn finish(self) -> Result<(), EncodingError> {
        match self.rest.len() {
            0 => Ok(()),
            count => Err(EncodingError::TrailingBytes { count }),
        }
    }
}

#[cfg(test)]
mod tests {
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;

    use super::*;

    /// The group order l = 2^252 + 27742317777372353535851937790883648493, little-endian.
    const ORDER: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    #[test]
    fn identity_point_is_rejected() {
        assert_eq!(
            decode_point(&[0; 32], "x"),
            Err(EncodingError::IdentityPoint { field: "x" })
        );
    }

    #[test]
    fn non_canonical_field_element_is_rejected() {
        // 2^255 - 19 + 2 encodes the field element 2 non-canonically.
        let mut bytes = [0xff; 32];
        bytes[0] = 0xed + 2;
        bytes[31] = 0x7f;
        assert!(matches!(
            decode_point(&bytes, "x"),
            Err(EncodingError::NonCanonicalPoint { .. })
        ));
        // The high bit set on a valid encoding is also non-canonical.
        let mut bytes = RISTRETTO_BASEPOINT_POINT.compress().to_bytes();
        bytes[31] |= 0x80;
        assert!(decode_point(&bytes, "x").is_err());
    }

    #[test]
    fn negative_field_element_is_rejected() {
        // Ristretto encodings are non-negative (even) field elements; s = 1 is odd.
        let mut bytes = [0; 32];
        bytes[0] = 1;
        assert!(matches!(
            decode_point(&bytes, "x"),
            Err(EncodingError::NonCanonicalPoint { .. })
        ));
    }

    #[test]
    fn unreduced_scalar_is_rejected() {
        let order = ORDER;
        assert_eq!(
            decode_scalar(&order, "s"),
            Err(EncodingError::NonCanonicalScalar { field: "s" })
        );
        assert!(decode_scalar(&[0xff; 32], "s").is_err());
        let mut below = order;
        below[0] -= 1;
        assert!(decode_scalar(&below, "s").is_ok());
    }

    #[test]
    fn zero_secret_scalar_is_rejected() {
        assert_eq!(
            decode_nonzero_scalar(&[0; 32], "k"),
            Err(EncodingError::ZeroScalar { field: "k" })
        );
    }

    #[test]
    fn reader_rejects_truncation_and_trailing_bytes() {
        let mut reader = Reader::new(&[1, 2, 3]);
        assert_eq!(reader.read_u8("a"), Ok(1));
        assert_eq!(
            reader.read_array::<4>("b"),
            Err(EncodingError::Truncated { field: "b" })
        );
        let mut reader = Reader::new(&[1, 2, 3]);
        assert_eq!(reader.read_array::<2>("a"), Ok([1, 2]));
        assert_eq!(
            reader.finish(),
            Err(EncodingError::TrailingBytes { count: 1 })
        );
    }
}
