//! INFO commandstats: how many calls each command had and the microseconds
//! Redis spent in them. Two readings a run apart tell what a set of commands
//! cost the server, independently of the harness's own clocks. Pure: the
//! coordinator reads INFO and hands the text here.

use std::collections::HashMap;

/// One command's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub calls: u64,
    pub usec: u64,
}

/// Per command, by its lowercase name as INFO spells it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandStats(HashMap<String, Usage>);

impl CommandStats {
    /// Parses `cmdstat_<name>:calls=N,usec=N,...` lines; anything else is skipped.
    pub fn parse(info: &str) -> CommandStats {
        let mut out = HashMap::new();
        for line in info.lines() {
            let Some((name, values)) = line.trim().split_once(':') else {
                continue;
            };
            let Some(name) = name.strip_prefix("cmdstat_") else {
                continue;
            };
            let mut usage = Usage::default();
            for pair in values.split(',') {
                match pair.split_once('=') {
                    Some(("calls", n)) => usage.calls = n.parse().unwrap_or(0),
                    Some(("usec", n)) => usage.usec = n.parse().unwrap_or(0),
                    _ => {}
                }
            }
            out.insert(name.to_ascii_lowercase(), usage);
        }
        CommandStats(out)
    }

    /// Adds another node's counters: a cluster's are its primaries' summed.
    pub fn add(&mut self, other: &CommandStats) {
        for (name, usage) in &other.0 {
            let total = self.0.entry(name.clone()).or_default();
            total.calls += usage.calls;
            total.usec += usage.usec;
        }
    }

    /// What `commands` added between `before` and `self`. Counters that went
    /// down (CONFIG RESETSTAT, a restarted server) give None: the difference
    /// would be a guess.
    pub fn since(&self, before: &CommandStats, commands: &[&str]) -> Option<Usage> {
        let mut total = Usage::default();
        for c in commands {
            let now = self.0.get(*c).copied().unwrap_or_default();
            let then = before.0.get(*c).copied().unwrap_or_default();
            total.calls += now.calls.checked_sub(then.calls)?;
            total.usec += now.usec.checked_sub(then.usec)?;
        }
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# Commandstats\r\n\
        cmdstat_eval:calls=1,usec=101,usec_per_call=101.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_hset:calls=2,usec=4,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n";
    const AFTER: &str = "# Commandstats\r\n\
        cmdstat_eval:calls=11,usec=301,usec_per_call=27.36,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_hset:calls=7,usec=14,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_hincrby:calls=5,usec=9,usec_per_call=1.80,rejected_calls=0,failed_calls=0\r\n";

    #[test]
    fn differences_of_the_named_commands() {
        let (before, after) = (CommandStats::parse(BEFORE), CommandStats::parse(AFTER));
        let eval = after.since(&before, &["eval"]).unwrap();
        assert_eq!((eval.calls, eval.usec), (10, 200));
        // A command first seen after the start counts from zero.
        let naive = after.since(&before, &["hincrby", "hset"]).unwrap();
        assert_eq!((naive.calls, naive.usec), (5 + 5, 9 + 10));
    }

    #[test]
    fn nodes_add_up_per_command() {
        let mut total = CommandStats::parse(BEFORE);
        total.add(&CommandStats::parse(AFTER));
        let eval = total.since(&CommandStats::default(), &["eval"]).unwrap();
        assert_eq!((eval.calls, eval.usec), (12, 402));
        let hincrby = total.since(&CommandStats::default(), &["hincrby"]).unwrap();
        assert_eq!((hincrby.calls, hincrby.usec), (5, 9));
    }

    #[test]
    fn counters_that_went_down_give_nothing() {
        let (before, after) = (CommandStats::parse(AFTER), CommandStats::parse(BEFORE));
        assert_eq!(after.since(&before, &["eval"]), None);
    }
}
