//! The power-loss file system: a FUSE mount over a backing directory that
//! passes every write through at once but remembers, per file, what was
//! made durable by fsync/fdatasync, so [`PowerFs::power_cut`] can discard
//! every byte written since, as a power cut drops the page cache. A managed
//! `redis-server` keeps its data directory on the mount for power-loss
//! drills (`docs/faults.md, "Power loss"`, with the model and its limits).
//! No redis, no actix: the drill code and the tests mount it and cut.
//!
//! The model, after Jepsen's LazyFS (which keeps unsynced writes in its own
//! page cache and drops them on "clear-cache"):
//! - a write reaches the backing file at once; durable bytes it overwrites
//!   are saved first, so a cut can restore them;
//! - fsync/fdatasync of a file makes its current contents durable;
//! - a cut restores the saved bytes, truncates each file to its durable
//!   length, and removes files created since whose directory was not
//!   fsynced since either (a directory fsync keeps their names, empty);
//! - the other directory operations (mkdir, rename, unlink) are durable at
//!   once: a rename of an fsynced temp file over the AOF survives a cut, as
//!   on a journalling file system.
//!
//! Unmounting: [`PowerFs::unmount`] or `Drop` (which also runs during a
//! panic's unwinding). The mount is made through `fusermount3` with
//! `auto_unmount` when it can be, so even if the process is SIGKILLed,
//! fusermount3 sees its socket close and unmounts; otherwise the kernel tears
//! the FUSE connection down and leaves a dead mountpoint ("Transport endpoint
//! is not connected"), which the next [`PowerFs::mount`] of that path clears
//! with `fusermount3 -u -z` first.
//!
//! - `durability`: the per-inode ledger of what is durable, and the rollback.
//! - `fs`: the `fuser::Filesystem` over the backing directory.

mod durability;
mod fs;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant};

use fuser::{BackgroundSession, Config, MountOption, SessionACL};

use crate::error::{Error, Result};
use fs::{PowerFilesystem, State};

/// The setuid helper that mounts and unmounts FUSE file systems (Debian's `fuse3`).
pub const FUSERMOUNT: &str = "fusermount3";
/// How long mount and unmount wait for `/proc/mounts` to agree.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often they look.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// What a power cut dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Every file that lost something, by path relative to the mount.
    pub files: Vec<DroppedFile>,
    /// Their sum.
    pub dropped_bytes: u64,
}

/// One file's loss in a cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedFile {
    pub path: PathBuf,
    pub dropped_bytes: u64,
    /// Created and never fsynced: the cut removed it.
    pub removed: bool,
}

/// The file system's own work, to measure its overhead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub writes: u64,
    pub written_bytes: u64,
    /// Time inside write requests (saving undo bytes and the backing write).
    pub write_ns: u64,
    /// fsync and fdatasync of files (not directories).
    pub fsyncs: u64,
    pub fsync_ns: u64,
    pub cuts: u64,
}

/// A mounted power-loss file system; unmounted on drop.
#[derive(Debug)]
pub struct PowerFs {
    mountpoint: PathBuf,
    state: Arc<Mutex<State>>,
    session: Option<BackgroundSession>,
}

/// Whether this machine can mount FUSE file systems here: `/dev/fuse` and
/// `fusermount3` exist. `Err` says what is missing (tests print it and skip).
pub fn available() -> std::result::Result<(), String> {
    if !Path::new("/dev/fuse").exists() {
        return Err("/dev/fuse is missing (no FUSE in this kernel or container)".into());
    }
    match Command::new(FUSERMOUNT)
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "{FUSERMOUNT} cannot be run ({e}); Debian: apt-get install fuse3"
        )),
    }
}

