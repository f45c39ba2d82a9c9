//! Human-written quantities in scenario files: durations ("250ms", "1.5s"),
//! byte sizes ("512B", "4KiB"), and the two forms a distribution of either
//! takes (a plain value, or a `{ dist = "...", ... }` table). Values
//! serialize back to strings that parse to the same value, so a scenario
//! written into `summary.json` reads back unchanged.
//! Used by the scenario types in `mod.rs`; nothing here knows about files.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written like "250ms", "5s", "2m", "1h", "200us", "1.5s".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub Duration);

const DUR_EXPECTED: &str = "a duration like \"250ms\", \"5s\", \"2m\"";

impl Dur {
    pub const ZERO: Dur = Dur(Duration::ZERO);

    pub const fn from_secs(secs: u64) -> Dur {
        Dur(Duration::from_secs(secs))
    }
    pub const fn from_millis(ms: u64) -> Dur {
        Dur(Duration::from_millis(ms))
    }
    pub const fn from_micros(us: u64) -> Dur {
        Dur(Duration::from_micros(us))
    }
    pub const fn as_duration(self) -> Duration {
        self.0
    }
    /// Nanoseconds, saturating at `u64::MAX` (about 584 years).
    pub fn as_nanos(self) -> u64 {
        u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX)
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<Duration> for Dur {
    fn from(d: Duration) -> Dur {
        Dur(d)
    }
}

impl FromStr for Dur {
    type Err = String;

