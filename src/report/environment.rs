//! Where and how a run ran, as `summary.json` records it: the client
//! machine (and how its idle CPUs waited), the Redis server, and what the
//! harness itself cost. Enough to tell two runs' conditions apart.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

use crate::metrics::{IdleState, ServerInfo};

/// Where the client side ran: enough to tell two machines' results apart.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct MachineInfo {
    pub hostname: String,
    pub os: String,
    pub arch: String,
    pub cpus: u32,
    /// Kernel release, where the OS tells it.
    pub kernel: String,
    /// How idle CPUs waited during the run (see `cpu_idle`); None in runs
    /// written before it was recorded. Wake-ups from idle add to latencies.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "cpu_idle_of_any_version"
    )]
    pub cpu_idle: Option<IdleState>,
}

impl MachineInfo {
    /// `cpu_idle` for people: runs written before it was recorded say so.
    pub fn idle_label(&self) -> String {
        (self.cpu_idle.as_ref()).map_or_else(|| "(not recorded)".into(), IdleState::to_string)
    }

    /// Poll was asked for and refused: latencies include wake-ups the user
    /// meant to rule out.
    pub fn poll_refused(&self) -> bool {
        matches!(self.cpu_idle, Some(IdleState::OsPollRefused(_)))
    }

    pub fn current() -> MachineInfo {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        MachineInfo {
            hostname: read("/proc/sys/kernel/hostname"),
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get() as u32),
            kernel: read("/proc/sys/kernel/osrelease"),
            cpu_idle: None,
        }
    }
}

/// `machine.cpu_idle` as today's files hold it, or as the text earlier ones
/// wrote (same schema version): "" (not recorded), "poll", "os", or
/// "os (poll not held: why)".
fn cpu_idle_of_any_version<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IdleState>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shape {
        Typed(IdleState),
        Text(String),
    }
    let text = match Shape::deserialize(d)? {
        Shape::Typed(state) => return Ok(Some(state)),
        Shape::Text(text) => text,
    };
    let refused = (text.strip_prefix("os (poll not held: ")).and_then(|t| t.strip_suffix(')'));
    match (text.as_str(), refused) {
        ("", _) => Ok(None),
        (_, Some(why)) => Ok(Some(IdleState::OsPollRefused(why.to_string()))),
        _ => Err(serde::de::Error::custom(format!(
            "cpu_idle {text:?}: expected \"poll\", \"os\" or {{\"os_poll_refused\": why}}"
        ))),
    }
}

/// The server the run talked to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct RedisInfo {
    /// "managed" or "external".
    pub mode: String,
    pub url: String,
    /// `redis_version` from INFO (Valkey's is the Redis it is compatible
    /// with: `server` says what it is).
    pub version: String,
    /// Settings that shape results (appendonly, appendfsync, maxmemory, …), as CONFIG GET returned them.
    pub config: BTreeMap<String, String>,
    /// What the server says it is, the binary a managed one ran, its stream
    /// features; None in runs written before they were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerInfo>,
    /// How the connections were encrypted; None: plain TCP (docs/tls.md, "In the report").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsUse>,
}

/// TLS as a run used it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsUse {
    /// The protocol version the handshake settled on, e.g. "TLSv1.3".
    pub version: Option<String>,
    /// The cipher suite, e.g. "TLS13_AES_256_GCM_SHA384".
    pub cipher: Option<String>,
    /// The server's certificate was not verified (`tls_insecure`).
    pub insecure: bool,
    /// The harness showed a client certificate (mutual TLS).
    pub client_certificate: bool,
    /// A managed server's throwaway CA, made for this run.
    pub own_ca: bool,
}

impl TlsUse {
    /// "TLSv1.3 TLS13_AES_256_GCM_SHA384, client certificate, INSECURE: server certificate not verified".
    pub fn describe(&self) -> String {
        let mut words = vec![format!(
            "{} {}",
            self.version.as_deref().unwrap_or("TLS"),
            self.cipher.as_deref().unwrap_or("(cipher unknown)")
        )];
        if self.own_ca {
            words.push("throwaway CA".into());
        }
        if self.client_certificate {
            words.push("client certificate".into());
        }
        if self.insecure {
            words.push("INSECURE: server certificate not verified".into());
        }
        words.join(", ")
    }
}

