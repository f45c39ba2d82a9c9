//! RESP2, the Redis wire format, for the producers' hot path: commands are
//! written straight into one reused buffer, and replies are scanned in place
//! into small outcomes. redis-rs builds a `Cmd` with two vectors per command
//! and a `Value` tree per reply; at tens of thousands of XADDs a second those
//! allocations, and its parser combinators, were most of the harness's CPU.

use crate::decimal::{decimal_len, push_decimal};

/// Appends one command (an array of bulk strings) to `out`.
pub fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    header(out, b'*', args.len());
    for arg in args {
        bulk(out, arg);
    }
}

/// Appends `*<n>\r\n`: the start of a command of `n` arguments, which the
/// caller then appends one by one with `bulk`.
pub fn array(out: &mut Vec<u8>, n: usize) {
    header(out, b'*', n);
}

/// Appends one argument.
pub fn bulk(out: &mut Vec<u8>, arg: &[u8]) {
    header(out, b'$', arg.len());
    out.extend_from_slice(arg);
    out.extend_from_slice(b"\r\n");
}

/// Appends `$<len>\r\n`: the start of an argument the caller then writes
/// itself, `len` bytes and CRLF.
pub fn bulk_start(out: &mut Vec<u8>, len: usize) {
    header(out, b'$', len);
}

/// Appends a number as an argument (its decimal digits).
pub fn bulk_u64(out: &mut Vec<u8>, n: u64) {
    header(out, b'$', decimal_len(n));
    push_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

fn header(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.push(kind);
    push_decimal(out, n as u64);
    out.extend_from_slice(b"\r\n");
}

/// What one reply said, without its payload: the producer needs to know
/// whether an XADD got an id, an error, or how many replicas WAIT counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A bulk string (an XADD's entry id).
    Bulk,
    /// A nil bulk string or array (XADD with NOMKSTREAM on a missing key).
    Nil,
    Int(i64),
    /// `+OK` and the like.
    Status,
    Error(String),
    /// An array; its elements were checked and skipped.
    Array,
}

/// The reply at the start of `buf`, and how many bytes it took; None while
/// it is incomplete. A malformed reply is an error: the stream cannot be
/// resynchronised, so the connection must be dropped.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    let Some((line, rest)) = line(buf) else {
        return Ok(None);
    };
    let (kind, body) = line.split_first().ok_or("an empty reply line")?;
    let len = line.len() + 2;
    match kind {
        b'+' => Ok(Some((Reply::Status, len))),
        b'-' => Ok(Some((
            Reply::Error(String::from_utf8_lossy(body).into()),
            len,
        ))),
        b':' => Ok(Some((Reply::Int(number(body)?), len))),
        b'$' => match number(body)? {
            -1 => Ok(Some((Reply::Nil, len))),
            n if n < 0 => Err(format!("a bulk string of length {n}")),
            n => {
                let n = n as usize;
                if rest.len() < n + 2 {
                    return Ok(None);
                }
                if &rest[n..n + 2] != b"\r\n" {
                    return Err("a bulk string not ended by CRLF".into());
                }
                Ok(Some((Reply::Bulk, len + n + 2)))
            }
        },
        b'*' => match number(body)? {
            -1 => Ok(Some((Reply::Nil, len))),
            n if n < 0 => Err(format!("an array of length {n}")),
            n => {
                let mut at = len;
                for _ in 0..n {
                    match parse(&buf[at..])? {
                        Some((_, used)) => at += used,
                        None => return Ok(None),
                    }
                }
                Ok(Some((Reply::Array, at)))
            }
        },
        other => Err(format!("an unknown reply type {:?}", *other as char)),
    }
}

/// Finds where replies end in a buffer that grows at the end, resuming
/// where it stopped: a large reply (an XREADGROUP of a thousand entries)
/// arrives over many reads, and parsing it from its start after each one
/// would cost the square of its size.
#[derive(Debug, Default)]
pub struct Scanner {
    /// Where scanning resumes.
    pos: usize,
    /// Elements still to come in each array opened and not yet complete.
    open: Vec<i64>,
}

impl Scanner {
    /// A scanner for replies starting at `pos`.
    pub fn at(pos: usize) -> Scanner {
        Scanner {
            pos,
            open: Vec::new(),
        }
    }

