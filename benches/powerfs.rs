//! The power-loss file system's overhead: redis-benchmark's XADD against a
//! managed redis-server with its AOF on a plain directory and on the mount,
//! side by side, for appendfsync always and everysec
//! (`docs/benchmarks.md, "Power-loss file system overhead"`).
//! `cargo bench --bench powerfs`; under `cargo test` it only says it skipped.

#![allow(clippy::print_stdout)]

use std::process::Command;

use streamdrill::powerfs::{self, PowerFs};
use streamdrill::server::{Fsync, RedisServer, ServerConfig};

const REQUESTS: &str = "100000";
const PIPELINE: &str = "16";

/// XADD ops/s that redis-benchmark reports against `redis`.
fn xadd_per_s(redis: &RedisServer) -> f64 {
    let out = Command::new("redis-benchmark")
        .args([
            "-p",
            &redis.port().to_string(),
            "-n",
            REQUESTS,
            "-P",
            PIPELINE,
            "-q",
        ])
        .args(["XADD", "s", "*", "f", "v"])
        .output()
        .expect("redis-benchmark runs");
    let text = String::from_utf8_lossy(&out.stdout);
    // "XADD s * f v: 123456.79 requests per second, p50=..." (after \r progress)
    let line = text.rsplit('\r').next().unwrap_or_default();
    line.split(": ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rate in {text:?}"))
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("powerfs bench: skipped (run it with cargo bench --bench powerfs)");
        return;
    }
    if let Err(why) = powerfs::available() {
        println!("powerfs bench: skipped: {why}");
        return;
    }
    println!("redis-benchmark -n {REQUESTS} -P {PIPELINE} XADD s '*' f v");
    println!(
        "{:<10} {:>14} {:>14} {:>7}",
        "fsync", "plain ops/s", "powerfs ops/s", "ratio"
    );
    for fsync in [Fsync::Always, Fsync::Everysec] {
        let plain = RedisServer::start(ServerConfig::default().aof(fsync)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (backing, mnt) = (dir.path().join("backing"), dir.path().join("mnt"));
        std::fs::create_dir(&backing).unwrap();
        std::fs::create_dir(&mnt).unwrap();
        let pfs = PowerFs::mount(&backing, &mnt).unwrap();
        let mounted =
            RedisServer::start(ServerConfig::default().aof(fsync).data_dir(&mnt)).unwrap();
        let (a, b) = (xadd_per_s(&plain), xadd_per_s(&mounted));
        println!("{:<10} {a:>14.0} {b:>14.0} {:>7.2}", fsync.conf(), b / a);
        let stats = pfs.stats();
        println!(
            "           powerfs: {} writes ({:.1} us each), {} fsyncs ({:.1} us each)",
            stats.writes,
            stats.write_ns as f64 / stats.writes.max(1) as f64 / 1e3,
            stats.fsyncs,
            stats.fsync_ns as f64 / stats.fsyncs.max(1) as f64 / 1e3,
        );
        drop(mounted);
        drop(pfs);
    }
}