impl RedisInfo {
    /// "valkey 9.1.2", "redis 8.2.3 TLS"; "redis <redis_version>" for runs
    /// that did not record the server.
    pub fn label(&self) -> String {
        let server = (self.server.as_ref())
            .map_or_else(|| format!("redis {}", self.version), ServerInfo::label);
        match self.tls {
            Some(_) => format!("{server} TLS"),
            None => server,
        }
    }
}

/// The harness's own CPU (user + system, every thread of the streamdrill
/// process, the fault proxy's included; a managed Redis is another process)
/// from the run clock's start to the end of the drain, warmup included.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct HarnessCost {
    pub cpu_s: f64,
    /// Per event sent (warmup included; 0 when none was): producing,
    /// consuming, acknowledging and measuring it.
    pub cpu_us_per_event: f64,
    /// Threads producers and consumers ran on (`--workers`); None in runs
    /// written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
}

impl HarnessCost {
    pub fn of(cpu_s: f64, events_sent: u64) -> HarnessCost {
        let cpu_us_per_event = match events_sent {
            0 => 0.0,
            n => cpu_s * 1e6 / n as f64,
        };
        HarnessCost {
            cpu_s,
            cpu_us_per_event,
            threads: None,
        }
    }

    pub fn on_threads(self, threads: u32) -> HarnessCost {
        HarnessCost {
            threads: Some(threads),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Summary;
    use crate::report::summary::tests::test_summary;
    use serde_json::{Value, json};

    fn with_cpu_idle(cpu_idle: Option<Value>) -> Result<Summary, serde_json::Error> {
        let mut v = serde_json::to_value(test_summary()).unwrap();
        let machine = v["machine"].as_object_mut().unwrap();
        machine.remove("cpu_idle");
        if let Some(cpu_idle) = cpu_idle {
            machine.insert("cpu_idle".into(), cpu_idle);
        }
        serde_json::from_value(v)
    }

    #[test]
    fn cpu_idle_round_trips_in_its_typed_shape() {
        let why = "no cpuidle driver: idle CPUs halt regardless";
        let refused = Some(IdleState::OsPollRefused(why.into()));
        let mut s = test_summary();
        s.machine.cpu_idle = refused.clone();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["machine"]["cpu_idle"], json!({ "os_poll_refused": why }));
        let back: Summary = serde_json::from_value(v).unwrap();
        assert_eq!(back.machine.cpu_idle, refused);
        assert!(back.machine.poll_refused());
        let read = |v: Value| with_cpu_idle(Some(v)).unwrap().machine.cpu_idle;
        assert_eq!(read(json!("poll")), Some(IdleState::Poll));
        assert_eq!(read(json!("os")), Some(IdleState::Os));
    }

    /// Files written before the server was recorded still read, and name it by `redis_version`.
    #[test]
    fn redis_server_is_optional_and_labels_the_run() {
        let mut v = serde_json::to_value(test_summary()).unwrap();
        assert_eq!(
            v["redis"]["server"]["features"],
            json!(["xautoclaim", "group_lag"])
        );
        v["redis"].as_object_mut().unwrap().remove("server");
        let old: Summary = serde_json::from_value(v).unwrap();
        assert_eq!(old.redis.server, None);
        assert_eq!(old.redis.label(), "redis 7.0.15");
        let written = serde_json::to_value(&old).unwrap();
        assert!(written["redis"].get("server").is_none(), "absent, not null");
    }

    /// Files written while `cpu_idle` was text (schema 2 too) still read.
    #[test]
    fn cpu_idle_reads_as_older_files_wrote_it() {
        let read = |v: Option<Value>| with_cpu_idle(v).unwrap().machine;
        let refused = "os (poll not held: /dev/cpu_dma_latency: Permission denied (os error 13))";
        let m = read(Some(json!(refused)));
        let why = "/dev/cpu_dma_latency: Permission denied (os error 13)";
        assert_eq!(m.cpu_idle, Some(IdleState::OsPollRefused(why.into())));
        assert!(m.poll_refused());
        assert_eq!(m.idle_label(), refused, "people read the same words");
        let m = read(Some(json!("")));
        assert_eq!(
            (&m.cpu_idle, m.idle_label().as_str()),
            (&None, "(not recorded)")
        );
        assert_eq!(read(None).cpu_idle, None, "absent: older still");
        let bad = with_cpu_idle(Some(json!("spin"))).unwrap_err().to_string();
        assert!(bad.contains("cpu_idle \"spin\": expected"), "{bad}");
    }
}
