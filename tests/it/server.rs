//! Managed redis-server processes: start, parallel servers, kill -9 and
//! restart with and without persistence, cleanup on drop, start failures.

use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use redis::Commands;
use streamdrill::Error;
use streamdrill::server::{Fsync, RedisServer, ServerConfig};

use crate::support::{client, server, server_with, wait_until};

fn ping(conn: &mut redis::Connection) -> String {
    redis::cmd("PING").query(conn).expect("PING")
}

fn xlen(redis: &RedisServer) -> u64 {
    client(redis).xlen("s").expect("XLEN")
}

fn add_one(redis: &RedisServer) {
    let _: String = client(redis)
        .xadd("s", "*", &[("sd", "1:0:0")])
        .expect("XADD");
}

#[test]
fn start_answers_ping_in_its_own_dir() {
    let redis = server();
    assert_ne!(redis.port(), 6379, "never the shared default server");
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}", redis.port()));
    assert!(redis.dir().join("redis.conf").is_file());
    assert!(redis.pid().is_some());
    assert_eq!(ping(&mut client(&redis)), "PONG");
    let dir: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("dir")
        .query(&mut client(&redis))
        .unwrap();
    assert_eq!(
        std::fs::canonicalize(&dir[1]).unwrap(),
        std::fs::canonicalize(redis.dir()).unwrap()
    );
}

#[test]
fn servers_started_in_parallel_get_different_ports() {
    let handles: Vec<_> = (0..2).map(|_| thread::spawn(server)).collect();
    let servers: Vec<RedisServer> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_ne!(servers[0].port(), servers[1].port());
    assert_ne!(servers[0].dir(), servers[1].dir());
    for s in &servers {
        assert_eq!(ping(&mut client(s)), "PONG");
    }
    // They are separate servers: a write to one is not seen by the other.
    add_one(&servers[0]);
    assert_eq!((xlen(&servers[0]), xlen(&servers[1])), (1, 0));
}

#[test]
fn aof_always_keeps_an_acknowledged_entry_across_kill9() {
    let mut redis = server_with(ServerConfig::default().aof(Fsync::Always));
    let (port, old_pid) = (redis.port(), redis.pid());
    add_one(&redis);
    redis.kill9().unwrap();
    assert_eq!(redis.pid(), None);
    redis.restart().unwrap();
    assert_eq!(redis.port(), port, "same port after restart");
    assert_ne!(redis.pid(), old_pid, "a new process");
    assert_eq!(xlen(&redis), 1, "log:\n{}", redis.log_tail(20));
}

#[test]
fn without_persistence_kill9_loses_everything() {
    let mut redis = server();
    add_one(&redis);
    assert_eq!(xlen(&redis), 1);
    redis.kill9().unwrap();
    redis.restart().unwrap();
    assert_eq!(xlen(&redis), 0);
}

#[test]
fn graceful_stop_then_restart_with_rdb_keeps_data() {
    let mut redis = server_with(ServerConfig::default().save("3600 1"));
    add_one(&redis);
    redis.stop().unwrap();
    assert!(!redis.is_running());
    assert!(
        redis.dir().join("dump.rdb").is_file(),
        "SHUTDOWN wrote an RDB"
    );
    redis.restart().unwrap();
    assert_eq!(xlen(&redis), 1);
}

#[test]
fn drop_kills_the_process_and_removes_the_dir() {
    let redis = server();
    let (port, dir) = (redis.port(), redis.dir().to_path_buf());
    drop(redis);
    wait_until(
        Duration::from_secs(5),
        "the dropped server's port to close",
        || TcpStream::connect(("127.0.0.1", port)).is_err(),
    );
    assert!(!dir.exists());
}

#[test]
fn bad_config_line_fails_with_the_log_tail() {
    let err = RedisServer::start(ServerConfig::default().line("no-such-directive 1")).unwrap_err();
    assert!(matches!(err, Error::ServerStart { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("no-such-directive"),
        "log tail missing from: {text}"
    );
    assert!(
        text.contains("Bad directive"),
        "redis's own reason missing from: {text}"
    );
}

#[test]
fn restart_fails_with_the_log_tail_when_its_port_was_taken() {
    let mut redis = server();
    redis.kill9().unwrap();
    assert!(!redis.is_running());
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", redis.port())).unwrap();
    let err = redis.restart().unwrap_err();
    assert!(
        matches!(err, Error::ServerStart { port, .. } if port == redis.port()),
        "{err:?}"
    );
    assert!(err.to_string().contains("Address already in use"), "{err}");
    assert_eq!(redis.pid(), None, "the failed process was reaped");
}
