//! How a streamdrill event travels in a stream entry.
//!
//! Producers XADD one entry per event with four fields:
//! `sd` = the [`Header`] `"{producer}:{seq}:{intended_unix_ns}"` in ASCII
//! decimal (readable with `redis-cli XRANGE`), `type` = the event type name,
//! `agg` = the [`AggregateVersion`] `"{aggregate}:{version}"` (the event's
//! place in its aggregate's history), `data` = a payload slice from the
//! shared [`PayloadPool`]. Consumers read the header back from the reply's
//! bytes (`wire::entries`), so the hot path neither allocates a header
//! string nor builds a map per entry. The version rides in `agg` rather than
//! in a field of its own: the aggregate and its version are one fact, and a
//! fifth field would cost every reply its name. Nothing here does I/O or knows a
//! Redis client: this is the format, for every layer to share.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::decimal::push_decimal;

/// Field holding the [`Header`].
pub const HEADER_FIELD: &str = "sd";
/// Field holding the event type name.
pub const TYPE_FIELD: &str = "type";
/// Field holding the [`AggregateVersion`].
pub const AGGREGATE_FIELD: &str = "agg";
/// Field holding the payload bytes.
pub const DATA_FIELD: &str = "data";

/// Longest encoded header: u32 (10 digits) + two u64 (20 digits each) + two colons.
pub const HEADER_MAX_BYTES: usize = 10 + 1 + 20 + 1 + 20;

/// Identity and timing of one event: who produced it, its place in that
/// producer's sequence (the ledger key), and when it was *meant* to be sent
/// (unix ns), which end-to-end latency is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    pub producer: u32,
    pub seq: u64,
    pub intended_ns: u64,
}

impl Header {
    /// Append `producer:seq:intended_ns` to `buf`. Allocates nothing when
    /// `buf` has [`HEADER_MAX_BYTES`] of spare capacity.
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        push_decimal(buf, u64::from(self.producer));
        buf.push(b':');
        push_decimal(buf, self.seq);
        buf.push(b':');
        push_decimal(buf, self.intended_ns);
    }

    /// Parse an encoded header. Anything else (empty, signs, spaces, missing
    /// or extra parts, values that overflow) gives `None`.
    pub fn parse(bytes: &[u8]) -> Option<Header> {
        let mut parts = bytes.split(|&b| b == b':');
        let producer = parse_decimal(parts.next()?)?;
        let seq = parse_decimal(parts.next()?)?;
        let intended_ns = parse_decimal(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        Some(Header {
            producer: u32::try_from(producer).ok()?,
            seq,
            intended_ns,
        })
    }
}

/// Which aggregate an event belongs to and its version there: 1, 2, 3 … in
/// the order the producers sent that aggregate's events; see
/// docs/event-sourcing.md, "Per-aggregate ordering".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AggregateVersion {
    pub aggregate: u64,
    pub version: u32,
}

impl AggregateVersion {
    /// Append `aggregate:version` to `buf`.
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        push_decimal(buf, self.aggregate);
        buf.push(b':');
        push_decimal(buf, u64::from(self.version));
    }

    /// Parse an encoded `agg` value; a bare aggregate id (no version) or
    /// anything malformed gives `None`.
    pub fn parse(bytes: &[u8]) -> Option<AggregateVersion> {
        let colon = bytes.iter().position(|&b| b == b':')?;
        Some(AggregateVersion {
            aggregate: parse_decimal(&bytes[..colon])?,
            version: u32::try_from(parse_decimal(&bytes[colon + 1..])?).ok()?,
        })
    }
}

