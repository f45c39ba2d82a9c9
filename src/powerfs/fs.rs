//! The FUSE side: every request maps an inode to its path under the
//! backing directory, does the operation there, and keeps the durability
//! ledger and the counters up to date. One lock guards it all: the session
//! runs on one thread, and the lock is what a power cut takes to see no
//! half-done write.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use super::durability::{Ledger, Rollback};
use super::{CutReport, DroppedFile, Stats};

/// Attributes and names are never cached by the kernel: after a cut, the
/// next `stat` or `open` must see the rolled-back backing file.
const TTL: Duration = Duration::ZERO;
/// Linux's `O_APPEND`, `O_EXCL` and `O_TRUNC` (the generic ABI values).
const O_APPEND: i32 = 0o2000;
const O_EXCL: i32 = 0o200;
const O_TRUNC: i32 = 0o1000;

/// An open file: the backing file and whether writes go to its end.
#[derive(Debug)]
struct Handle {
    ino: u64,
    file: File,
    append: bool,
}

/// Everything the file system knows, behind one lock.
#[derive(Debug)]
pub(super) struct State {
    backing: PathBuf,
    /// Inode → path relative to `backing` ("" is the root).
    paths: HashMap<u64, PathBuf>,
    inodes: HashMap<PathBuf, u64>,
    next_ino: u64,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    ledger: Ledger,
    pub(super) stats: Stats,
}

/// The `fuser::Filesystem` over the shared state.
#[derive(Debug, Clone)]
pub(super) struct PowerFilesystem {
    pub(super) state: Arc<Mutex<State>>,
}

impl State {
    pub(super) fn new(backing: PathBuf) -> State {
        let root = PathBuf::new();
        State {
            backing,
            paths: HashMap::from([(INodeNo::ROOT.0, root.clone())]),
            inodes: HashMap::from([(root, INodeNo::ROOT.0)]),
            next_ino: INodeNo::ROOT.0 + 1,
            handles: HashMap::new(),
            next_fh: 1,
            ledger: Ledger::default(),
            stats: Stats::default(),
        }
    }

    fn path(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        let rel = self.paths.get(&ino.0).ok_or(Errno::ENOENT)?;
        Ok(self.backing.join(rel))
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.paths.get(&parent.0).ok_or(Errno::ENOENT)?.join(name))
    }

    /// The inode of `rel`, numbered on first sight.
    fn inode(&mut self, rel: &Path) -> u64 {
        if let Some(ino) = self.inodes.get(rel) {
            return *ino;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.paths.insert(ino, rel.to_path_buf());
        self.inodes.insert(rel.to_path_buf(), ino);
        ino
    }

    /// `rel` no longer exists: forget its inode and what it had pending.
    fn remove(&mut self, rel: &Path) {
        if let Some(ino) = self.inodes.remove(rel) {
            self.paths.remove(&ino);
            self.ledger.forget(ino);
        }
    }

    fn attr(&mut self, rel: &Path) -> Result<FileAttr, Errno> {
        let meta = fs::symlink_metadata(self.backing.join(rel))?;
        let ino = self.inode(rel);
        Ok(attr(ino, &meta))
    }

    fn open_handle(&mut self, ino: u64, file: File, append: bool) -> FileHandle {
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, Handle { ino, file, append });
        FileHandle(fh)
    }

    fn write(&mut self, fh: FileHandle, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        let handle = self.handles.get(&fh.0).ok_or(Errno::EBADF)?;
        // pwrite on an O_APPEND file ignores the offset on Linux, so the
        // backing file is opened without it and the end is found here.
        let offset = if handle.append {
            handle.file.metadata()?.len()
        } else {
            offset
        };
        let started = Instant::now();
        self.ledger
            .before_write(handle.ino, &handle.file, offset, data.len() as u64)?;
        handle.file.write_all_at(data, offset)?;
        self.stats.writes += 1;
        self.stats.written_bytes += data.len() as u64;
        self.stats.write_ns += started.elapsed().as_nanos() as u64;
        Ok(data.len() as u32)
    }

    fn fsync(&mut self, fh: FileHandle, datasync: bool) -> Result<(), Errno> {
        let handle = self.handles.get(&fh.0).ok_or(Errno::EBADF)?;
        let started = Instant::now();
        if datasync {
            handle.file.sync_data()?;
        } else {
            handle.file.sync_all()?;
        }
        self.ledger.synced(handle.ino);
        self.stats.fsyncs += 1;
        self.stats.fsync_ns += started.elapsed().as_nanos() as u64;
        Ok(())
    }

    /// Renames and unlinks are durable at once in this model; a directory
    /// fsync makes the names of the files created in it durable too.
    fn fsyncdir(&mut self, ino: INodeNo) -> Result<(), Errno> {
        File::open(self.path(ino)?)?.sync_all()?;
        let dir = self.paths.get(&ino.0).cloned().ok_or(Errno::ENOENT)?;
        for file in self.ledger.inodes() {
            if self.paths.get(&file).and_then(|p| p.parent()) == Some(dir.as_path()) {
                self.ledger.name_synced(file);
            }
        }
        Ok(())
    }

    fn truncate(&mut self, ino: INodeNo, fh: Option<FileHandle>, size: u64) -> Result<(), Errno> {
        let opened;
        let file = match fh.and_then(|fh| self.handles.get(&fh.0)) {
            Some(handle) => &handle.file,
            None => {
                opened = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(self.path(ino)?)?;
                &opened
            }
        };
        self.ledger.before_truncate(ino.0, file, size)?;
        file.set_len(size)?;
        Ok(())
    }

    fn rename(&mut self, from: &Path, to: &Path) -> Result<(), Errno> {
        fs::rename(self.backing.join(from), self.backing.join(to))?;
        // The replaced file is gone for good: renames are durable at once.
        self.remove(to);
        let moved: Vec<(u64, PathBuf)> = self
            .paths
            .iter()
            .filter_map(|(ino, p)| {
                let rest = p.strip_prefix(from).ok()?;
                Some((
                    *ino,
                    if rest.as_os_str().is_empty() {
                        to.to_path_buf()
                    } else {
                        to.join(rest)
                    },
                ))
            })
            .collect();
        for (ino, new) in moved {
            if let Some(old) = self.paths.insert(ino, new.clone()) {
                self.inodes.remove(&old);
            }
            self.inodes.insert(new, ino);
        }
        Ok(())
    }

    /// Roll every file back to what it had made durable.
    pub(super) fn power_cut(&mut self) -> io::Result<CutReport> {
        let mut report = CutReport::default();
        let mut inodes = self.ledger.inodes();
        inodes.sort_unstable();
        for ino in inodes {
            let Some(rel) = self.paths.get(&ino).cloned() else {
                self.ledger.forget(ino);
                continue;
            };
            let path = self.backing.join(&rel);
            let file = OpenOptions::new().read(true).write(true).open(&path)?;
            let size_bytes = file.metadata()?.len();
            match self.ledger.roll_back(ino, &file)? {
                None => {}
                Some(Rollback::Remove) => {
                    fs::remove_file(&path)?;
                    self.remove(&rel);
                    report.files.push(DroppedFile {
                        path: rel,
                        dropped_bytes: size_bytes,
                        removed: true,
                    });
                }
                Some(Rollback::Truncate { dropped_bytes, .. }) => {
                    report.files.push(DroppedFile {
                        path: rel,
                        dropped_bytes,
                        removed: false,
                    });
                }
            }
        }
        report.dropped_bytes = report.files.iter().map(|f| f.dropped_bytes).sum();
        self.stats.cuts += 1;
        Ok(report)
    }
}