impl PowerFs {
    /// Mount a power-loss file system over `backing` at `mountpoint` (both
    /// existing directories) and serve it on a background thread. A dead
    /// mount left at `mountpoint` by a killed process is cleared first.
    pub fn mount(backing: &Path, mountpoint: &Path) -> Result<PowerFs> {
        let error = |doing: &str, source| Error::PowerFs {
            mountpoint: mountpoint.to_path_buf(),
            doing: doing.into(),
            source,
        };
        if is_mounted(mountpoint) {
            lazy_unmount(mountpoint);
        }
        let backing = backing
            .canonicalize()
            .map_err(|e| error("find the backing directory", e))?;
        let state = Arc::new(Mutex::new(State::new(backing)));
        let filesystem = PowerFilesystem {
            state: state.clone(),
        };
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("streamdrill-powerfs".into()),
            MountOption::Subtype("powerfs".into()),
            MountOption::AutoUnmount,
        ];
        // auto_unmount needs allow_other, which fusermount3 grants root (and
        // others only with `user_allow_other` in /etc/fuse.conf); without it,
        // a plain mount, cleaned up at the next mount if we are killed.
        config.acl = SessionACL::All;
        let session = fuser::spawn_mount(filesystem.clone(), mountpoint, &config).or_else(|_| {
            config
                .mount_options
                .retain(|o| *o != MountOption::AutoUnmount);
            config.acl = SessionACL::Owner;
            fuser::spawn_mount(filesystem, mountpoint, &config)
        });
        let session = session.map_err(|e| error("mount", e))?;
        let fs = PowerFs {
            mountpoint: mountpoint.to_path_buf(),
            state,
            session: Some(session),
        };
        wait_for(|| is_mounted(mountpoint))
            .map_err(|e| error("see the mount in /proc/mounts", e))?;
        Ok(fs)
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Discard every file's bytes written since its last fsync, in the
    /// backing directory: the next reader of the mount sees only what was
    /// durable. Meant for after the writer is killed; a writer still running
    /// keeps writing at its own offsets, past the new end of file.
    pub fn power_cut(&self) -> Result<CutReport> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.power_cut().map_err(|source| Error::PowerFs {
            mountpoint: self.mountpoint.clone(),
            doing: "roll back to the durable state".into(),
            source,
        })
    }

    /// The file system's counters so far.
    pub fn stats(&self) -> Stats {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).stats
    }

    /// Unmount and wait until `/proc/mounts` no longer lists the mountpoint.
    pub fn unmount(mut self) -> Result<()> {
        self.unmount_now()
    }

    fn unmount_now(&mut self) -> Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let error = |source| Error::PowerFs {
            mountpoint: self.mountpoint.clone(),
            doing: "unmount".into(),
            source,
        };
        if run_fusermount(&["-u"], &self.mountpoint) {
            session.umount_and_join().map_err(error)?;
        } else {
            // A file is still open on it (EBUSY): detach it lazily, so the
            // mountpoint is free at once. The session serves the open files
            // until the last one closes, so its thread is left to end then.
            lazy_unmount(&self.mountpoint);
            drop(session);
        }
        wait_for(|| !is_mounted(&self.mountpoint)).map_err(error)
    }
}

impl Drop for PowerFs {
    fn drop(&mut self) {
        // Nothing to report to in a drop; a failure leaves a mount the next
        // mount of the same path clears.
        let _ = self.unmount_now();
    }
}

fn run_fusermount(args: &[&str], mountpoint: &Path) -> bool {
    Command::new(FUSERMOUNT)
        .args(args)
        .arg(mountpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn lazy_unmount(mountpoint: &Path) {
    run_fusermount(&["-u", "-z"], mountpoint);
}

/// Whether `/proc/mounts` lists `mountpoint` (compared as an absolute path
/// with a canonical parent: a dead FUSE mountpoint itself cannot be resolved).
pub fn is_mounted(mountpoint: &Path) -> bool {
    let Some(wanted) = absolute(mountpoint) else {
        return false;
    };
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return false;
    };
    mounts
        .lines()
        .filter_map(|line| line.split(' ').nth(1))
        .any(|field| unescape(field) == wanted.to_string_lossy())
}

fn absolute(path: &Path) -> Option<PathBuf> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Some(parent.canonicalize().ok()?.join(path.file_name()?))
}

/// `/proc/mounts` writes space, tab, newline and backslash as octal escapes.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn wait_for(done: impl Fn() -> bool) -> std::io::Result<()> {
    let deadline = Instant::now() + MOUNT_TIMEOUT;
    while !done() {
        if Instant::now() > deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "timed out",
            ));
        }
        sleep(POLL_INTERVAL);
    }
    Ok(())
}
