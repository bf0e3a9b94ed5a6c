//! Go `time.Duration` text, as kubeadm reads and writes it (`8760h0m0s`).
//!
//! kubeadm stores certificate validity periods as Go durations, so kpki must accept exactly what
//! Go's `time.ParseDuration` accepts and print what `Duration.String()` prints; anything looser or
//! stricter would make the same config mean different things to the two tools. Like Go, values
//! are limited to a signed 64-bit count of nanoseconds (about 292 years).

use time::Duration;

/// One-line hint appended to errors, because most mistakes are a missing or unknown unit.
const EXPECTED: &str = "expected a number followed by a unit (ns, us, ms, s, m, h), e.g. 8760h";

/// 2^63 nanoseconds: the magnitude bound Go checks against while accumulating.
const LIMIT: u64 = 1 << 63;

/// Parses a Go duration string ("8760h", "1h30m0s", "1.5h").
///
/// Follows Go's `time.ParseDuration`: a sequence of decimal numbers, each with an optional
/// fraction and a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), with an optional leading sign;
/// `0` alone needs no unit. Negative and zero durations are accepted because Go accepts them;
/// callers decide what range makes sense.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let fail = |reason: &str| format!("invalid duration {s:?}: {reason}");

    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..).unwrap_or("")),
        Some(b'+') => (false, s.get(1..).unwrap_or("")),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(fail(EXPECTED));
    }

    let mut total: u64 = 0;
    while !rest.is_empty() {
        let bytes = rest.as_bytes();
        if !bytes
            .first()
            .is_some_and(|c| *c == b'.' || c.is_ascii_digit())
        {
            return Err(fail(EXPECTED));
        }

        // Integer part.
        let int_len = bytes.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut value: u64 = 0;
        for c in &bytes[..int_len] {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
                .filter(|v| *v <= LIMIT)
                .ok_or_else(|| fail(OUT_OF_RANGE))?;
        }
        let mut pos = int_len;

        // Fraction part: digits past u64 precision are dropped, as Go does.
        let mut frac: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut frac_len = 0;
        if bytes.get(pos) == Some(&b'.') {
            pos += 1;
            frac_len = bytes[pos..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            let mut saturated = false;
            for c in &bytes[pos..pos + frac_len] {
                if saturated {
                    continue;
                }
                match frac
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(c - b'0')))
                    .filter(|v| *v <= LIMIT)
                {
                    Some(v) => {
                        frac = v;
                        scale *= 10.0;
                    }
                    None => saturated = true,
                }
            }
            pos += frac_len;
        }
        if int_len == 0 && frac_len == 0 {
            // A lone "." or ".h": no digits at all.
            return Err(fail(EXPECTED));
        }

        // Unit: everything up to the next number.
        let unit_len = bytes[pos..]
            .iter()
            .take_while(|c| **c != b'.' && !c.is_ascii_digit())
            .count();
        let number = rest.get(..pos).unwrap_or(rest);
        if unit_len == 0 {
            return Err(fail(&format!(
                "missing unit after {number} (use ns, us, ms, s, m or h, e.g. 8760h)"
            )));
        }
        // Unit bytes end at an ASCII byte or the end of the string, so this is a char boundary.
        let unit = rest.get(pos..pos + unit_len).unwrap_or("");
        let unit_nanos = unit_nanos(unit).ok_or_else(|| {
            fail(&format!(
                "unknown unit {unit:?} (use ns, us, ms, s, m or h; write days as hours, e.g. 8760h for 365 days)"
            ))
        })?;
        rest = rest.get(pos + unit_len..).unwrap_or("");

        if value > LIMIT / unit_nanos {
            return Err(fail(OUT_OF_RANGE));
        }
        value *= unit_nanos;
        if frac > 0 {
            // Float-to-int `as` saturates; the sum is range-checked below.
            let extra = (frac as f64 * (unit_nanos as f64 / scale)) as u64;
            value = value
                .checked_add(extra)
                .filter(|v| *v <= LIMIT)
                .ok_or_else(|| fail(OUT_OF_RANGE))?;
        }
        total = total
            .checked_add(value)
            .filter(|v| *v <= LIMIT)
            .ok_or_else(|| fail(OUT_OF_RANGE))?;
    }

    let signed = if neg {
        -i128::from(total)
    } else {
        i128::from(total)
    };
    let nanos = i64::try_from(signed).map_err(|_| fail(OUT_OF_RANGE))?;
    Ok(Duration::nanoseconds(nanos))
}

