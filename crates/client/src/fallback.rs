//! The short typed fallback code printed under a poster's QR code.
//!
//! A visitor whose camera fails can type the venue code instead. It is written in Crockford's
//! base32 (digits and upper-case letters without I, L, O, U; on input `I`/`L` read as 1, `O` as
//! 0, case and hyphens ignored) with Crockford's mod-37 check symbol, which catches every single
//! substitution and every adjacent transposition: a 32-bit code is 7 symbols plus the check,
//! shown `XXXX-XXXX`; a 64-bit code 13 plus the check, `XXXX-XXXX-XXXX-XX`.
//!
//! A typed code carries the venue code only: no name to confirm, no signature. The diary
//! records such check-ins as typed, and the app asks the visitor to confirm the venue by name
//! once the exposure list or the registry names it.

/// Crockford's encoding symbols (values 0 to 31).
const SYMBOLS: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Crockford's check symbols for values 32 to 36.
const CHECK_EXTRA: &[u8; 5] = b"*~$=U";

/// Why a typed code was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FallbackError {
    /// Not 8 or 14 symbols once hyphens and spaces are removed.
    #[error("a venue code has 8 or 14 characters, this one has {0}")]
    BadLength(usize),
    /// A character outside Crockford's alphabet.
    #[error("character {0:?} is not allowed in a venue code")]
    BadCharacter(char),
    /// The check symbol does not match: a typing mistake.
    #[error("the venue code's last character does not match: please check for a typo")]
    BadCheck,
    /// The code is 0 or too large for its width.
    #[error("not a valid venue code")]
    OutOfRange,
}

/// Formats `code` (`bits` = 32 or 64) as a fallback code.
pub fn encode(code: u64, bits: u32) -> String {
    let symbols = if bits == 32 { 7 } else { 13 };
    let mut out: Vec<u8> = (0..symbols)
        .rev()
        .map(|i| SYMBOLS[((code >> (5 * i)) & 31) as usize])
        .collect();
    out.push(check_symbol(code));
    let text: String = out.into_iter().map(char::from).collect();
    group(&text)
}

/// Parses a typed fallback code into (venue code, bits).
pub fn decode(text: &str) -> Result<(u64, u32), FallbackError> {
    let chars: Vec<char> = text
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let bits = match chars.len() {
        8 => 32,
        14 => 64,
        n => return Err(FallbackError::BadLength(n)),
    };
    let (body, check) = chars.split_at(chars.len() - 1);

    // 1. Body symbols, most significant first.
    let mut code: u128 = 0;
    for &c in body {
        code = (code << 5) | u128::from(value(c).ok_or(FallbackError::BadCharacter(c))?);
    }
    let code = u64::try_from(code).map_err(|_| FallbackError::OutOfRange)?;
    if code == 0 || (bits == 32 && code > u64::from(u32::MAX)) {
        return Err(FallbackError::OutOfRange);
    }

    // 2. The check symbol.
    if char::from(check_symbol(code)) != normalise_check(check[0]) {
        return Err(FallbackError::BadCheck);
    }
    Ok((code, bits))
}

fn value(c: char) -> Option<u8> {
    let c = match c {
        'I' | 'L' => '1',
        'O' => '0',
        c => c,
    };
    SYMBOLS
        .iter()
        .position(|&s| char::from(s) == c)
        .and_then(|v| u8::try_from(v).ok())
}

fn normalise_check(c: char) -> char {
    match c {
        'I' | 'L' => '1',
        'O' => '0',
        c => c,
    }
}

fn check_symbol(code: u64) -> u8 {
    let v = (code % 37) as usize;
    if v < 32 {
        SYMBOLS[v]
    } else {
        CHECK_EXTRA[v - 32]
    }
}

fn group(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should panic")]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_in_both_widths() {
        for (code, bits) in [
            (1, 32),
            (0xdead_beef, 32),
            (u64::from(u32::MAX), 32),
            (u64::MAX, 64),
            (7, 64),
        ] {
            let text = encode(code, bits);
            assert_eq!(decode(&text), Ok((code, bits)), "{text}");
            assert_eq!(
                decode(&text.to_lowercase().replace('-', " ")),
                Ok((code, bits))
            );
        }
        assert_eq!(encode(0xdead_beef, 32).len(), 9);
    }

    #[test]
    fn every_single_substitution_is_caught() {
        let text: Vec<char> = encode(0x1234_5678, 32).replace('-', "").chars().collect();
        for i in 0..text.len() - 1 {
            for &s in SYMBOLS {
                let mut typo = text.clone();
                if typo[i] == char::from(s) {
                    continue;
                }
                typo[i] = char::from(s);
                let typo: String = typo.into_iter().collect();
                assert!(decode(&typo).is_err(), "{typo}");
            }
        }
    }

    #[test]
    fn adjacent_transpositions_are_caught() {
        let text: Vec<char> = encode(0x1234_5678, 32).replace('-', "").chars().collect();
        for i in 0..text.len() - 2 {
            let mut typo = text.clone();
            typo.swap(i, i + 1);
            if typo != text {
                assert!(decode(&typo.into_iter().collect::<String>()).is_err());
            }
        }
    }

    #[test]
    fn wrong_length_characters_and_range_are_named() {
        assert_eq!(decode("ABC"), Err(FallbackError::BadLength(3)));
        assert_eq!(decode("ABCD-EFU0"), Err(FallbackError::BadCharacter('U')));
        assert_eq!(decode("0000-0000"), Err(FallbackError::OutOfRange));
        assert_eq!(decode("ZZZZ-ZZZ0"), Err(FallbackError::OutOfRange));
    }
}
