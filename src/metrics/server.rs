//! What the server under test is and which stream features it has, as the
//! coordinator finds out before a run; `summary.json` keeps it in
//! `redis.server` (docs/reports.md, "`summary.json`"). Valkey and other
//! redis-server-compatible servers report a `redis_version` of the Redis they
//! are compatible with (Valkey 9.1.2 says 7.2.4), so neither what the server
//! is nor what it can do is read off that number: the name and version come
//! from INFO's own fields, the features from using them.

use serde::{Deserialize, Serialize};

/// The server's own name and version, its binary, its stream features.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ServerInfo {
    /// INFO `server_name` ("valkey"), or "redis" when INFO names none, as
    /// Redis itself does not.
    pub name: String,
    /// `<server_name>_version` from INFO (`valkey_version`), else `redis_version`.
    pub version: String,
    /// The binary a managed server ran, as an absolute path; absent for an
    /// external server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
    /// The stream features that answered when the coordinator tried them.
    #[serde(default)]
    pub features: Vec<StreamFeature>,
}

/// A stream feature some servers lack, named as summary.json writes it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum StreamFeature {
    /// XAUTOCLAIM (Redis 6.2 and later): a group's `reclaim` needs it.
    Xautoclaim,
    /// XINFO GROUPS reports a group's `lag` (Redis 7.0 and later); without
    /// it the sampler's lag is unknown.
    GroupLag,
    /// XADD's trim reference options KEEPREF | DELREF | ACKED (Redis 8.2
    /// and later): a stream's `trim_policy` needs them.
    TrimPolicy,
}

impl StreamFeature {
    /// The command a server without the feature does not know at all.
    pub fn command(self) -> Option<&'static str> {
        match self {
            StreamFeature::Xautoclaim => Some("XAUTOCLAIM"),
            StreamFeature::GroupLag | StreamFeature::TrimPolicy => None,
        }
    }

    /// What a person looks for in the server's documentation.
    pub fn describe(self) -> &'static str {
        match self {
            StreamFeature::Xautoclaim => "XAUTOCLAIM (Redis 6.2 and later)",
            StreamFeature::GroupLag => "`lag` in XINFO GROUPS (Redis 7.0 and later)",
            StreamFeature::TrimPolicy => {
                "XADD's KEEPREF | DELREF | ACKED trim options (Redis 8.2 and later)"
            }
        }
    }
}

/// The value of a `field:value` line of an INFO reply, parsed (`u64`
/// counters, `f64` CPU seconds, `String` names).
pub fn info_field<T: std::str::FromStr>(info: &str, field: &str) -> Option<T> {
    info.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

/// The INFO figures the sampler reads that add up over a cluster's
/// primaries: memory in use, commands processed, CPU seconds.
pub const SUMMED_INFO_FIELDS: [&str; 4] = [
    "used_memory",
    "total_commands_processed",
    "used_cpu_user",
    "used_cpu_sys",
];

/// Several nodes' INFO replies as one that [`info_field`] reads: a
/// `field:value` line per field of `fields`, summed over the nodes that
/// report it (integers stay integers); a field none reports is left out.
pub fn info_sum(infos: &[String], fields: &[&str]) -> String {
    let mut out = String::new();
    for field in fields {
        let values: Vec<&str> = (infos.iter())
            .filter_map(|i| {
                i.lines()
                    .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            })
            .map(str::trim)
            .collect();
        if values.is_empty() {
            continue;
        }
        let whole: Option<u64> = values.iter().map(|v| v.parse::<u64>().ok()).sum();
        let sum = match whole {
            Some(n) => n.to_string(),
            None => (values.iter().filter_map(|v| v.parse::<f64>().ok()))
                .sum::<f64>()
                .to_string(),
        };
        out.push_str(&format!("{field}:{sum}\r\n"));
    }
    out
}

impl ServerInfo {
    /// Name and version out of an INFO server reply; no binary, no features yet.
    pub fn from_info(info: &str) -> ServerInfo {
        let field = |name: &str| info_field::<String>(info, name).filter(|v| !v.is_empty());
        let name = field("server_name").unwrap_or_else(|| "redis".into());
        let version = (field(&format!("{name}_version")))
            .or_else(|| field("redis_version"))
            .unwrap_or_else(|| "unknown".into());
        ServerInfo {
            name,
            version,
            binary: None,
            features: Vec::new(),
        }
    }

    pub fn has(&self, feature: StreamFeature) -> bool {
        self.features.contains(&feature)
    }

    /// "valkey 9.1.2", "redis 8.2.3".
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_of_several_nodes_sums_the_named_fields() {
        let node = |mem: u64, cpu: &str| {
            format!("# Memory\r\nused_memory:{mem}\r\nmaxmemory:0\r\nused_cpu_sys:{cpu}\r\n")
        };
        let infos = [
            node(100, "1.25"),
            node(50, "0.5"),
            "# Stats\r\n".to_string(),
        ];
        let sum = info_sum(&infos, &SUMMED_INFO_FIELDS);
        assert_eq!(info_field::<u64>(&sum, "used_memory"), Some(150));
        assert_eq!(info_field::<f64>(&sum, "used_cpu_sys"), Some(1.75));
        assert_eq!(info_field::<u64>(&sum, "total_commands_processed"), None);
        assert_eq!(info_field::<u64>(&sum, "maxmemory"), None);
    }

    #[test]
    fn valkey_is_named_by_its_own_fields_not_its_redis_version() {
        let info = "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\n\
                    valkey_version:9.1.2\r\nredis_mode:standalone\r\n";
        let s = ServerInfo::from_info(info);
        assert_eq!((s.name.as_str(), s.version.as_str()), ("valkey", "9.1.2"));
        assert_eq!(s.label(), "valkey 9.1.2");
    }

    #[test]
    fn redis_names_no_server_and_gives_its_redis_version() {
        let s =
            ServerInfo::from_info("# Server\r\nredis_version:8.2.3\r\nredis_mode:standalone\r\n");
        assert_eq!(s.label(), "redis 8.2.3");
        assert_eq!(ServerInfo::from_info("").label(), "redis unknown");
    }

    #[test]
    fn features_are_written_as_names() {
        let s = ServerInfo {
            features: vec![StreamFeature::Xautoclaim, StreamFeature::GroupLag],
            ..ServerInfo::from_info("redis_version:8.2.3")
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["features"],
            serde_json::json!(["xautoclaim", "group_lag"])
        );
        assert!(v.get("binary").is_none(), "absent, not null: {v}");
        assert!(s.has(StreamFeature::GroupLag));
        let back: ServerInfo = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }
}

/// The power-loss file system under a managed server's data files: the work
/// it saw over the whole run, so a drill's report shows what it cost the
/// server's writes beside what the cut took (docs/faults.md, "Power loss").
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct PowerFsUse {
    pub writes: u64,
    pub written_bytes: u64,
    /// Mean time inside one write request (saving undo bytes, then the
    /// backing write), µs.
    pub write_mean_us: f64,
    /// fsync and fdatasync of files.
    pub fsyncs: u64,
    pub fsync_mean_us: f64,
    pub cuts: u64,
}