/// Error text for values that do not fit Go's signed 64-bit nanosecond count.
const OUT_OF_RANGE: &str = "out of range (the limit is 2562047h47m16.854775807s, about 292 years)";

/// Nanoseconds per unit, with both spellings of "micro" that Go accepts.
fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

/// Formats like Go's Duration.String(): "8760h0m0s", "1h30m0s", "1m30s", "0s", "500ms".
///
/// Exactly Go's output, so values written back into kubeadm configs or shown to operators look
/// familiar: hours are the largest unit, zero components below the largest are kept
/// (`1h0m0s`), fractions drop trailing zeros, and durations under one second use `ms`, `µs`
/// (U+00B5, as Go prints it) or `ns`. Durations beyond Go's range are still formatted, not
/// truncated.
pub fn format_go_duration(d: Duration) -> String {
    let total = d.whole_nanoseconds();
    let sign = if total < 0 { "-" } else { "" };
    let nanos = total.unsigned_abs();

    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000_000_000 {
        let (prec, unit) = if nanos < 1_000 {
            (0, "ns")
        } else if nanos < 1_000_000 {
            (3, "\u{b5}s")
        } else {
            (6, "ms")
        };
        let (whole, frac) = split_fraction(nanos, prec);
        return format!("{sign}{whole}{frac}{unit}");
    }

    let (secs, frac) = split_fraction(nanos, 9);
    let mins = secs / 60;
    let hours = mins / 60;
    if hours > 0 {
        format!("{sign}{hours}h{}m{}{frac}s", mins % 60, secs % 60)
    } else if mins > 0 {
        format!("{sign}{mins}m{}{frac}s", secs % 60)
    } else {
        format!("{sign}{secs}{frac}s")
    }
}

/// Splits `v` into `v / 10^prec` and the fraction as ".ddd" without trailing zeros ("" if zero).
fn split_fraction(v: u128, prec: usize) -> (u128, String) {
    let div = (0..prec).fold(1u128, |acc, _| acc * 10);
    let frac = v % div;
    if frac == 0 {
        return (v / div, String::new());
    }
    let digits = format!("{frac:0prec$}");
    (v / div, format!(".{}", digits.trim_end_matches('0')))
}

