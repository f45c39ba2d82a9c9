//! The power-loss file system: what a cut keeps and drops, redis-server on
//! the mount through kill -9 and a cut under each fsync policy, and the
//! mount gone after drop or a panic. Each test skips, saying why, where
//! FUSE is not available.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use redis::Commands;
use streamdrill::powerfs::{self, PowerFs};
use streamdrill::server::{Fsync, RedisServer, ServerConfig};

use crate::support::{client, server_with};

/// A mount over a fresh backing directory, or `None` (printed) where FUSE is missing.
fn mounted() -> Option<(tempfile::TempDir, PowerFs)> {
    if let Err(why) = powerfs::available() {
        println!("skipped: {why}");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("backing")).unwrap();
    fs::create_dir(dir.path().join("mnt")).unwrap();
    let fs = PowerFs::mount(&dir.path().join("backing"), &dir.path().join("mnt")).unwrap();
    Some((dir, fs))
}

fn append(path: &Path, bytes: &[u8], sync: bool) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
    if sync {
        f.sync_data().unwrap();
    }
}

#[test]
fn a_cut_keeps_exactly_the_fsynced_bytes() {
    let Some((_dir, pfs)) = mounted() else { return };
    let file = pfs.mountpoint().join("aof");
    append(&file, b"durable|", true);
    append(&file, b"lost", false);
    assert_eq!(
        fs::read(&file).unwrap(),
        b"durable|lost",
        "writes pass through"
    );
    let report = pfs.power_cut().unwrap();
    assert_eq!(fs::read(&file).unwrap(), b"durable|");
    assert_eq!(report.dropped_bytes, 4);
    assert_eq!(report.files[0].path, Path::new("aof"));

    // An overwrite inside the durable region is undone.
    let f = OpenOptions::new().write(true).open(&file).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"XX", 2).unwrap();
    drop(f);
    assert_eq!(fs::read(&file).unwrap(), b"duXXble|");
    pfs.power_cut().unwrap();
    assert_eq!(fs::read(&file).unwrap(), b"durable|");

    // A file created and never fsynced is gone; a truncate is undone.
    append(&pfs.mountpoint().join("new"), b"temp", false);
    OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(3)
        .unwrap();
    let report = pfs.power_cut().unwrap();
    assert!(!pfs.mountpoint().join("new").exists());
    assert!(
        report
            .files
            .iter()
            .any(|f| f.removed && f.path == Path::new("new"))
    );
    assert_eq!(fs::read(&file).unwrap(), b"durable|");
    let stats = pfs.stats();
    assert!(
        stats.fsyncs >= 1 && stats.writes >= 3 && stats.cuts == 3,
        "{stats:?}"
    );
}

#[test]
fn an_fsynced_temp_file_renamed_into_a_new_dir_survives_a_cut() {
    let Some((_dir, pfs)) = mounted() else { return };
    let dir = pfs.mountpoint().join("appendonlydir");
    fs::create_dir(&dir).unwrap();
    append(&dir.join("temp"), b"manifest", true);
    fs::rename(dir.join("temp"), dir.join("manifest")).unwrap();
    append(&dir.join("incr"), b"unsynced", false);
    fs::File::open(&dir).unwrap().sync_all().unwrap();
    pfs.power_cut().unwrap();
    assert_eq!(fs::read(dir.join("manifest")).unwrap(), b"manifest");
    // The directory fsync kept the new file's name, not its contents.
    assert_eq!(fs::read(dir.join("incr")).unwrap(), b"");
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

/// XADD `n` entries, one reply each, into "s".
fn xadd(redis: &RedisServer, n: usize) {
    let mut conn = client(redis);
    for i in 0..n {
        let _: String = conn.xadd("s", "*", &[("i", i)]).unwrap();
    }
}

fn xlen(redis: &RedisServer) -> usize {
    client(redis).xlen("s").unwrap()
}

fn on_mount(pfs: &PowerFs, fsync: Fsync) -> RedisServer {
    server_with(
        ServerConfig::default()
            .aof(fsync)
            .data_dir(pfs.mountpoint()),
    )
}

#[test]
fn appendfsync_always_keeps_every_acknowledged_entry_through_a_cut() {
    let Some((_dir, pfs)) = mounted() else { return };
    let mut redis = on_mount(&pfs, Fsync::Always);
    xadd(&redis, 200);
    redis.kill9().unwrap();
    let report = pfs.power_cut().unwrap();
    redis.restart().unwrap();
    assert_eq!(
        xlen(&redis),
        200,
        "cut dropped {report:?}\n{}",
        redis.log_tail(20)
    );
    assert!(pfs.stats().fsyncs >= 200, "{:?}", pfs.stats());
}

#[test]
fn appendfsync_no_loses_what_the_kernel_never_flushed_and_redis_still_starts() {
    let Some((_dir, pfs)) = mounted() else { return };
    let mut redis = on_mount(&pfs, Fsync::No);
    xadd(&redis, 200);
    redis.kill9().unwrap();
    let report = pfs.power_cut().unwrap();
    redis.restart().unwrap();
    // Nothing fsynced the incremental AOF since startup: every entry is gone,
    // where a real kernel would have flushed some within ~30 s.
    assert_eq!(
        xlen(&redis),
        0,
        "cut dropped {report:?}\n{}",
        redis.log_tail(20)
    );
    assert!(report.dropped_bytes > 0, "{report:?}");
}

fn listed(mountpoint: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while powerfs::is_mounted(mountpoint) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    powerfs::is_mounted(mountpoint)
}

#[test]
fn dropping_or_panicking_unmounts() {
    let Some((dir, pfs)) = mounted() else { return };
    let mnt = dir.path().join("mnt");
    assert!(powerfs::is_mounted(&mnt));
    // Even with a file still open on it.
    let open = fs::File::create(mnt.join("held")).unwrap();
    drop(pfs);
    assert!(!listed(&mnt), "still in /proc/mounts after drop");
    drop(open);

    let backing = dir.path().join("backing");
    let mnt2 = mnt.clone();
    let panicked = std::thread::spawn(move || {
        let _pfs = PowerFs::mount(&backing, &mnt2).unwrap();
        assert!(powerfs::is_mounted(&mnt2));
        panic!("a drill failing while mounted");
    })
    .join();
    assert!(panicked.is_err());
    assert!(!listed(&mnt), "still in /proc/mounts after a panic");
    // The same mountpoint mounts again.
    let again = PowerFs::mount(&dir.path().join("backing"), &mnt).unwrap();
    again.unmount().unwrap();
}
