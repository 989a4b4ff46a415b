//! Numbers as text for people: digits grouped in threes, decimals fixed, floats never printed
//! unrounded. The command line's tables and every message that quotes a figure (a refused mark,
//! a missing index) write numbers the same way.

use rust_decimal::{Decimal, RoundingStrategy};

/// Groups the integer digits of a decimal string in threes (`1234567.5` -> `1,234,567.5`).
#[must_use]
pub fn grouped(text: &str) -> String {
    let (sign, unsigned) = text
        .strip_prefix('-')
        .map_or(("", text), |rest| ("-", rest));
    let (integer, fraction) = unsigned
        .split_once('.')
        .map_or((unsigned, None), |(i, f)| (i, Some(f)));
    let mut out = String::with_capacity(text.len() + integer.len() / 3);
    for (index, digit) in integer.chars().enumerate() {
        if index > 0 && (integer.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    match fraction {
        Some(fraction) => format!("{sign}{out}.{fraction}"),
        None => format!("{sign}{out}"),
    }
}

/// `value` rounded half away from zero to exactly `decimals` places (zeros added, so that a
/// column's points line up), grouped; never `-0`.
#[must_use]
pub fn fixed(value: Decimal, decimals: u32) -> String {
    let mut rounded =
        value.round_dp_with_strategy(decimals, RoundingStrategy::MidpointAwayFromZero);
    if rounded.is_zero() {
        rounded.set_sign_positive(true);
    }
    rounded.rescale(decimals);
    grouped(&rounded.to_string())
}

/// `value` to `decimals` places, grouped; `-` for a non-finite value (a report never holds one,
/// but a table must not print `NaN` as a figure).
#[must_use]
pub fn float(value: f64, decimals: usize) -> String {
    if !value.is_finite() {
        return "-".to_owned();
    }
    let text = format!("{value:.decimals$}");
    // `-0.00`: a tiny negative rounds to zero, which has no sign.
    let text = match text.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_owned(),
        _ => text,
    };
    grouped(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(grouped("1234567.5"), "1,234,567.5");
        assert_eq!(grouped("-1000"), "-1,000");
        assert_eq!(grouped("999"), "999");
        assert_eq!(grouped("0.000001"), "0.000001");
    }

    #[test]
    fn amounts_are_fixed_to_their_decimals() {
        assert_eq!(fixed(dec!(49999.999999), 2), "50,000.00");
        assert_eq!(fixed(dec!(1.31578947), 8), "1.31578947");
        assert_eq!(fixed(dec!(2), 8), "2.00000000");
        assert_eq!(fixed(dec!(-0.001), 2), "0.00");
        assert_eq!(fixed(dec!(-1234.565), 2), "-1,234.57");
    }

    #[test]
    fn floats_never_print_unrounded() {
        assert_eq!(float(0.028_900_280_836_230_59, 4), "0.0289");
        assert_eq!(float(-0.000_01, 2), "0.00");
        assert_eq!(float(14_697.7, 2), "14,697.70");
        assert_eq!(float(f64::NAN, 2), "-");
    }
}
