//! Stream entries out of Redis replies, as ids, streamdrill headers and
//! aggregate versions.
//! On the hot path straight from the bytes of an XREADGROUP reply:
//! `[[key, [[id, [field, value, ...]], ...]], ...]`, or nil when BLOCK ran
//! out (walking a redis-rs `Value` tree instead cost a dozen allocations per
//! entry, most of the consumers' CPU); for the rare reads (XRANGE,
//! XAUTOCLAIM, a restarted consumer's own PEL) from redis-rs `Value`s.

use crate::event::{AGGREGATE_FIELD, AggregateVersion, HEADER_FIELD, Header, TYPE_FIELD};

/// One stream entry as XRANGE / XREADGROUP return it: its id, and its header
/// and aggregate version if it is a streamdrill event.
pub struct Entry {
    /// Which of the keys read it came from (their index): a consumer owning
    /// several partitions reads them all at once. 0 for a one-key read.
    pub key: usize,
    pub id: Vec<u8>,
    pub header: Option<Header>,
    pub aggregate: Option<AggregateVersion>,
    /// Which of the `type` fields the reader looks for this entry's is (an
    /// index into them), in runs with schema versions; None otherwise or
    /// when it is none of them.
    pub kind: Option<u16>,
}

/// The entries of every stream in the reply, in order; `keys`: the keys
/// read, which each entry's `key` indexes; `types`: the `type` fields whose
/// index an entry's `kind` gives (empty: none is looked up).
pub fn parse_xreadgroup(
    reply: &[u8],
    keys: &[String],
    types: &[Vec<u8>],
) -> Result<Vec<Entry>, String> {
    let mut r = Reader { buf: reply, at: 0 };
    let mut out = Vec::new();
    let Some(streams) = r.array()? else {
        return Ok(out);
    };
    for _ in 0..streams {
        if r.array()? != Some(2) {
            return Err("a stream's reply is not [key, entries]".into());
        }
        let name = r.bulk()?.ok_or("a stream without a key")?;
        let key = (keys.iter().position(|k| k.as_bytes() == name))
            .ok_or("a reply for a key that was not read")?;
        let n = r.array()?.unwrap_or(0);
        out.reserve(n);
        for _ in 0..n {
            if r.array()? != Some(2) {
                return Err("an entry is not [id, fields]".into());
            }
            let id = r.bulk()?.ok_or("an entry without an id")?.to_vec();
            // A pending entry deleted from the stream has nil fields.
            let (mut header, mut aggregate, mut kind) = (None, None, None);
            for _ in 0..r.array()?.unwrap_or(0) / 2 {
                let field = r.bulk()?;
                let value = r.bulk()?;
                if header.is_none() && field == Some(HEADER_FIELD.as_bytes()) {
                    header = value.and_then(Header::parse);
                } else if aggregate.is_none() && field == Some(AGGREGATE_FIELD.as_bytes()) {
                    aggregate = value.and_then(AggregateVersion::parse);
                } else if !types.is_empty() && field == Some(TYPE_FIELD.as_bytes()) {
                    kind = value.and_then(|v| kind_of(v, types));
                }
            }
            out.push(Entry {
                key,
                id,
                header,
                aggregate,
                kind,
            });
        }
    }
    Ok(out)
}

/// Which of `types` the `type` field `value` is.
fn kind_of(value: &[u8], types: &[Vec<u8>]) -> Option<u16> {
    let i = types.iter().position(|t| t.as_slice() == value)?;
    u16::try_from(i).ok()
}

/// The entry's kind among `types`, like [`header_of_entry_fields`].
pub fn kind_of_entry_fields(fields: &redis::Value, types: &[Vec<u8>]) -> Option<u16> {
    kind_of(field_of_entry(fields, TYPE_FIELD)?, types)
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// `*<n>`: Some(n), or None for a nil array.
    fn array(&mut self) -> Result<Option<usize>, String> {
        self.length(b'*')
    }

    /// `$<n>` and its bytes, or None for a nil bulk string.
    fn bulk(&mut self) -> Result<Option<&'a [u8]>, String> {
        let Some(n) = self.length(b'$')? else {
            return Ok(None);
        };
        let end = self.at + n;
        if self.buf.get(end..end + 2) != Some(b"\r\n") {
            return Err("a bulk string cut short".into());
        }
        let bytes = &self.buf[self.at..end];
        self.at = end + 2;
        Ok(Some(bytes))
    }

    fn length(&mut self, kind: u8) -> Result<Option<usize>, String> {
        let rest = &self.buf[self.at.min(self.buf.len())..];
        let end = (rest.windows(2).position(|w| w == b"\r\n")).ok_or("a reply cut short")?;
        let line = &rest[..end];
        match line.split_first() {
            Some((&k, digits)) if k == kind => {
                self.at += end + 2;
                if digits == b"-1" {
                    return Ok(None);
                }
                let n = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok());
                n.map(Some)
                    .ok_or_else(|| format!("a bad length {:?}", String::from_utf8_lossy(line)))
            }
            Some((&b'-', message)) => Err(String::from_utf8_lossy(message).into_owned()),
            _ => Err(format!(
                "expected {:?}, got {:?}",
                kind as char,
                String::from_utf8_lossy(line)
            )),
        }
    }
}

/// Extract the header from one stream entry's field/value array (the second
/// element of each `[id, fields]` pair in an XREADGROUP or XRANGE reply),
/// without building a map. RESP3 map replies are accepted too.
/// `None` when there is no `sd` field or it does not parse.
pub fn header_of_entry_fields(fields: &redis::Value) -> Option<Header> {
    Header::parse(field_of_entry(fields, HEADER_FIELD)?)
}

