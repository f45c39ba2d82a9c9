//! How a streamdrill event travels in a stream entry.
//!
//! Producers XADD one entry per event with four fields:
//! `sd` = the [`Header`] `"{producer}:{seq}:{intended_unix_ns}"` in ASCII
//! decimal (readable with `redis-cli XRANGE`), `type` = the event type name,
//! `agg` = the aggregate id in decimal, `data` = a payload slice from the
//! shared [`PayloadPool`]. Consumers read the header back with
//! [`header_of_entry_fields`] straight from the `redis::Value` reply, so the
//! hot path neither allocates a header string nor builds a map per entry.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Field holding the [`Header`].
pub const HEADER_FIELD: &str = "sd";
/// Field holding the event type name.
pub const TYPE_FIELD: &str = "type";
/// Field holding the aggregate id (decimal).
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

// Hand-rolled rather than `write!`: this runs several times per produced
// event (header, RESP lengths) and the formatting machinery costs several
// times more than the digits; two digits per division halves the divisions.
// The digits are written in place, into room for the longest number that is
// then cut to size. Formatting into a stack buffer and copying that out was
// most of this function's cost (perf): a copy of a run-time length calls
// memcpy, and its wide loads of bytes just stored two at a time cannot be
// forwarded from the store buffer, so they stall until the stores retire.
pub(crate) fn push_decimal(buf: &mut Vec<u8>, mut value: u64) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let len = decimal_len(value);
    let at = buf.len();
    buf.extend_from_slice(&[0u8; 20]);
    let digits = &mut buf[at..at + len];
    let mut end = len;
    while value >= 100 {
        let pair = (value % 100) as usize * 2;
        value /= 100;
        digits[end - 2..end].copy_from_slice(&PAIRS[pair..pair + 2]);
        end -= 2;
    }
    if value >= 10 {
        let pair = value as usize * 2;
        digits[..2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        digits[0] = b'0' + value as u8;
    }
    buf.truncate(at + len);
}

/// How many decimal digits `value` has.
pub(crate) fn decimal_len(value: u64) -> usize {
    value.checked_ilog10().map_or(1, |d| d as usize + 1)
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

/// Extract the header from one stream entry's field/value array (the second
/// element of each `[id, fields]` pair in an XREADGROUP or XRANGE reply),
/// without building a map. RESP3 map replies are accepted too.
/// `None` when there is no `sd` field or it does not parse.
pub fn header_of_entry_fields(fields: &redis::Value) -> Option<Header> {
    use redis::Value;
    let is_header_key = |key: &Value| bytes_of(key) == Some(HEADER_FIELD.as_bytes());
    let value = match fields {
        Value::Array(items) => items
            .chunks_exact(2)
            .find(|pair| is_header_key(&pair[0]))
            .map(|pair| &pair[1]),
        Value::Map(pairs) => pairs.iter().find(|(k, _)| is_header_key(k)).map(|(_, v)| v),
        _ => None,
    }?;
    Header::parse(bytes_of(value)?)
}

/// One stream entry as XRANGE / XREADGROUP return it: its id, and its header
/// if it is a streamdrill event.
pub struct Entry {
    pub id: Vec<u8>,
    pub header: Option<Header>,
}

/// The entries of an entry list (`[[id, [field, value, ...]], ...]`), walking
/// `redis::Value` directly: the typed reply deep-copies every entry into a HashMap.
pub fn entries(list: redis::Value) -> Vec<Entry> {
    let redis::Value::Array(items) = list else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let redis::Value::Array(mut parts) = item else {
            continue;
        };
        if parts.len() != 2 {
            continue;
        }
        let fields = parts.pop().unwrap_or(redis::Value::Nil);
        let Some(redis::Value::BulkString(id)) = parts.pop() else {
            continue;
        };
        out.push(Entry {
            id,
            header: header_of_entry_fields(&fields),
        });
    }
    out
}

fn bytes_of(value: &redis::Value) -> Option<&[u8]> {
    match value {
        redis::Value::BulkString(b) => Some(b),
        redis::Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
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
    use redis::Value;

    fn encode(h: Header) -> Vec<u8> {
        let mut buf = Vec::new();
        h.encode_into(&mut buf);
        buf
    }

    #[test]
    fn decimals_match_the_standard_formatting() {
        let mut edges: Vec<u64> = vec![0, 9, 10, 99, 100, 101, u64::MAX, u64::MAX - 1];
        for p in 1..20 {
            let pow = 10u64.pow(p);
            edges.extend([pow - 1, pow, pow + 1]);
        }
        for n in edges {
            let mut buf = b"x".to_vec();
            push_decimal(&mut buf, n);
            assert_eq!(buf, format!("x{n}").into_bytes());
        }
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

    fn bulk(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    #[test]
    fn header_found_among_entry_fields() {
        let fields = Value::Array(vec![
            bulk(b"type"),
            bulk(b"OrderPlaced"),
            bulk(b"sd"),
            bulk(b"2:10:99"),
            bulk(b"data"),
            bulk(b"sd"),
        ]);
        assert_eq!(
            header_of_entry_fields(&fields),
            Some(Header {
                producer: 2,
                seq: 10,
                intended_ns: 99
            })
        );
        let map = Value::Map(vec![(bulk(b"sd"), bulk(b"1:2:3"))]);
        assert_eq!(header_of_entry_fields(&map).map(|h| h.seq), Some(2));
    }

    #[test]
    fn entries_without_a_valid_header_give_none() {
        let cases = [
            Value::Nil,
            Value::Array(vec![]),
            Value::Array(vec![bulk(b"sd")]), // key without value
            Value::Array(vec![bulk(b"type"), bulk(b"sd")]), // "sd" only as a value
            Value::Array(vec![bulk(b"sd"), bulk(b"not-a-header")]),
            Value::Array(vec![bulk(b"sd"), Value::Int(5)]),
            bulk(b"1:2:3"),
        ];
        for fields in &cases {
            assert_eq!(header_of_entry_fields(fields), None, "{fields:?}");
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
