//! The faults a [`FaultProxy`](super::FaultProxy) injects ([`Toxics`]) and the
//! pure timing arithmetic behind them: when a delayed chunk is due, and the
//! token bucket of the bandwidth limit. Kept apart from the sockets so the
//! arithmetic is unit-tested without I/O; `pipe` is its only caller.
//!
//! Toxiproxy's toxics are the behavioural reference; where streamdrill differs
//! the field docs say so.

use std::time::{Duration, Instant};

/// Added delay with jitter, like Toxiproxy's `latency` toxic on its default
/// (downstream) stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delay {
    /// Added to every chunk travelling from Redis to the client, so a request's
    /// round trip grows by `delay` (requests towards Redis are not delayed).
    pub delay: Duration,
    /// Each chunk's delay is drawn uniformly from `delay ± jitter` (never below
    /// zero) with the proxy's seeded RNG. Chunks are never reordered: one drawn
    /// earlier than its predecessor's leaves right after that predecessor.
    pub jitter: Duration,
}

/// The faults currently applied to every connection of a proxy. The default is
/// none: a transparent proxy. Changes take effect immediately, for open and new
/// connections alike, at chunk granularity (a chunk is one read from a socket,
/// at most 64 KiB).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Toxics {
    pub latency: Option<Delay>,
    /// Throughput limit, applied to each direction of each connection
    /// separately (a token bucket each), like Toxiproxy's `bandwidth` toxic.
    pub bandwidth_bytes_per_s: Option<u64>,
    /// Nothing passes in either direction: bytes are still read (up to a bound,
    /// then TCP's own flow control stalls the sender) but held, not forwarded.
    /// When the blackhole is cleared the held bytes are delivered, in order.
    /// This is what a network partition that heals before TCP gives up looks
    /// like, and it keeps each byte stream intact. Toxiproxy's `timeout` toxic
    /// with timeout 0 drops the bytes instead, which no real network can do to
    /// a live TCP connection and which would desynchronise the Redis protocol.
    /// New connections are still accepted and connected upstream while the
    /// blackhole holds.
    pub blackhole: bool,
}

impl Toxics {
    /// Only added latency.
    pub fn latency(delay: Duration, jitter: Duration) -> Toxics {
        Toxics {
            latency: Some(Delay { delay, jitter }),
            ..Toxics::default()
        }
    }

    /// Only a bandwidth limit.
    pub fn bandwidth(bytes_per_s: u64) -> Toxics {
        Toxics {
            bandwidth_bytes_per_s: Some(bytes_per_s),
            ..Toxics::default()
        }
    }

    /// Only a blackhole.
    pub fn blackhole() -> Toxics {
        Toxics {
            blackhole: true,
            ..Toxics::default()
        }
    }
}

/// Which way a chunk travels through the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Client to Redis.
    Upstream,
    /// Redis to client.
    Downstream,
}

/// The delay a chunk travelling `direction` gets under `latency`.
/// `jitter_unit` in [-1, 1] is drawn once per chunk when it is read, so a
/// change of the toxics rescales the chunk's jitter instead of redrawing it.
pub(crate) fn chunk_delay(
    latency: Option<Delay>,
    direction: Direction,
    jitter_unit: f64,
) -> Duration {
    let Some(latency) = latency else {
        return Duration::ZERO;
    };
    if direction == Direction::Upstream {
        return Duration::ZERO;
    }
    let offset_s = latency.jitter.as_secs_f64() * jitter_unit.clamp(-1.0, 1.0);
    Duration::from_secs_f64((latency.delay.as_secs_f64() + offset_s).max(0.0))
}

/// A bandwidth limit's token bucket: one byte per token, refilled at the rate.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate_bytes_per_s: u64,
    tokens: f64,
    last_refill: Instant,
}

/// The largest write a bucket allows at once, as time at the limit: small
/// enough that the rate is smooth and a changed limit takes effect quickly,
/// large enough that tokio's 1 ms timer granularity costs little.
const PIECE: Duration = Duration::from_millis(10);
/// What an idle bucket saves up, in pieces. Above one, so that sleeping up to a
/// timer tick past the moment a piece is paid for loses no tokens.
const BURST_PIECES: f64 = 5.0;

