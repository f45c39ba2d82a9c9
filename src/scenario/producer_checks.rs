//! Checks of a `[[producers]]` entry: its rate or stages, how many
//! producers and connections, pipelining, linger, and its event mix (types,
//! weights, sizes up to [`MAX_EVENT_SIZE`]). Pure; called by `validate`.

use super::violation::Checks;
use super::{Bytes, EventType, Popularity, ProducerConfig, Rate, SizeDist};

/// Largest event payload a scenario may ask for; larger ones are a typo, not
/// a test. The plan bounds its draws and the payload pool by it too.
pub const MAX_EVENT_SIZE: Bytes = Bytes(64 << 20);

/// Most aggregates a producer may draw from: each stream keeps a version
/// counter per aggregate, and each group with `check_order` a highest
/// version, so the tables (5 bytes an aggregate) stay under 100 MB.
pub const MAX_AGGREGATES: u64 = 16 << 20;

const MAX_PRODUCERS_PER_ENTRY: u32 = 100_000;

/// Longest `linger`: beyond it, batching would dwarf what it measures.
const MAX_LINGER: std::time::Duration = std::time::Duration::from_millis(100);

/// Deepest pipeline a saturating producer may keep in flight.
const MAX_PIPELINE: u32 = 10_000;

pub(super) fn producer(v: &mut Checks, at: &str, p: &ProducerConfig) {
    if p.stream.is_empty() {
        v.add(
            format!("{at}.stream"),
            "must name a stream key, e.g. stream = \"orders\"",
        );
    }
    if p.count == 0 || p.count > MAX_PRODUCERS_PER_ENTRY {
        v.add(
            format!("{at}.count"),
            format!(
                "{} is out of range: use 1 to {MAX_PRODUCERS_PER_ENTRY}",
                p.count
            ),
        );
    }
    match (p.rate, p.stages.is_empty()) {
        (None, true) => v.add(
            at,
            "no rate given: set `rate = 1000` or `stages = [...]` (events/s)",
        ),
        (Some(_), false) => v.add(
            at,
            "both `rate` and `stages` are set: keep `rate` for a constant rate or `stages` for a profile",
        ),
        (Some(Rate::PerSecond(r)), true) if !(r.is_finite() && r > 0.0) => v.add(
            format!("{at}.rate"),
            format!("{r} is not a rate: use a finite number of events/s above 0, or \"max\""),
        ),
        _ => {}
    }
    let saturating = p.rate == Some(Rate::Max);
    if !(1..=MAX_PIPELINE).contains(&p.pipeline) {
        v.add(
            format!("{at}.pipeline"),
            format!("{} is out of range: use 1 to {MAX_PIPELINE}", p.pipeline),
        );
    } else if p.pipeline > 1 && !saturating {
        v.add(
            format!("{at}.pipeline"),
            "pipeline only applies to rate = \"max\"; scheduled producers pipeline whatever is due",
        );
    }
    if let Some(linger) = p.linger {
        if saturating {
            v.add(
                format!("{at}.linger"),
                "linger only applies to scheduled rates; rate = \"max\" sends as fast as replies come",
            );
        } else if linger.as_duration() > MAX_LINGER {
            v.add(
                format!("{at}.linger"),
                format!("{linger} is too long: use at most {MAX_LINGER:?} (it adds up to that to every latency)"),
            );
        }
    }
    match p.connections {
        Some(c) if saturating && c != p.count => v.add(
            format!("{at}.connections"),
            "with rate = \"max\" every producer keeps its own connection: drop `connections`",
        ),
        Some(c) if !(1..=p.count).contains(&c) => v.add(
            format!("{at}.connections"),
            format!("{c} is out of range: use 1 to count ({})", p.count),
        ),
        _ => {}
    }
    for (i, st) in p.stages.iter().enumerate() {
        if !(st.rate.is_finite() && st.rate >= 0.0) {
            v.add(
                format!("{at}.stages[{i}].rate"),
                format!(
                    "{} is not a rate: use a finite number of events/s, 0 or more",
                    st.rate
                ),
            );
        }
    }
    match p.start_rate {
        Some(r) if p.stages.is_empty() => v.add(
            format!("{at}.start_rate"),
            format!("start_rate = {r} only applies to `stages`; remove it or use stages"),
        ),
        Some(r) if !(r.is_finite() && r >= 0.0) => v.add(
            format!("{at}.start_rate"),
            format!("{r} is not a rate: use a finite number of events/s, 0 or more"),
        ),
        _ => {}
    }
    let start = p.start_rate.unwrap_or(0.0);
    if !p.stages.is_empty() && start == 0.0 && p.stages.iter().all(|s| s.rate == 0.0) {
        v.add(
            format!("{at}.stages"),
            "every stage has rate 0, so nothing would be sent: give some stage a rate above 0",
        );
    }
    events(v, at, &p.events);
    if !(1..=MAX_AGGREGATES).contains(&p.aggregates.count) {
        v.add(
            format!("{at}.aggregates.count"),
            format!("must be at least 1 and at most {MAX_AGGREGATES} (2^24)"),
        );
    }
    let e = p.aggregates.exponent;
    if p.aggregates.popularity == Popularity::Zipf && !(e.is_finite() && e > 0.0) {
        v.add(
            format!("{at}.aggregates.exponent"),
            format!("{e} is not a Zipf exponent: use a finite number above 0, e.g. 1.0"),
        );
    }
}

fn events(v: &mut Checks, at: &str, events: &[EventType]) {
    let mut total = 0.0;
    for (i, e) in events.iter().enumerate() {
        let at = format!("{at}.events[{i}]");
        if e.kind.is_empty() {
            v.add(
                format!("{at}.type"),
                "must name the event type, e.g. type = \"OrderPlaced\"",
            );
        }
        if e.weight.is_finite() && e.weight >= 0.0 {
            total += e.weight;
        } else {
            v.add(
                format!("{at}.weight"),
                format!(
                    "{} is not a weight: use a finite number, 0 or more",
                    e.weight
                ),
            );
        }
        size(v, &format!("{at}.size"), &e.size);
    }
    if !events.is_empty() && total <= 0.0 {
        v.add(
            format!("{at}.events"),
            "the weights add up to 0, so no event could be chosen: give some event a weight above 0",
        );
    }
}

fn size(v: &mut Checks, at: &str, d: &SizeDist) {
    let too_big = |b: Bytes| b > MAX_EVENT_SIZE;
    let (largest, problem) = match d {
        SizeDist::Fixed { value } => (*value, None),
        SizeDist::Uniform { min, max } => (
            (*min).max(*max),
            (min > max).then(|| format!("min ({min}) is larger than max ({max})")),
        ),
        SizeDist::Normal { mean, .. } => (*mean, None),
        SizeDist::Lognormal { mean, .. } => (
            *mean,
            (mean.get() == 0).then(|| "a lognormal mean must be above 0".to_string()),
        ),
    };
    if too_big(largest) {
        v.add(
            at,
            format!("{largest} is too large: event sizes go up to {MAX_EVENT_SIZE}"),
        );
    }
    if let Some(p) = problem {
        v.add(at, p);
    }
}
