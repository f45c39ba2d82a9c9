//! XADD encoding for one producer actor. Everything that is the same for
//! every event (the command, key, trim, field names, each event type's
//! name) is encoded once; per event only the header, the aggregate and the
//! payload are written. Encoding argument by argument was the largest part
//! of the harness's CPU in saturation runs (perf: many tiny copies and
//! decimal conversions per XADD).

use crate::decimal::{decimal_len, push_decimal};
use crate::event::{AGGREGATE_FIELD, AggregateVersion, HEADER_FIELD, Header, TYPE_FIELD};
use crate::plan::{ProducerPlan, StreamPlan, Trim, Wait};
use crate::scenario::TrimPolicy;
use crate::wire::resp;

pub(super) struct XaddEncoder {
    /// `*<n> XADD <key>`, the trim policy (`ACKED`) if any, `MAXLEN ~ <len>`
    /// when the trim is by length, and
    /// `* sd` (the id to generate, the header's field name) unless MINID
    /// comes between.
    head: Vec<u8>,
    /// MINID's threshold moves with time: encoded per event, then `* sd`.
    min_age: Option<(u64, bool)>,
    id_and_header_field: Vec<u8>,
    /// Per event type: `type <name> agg`.
    kinds: Vec<Vec<u8>>,
    /// The end of the last header, `:<intended_ns>`, and that time: XADDs
    /// sent together share their intended time (a saturating pipeline's
    /// all do), so its 19 digits, most of a header's cost, are converted
    /// once per pipeline rather than per event.
    intended: (u64, Vec<u8>),
}

/// `data` (DATA_FIELD) encoded: a constant, so its copy is a couple of moves
/// rather than a call to memcpy. The test below checks it against the name.
const DATA_FIELD_RESP: &[u8; 10] = b"$4\r\ndata\r\n";

impl XaddEncoder {
    /// `policy` is sent only with a trim (it qualifies the trim).
    pub fn new(
        stream_key: &str,
        trim: Option<Trim>,
        policy: Option<TrimPolicy>,
        kinds: &[String],
    ) -> XaddEncoder {
        let policy = policy.filter(|_| trim.is_some());
        let mut head = Vec::new();
        let args = 11 + if trim.is_some() { 3 } else { 0 } + usize::from(policy.is_some());
        resp::array(&mut head, args);
        resp::bulk(&mut head, b"XADD");
        resp::bulk(&mut head, stream_key.as_bytes());
        if let Some(policy) = policy {
            resp::bulk(&mut head, policy.arg().as_bytes());
        }
        let mut min_age = None;
        match trim {
            Some(Trim::MaxLen { len, approx }) => {
                resp::bulk(&mut head, b"MAXLEN");
                resp::bulk(&mut head, if approx { b"~" } else { b"=" });
                resp::bulk_u64(&mut head, len);
            }
            Some(Trim::MinAge { age, approx }) => min_age = Some((age.as_millis() as u64, approx)),
            None => {}
        }
        let mut id_and_header_field = Vec::new();
        resp::bulk(&mut id_and_header_field, b"*");
        resp::bulk(&mut id_and_header_field, HEADER_FIELD.as_bytes());
        if min_age.is_none() {
            head.append(&mut id_and_header_field);
        }
        let kinds = (kinds.iter())
            .map(|name| {
                let mut k = Vec::new();
                resp::bulk(&mut k, TYPE_FIELD.as_bytes());
                resp::bulk(&mut k, name.as_bytes());
                resp::bulk(&mut k, AGGREGATE_FIELD.as_bytes());
                k
            })
            .collect();
        XaddEncoder {
            head,
            min_age,
            id_and_header_field,
            kinds,
            intended: (0, Vec::new()),
        }
    }

    /// Appends one XADD to `out`; `now_unix_ms` is asked only for MINID.
    pub fn encode(
        &mut self,
        out: &mut Vec<u8>,
        header: Header,
        kind: usize,
        aggregate: AggregateVersion,
        payload: &[u8],
        now_unix_ms: impl FnOnce() -> u64,
    ) {
        out.extend_from_slice(&self.head);
        if let Some((age_ms, approx)) = self.min_age {
            resp::bulk(out, b"MINID");
            resp::bulk(out, if approx { b"~" } else { b"=" });
            resp::bulk_u64(out, now_unix_ms().saturating_sub(age_ms));
            out.extend_from_slice(&self.id_and_header_field);
        }
        // `Header::encode_into`'s format, written straight into `out`.
        let (intended_ns, suffix) = &mut self.intended;
        if *intended_ns != header.intended_ns || suffix.is_empty() {
            *intended_ns = header.intended_ns;
            suffix.clear();
            suffix.push(b':');
            push_decimal(suffix, header.intended_ns);
        }
        let producer = u64::from(header.producer);
        resp::bulk_start(
            out,
            decimal_len(producer) + 1 + decimal_len(header.seq) + suffix.len(),
        );
        push_decimal(out, producer);
        out.push(b':');
        push_decimal(out, header.seq);
        out.extend_from_slice(suffix);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.kinds[kind]);
        let (id, version) = (aggregate.aggregate, u64::from(aggregate.version));
        resp::bulk_start(out, decimal_len(id) + 1 + decimal_len(version));
        aggregate.encode_into(out);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(DATA_FIELD_RESP);
        resp::bulk(out, payload);
    }
}