impl TokenBucket {
    /// A bucket holding exactly one piece, so a transfer starts at once but
    /// without a burst that would flatter the measured rate.
    pub(crate) fn new(rate_bytes_per_s: u64, now: Instant) -> TokenBucket {
        let mut bucket = TokenBucket {
            rate_bytes_per_s: rate_bytes_per_s.max(1),
            tokens: 0.0,
            last_refill: now,
        };
        bucket.tokens = bucket.piece_bytes() as f64;
        bucket
    }

    pub(crate) fn rate_bytes_per_s(&self) -> u64 {
        self.rate_bytes_per_s
    }

    fn piece_bytes(&self) -> usize {
        ((self.rate_bytes_per_s as f64 * PIECE.as_secs_f64()) as usize).max(1)
    }

    /// Asks to send up to `want` bytes at `now`: `Ok(n)` may be sent now
    /// (1 ≤ n ≤ want, tokens taken), `Err(wait)` means ask again after `wait`.
    pub(crate) fn take(&mut self, want: usize, now: Instant) -> Result<usize, Duration> {
        let piece = want.min(self.piece_bytes()).max(1);
        let rate = self.rate_bytes_per_s as f64;
        let elapsed_s = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f64();
        let cap = self.piece_bytes() as f64 * BURST_PIECES;
        self.tokens = (self.tokens + elapsed_s * rate).min(cap);
        self.last_refill = now;
        if self.tokens >= piece as f64 {
            self.tokens -= piece as f64;
            return Ok(piece);
        }
        Err(Duration::from_secs_f64((piece as f64 - self.tokens) / rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn delay_applies_downstream_only_and_jitter_scales() {
        let latency = Some(Delay {
            delay: 20 * MS,
            jitter: 5 * MS,
        });
        assert_eq!(
            chunk_delay(latency, Direction::Upstream, 1.0),
            Duration::ZERO
        );
        assert_eq!(
            chunk_delay(None, Direction::Downstream, 1.0),
            Duration::ZERO
        );
        assert_eq!(chunk_delay(latency, Direction::Downstream, 0.0), 20 * MS);
        let high = chunk_delay(latency, Direction::Downstream, 1.0);
        let low = chunk_delay(latency, Direction::Downstream, -1.0);
        assert!((high.as_secs_f64() - 0.025).abs() < 1e-9, "{high:?}");
        assert!((low.as_secs_f64() - 0.015).abs() < 1e-9, "{low:?}");
    }

    #[test]
    fn jitter_larger_than_delay_never_goes_negative() {
        let latency = Some(Delay {
            delay: MS,
            jitter: 10 * MS,
        });
        assert_eq!(
            chunk_delay(latency, Direction::Downstream, -1.0),
            Duration::ZERO
        );
        assert_eq!(
            chunk_delay(latency, Direction::Downstream, -7.0),
            Duration::ZERO
        );
    }

    /// Simulated time: sending 1 MB at 100 kB/s must take 10 s, whatever the
    /// chunk sizes asked for.
    #[test]
    fn bucket_paces_a_transfer_at_the_rate() {
        let start = Instant::now();
        let mut now = start;
        let mut bucket = TokenBucket::new(100_000, now);
        let mut left = 1_000_000usize;
        while left > 0 {
            match bucket.take(left.min(65_536), now) {
                Ok(n) => left -= n,
                Err(wait) => now += wait,
            }
        }
        let took_s = (now - start).as_secs_f64();
        assert!((took_s - 10.0).abs() < 0.02, "took {took_s} s");
    }

    #[test]
    fn bucket_hands_out_pieces_and_saves_a_bounded_burst() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(100_000, now);
        assert_eq!(
            bucket.take(65_536, now),
            Ok(1_000),
            "one 10 ms piece at start"
        );
        assert!(bucket.take(10, now).is_err(), "empty after the first piece");
        let later = now + Duration::from_secs(60);
        let sent: usize = (0..10)
            .filter_map(|_| bucket.take(65_536, later).ok())
            .sum();
        assert_eq!(sent, 5_000, "an idle minute saves only five pieces");
    }

    #[test]
    fn tiny_rates_send_single_bytes() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(0, now);
        assert_eq!(bucket.rate_bytes_per_s(), 1);
        assert_eq!(bucket.take(100, now), Ok(1));
        assert_eq!(bucket.take(100, now), Err(Duration::from_secs(1)));
    }
}
