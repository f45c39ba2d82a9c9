//! TLS end to end against real TLS-only redis-servers (docs/tls.md): a
//! managed run with an exact ledger, mutual TLS, a wrong CA and a missing
//! client certificate named as such, `insecure` said wherever the server is,
//! and the drills (kill with read-back, network faults through the proxy,
//! CLIENT KILL, failover to a TLS replica) over TLS.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use streamdrill::report::Summary;
use streamdrill::server::{RedisServer, ServerConfig};

use crate::support::{run_summary, server_with};

/// 1000 events/s for 2 s into one stream read by two groups, with
/// `{redis}` as the `[redis]` table's lines and `{fault}` as a fault's.
fn scenario(redis: &str, fault: &str) -> String {
    format!(
        r#"
name = "tls"
duration = "2s"
drain_timeout = "10s"
[redis]
{redis}
[[producers]]
stream = "s"
rate = 1000
[[groups]]
stream = "s"
name = "g"
consumers = 2
reclaim = {{ min_idle = "1s", every = "200ms" }}
[[groups]]
stream = "s"
name = "h"
{fault}
"#
    )
}

/// An external run against `server` over TLS with these `[redis]` lines.
fn external(server: &RedisServer, lines: &str) -> String {
    let url = server.url();
    assert!(url.starts_with("rediss://"), "{url}");
    scenario(
        &format!("mode = \"external\"\nurl = \"{url}\"\n{lines}"),
        "",
    )
}

fn toml_path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

fn run_error(toml: &str) -> String {
    let scenario = streamdrill::scenario::load_str(toml, "tls.toml", &Default::default())
        .unwrap_or_else(|e| panic!("invalid scenario: {e}"));
    let out = tempfile::tempdir().unwrap();
    let options = streamdrill::runner::RunOptions::new(out.path()).workers(1);
    match streamdrill::runner::run_scenario(scenario, options) {
        Ok(_) => panic!("the run should have failed"),
        Err(e) => e.to_string(),
    }
}

/// Every acknowledged event processed by both groups, nothing lost, and
/// Redis holds what the producers were told it took.
fn assert_exact(s: &Summary) {
    assert_eq!(s.produce.errors, 0, "{:?}", s.produce);
    for g in &s.groups {
        assert_eq!(g.measured.lost, 0, "{g:?}");
        assert_eq!(g.measured.produced_acked, Some(s.produce.acked), "{g:?}");
        assert!(g.drained, "{g:?}");
    }
    assert!(s.verify.consistent, "{:?}", s.verify);
}

#[test]
fn a_managed_tls_only_server_runs_with_an_exact_ledger() {
    let s = run_summary(&scenario("tls = true", ""));
    assert_exact(&s);
    assert!(s.produce.acked >= 1900, "{:?}", s.produce);
    assert!(s.redis.url.starts_with("rediss://"), "{}", s.redis.url);
    let tls = s.redis.tls.as_ref().expect("TLS in the summary");
    assert_eq!(tls.version.as_deref(), Some("TLSv1.3"), "{tls:?}");
    assert!(
        tls.cipher
            .as_deref()
            .is_some_and(|c| c.starts_with("TLS13_"))
    );
    assert!(
        tls.own_ca && !tls.insecure && !tls.client_certificate,
        "{tls:?}"
    );
    let table = streamdrill::report::render_table(&s);
    assert!(table.contains("tls      TLSv1.3"), "{table}");
}