    fn from_str(s: &str) -> Result<Dur, String> {
        let trimmed = s.trim();
        // humantime rejects a bare "0", which people write for "no delay".
        if trimmed == "0" {
            return Ok(Dur::ZERO);
        }
        humantime::parse_duration(trimmed)
            .map(Dur)
            .map_err(|e| format!("expected {DUR_EXPECTED}; got {s:?} ({e})"))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            f.write_str("0s")
        } else {
            // "1s 500ms": humantime's own form, which `from_str` reads back.
            write!(f, "{}", humantime::format_duration(self.0))
        }
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{DUR_EXPECTED} (a string with a unit)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// A byte count written like "512B", "1KiB", "4KB" (= 4000), "1MiB", "2MB" or a bare integer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub u64);

const BYTES_EXPECTED: &str = "a size like \"512B\", \"4KiB\", \"1MB\" or a whole number of bytes";

/// Units accepted after the number, matched without regard to case.
const BYTE_UNITS: [(&str, u64); 9] = [
    ("", 1),
    ("b", 1),
    ("kb", 1000),
    ("kib", 1 << 10),
    ("mb", 1_000_000),
    ("mib", 1 << 20),
    ("gb", 1_000_000_000),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
];

impl Bytes {
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl FromStr for Bytes {
    type Err = String;

    fn from_str(s: &str) -> Result<Bytes, String> {
        let bad = |why: &str| format!("expected {BYTES_EXPECTED}; got {s:?} ({why})");
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = (&t[..split], t[split..].trim());
        if num.is_empty() {
            return Err(bad("no number"));
        }
        let Some(&(_, mult)) = BYTE_UNITS
            .iter()
            .find(|(u, _)| u.eq_ignore_ascii_case(unit))
        else {
            return Err(bad("units: B, KB, KiB, MB, MiB, GB, GiB, TiB"));
        };
        if let Ok(n) = num.parse::<u64>() {
            return n
                .checked_mul(mult)
                .map(Bytes)
                .ok_or_else(|| bad("too large"));
        }
        // A fraction such as "1.5KiB": accepted when it names a whole number of bytes.
        let x: f64 = num.parse().map_err(|_| bad("not a number"))?;
        let total = x * mult as f64;
        if total.fract() != 0.0 {
            return Err(bad("not a whole number of bytes"));
        }
        if total >= u64::MAX as f64 {
            return Err(bad("too large"));
        }
        Ok(Bytes(total as u64))
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (unit, mult) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if n >= mult && n.is_multiple_of(mult) {
                return write!(f, "{}{unit}", n / mult);
            }
        }
        write!(f, "{n}B")
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(BYTES_EXPECTED)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Bytes, E> {
                s.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Bytes, E> {
                Ok(Bytes(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Bytes, E> {
                u64::try_from(n)
                    .map(Bytes)
                    .map_err(|_| E::custom(format!("expected {BYTES_EXPECTED}; got {n}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A producer's rate: events per second on an open-loop schedule, or "max":
/// closed loop, each connection sending its next pipeline as soon as the last
/// is answered (redis-benchmark's model, for finding the ceiling).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    PerSecond(f64),
    Max,
}

const RATE_EXPECTED: &str = "a rate in events/s like 1000, or \"max\"";

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Rate::PerSecond(r) => s.serialize_f64(*r),
            Rate::Max => s.serialize_str("max"),
        }
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rate, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(RATE_EXPECTED)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Rate, E> {
                match s.trim() {
                    "max" => Ok(Rate::Max),
                    other => other
                        .parse()
                        .map(Rate::PerSecond)
                        .map_err(|_| E::custom(format!("expected {RATE_EXPECTED}; got {s:?}"))),
                }
            }
            fn visit_f64<E: de::Error>(self, r: f64) -> Result<Rate, E> {
                Ok(Rate::PerSecond(r))
            }
            fn visit_i64<E: de::Error>(self, r: i64) -> Result<Rate, E> {
                Ok(Rate::PerSecond(r as f64))
            }
            fn visit_u64<E: de::Error>(self, r: u64) -> Result<Rate, E> {
                Ok(Rate::PerSecond(r as f64))
            }
        }
        d.deserialize_any(V)
    }
}

/// The allowed `dist` names of one distribution type, each with the fields it takes.
pub(crate) type DistKinds = &'static [(&'static str, &'static [&'static str])];

/// Reads a distribution written either as a plain value (which becomes the kind
/// named first in `kinds`, taking one field) or as a table with `dist` and that
/// kind's fields. Returns the kind and its field values in the order `kinds` lists them.
/// `what` names the quantity in errors ("size", "processing time").
pub(crate) fn deserialize_dist<'de, D, T>(
    d: D,
    what: &'static str,
    kinds: DistKinds,
) -> Result<(&'static str, Vec<T>), D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T> {
        what: &'static str,
        kinds: DistKinds,
        marker: std::marker::PhantomData<T>,
    }
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = (&'static str, Vec<T>);
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "a fixed {} or a table {{ dist = ..., ... }} with dist ",
                self.what
            )?;
            f.write_str(&describe_kinds(self.kinds))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok((
                self.kinds[0].0,
                vec![T::deserialize(s.into_deserializer())?],
            ))
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
            Ok((
                self.kinds[0].0,
                vec![T::deserialize(n.into_deserializer())?],
            ))
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
            Ok((
                self.kinds[0].0,
                vec![T::deserialize(n.into_deserializer())?],
            ))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let allowed = || describe_kinds(self.kinds);
            let mut dist: Option<String> = None;
            let mut given: Vec<(String, T)> = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                if key == "dist" {
                    dist = Some(map.next_value()?);
                } else if self.kinds.iter().any(|(_, fs)| fs.contains(&key.as_str())) {
                    given.push((key, map.next_value()?));
                } else {
                    return Err(de::Error::custom(format!(
                        "unknown field `{key}` in a {} distribution; expected `dist` and the fields of {}",
                        self.what,
                        allowed()
                    )));
                }
            }
            let (kind, fields) = match dist {
                Some(name) => *self.kinds.iter().find(|(k, _)| *k == name).ok_or_else(|| {
                    de::Error::custom(format!("unknown dist {name:?}; expected {}", allowed()))
                })?,
                None => {
                    let (fixed, fields) = self.kinds[0];
                    if given.len() != 1 || given[0].0 != fields[0] {
                        return Err(de::Error::custom(format!(
                            "missing `dist`: set dist = {}, or write a plain value for a fixed {}",
                            allowed(),
                            self.what
                        )));
                    }
                    (fixed, fields)
                }
            };
            if let Some((extra, _)) = given.iter().find(|(k, _)| !fields.contains(&k.as_str())) {
                return Err(de::Error::custom(format!(
                    "`{extra}` does not apply to dist = {kind:?}, which takes {}",
                    fields.join(", ")
                )));
            }
            let mut values = Vec::with_capacity(fields.len());
            for field in fields {
                let at = given.iter().position(|(k, _)| k == field).ok_or_else(|| {
                    de::Error::custom(format!(
                        "dist = {kind:?} needs `{field}` (it takes {})",
                        fields.join(", ")
                    ))
                })?;
                values.push(given.swap_remove(at).1);
            }
            Ok((kind, values))
        }
    }
    d.deserialize_any(V {
        what,
        kinds,
        marker: std::marker::PhantomData,
    })
}

