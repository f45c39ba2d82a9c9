//! The actors' own RESP client against a real redis-server: pipelined
//! replies matched in order, AUTH from the URL, and a request dropped
//! half-way never leaving its reply for the next one.

use std::sync::Arc;
use std::time::Duration;

use streamdrill::wire::{Endpoint, Outstanding, Reply, Session, resp};

use crate::support::{client, server};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

const TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn a_pipeline_gets_its_replies_in_order() {
    let redis = server();
    let endpoint = Endpoint::parse(&redis.url(), None).unwrap();
    runtime().block_on(async {
        let (mut replies, mut writer) = endpoint.open(TIMEOUT).await.unwrap();
        let mut out = Vec::new();
        for i in 0..100u64 {
            resp::command(
                &mut out,
                &[b"XADD", b"s", b"*", b"n", i.to_string().as_bytes()],
            );
        }
        resp::command(&mut out, &[b"INCR", b"s"]);
        resp::command(&mut out, &[b"XLEN", b"s"]);
        assert!(writer.write(&out).unwrap(), "loopback takes it at once");
        let mut in_flight = Outstanding::default();
        in_flight.push("xadds", 100);
        in_flight.push("incr", 1);
        in_flight.push("xlen", 1);
        let mut answered = Vec::new();
        // As a producer reads: whatever arrived, one reply at a time.
        while !in_flight.is_empty() {
            replies.read_more().await.unwrap();
            while let Some(reply) = replies.next_reply().unwrap() {
                if let Some((what, r)) = in_flight.answer_one(reply).unwrap() {
                    answered.push((what, r.clone()));
                    in_flight.recycle(r);
                }
            }
        }
        assert_eq!(answered[0].1, vec![Reply::Bulk; 100]);
        assert!(matches!(&answered[1].1[..], [Reply::Error(e)] if e.starts_with("WRONGTYPE")));
        assert_eq!(answered[2], ("xlen", vec![Reply::Int(100)]));
    });
}

#[test]
fn a_dropped_request_closes_the_connection_instead_of_leaking_its_reply() {
    let redis = server();
    let endpoint = Arc::new(Endpoint::parse(&redis.url(), None).unwrap());
    runtime().block_on(async {
        let session = Session::new(endpoint, None, TIMEOUT);
        let mut block = Vec::new();
        resp::command(
            &mut block,
            &[b"XREAD", b"BLOCK", b"300", b"STREAMS", b"s", b"$"],
        );
        let dropped = tokio::time::timeout(Duration::from_millis(20), session.call(block, 1));
        assert!(dropped.await.is_err(), "the blocking read was cut off");
        let mut ping = Vec::new();
        resp::command(&mut ping, &[b"PING"]);
        let raw = session.call(ping, 1).await.unwrap();
        assert_eq!(raw.bytes(0), b"+PONG\r\n", "not the XREAD's nil");
    });
}

#[test]
fn the_url_password_logs_in_and_a_wrong_one_is_refused() {
    let redis = server();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("s3cret")
        .query(&mut client(&redis))
        .unwrap();
    let url = |pw: &str| format!("redis://:{pw}@127.0.0.1:{}/2", redis.port());
    runtime().block_on(async {
        let good = Endpoint::parse(&url("s3cret"), None).unwrap();
        let session = Session::new(Arc::new(good), None, TIMEOUT);
        let mut ping = Vec::new();
        resp::command(&mut ping, &[b"CLIENT", b"INFO"]);
        let raw = session.call(ping, 1).await.unwrap();
        let info = String::from_utf8_lossy(raw.bytes(0)).into_owned();
        assert!(info.contains(" db=2 "), "SELECT from the URL: {info}");
        let bad = Endpoint::parse(&url("wrong"), None).unwrap();
        let e = bad.open(TIMEOUT).await.err().expect("refused");
        assert!(e.to_string().contains("WRONGPASS"), "{e}");
    });
}