// Stricter than `str::parse::<u64>`, which accepts a leading '+'.
fn parse_decimal(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    bytes.iter().try_fold(0u64, |acc, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Room beyond the largest payload, so slices start at many different
/// offsets and consecutive events do not carry identical bytes.
const POOL_SPREAD_BYTES: usize = 64 * 1024;

/// One pre-generated buffer of pseudo-random printable bytes that every
/// payload is sliced from, so producing an event allocates no payload.
/// Printable so `redis-cli` output stays readable; random so RDB's LZF
/// compression sees data about as incompressible as real payloads.
#[derive(Debug, Clone)]
pub struct PayloadPool {
    bytes: Vec<u8>,
}

impl PayloadPool {
    /// A pool for payloads of up to `max_size` bytes; the same `seed` gives the same bytes.
    pub fn new(seed: u64, max_size: usize) -> Self {
        let mut bytes = vec![0u8; max_size.saturating_add(POOL_SPREAD_BYTES)];
        StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
        // 94 printable ASCII characters '!'..='~'; the slight modulo bias is harmless here.
        for b in &mut bytes {
            *b = b'!' + *b % 94;
        }
        PayloadPool { bytes }
    }

    /// `size` bytes starting at an offset derived from `offset_hint` (e.g.
    /// the event's sequence number): deterministic, and different for
    /// neighbouring hints. A `size` beyond the pool is clamped to the pool.
    pub fn slice(&self, size: usize, offset_hint: u64) -> &[u8] {
        let size = size.min(self.bytes.len());
        let starts = (self.bytes.len() - size + 1) as u64;
        let start = (mix64(offset_hint) % starts) as usize;
        &self.bytes[start..start + size]
    }

    /// The largest slice the pool can give.
    pub fn max_size(&self) -> usize {
        self.bytes.len()
    }
}

// splitmix64's finalizer: spreads consecutive hints over the whole range.
fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(h: Header) -> Vec<u8> {
        let mut buf = Vec::new();
        h.encode_into(&mut buf);
        buf
    }

    #[test]
    fn header_round_trips_including_extremes() {
        for h in [
            Header {
                producer: 0,
                seq: 0,
                intended_ns: 0,
            },
            Header {
                producer: 3,
                seq: 42,
                intended_ns: 1_700_000_000_123_456_789,
            },
            Header {
                producer: u32::MAX,
                seq: u64::MAX,
                intended_ns: u64::MAX,
            },
        ] {
            let bytes = encode(h);
            assert!(bytes.len() <= HEADER_MAX_BYTES);
            assert_eq!(Header::parse(&bytes), Some(h));
        }
        let h = Header {
            producer: 7,
            seq: 1001,
            intended_ns: 5,
        };
        assert_eq!(encode(h), b"7:1001:5");
    }

    #[test]
    fn encode_appends_without_reallocating() {
        let mut buf = Vec::with_capacity(HEADER_MAX_BYTES + 2);
        buf.extend_from_slice(b"x|");
        let ptr = buf.as_ptr();
        Header {
            producer: u32::MAX,
            seq: u64::MAX,
            intended_ns: u64::MAX,
        }
        .encode_into(&mut buf);
        assert_eq!(buf.as_ptr(), ptr);
        assert!(buf.starts_with(b"x|4294967295:"));
    }

    #[test]
    fn garbage_headers_give_none() {
        let bad: &[&[u8]] = &[
            b"",
            b":",
            b"::",
            b"1:2",
            b"1:2:",
            b":2:3",
            b"1::3",
            b"1:2:3:4",
            b"a:2:3",
            b"1:2:3x",
            b"+1:2:3",
            b"-1:2:3",
            b" 1:2:3",
            b"1:2:3\n",
            b"4294967296:2:3",              // producer overflows u32
            b"1:18446744073709551616:3",    // seq overflows u64
            b"1:2:99999999999999999999999", // intended overflows u64
            "١:2:3".as_bytes(),             // non-ASCII digit
        ];
        for input in bad {
            assert_eq!(
                Header::parse(input),
                None,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn aggregate_versions_round_trip_and_garbage_gives_none() {
        for av in [
            AggregateVersion {
                aggregate: 0,
                version: 1,
            },
            AggregateVersion {
                aggregate: u64::MAX,
                version: u32::MAX,
            },
        ] {
            let mut buf = Vec::new();
            av.encode_into(&mut buf);
            assert_eq!(AggregateVersion::parse(&buf), Some(av));
        }
        let bad: &[&[u8]] = &[
            b"",
            b"17",
            b":3",
            b"17:",
            b"17:3:1",
            b"17:4294967296",
            b"+1:2",
        ];
        for input in bad {
            assert_eq!(AggregateVersion::parse(input), None, "{input:?}");
        }
    }

    #[test]
    fn payload_slices_have_the_requested_size_and_are_printable() {
        let pool = PayloadPool::new(1, 4096);
        for (size, hint) in [
            (0, 0),
            (1, 1),
            (128, 7),
            (4096, u64::MAX),
            (4096 + POOL_SPREAD_BYTES, 3),
        ] {
            let s = pool.slice(size, hint);
            assert_eq!(s.len(), size);
            assert!(s.iter().all(|b| (b'!'..=b'~').contains(b)));
        }
        assert_eq!(pool.slice(usize::MAX, 9).len(), pool.max_size());
    }

    #[test]
    fn payloads_are_deterministic_per_seed_and_vary_by_hint() {
        let (a, b, c) = (
            PayloadPool::new(42, 512),
            PayloadPool::new(42, 512),
            PayloadPool::new(43, 512),
        );
        assert_eq!(a.slice(512, 5), b.slice(512, 5));
        assert_ne!(a.slice(512, 5), c.slice(512, 5));
        assert_ne!(a.slice(512, 5), a.slice(512, 6));
    }
}