#[test]
fn a_tls_only_server_answers_no_plain_text() {
    let server = server_with(ServerConfig::default().tls(false));
    let mut plain = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    plain.write_all(b"PING\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"+PONG"), "{answer:?}");
}

#[test]
fn mutual_tls_runs_with_the_client_certificate() {
    let server = server_with(ServerConfig::default().tls(true));
    let files = server.tls_files().unwrap().clone();
    let s = run_summary(&external(
        &server,
        &format!(
            "tls_ca = {}\ntls_cert = {}\ntls_key = {}",
            toml_path(&files.ca),
            toml_path(&files.client_cert),
            toml_path(&files.client_key)
        ),
    ));
    assert_exact(&s);
    let tls = s.redis.tls.as_ref().unwrap();
    assert!(tls.client_certificate && !tls.own_ca, "{tls:?}");
}

#[test]
fn a_missing_client_certificate_is_named() {
    let server = server_with(ServerConfig::default().tls(true));
    let ca = toml_path(&server.tls_files().unwrap().ca);
    let e = run_error(&external(&server, &format!("tls_ca = {ca}")));
    assert!(e.contains("tls_cert and tls_key"), "{e}");
}

#[test]
fn a_wrong_ca_is_named_as_the_certificate_problem() {
    let server = server_with(ServerConfig::default().tls(false));
    let other = server_with(ServerConfig::default().tls(false));
    let wrong = toml_path(&other.tls_files().unwrap().ca);
    let e = run_error(&external(&server, &format!("tls_ca = {wrong}")));
    assert!(e.contains("UnknownIssuer"), "{e}");
    assert!(e.contains("set tls_ca"), "{e}");
}

#[test]
fn insecure_runs_unverified_and_says_so() {
    let server = server_with(ServerConfig::default().tls(false));
    let s = run_summary(&external(&server, "tls_insecure = true"));
    assert_exact(&s);
    assert!(s.redis.tls.as_ref().unwrap().insecure);
    let table = streamdrill::report::render_table(&s);
    assert!(table.contains("INSECURE"), "{table}");
}

#[test]
fn a_kill_drill_over_tls_reads_back_exactly() {
    let fault = "[[faults]]\naction = \"kill_redis\"\nat = \"1s\"\nrestart_after = \"300ms\"";
    let s = run_summary(&scenario(
        "tls = true\nappendonly = true\nappendfsync = \"always\"",
        fault,
    ));
    let d = s.durability.as_ref().expect("read back after the kill");
    assert!(d.acked > 1000, "{d:?}");
    assert_eq!(d.acked_but_gone, 0, "{d:?}");
    assert_eq!(
        d.acked + d.indeterminate_landed,
        s.verify.streams[0].length,
        "{d:?}"
    );
    assert!(s.faults[0].applied, "{:?}", s.faults);
}

#[test]
fn network_faults_and_client_kill_act_over_tls() {
    let faults = "[[faults]]\naction = \"network_latency\"\nat = \"500ms\"\nduration = \"500ms\"\n\
                  delay = \"20ms\"\n[[faults]]\naction = \"client_kill\"\nat = \"1200ms\"";
    let s = run_summary(&scenario("tls = true", faults));
    assert!(s.faults.iter().all(|f| f.applied), "{:?}", s.faults);
    let kill = s.faults.iter().find(|f| f.name == "client_kill").unwrap();
    assert!(kill.clients_killed.unwrap_or(0) > 0, "{kill:?}");
    for g in &s.groups {
        assert_eq!(g.measured.lost, 0, "{g:?}");
        assert!(g.drained, "{g:?}");
    }
    assert!(s.verify.consistent, "{:?}", s.verify);
}

#[test]
fn a_failover_to_a_tls_replica_follows_it() {
    let fault = "[[faults]]\naction = \"failover\"\nat = \"1s\"";
    // 3 s: a TLS reconnection on a loaded machine (debug-built crypto) may
    // take a good part of a second after the promotion.
    let toml = scenario("tls = true\nreplica = true", fault).replace("\"2s\"", "\"3s\"");
    let s = run_summary(&toml);
    assert!(s.faults[0].applied, "{:?}", s.faults);
    let d = s.durability.as_ref().expect("read back after the failover");
    // Written to the promoted replica after the window: the harness followed it.
    assert!(
        s.produce.acked as f64 > 1000.0 * (s.faults[0].end_s + 0.3),
        "{:?}",
        s.produce
    );
    assert_eq!(
        d.acked - d.acked_but_gone + d.indeterminate_landed,
        s.verify.streams[0].length,
        "{d:?}"
    );
}

#[test]
fn a_power_loss_drill_over_tls_restarts_and_reads_back() {
    if let Err(why) = streamdrill::powerfs::available() {
        println!("skipped: no FUSE here ({why})");
        return;
    }
    let fault = "[[faults]]\naction = \"power_loss\"\nat = \"1s\"\nrestart_after = \"300ms\"";
    let s = run_summary(&scenario(
        "tls = true\nappendonly = true\nappendfsync = \"always\"",
        fault,
    ));
    assert!(s.faults[0].applied, "{:?}", s.faults);
    let d = s
        .durability
        .as_ref()
        .expect("read back after the power loss");
    assert_eq!(d.acked_but_gone, 0, "{d:?}");
    assert_eq!(
        d.acked + d.indeterminate_landed,
        s.verify.streams[0].length,
        "{d:?}"
    );
}