impl PowerFilesystem {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic inside one request must not wedge every later one.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn attr(ino: u64, meta: &fs::Metadata) -> FileAttr {
    let time = |secs: i64, nanos: i64| {
        UNIX_EPOCH + Duration::new(secs.max(0) as u64, nanos.clamp(0, 999_999_999) as u32)
    };
    let kind = if meta.is_dir() {
        FileType::Directory
    } else if meta.file_type().is_symlink() {
        FileType::Symlink
    } else {
        FileType::RegularFile
    };
    FileAttr {
        ino: INodeNo(ino),
        size: meta.len(),
        blocks: meta.blocks(),
        atime: time(meta.atime(), meta.atime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        crtime: SystemTime::UNIX_EPOCH,
        kind,
        perm: (meta.mode() & 0o7777) as u16,
        nlink: meta.nlink() as u32,
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: meta.rdev() as u32,
        blksize: meta.blksize() as u32,
        flags: 0,
    }
}

/// Reply with `result`'s value or its errno.
macro_rules! reply {
    ($reply:expr, $result:expr, |$v:ident| $ok:expr) => {
        match $result {
            Ok($v) => $ok,
            Err(e) => $reply.error(e),
        }
    };
}

impl Filesystem for PowerFilesystem {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut state = self.lock();
        let result = state.child(parent, name).and_then(|rel| state.attr(&rel));
        reply!(reply, result, |attr| reply.entry(
            &TTL,
            &attr,
            Generation(0)
        ));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let mut state = self.lock();
        let result = state
            .paths
            .get(&ino.0)
            .cloned()
            .ok_or(Errno::ENOENT)
            .and_then(|rel| state.attr(&rel));
        reply!(reply, result, |attr| reply.attr(&TTL, &attr));
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut state = self.lock();
        let result = (|| {
            if let Some(mode) = mode {
                fs::set_permissions(state.path(ino)?, fs::Permissions::from_mode(mode & 0o7777))?;
            }
            if let Some(size) = size {
                state.truncate(ino, fh, size)?;
            }
            let rel = state.paths.get(&ino.0).cloned().ok_or(Errno::ENOENT)?;
            state.attr(&rel)
        })();
        reply!(reply, result, |attr| reply.attr(&TTL, &attr));
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut state = self.lock();
        let result = state.child(parent, name).and_then(|rel| {
            fs::DirBuilder::new()
                .mode(mode & !umask)
                .create(state.backing.join(&rel))?;
            state.attr(&rel)
        });
        reply!(reply, result, |attr| reply.entry(
            &TTL,
            &attr,
            Generation(0)
        ));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.lock();
        let result = state.child(parent, name).and_then(|rel| {
            fs::remove_file(state.backing.join(&rel))?;
            state.remove(&rel);
            Ok(())
        });
        reply!(reply, result, |_ok| reply.ok());
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.lock();
        let result = state.child(parent, name).and_then(|rel| {
            fs::remove_dir(state.backing.join(&rel))?;
            state.remove(&rel);
            Ok(())
        });
        reply!(reply, result, |_ok| reply.ok());
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !flags.is_empty() {
            return reply.error(Errno::EINVAL);
        }
        let mut state = self.lock();
        let result = state.child(parent, name).and_then(|from| {
            let to = state.child(newparent, newname)?;
            state.rename(&from, &to)
        });
        reply!(reply, result, |_ok| reply.ok());
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut state = self.lock();
        let result = (|| {
            let file = open_options(flags.acc_mode()).open(state.path(ino)?)?;
            if flags.0 & O_TRUNC != 0 {
                state.ledger.before_truncate(ino.0, &file, 0)?;
                file.set_len(0)?;
            }
            Ok::<_, Errno>(state.open_handle(ino.0, file, flags.0 & O_APPEND != 0))
        })();
        reply!(reply, result, |fh| reply
            .opened(fh, FopenFlags::FOPEN_DIRECT_IO));
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = self.lock();
        let result = (|| {
            let rel = state.child(parent, name)?;
            let path = state.backing.join(&rel);
            let existed = path.exists();
            let mut options = open_options(OpenFlags(flags).acc_mode());
            options.create(true).mode(mode & !umask);
            if flags & O_EXCL != 0 {
                options.create_new(true);
            }
            let file = options.open(&path)?;
            let attr = state.attr(&rel)?;
            if !existed {
                state.ledger.created(attr.ino.0);
            } else if flags & O_TRUNC != 0 {
                state.ledger.before_truncate(attr.ino.0, &file, 0)?;
                file.set_len(0)?;
            }
            let fh = state.open_handle(attr.ino.0, file, flags & O_APPEND != 0);
            Ok::<_, Errno>((attr, fh))
        })();
        reply!(reply, result, |ok| reply.created(
            &TTL,
            &ok.0,
            Generation(0),
            ok.1,
            FopenFlags::FOPEN_DIRECT_IO
        ));
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let state = self.lock();
        let result = (|| {
            let handle = state.handles.get(&fh.0).ok_or(Errno::EBADF)?;
            let mut buf = vec![0; size as usize];
            let mut filled = 0;
            while filled < buf.len() {
                match handle
                    .file
                    .read_at(&mut buf[filled..], offset + filled as u64)?
                {
                    0 => break,
                    n => filled += n,
                }
            }
            buf.truncate(filled);
            Ok::<_, Errno>(buf)
        })();
        reply!(reply, result, |data| reply.data(&data));
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let result = self.lock().write(fh, offset, data);
        reply!(reply, result, |n| reply.written(n));
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.lock().handles.remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let result = self.lock().fsync(fh, datasync);
        reply!(reply, result, |_ok| reply.ok());
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let mut state = self.lock();
        let result = (|| {
            let rel = state.paths.get(&ino.0).cloned().ok_or(Errno::ENOENT)?;
            let mut entries = vec![
                (ino.0, FileType::Directory, ".".into()),
                (ino.0, FileType::Directory, "..".into()),
            ];
            let mut names: Vec<_> =
                fs::read_dir(state.backing.join(&rel))?.collect::<io::Result<_>>()?;
            names.sort_by_key(|e| e.file_name());
            for entry in names {
                let child = rel.join(entry.file_name());
                let kind = if entry.file_type()?.is_dir() {
                    FileType::Directory
                } else {
                    FileType::RegularFile
                };
                entries.push((state.inode(&child), kind, entry.file_name()));
            }
            Ok::<_, Errno>(entries)
        })();
        match result {
            Ok(entries) => {
                for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize)
                {
                    if reply.add(INodeNo(ino), i as u64 + 1, kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let result = self.lock().fsyncdir(ino);
        reply!(reply, result, |_ok| reply.ok());
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // Plenty of room: std has no safe statvfs, and Redis only needs a number.
        reply.statfs(1 << 30, 1 << 29, 1 << 29, 1 << 20, 1 << 19, 4096, 255, 4096);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }
}

/// The backing file's open options for a FUSE open's flags (without
/// `O_APPEND`, see [`State::write`]).
fn open_options(mode: OpenAccMode) -> OpenOptions {
    let mut options = OpenOptions::new();
    match mode {
        OpenAccMode::O_RDONLY => options.read(true),
        OpenAccMode::O_WRONLY => options.write(true),
        OpenAccMode::O_RDWR => options.read(true).write(true),
    };
    // Reading back what to undo needs read access even on a write-only open.
    options.read(true);
    options
}