/// `"fixed" (value), "uniform" (min, max), ...` for error messages.
fn describe_kinds(kinds: DistKinds) -> String {
    let parts: Vec<String> = kinds
        .iter()
        .map(|(k, fs)| format!("{k:?} ({})", fs.join(", ")))
        .collect();
    format!("one of {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dur(s: &str) -> Dur {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn durations_parse_common_forms() {
        assert_eq!(dur("250ms"), Dur::from_millis(250));
        assert_eq!(dur("5s"), Dur::from_secs(5));
        assert_eq!(dur("2m"), Dur::from_secs(120));
        assert_eq!(dur("1h"), Dur::from_secs(3600));
        assert_eq!(dur("200us"), Dur::from_micros(200));
        assert_eq!(dur("1.5s"), Dur::from_millis(1500));
        assert_eq!(dur("0s"), Dur::ZERO);
        assert_eq!(dur("0"), Dur::ZERO);
        assert_eq!(dur("1s 500ms"), Dur::from_millis(1500));
    }

    #[test]
    fn duration_errors_say_what_was_given_and_what_is_allowed() {
        let e = "5 parsecs".parse::<Dur>().unwrap_err();
        assert!(
            e.starts_with("expected a duration like \"250ms\", \"5s\", \"2m\"; got \"5 parsecs\""),
            "{e}"
        );
        assert!("".parse::<Dur>().is_err());
        assert!("5".parse::<Dur>().is_err());
        assert!("-5s".parse::<Dur>().is_err());
    }

    #[test]
    fn durations_round_trip_through_display() {
        for s in ["0s", "250ms", "1.5s", "200us", "2m", "1h", "90m", "3ns"] {
            let d = dur(s);
            assert_eq!(dur(&d.to_string()), d, "{s} -> {d}");
        }
        assert_eq!(Dur::from_millis(1500).to_string(), "1s 500ms");
        assert_eq!(Dur::ZERO.to_string(), "0s");
    }

    #[test]
    fn duration_helpers() {
        let d = Dur::from_millis(1500);
        assert_eq!(d.as_nanos(), 1_500_000_000);
        assert_eq!(d.as_secs_f64(), 1.5);
        assert_eq!(d.as_duration(), Duration::from_millis(1500));
        assert!(Dur::from_millis(1) < Dur::from_secs(1));
        assert_eq!(Dur(Duration::MAX).as_nanos(), u64::MAX);
    }

    #[test]
    fn bytes_parse_units() {
        let b = |s: &str| s.parse::<Bytes>().unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(b("512B"), Bytes(512));
        assert_eq!(b("512"), Bytes(512));
        assert_eq!(b("1KiB"), Bytes(1024));
        assert_eq!(b("4KB"), Bytes(4000));
        assert_eq!(b("1MiB"), Bytes(1 << 20));
        assert_eq!(b("2MB"), Bytes(2_000_000));
        assert_eq!(b("1.5KiB"), Bytes(1536));
        assert_eq!(b("1 kib"), Bytes(1024));
        assert_eq!(b("0B"), Bytes(0));
    }

    #[test]
    fn bytes_errors_say_what_is_allowed() {
        for bad in [
            "",
            "KiB",
            "5 parsecs",
            "1.5B",
            "-1B",
            "99999999999GiB",
            "1e3B",
        ] {
            let e = bad.parse::<Bytes>().unwrap_err();
            assert!(e.contains("expected a size like \"512B\""), "{bad}: {e}");
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    #[test]
    fn bytes_display_round_trips() {
        for n in [0, 1, 512, 1024, 1536, 4000, 1 << 20, 3 << 30, u64::MAX] {
            let s = Bytes(n).to_string();
            assert_eq!(s.parse::<Bytes>(), Ok(Bytes(n)), "{s}");
        }
        assert_eq!(Bytes(512).to_string(), "512B");
        assert_eq!(Bytes(1024).to_string(), "1KiB");
    }
}
