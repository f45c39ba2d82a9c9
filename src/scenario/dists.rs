//! The distributions a scenario draws from: payload sizes and processing
//! times. A plain value is a fixed one; a table names its `dist` and that
//! distribution's fields (docs/scenario.md, the `events` and `processing` rows).

use serde::{Deserialize, Deserializer, Serialize};

use super::units::{self, Bytes, Dur};

/// Payload size distribution. A plain string ("512B") or integer is a fixed size;
/// a table names its `dist`: `{ dist = "uniform", min = "100B", max = "1KiB" }`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "dist", rename_all = "lowercase")]
pub enum SizeDist {
    Fixed { value: Bytes },
    Uniform { min: Bytes, max: Bytes },
    Normal { mean: Bytes, stddev: Bytes },
    Lognormal { mean: Bytes, stddev: Bytes },
}

/// Processing time distribution. A plain string ("200us") is a fixed time;
/// a table names its `dist`: `{ dist = "exponential", mean = "1ms" }`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "dist", rename_all = "lowercase")]
pub enum TimeDist {
    Fixed { value: Dur },
    Uniform { min: Dur, max: Dur },
    Exponential { mean: Dur },
    Lognormal { mean: Dur, stddev: Dur },
}

// Hand-written so that a plain value means "fixed" and a bad table gets an
// error naming the allowed `dist` values and their fields.
impl<'de> Deserialize<'de> for SizeDist {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const KINDS: units::DistKinds = &[
            ("fixed", &["value"]),
            ("uniform", &["min", "max"]),
            ("normal", &["mean", "stddev"]),
            ("lognormal", &["mean", "stddev"]),
        ];
        let (kind, v) = units::deserialize_dist::<D, Bytes>(d, "size", KINDS)?;
        Ok(match kind {
            "fixed" => SizeDist::Fixed { value: v[0] },
            "uniform" => SizeDist::Uniform {
                min: v[0],
                max: v[1],
            },
            "normal" => SizeDist::Normal {
                mean: v[0],
                stddev: v[1],
            },
            _ => SizeDist::Lognormal {
                mean: v[0],
                stddev: v[1],
            },
        })
    }
}

impl<'de> Deserialize<'de> for TimeDist {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const KINDS: units::DistKinds = &[
            ("fixed", &["value"]),
            ("uniform", &["min", "max"]),
            ("exponential", &["mean"]),
            ("lognormal", &["mean", "stddev"]),
        ];
        let (kind, v) = units::deserialize_dist::<D, Dur>(d, "processing time", KINDS)?;
        Ok(match kind {
            "fixed" => TimeDist::Fixed { value: v[0] },
            "uniform" => TimeDist::Uniform {
                min: v[0],
                max: v[1],
            },
            "exponential" => TimeDist::Exponential { mean: v[0] },
            _ => TimeDist::Lognormal {
                mean: v[0],
                stddev: v[1],
            },
        })
    }
}

impl Default for TimeDist {
    fn default() -> Self {
        TimeDist::Fixed { value: Dur::ZERO }
    }
}