/// `WAIT replicas timeout`, which closes each pipeline of a producer that waits.
pub(super) fn wait(out: &mut Vec<u8>, w: Wait) {
    resp::array(out, 3);
    resp::bulk(out, b"WAIT");
    resp::bulk_u64(out, u64::from(w.replicas));
    resp::bulk_u64(out, w.timeout.as_millis() as u64);
}

/// What producer `p` sends on `stream`, one of each, encoded as it sends
/// them: an XADD of its first event type (empty payload), and WAIT when it
/// waits. The preflight checks these before the run starts.
pub fn commands(p: &ProducerPlan, stream: &StreamPlan) -> Vec<Vec<u8>> {
    let header = Header {
        producer: p.id,
        seq: 0,
        intended_ns: 0,
    };
    let mut xadd = Vec::new();
    XaddEncoder::new(&stream.key, stream.trim, stream.trim_policy, &p.mix.names).encode(
        &mut xadd,
        header,
        0,
        AggregateVersion {
            aggregate: 0,
            version: 1,
        },
        b"",
        || 0,
    );
    let mut sent = vec![xadd];
    if let Some(w) = p.wait {
        let mut out = Vec::new();
        wait(&mut out, w);
        sent.push(out);
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::DATA_FIELD;
    use std::time::Duration;

    /// The same bytes as encoding every argument on its own.
    fn plain(
        key: &str,
        trim: &[&str],
        h: Header,
        kind: &str,
        agg: &str,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut sd = Vec::new();
        h.encode_into(&mut sd);
        let mut args: Vec<&[u8]> = vec![b"XADD", key.as_bytes()];
        args.extend(trim.iter().map(|t| t.as_bytes()));
        args.extend([
            b"*" as &[u8],
            HEADER_FIELD.as_bytes(),
            &sd,
            TYPE_FIELD.as_bytes(),
        ]);
        args.extend([kind.as_bytes(), AGGREGATE_FIELD.as_bytes(), agg.as_bytes()]);
        args.extend([DATA_FIELD.as_bytes(), payload]);
        let mut out = Vec::new();
        resp::command(&mut out, &args);
        out
    }

    #[test]
    fn encodes_what_argument_by_argument_encoding_does() {
        let h = Header {
            producer: 7,
            seq: 123_456,
            intended_ns: 1_764_230_400_123_456_789,
        };
        // A pipeline's events share their intended time, the next one's
        // differ, and the extremes: every header must come out whole.
        let headers = [
            Header {
                seq: 0,
                intended_ns: 0,
                ..h
            },
            h,
            Header { seq: 123_457, ..h },
            Header {
                intended_ns: h.intended_ns + 1,
                ..h
            },
            Header {
                producer: u32::MAX,
                seq: u64::MAX,
                intended_ns: u64::MAX,
            },
        ];
        let kinds = ["OrderPlaced".to_string(), "Paid".to_string()];
        let cases = [
            (None, None, vec![]),
            (
                Some(Trim::MaxLen {
                    len: 100_000,
                    approx: true,
                }),
                None,
                vec!["MAXLEN", "~", "100000"],
            ),
            (
                Some(Trim::MinAge {
                    age: Duration::from_secs(60),
                    approx: false,
                }),
                None,
                vec!["MINID", "=", "1764230340000"],
            ),
            (
                Some(Trim::MaxLen {
                    len: 1000,
                    approx: false,
                }),
                Some(TrimPolicy::Acked),
                vec!["ACKED", "MAXLEN", "=", "1000"],
            ),
            (
                Some(Trim::MinAge {
                    age: Duration::from_secs(60),
                    approx: true,
                }),
                Some(TrimPolicy::Delref),
                vec!["DELREF", "MINID", "~", "1764230340000"],
            ),
            // A policy without a trim has nothing to qualify: not sent.
            (None, Some(TrimPolicy::Keepref), vec![]),
        ];
        for (trim, policy, args) in cases {
            let mut enc = XaddEncoder::new("sd:run:orders", trim, policy, &kinds);
            for h in headers {
                let mut out = Vec::new();
                let agg = AggregateVersion {
                    aggregate: 42,
                    version: 7,
                };
                enc.encode(&mut out, h, 1, agg, b"xyz", || 1_764_230_400_000);
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&plain(
                        "sd:run:orders",
                        &args,
                        h,
                        "Paid",
                        "42:7",
                        b"xyz"
                    ))
                );
            }
        }
    }
}