/// The entry's aggregate and version, like [`header_of_entry_fields`].
pub fn aggregate_of_entry_fields(fields: &redis::Value) -> Option<AggregateVersion> {
    AggregateVersion::parse(field_of_entry(fields, AGGREGATE_FIELD)?)
}

fn field_of_entry<'a>(fields: &'a redis::Value, name: &str) -> Option<&'a [u8]> {
    use redis::Value;
    let is_key = |key: &Value| bytes_of(key) == Some(name.as_bytes());
    let value = match fields {
        Value::Array(items) => items
            .chunks_exact(2)
            .find(|pair| is_key(&pair[0]))
            .map(|pair| &pair[1]),
        Value::Map(pairs) => pairs.iter().find(|(k, _)| is_key(k)).map(|(_, v)| v),
        _ => None,
    }?;
    bytes_of(value)
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
            key: 0,
            id,
            header: header_of_entry_fields(&fields),
            aggregate: aggregate_of_entry_fields(&fields),
            kind: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::resp;

    fn bulk_array(out: &mut Vec<u8>, items: &[&[u8]]) {
        resp::command(out, items);
    }

    #[test]
    fn ids_and_headers_of_every_entry() {
        let h = Header {
            producer: 3,
            seq: 41,
            intended_ns: 1_700_000_000_000_000_000,
        };
        let mut sd = Vec::new();
        h.encode_into(&mut sd);
        let mut reply = b"*1\r\n*2\r\n$6\r\norders\r\n*3\r\n".to_vec();
        reply.extend_from_slice(b"*2\r\n$3\r\n1-0\r\n");
        bulk_array(
            &mut reply,
            &[b"type", b"A", HEADER_FIELD.as_bytes(), &sd, b"agg", b"9:4"],
        );
        reply.extend_from_slice(b"*2\r\n$3\r\n2-0\r\n");
        bulk_array(&mut reply, &[b"foreign", b"x"]);
        reply.extend_from_slice(b"*2\r\n$3\r\n3-0\r\n*-1\r\n");
        let entries = parse_xreadgroup(&reply, &["orders".into()], &[]).unwrap();
        let got: Vec<(&[u8], Option<Header>)> = entries
            .iter()
            .map(|e| (e.id.as_slice(), e.header))
            .collect();
        assert_eq!(
            got,
            vec![(&b"1-0"[..], Some(h)), (b"2-0", None), (b"3-0", None)]
        );
        let versions: Vec<_> = entries.iter().map(|e| e.aggregate).collect();
        let nine_at_4 = AggregateVersion {
            aggregate: 9,
            version: 4,
        };
        assert_eq!(versions, [Some(nine_at_4), None, None]);
    }

    #[test]
    fn kinds_are_looked_up_only_among_the_types_asked_for() {
        let mut reply = b"*1\r\n*2\r\n$6\r\norders\r\n*3\r\n".to_vec();
        for (id, ty) in [("1-0", "A.v2"), ("2-0", "B"), ("3-0", "A.v3")] {
            reply.extend_from_slice(format!("*2\r\n$3\r\n{id}\r\n").as_bytes());
            bulk_array(&mut reply, &[b"type", ty.as_bytes()]);
        }
        let keys = ["orders".to_string()];
        let types = [b"A.v1".to_vec(), b"A.v2".to_vec(), b"B".to_vec()];
        let kinds = |types: &[Vec<u8>]| -> Vec<Option<u16>> {
            let entries = parse_xreadgroup(&reply, &keys, types).unwrap();
            entries.iter().map(|e| e.kind).collect()
        };
        assert_eq!(kinds(&types), [Some(1), Some(2), None]);
        assert_eq!(kinds(&[]), [None, None, None]);
    }

    #[test]
    fn a_timed_out_block_is_no_entries_and_garbage_is_an_error() {
        let keys = ["orders".to_string()];
        assert!(parse_xreadgroup(b"*-1\r\n", &keys, &[]).unwrap().is_empty());
        assert!(parse_xreadgroup(b"-NOGROUP no such group\r\n", &keys, &[]).is_err());
        let cut = b"*1\r\n*2\r\n$6\r\norders\r\n*1\r\n*2\r\n$3\r\n1-";
        assert!(parse_xreadgroup(cut, &keys, &[]).is_err());
        let other = b"*1\r\n*2\r\n$5\r\nother\r\n*0\r\n";
        assert!(parse_xreadgroup(other, &keys, &[]).is_err());
    }

    #[test]
    fn each_entry_says_which_key_it_came_from() {
        let mut reply = b"*2\r\n*2\r\n$4\r\nk:p2\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*0\r\n".to_vec();
        reply.extend_from_slice(b"*2\r\n$4\r\nk:p0\r\n*1\r\n*2\r\n$3\r\n5-0\r\n*0\r\n");
        let keys = ["k:p0".to_string(), "k:p2".to_string()];
        let entries = parse_xreadgroup(&reply, &keys, &[]).unwrap();
        let got: Vec<(usize, &[u8])> = entries.iter().map(|e| (e.key, &e.id[..])).collect();
        assert_eq!(got, [(1, &b"1-0"[..]), (0, b"5-0")]);
    }

    use redis::Value;

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
        let map = Value::Map(vec![
            (bulk(b"sd"), bulk(b"1:2:3")),
            (bulk(b"agg"), bulk(b"5:6")),
        ]);
        assert_eq!(header_of_entry_fields(&map).map(|h| h.seq), Some(2));
        assert_eq!(aggregate_of_entry_fields(&map).map(|a| a.version), Some(6));
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
}
