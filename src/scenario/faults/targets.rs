//! The names faults give their targets, resolved against the scenario: a
//! consumer "<group>/<index>", a producer "<label>/<n>" or an index. Used by
//! validation (an unknown name is an error) and by the plan.

use crate::scenario::{ProducerRef, Scenario};

/// Finds the consumer "<group>/<index>" names: (group index, consumer index).
pub fn resolve_consumer(s: &Scenario, name: &str) -> Result<(usize, u32), String> {
    let (group, index) = name.rsplit_once('/').ok_or_else(|| {
        format!("{name:?} is not a consumer: write it as \"<group>/<index>\", e.g. \"billing/0\"")
    })?;
    let matches: Vec<usize> = (0..s.groups.len())
        .filter(|&i| s.groups[i].name == group)
        .collect();
    let names = || {
        s.groups
            .iter()
            .map(|g| g.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let g = match matches[..] {
        [g] => g,
        [] => return Err(format!("no group is named {group:?}; groups: {}", names())),
        _ => {
            return Err(format!(
                "group name {group:?} is used on several streams; rename one"
            ));
        }
    };
    let consumers = s.groups[g].consumers;
    match index.parse::<u32>() {
        Ok(i) if i < consumers => Ok((g, i)),
        _ => Err(format!(
            "group {group:?} has consumers 0 to {}; {index:?} is not one of them",
            consumers.saturating_sub(1)
        )),
    }
}

/// Finds the producer a fault names: "<label>/<n>" (label = the entry's
/// `name`, else its stream) or an index among all producers. Returns the
/// producer's dense id, as `plan::ProducerPlan::id`.
pub fn resolve_producer(s: &Scenario, producer: &ProducerRef) -> Result<u32, String> {
    let total: u32 = s.producers.iter().map(|p| p.count).sum();
    let labels = || {
        (s.producers.iter())
            .map(|p| format!("{}/0..{}", p.name.as_deref().unwrap_or(&p.stream), p.count))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match producer {
        ProducerRef::Index(i) if *i < total => Ok(*i),
        ProducerRef::Index(i) => Err(format!(
            "there are {total} producers (0 to {}); {i} is not one of them",
            total.saturating_sub(1)
        )),
        ProducerRef::Name(name) => {
            let mut first = 0;
            for p in &s.producers {
                let label = p.name.as_deref().unwrap_or(&p.stream);
                if let Some(n) = (name.strip_prefix(label))
                    .and_then(|rest| rest.strip_prefix('/'))
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|&n| n < p.count)
                {
                    return Ok(first + n);
                }
                first += p.count;
            }
            Err(format!(
                "no producer is named {name:?}; write \"<label>/<n>\" or an index: {}",
                labels()
            ))
        }
    }
}
