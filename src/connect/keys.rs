//! Where a command's keys are, by its name: what the cluster connection
//! routes by (docs/cluster.md, "The admin connection"). The table covers
//! the commands streamdrill sends off the event path; a command it does not
//! know counts as keyless and goes to the first shard, which answers MOVED
//! for a key it does not serve, and the connection follows that.

/// The positions of the keys in `args` (`args[0]` is the command's name),
/// in the order they come.
pub fn key_positions(args: &[&[u8]]) -> Vec<usize> {
    let Some(name) = args.first() else {
        return Vec::new();
    };
    let name = name.to_ascii_uppercase();
    let sub = || args.get(1).map(|s| s.to_ascii_uppercase());
    let present = |at: usize| match at < args.len() {
        true => vec![at],
        false => Vec::new(),
    };
    match name.as_slice() {
        b"XADD" | b"XLEN" | b"XRANGE" | b"XREVRANGE" | b"XPENDING" | b"XACK" | b"XTRIM"
        | b"XAUTOCLAIM" | b"XCLAIM" | b"XDEL" | b"XSETID" | b"HSET" | b"HGETALL" | b"HINCRBY"
        | b"HGET" | b"HDEL" | b"HLEN" | b"HMGET" | b"HKEYS" | b"TYPE" | b"GET" | b"SET"
        | b"INCR" | b"EXPIRE" | b"PEXPIRE" | b"TTL" | b"PTTL" => present(1),
        _ if splits(&name) => (1..args.len()).collect(),
        b"XINFO" if matches!(sub().as_deref(), Some(b"STREAM" | b"GROUPS" | b"CONSUMERS")) => {
            present(2)
        }
        b"XGROUP"
            if matches!(
                sub().as_deref(),
                Some(b"CREATE" | b"DESTROY" | b"SETID" | b"CREATECONSUMER" | b"DELCONSUMER")
            ) =>
        {
            present(2)
        }
        b"MEMORY" if sub().as_deref() == Some(b"USAGE") => present(2),
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            let numkeys = (args.get(2))
                .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok())
                .unwrap_or(0);
            (3..(3 + numkeys).min(args.len())).collect()
        }
        b"XREAD" | b"XREADGROUP" => {
            let Some(streams) = (args.iter()).position(|a| a.eq_ignore_ascii_case(b"STREAMS"))
            else {
                return Vec::new();
            };
            // STREAMS k1 k2 … id1 id2 …: the first half are the keys.
            let after = args.len() - streams - 1;
            (streams + 1..streams + 1 + after / 2).collect()
        }
        _ => Vec::new(),
    }
}

/// Whether the command takes any number of keys and nothing else, and
/// answers how many of them it acted on: one command per slot, replies
/// summed, does what the whole one would have.
pub fn splits(name: &[u8]) -> bool {
    [&b"DEL"[..], b"UNLINK", b"EXISTS", b"TOUCH"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(command: &str) -> Vec<&str> {
        let args: Vec<&[u8]> = command.split(' ').map(str::as_bytes).collect();
        let words: Vec<&str> = command.split(' ').collect();
        key_positions(&args).into_iter().map(|i| words[i]).collect()
    }

    #[test]
    fn the_first_argument_of_single_key_commands() {
        for command in [
            "XADD k * f v",
            "xlen k",
            "XRANGE k - + COUNT 5",
            "XREVRANGE k + -",
            "XPENDING k g - + 10",
            "XACK k g 1-1 1-2",
            "XTRIM k MINID = 0-1",
            "XAUTOCLAIM k g c 0 0-0",
            "XCLAIM k g c 0 1-1",
            "HSET k f v",
            "HGETALL k",
            "HINCRBY k f 1",
            "HGET k f",
            "TYPE k",
        ] {
            assert_eq!(keys(command), ["k"], "{command}");
        }
    }

    #[test]
    fn the_second_argument_after_a_subcommand_that_takes_a_key() {
        for command in [
            "XINFO STREAM k",
            "XINFO groups k",
            "XINFO CONSUMERS k g",
            "XGROUP CREATE k g $ MKSTREAM",
            "XGROUP DESTROY k g",
            "XGROUP SETID k g 0",
            "XGROUP CREATECONSUMER k g c",
            "MEMORY USAGE k SAMPLES 0",
        ] {
            assert_eq!(keys(command), ["k"], "{command}");
        }
        for keyless in ["XINFO HELP", "MEMORY STATS", "XGROUP HELP", "XINFO"] {
            assert!(keys(keyless).is_empty(), "{keyless}");
        }
    }

    #[test]
    fn scripts_name_their_keys_after_numkeys() {
        assert_eq!(keys("EVAL return 2 a b c"), ["a", "b"]);
        assert_eq!(keys("EVALSHA abc 1 a x"), ["a"]);
        assert_eq!(keys("FCALL f 1 a"), ["a"]);
        assert!(keys("EVAL return 0 x").is_empty());
        // A numkeys past the end takes what there is.
        assert_eq!(keys("EVAL return 3 a"), ["a"]);
    }

    #[test]
    fn stream_reads_name_their_keys_after_streams() {
        assert_eq!(
            keys("XREADGROUP GROUP g c COUNT 10 BLOCK 5 STREAMS a b > >"),
            ["a", "b"]
        );
        assert_eq!(keys("XREAD COUNT 1 streams k 0"), ["k"]);
        assert!(keys("XREAD COUNT 1").is_empty());
    }

    #[test]
    fn multi_key_commands_and_keyless_ones() {
        assert_eq!(keys("DEL a b c"), ["a", "b", "c"]);
        assert_eq!(keys("exists a"), ["a"]);
        assert!(splits(b"unlink") && !splits(b"XADD"));
        for keyless in [
            "INFO memory",
            "PING",
            "CONFIG GET x",
            "TIME",
            "MULTI",
            "EXEC",
        ] {
            assert!(keys(keyless).is_empty(), "{keyless}");
        }
        assert!(key_positions(&[]).is_empty());
        assert!(keys("XLEN").is_empty());
    }
}
