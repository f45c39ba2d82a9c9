//! ASCII decimal digits written in place: what the event header and RESP
//! lengths and integers both need, several times per produced event.

// Hand-rolled rather than `write!`: this runs several times per produced
// event (header, RESP lengths) and the formatting machinery costs several
// times more than the digits; two digits per division halves the divisions.
// The digits are written in place, into room for the longest number that is
// then cut to size. Formatting into a stack buffer and copying that out was
// most of this function's cost (perf): a copy of a run-time length calls
// memcpy, and its wide loads of bytes just stored two at a time cannot be
// forwarded from the store buffer, so they stall until the stores retire.
pub fn push_decimal(buf: &mut Vec<u8>, mut value: u64) {
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
pub fn decimal_len(value: u64) -> usize {
    value.checked_ilog10().map_or(1, |d| d as usize + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