    /// Where the reply being scanned ends, once `buf` holds all of it (the
    /// next call scans the reply after it); None until then.
    pub fn next_end(&mut self, buf: &[u8]) -> Result<Option<usize>, String> {
        loop {
            let Some((line, rest)) = line(&buf[self.pos.min(buf.len())..]) else {
                return Ok(None);
            };
            let (kind, body) = line.split_first().ok_or("an empty reply line")?;
            let header = line.len() + 2;
            match kind {
                b'+' | b'-' | b':' => self.pos += header,
                b'$' => match number(body)? {
                    -1 => self.pos += header,
                    n if n < 0 => return Err(format!("a bulk string of length {n}")),
                    n => {
                        let n = n as usize;
                        if rest.len() < n + 2 {
                            return Ok(None);
                        }
                        self.pos += header + n + 2;
                    }
                },
                b'*' => {
                    self.pos += header;
                    match number(body)? {
                        -1 | 0 => {}
                        n if n < 0 => return Err(format!("an array of length {n}")),
                        n => {
                            self.open.push(n);
                            continue;
                        }
                    }
                }
                other => return Err(format!("an unknown reply type {:?}", *other as char)),
            }
            // One element is complete; so is every array it completes.
            while let Some(left) = self.open.last_mut() {
                *left -= 1;
                if *left > 0 {
                    break;
                }
                self.open.pop();
            }
            if self.open.is_empty() {
                return Ok(Some(self.pos));
            }
        }
    }
}

/// The first CRLF-terminated line of `buf` (without CRLF), and what follows.
fn line(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = memchr_crlf(buf)?;
    Some((&buf[..end], &buf[end + 2..]))
}

fn memchr_crlf(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = buf[from..].iter().position(|&b| b == b'\r') {
        let at = from + i;
        match buf.get(at + 1) {
            Some(b'\n') => return Some(at),
            Some(_) => from = at + 1,
            None => return None,
        }
    }
    None
}

fn number(digits: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{:?} is not a number", String::from_utf8_lossy(digits)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        command(&mut out, &[b"XADD", b"s", b"*", b"f", b""]);
        assert_eq!(
            out,
            b"*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n$1\r\nf\r\n$0\r\n\r\n"
        );
        out.clear();
        array(&mut out, 2);
        bulk(&mut out, b"WAIT");
        bulk_u64(&mut out, 1500);
        assert_eq!(out, b"*2\r\n$4\r\nWAIT\r\n$4\r\n1500\r\n");
    }

    #[test]
    fn each_reply_kind_and_its_length() {
        let cases: [(&[u8], Reply); 7] = [
            (b"$15\r\n1700000000000-0\r\n", Reply::Bulk),
            (b"$-1\r\n", Reply::Nil),
            (b":2\r\n", Reply::Int(2)),
            (b"+OK\r\n", Reply::Status),
            (
                b"-ERR no such key\r\n",
                Reply::Error("ERR no such key".into()),
            ),
            (b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", Reply::Array),
            (b"*-1\r\n", Reply::Nil),
        ];
        for (wire, want) in cases {
            let mut buf = wire.to_vec();
            buf.extend_from_slice(b":9\r\n");
            assert_eq!(parse(&buf), Ok(Some((want, wire.len()))), "{wire:?}");
        }
    }

    #[test]
    fn an_incomplete_reply_waits_for_more_bytes_at_every_cut() {
        let wire = b"*2\r\n$5\r\nhello\r\n-ERR x\r\n";
        for cut in 0..wire.len() {
            assert_eq!(parse(&wire[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(parse(wire), Ok(Some((Reply::Array, wire.len()))));
    }

    #[test]
    fn the_scanner_finds_each_reply_end_however_the_bytes_arrive() {
        let wire = b"*2\r\n$5\r\nhello\r\n*1\r\n*0\r\n:7\r\n$-1\r\n-ERR x\r\n";
        let want = vec![23, 27, 32, 40];
        for step in [1, 2, 3, 5, wire.len()] {
            let mut scanner = Scanner::default();
            let mut ends = Vec::new();
            for cut in (step..wire.len() + step).step_by(step) {
                let seen = &wire[..cut.min(wire.len())];
                while let Some(end) = scanner.next_end(seen).unwrap() {
                    ends.push(end);
                }
            }
            assert_eq!(ends, want, "bytes {step} at a time");
        }
        assert!(Scanner::default().next_end(b"!x\r\n").is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_hang() {
        assert!(parse(b"!oops\r\n").is_err());
        assert!(parse(b"$x\r\n").is_err());
        assert!(parse(b"$3\r\nabcXY").is_err());
        assert!(parse(b"*-5\r\n").is_err());
    }
}