/// Serde helper: writes a duration in Go syntax (`8760h0m0s`) in JSON/YAML output.
pub fn serialize_go<S: serde::Serializer>(d: &time::Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_go_duration(*d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(n: i64) -> Duration {
        Duration::nanoseconds(n)
    }

    const S: i64 = 1_000_000_000;
    const H: i64 = 3_600 * S;

    #[test]
    fn parses_kubeadm_values() {
        assert_eq!(parse_go_duration("8760h"), Ok(ns(8760 * H)));
        assert_eq!(parse_go_duration("8760h0m0s"), Ok(ns(8760 * H)));
        assert_eq!(parse_go_duration("87600h0m0s"), Ok(ns(87600 * H)));
        assert_eq!(parse_go_duration("1h30m"), Ok(ns(H + 30 * 60 * S)));
        assert_eq!(parse_go_duration("90s"), Ok(ns(90 * S)));
        assert_eq!(parse_go_duration("1.5h"), Ok(ns(H + H / 2)));
        assert_eq!(parse_go_duration("300ms"), Ok(ns(300_000_000)));
    }

    #[test]
    fn parses_go_test_table() {
        // Cases from Go's time/time_test.go parseDurationTests.
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600_000_000),
            ("5.s", 5 * S),
            (".5s", S / 2),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4_000_000),
            ("1.0040s", S + 4_000_000),
            ("100.00100s", 100 * S + 1_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12\u{b5}s", 12_000),
            ("12\u{3bc}s", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14 * S),
            ("15m", 15 * 60 * S),
            ("16h", 16 * H),
            ("3h30m", 3 * H + 30 * 60 * S),
            ("10.5s4m", 4 * 60 * S + 10 * S + S / 2),
            ("-2m3.4s", -(2 * 60 * S + 3 * S + 400_000_000)),
            (
                "1h2m3s4ms5us6ns",
                H + 2 * 60 * S + 3 * S + 4_000_000 + 5_000 + 6,
            ),
            ("39h9m14.425s", 39 * H + 9 * 60 * S + 14 * S + 425_000_000),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * 60 * S),
            ("9007199254740993ns", 9_007_199_254_740_993),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * 60 * S),
            ("0.830103483285477580700h", 49 * 60 * S + 48_372_539_827),
        ];
        for (input, want) in cases {
            assert_eq!(parse_go_duration(input), Ok(ns(*want)), "{input}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for input in [
            "", "3", "-", "s", ".", "-.", ".s", "+.s", "1d", "1y", "abc", "1h ", " 1h", "1h30",
            "1.5", "\u{0}", "h1", "1e3s", "1,5h", "--1h", "1hh", "0x10s",
        ] {
            assert!(parse_go_duration(input).is_err(), "{input:?} should fail");
        }
    }

    #[test]
    fn rejects_overflow_without_panicking() {
        for input in [
            "9223372036854775808ns",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
            "-9223372036854775809ns",
            "2562048h",
            "99999999999999999999999999999999999999h",
            "1000000000000000000000000000000000000000000000000000ns",
            "2562047h47m16.854775808s",
            "9223372036854775807ns1ns",
        ] {
            let err = parse_go_duration(input).expect_err("should fail");
            assert!(err.contains("out of range"), "{input}: {err}");
        }
        // Very long fractions are truncated, not rejected (Go behaviour).
        let long = format!("1.{}s", "9".repeat(500));
        assert!(parse_go_duration(&long).is_ok());
    }

    #[test]
    fn error_messages_explain() {
        let err = parse_go_duration("abc").expect_err("should fail");
        assert_eq!(
            err,
            "invalid duration \"abc\": expected a number followed by a unit (ns, us, ms, s, m, h), e.g. 8760h"
        );
        assert!(parse_go_duration("365d")
            .expect_err("should fail")
            .contains("unknown unit \"d\""));
        assert!(parse_go_duration("90")
            .expect_err("should fail")
            .contains("missing unit after 90"));
        assert!(!parse_go_duration("1\nh")
            .expect_err("should fail")
            .contains('\n'));
    }

    #[test]
    fn formats_like_go() {
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1\u{b5}s"),
            (2_200_000, "2.2ms"),
            (500_000_000, "500ms"),
            (3_300 * 1_000_000, "3.3s"),
            (90 * S, "1m30s"),
            (4 * 60 * S + 5 * S, "4m5s"),
            (4 * 60 * S + 5 * S + 1_000_000, "4m5.001s"),
            (5 * H + 6 * 60 * S + 7 * S + 1_000_000, "5h6m7.001s"),
            (8 * 60 * S + 1, "8m0.000000001s"),
            (H + 30 * 60 * S, "1h30m0s"),
            (8760 * H, "8760h0m0s"),
            (87600 * H, "87600h0m0s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
            (-S / 2, "-500ms"),
        ];
        for (n, want) in cases {
            assert_eq!(format_go_duration(ns(*n)), *want, "{n}");
        }
        // Beyond Go's range: still formatted, no panic.
        assert_eq!(format_go_duration(Duration::MAX).chars().last(), Some('s'));
        assert!(format_go_duration(Duration::MIN).starts_with('-'));
    }

    #[test]
    fn round_trips() {
        for s in [
            "8760h0m0s",
            "1h30m0s",
            "1m30s",
            "0s",
            "500ms",
            "1.5s",
            "-3h0m0.5s",
            "7\u{b5}s",
        ] {
            let d = parse_go_duration(s).expect("should parse");
            assert_eq!(format_go_duration(d), s);
        }
    }
}
