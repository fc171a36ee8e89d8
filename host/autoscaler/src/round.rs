//! Upstream's numeric helpers, bit for bit: decisions must match the Java operator's on the
//! same metrics, so users moving between them see the same scaling.

/// `ScalingMetrics.roundMetric`: the shortest decimal representation of `x` rounded half-up
/// to 3 decimals. NaN and infinities are unchanged; a result of 0 returns `x` itself (tiny
/// rates are kept rather than zeroed).
pub fn round3(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let rounded = half_up_3(&format!("{x}"));
    if rounded == 0.0 { x } else { rounded }
}

/// Decimal half-up rounding of a shortest-representation string (`-12.3455`, `1e-7`) to 3
/// places, done on the digits so no binary rounding creeps in.
fn half_up_3(text: &str) -> f64 {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match digits.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (digits, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // All digits, and where the decimal point sits among them.
    let all: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .collect();
    let point = int_part.len() as i32 + exponent;
    // Keep the digits up to 3 places after the point; look at the next one.
    let keep = point + 3;
    let mut kept: Vec<u8> = if keep <= 0 {
        Vec::new()
    } else {
        all.iter().copied().take(keep as usize).collect()
    };
    while (kept.len() as i32) < keep {
        kept.push(0);
    }
    let next = if keep < 0 {
        0
    } else {
        all.get(keep as usize).copied().unwrap_or(0)
    };
    let mut value: u128 = kept.iter().fold(0u128, |acc, d| acc * 10 + u128::from(*d));
    if next >= 5 {
        value += 1;
    }
    let magnitude = value as f64 / 1000.0;
    if negative { -magnitude } else { magnitude }
}

/// Java's `Math.round` for the non-negative values the autoscaler rounds: `floor(x + 0.5)`;
/// +Inf saturates as Java's `long` does.
pub fn jround(x: f64) -> f64 {
    if x.is_nan() {
        return 0.0;
    }
    if x >= 9.223_372_036_854_776e18 {
        return 9.223_372_036_854_776e18;
    }
    (x + 0.5).floor()
}

/// Java's `Math.max`/`Math.min` propagate NaN; Rust's `f64::max`/`min` drop it.
pub fn jmax(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

pub fn jmin(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// `x` rounded up (towards +Inf) to `places` decimals on its shortest decimal form, as Java's
/// `BigDecimal.valueOf(x).setScale(places, CEILING)`: 0.5 stays 0.5 and 0.57 stays 0.57 (not
/// 0.5700000000000001), 0.501 becomes 0.51 at two places.
pub fn ceil_decimals(x: f64, places: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let text = format!("{x}");
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    if fraction.len() <= places {
        return x;
    }
    let kept = format!("{whole}.{}", &fraction[..places]);
    let truncated: f64 = kept.parse().unwrap_or(x);
    if x > 0.0 && fraction[places..].bytes().any(|b| b != b'0') {
        // One unit of the last kept place up, computed on integers so no binary drift.
        let scale = 10f64.powi(places as i32);
        ((truncated * scale).round() + 1.0) / scale
    } else {
        truncated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_metrics_round_half_up_on_the_decimal_digits() {
        assert_eq!(round3(500.0 / 0.85), 588.235);
        assert_eq!(round3(0.0005), 0.001, "half up");
        assert_eq!(
            round3(1.0005),
            1.001,
            "1.0005 is 1.000499999… in binary, but its decimal text rounds up"
        );
        assert_eq!(round3(-2.3456), -2.346);
        assert_eq!(round3(123456.78949), 123456.789);
        assert_eq!(round3(0.0004), 0.0004, "a result of 0 keeps the value");
        assert_eq!(round3(1e-7), 1e-7);
        assert_eq!(round3(2.5e10), 2.5e10);
        assert!(round3(f64::NAN).is_nan());
        assert_eq!(round3(f64::INFINITY), f64::INFINITY);
    }

    #[test]
    fn java_semantics_for_round_max_and_min() {
        assert_eq!(jround(2.5), 3.0);
        assert_eq!(jround(254.999_999), 255.0);
        assert_eq!(jround(f64::INFINITY), 9.223_372_036_854_776e18);
        assert!(jmax(f64::NAN, 1.0).is_nan());
        assert!(jmin(1.0, f64::NAN).is_nan());
        assert_eq!(jmax(1.0, 2.0), 2.0);
    }

    #[test]
    fn ceiling_works_on_the_decimal_form() {
        assert_eq!(ceil_decimals(0.5, 2), 0.5);
        assert_eq!(ceil_decimals(0.57, 2), 0.57, "not 0.5700000000000001");
        assert_eq!(ceil_decimals(0.501, 2), 0.51);
        assert_eq!(ceil_decimals(0.7904761904761904, 2), 0.8);
        assert_eq!(ceil_decimals(1.0, 2), 1.0);
        assert_eq!(ceil_decimals(0.0002, 3), 0.001, "never rounded down to 0");
        assert_eq!(ceil_decimals(0.125, 3), 0.125);
        assert_eq!(ceil_decimals(-0.1234, 3), -0.123, "towards +Inf");
    }
}
