//! What each file has made durable, and how a power cut rolls it back
//! (`docs/faults.md, "Power loss"`). Writes go to the backing file at once;
//! this ledger remembers, per inode written since its last fsync, the
//! durable length and the bytes of the durable region that were overwritten
//! (or truncated away) since, so a cut can put them back. Inodes absent from
//! the ledger are durable as they are.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The durable state of one file written since its last fsync.
#[derive(Debug, Default)]
struct Pending {
    /// The length at the last fsync; `None`: created since, and neither it
    /// nor its directory fsynced, so a cut removes it.
    durable_len: Option<u64>,
    /// Old contents of durable bytes overwritten since, oldest first:
    /// a cut writes them back newest first, so the oldest (the durable) wins.
    undo: Vec<(u64, Vec<u8>)>,
}

/// What a cut does to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollback {
    /// Never fsynced since it was created: remove it.
    Remove,
    /// Undo the overwrites and truncate to `durable_len`; `dropped_bytes`
    /// of the current length go.
    Truncate {
        durable_len: u64,
        dropped_bytes: u64,
    },
}

/// Per inode, what is not yet durable.
#[derive(Debug, Default)]
pub struct Ledger {
    pending: HashMap<u64, Pending>,
}

impl Ledger {
    /// A file was created: nothing of it (not even its name) is durable.
    pub fn created(&mut self, ino: u64) {
        self.pending.insert(ino, Pending::default());
    }

    /// Before writing `len` bytes at `offset` of `file` (inode `ino`): save
    /// the durable bytes the write will overwrite.
    pub fn before_write(&mut self, ino: u64, file: &File, offset: u64, len: u64) -> io::Result<()> {
        let pending = self.entry(ino, file)?;
        let Some(durable_len) = pending.durable_len else {
            return Ok(());
        };
        // Durable bytes past the current end were saved by the truncate
        // that cut them off.
        let end = (offset + len).min(durable_len).min(file.metadata()?.len());
        if offset < end {
            let mut old = vec![0; (end - offset) as usize];
            file.read_exact_at(&mut old, offset)?;
            pending.undo.push((offset, old));
        }
        Ok(())
    }

    /// Before truncating `file` to `size`: save the durable bytes cut off.
    pub fn before_truncate(&mut self, ino: u64, file: &File, size: u64) -> io::Result<()> {
        let current = file.metadata()?.len();
        if size < current {
            self.before_write(ino, file, size, current - size)?;
        }
        Ok(())
    }

    /// fsync/fdatasync: the file's current contents are durable.
    pub fn synced(&mut self, ino: u64) {
        self.pending.remove(&ino);
    }

    /// Its directory was fsynced: a file created since keeps its name (and
    /// nothing of its contents unless it too is fsynced) through a cut.
    pub fn name_synced(&mut self, ino: u64) {
        if let Some(pending) = self.pending.get_mut(&ino) {
            pending.durable_len.get_or_insert(0);
        }
    }

    /// The file is gone (unlinked, or replaced by a rename): nothing to roll back.
    pub fn forget(&mut self, ino: u64) {
        self.pending.remove(&ino);
    }

    /// Inodes with something to roll back.
    pub fn inodes(&self) -> Vec<u64> {
        self.pending.keys().copied().collect()
    }

    /// Roll `file` (inode `ino`) back to its durable state and forget it.
    /// `None` when the inode had nothing pending.
    pub fn roll_back(&mut self, ino: u64, file: &File) -> io::Result<Option<Rollback>> {
        let Some(pending) = self.pending.remove(&ino) else {
            return Ok(None);
        };
        let Some(durable_len) = pending.durable_len else {
            return Ok(Some(Rollback::Remove));
        };
        let current = file.metadata()?.len();
        for (offset, old) in pending.undo.iter().rev() {
            file.write_all_at(old, *offset)?;
        }
        file.set_len(durable_len)?;
        Ok(Some(Rollback::Truncate {
            durable_len,
            dropped_bytes: current.saturating_sub(durable_len),
        }))
    }

    fn entry(&mut self, ino: u64, file: &File) -> io::Result<&mut Pending> {
        Ok(match self.pending.entry(ino) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(Pending {
                durable_len: Some(file.metadata()?.len()),
                undo: Vec::new(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), bytes).unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(tmp.path())
            .unwrap();
        (tmp, f)
    }

    fn contents(tmp: &tempfile::NamedTempFile) -> Vec<u8> {
        std::fs::read(tmp.path()).unwrap()
    }

    #[test]
    fn overwrites_appends_and_truncates_roll_back_to_the_durable_bytes() {
        let (tmp, f) = file(b"abcdef");
        let mut ledger = Ledger::default();
        ledger.before_write(1, &f, 4, 4).unwrap();
        f.write_all_at(b"XXXX", 4).unwrap(); // abcdXXXX
        ledger.before_write(1, &f, 1, 2).unwrap();
        f.write_all_at(b"YY", 1).unwrap(); // aYYdXXXX
        ledger.before_truncate(1, &f, 2).unwrap();
        f.set_len(2).unwrap(); // aY
        ledger.before_write(1, &f, 2, 1).unwrap();
        f.write_all_at(b"Z", 2).unwrap(); // aYZ
        let rollback = ledger.roll_back(1, &f).unwrap();
        assert_eq!(contents(&tmp), b"abcdef");
        assert_eq!(
            rollback,
            Some(Rollback::Truncate {
                durable_len: 6,
                dropped_bytes: 0
            })
        );
        assert_eq!(
            ledger.roll_back(1, &f).unwrap(),
            None,
            "forgotten after the cut"
        );
    }

    #[test]
    fn a_synced_file_keeps_everything_and_a_new_one_is_removed() {
        let (tmp, f) = file(b"ab");
        let mut ledger = Ledger::default();
        ledger.before_write(1, &f, 2, 2).unwrap();
        f.write_all_at(b"cd", 2).unwrap();
        ledger.synced(1);
        ledger.before_write(1, &f, 4, 1).unwrap();
        f.write_all_at(b"e", 4).unwrap();
        assert_eq!(
            ledger.roll_back(1, &f).unwrap(),
            Some(Rollback::Truncate {
                durable_len: 4,
                dropped_bytes: 1
            })
        );
        assert_eq!(contents(&tmp), b"abcd");
        ledger.created(2);
        assert_eq!(ledger.roll_back(2, &f).unwrap(), Some(Rollback::Remove));
        // A directory fsync keeps a new file's name, not its contents.
        ledger.created(3);
        ledger.name_synced(3);
        assert_eq!(
            ledger.roll_back(3, &f).unwrap(),
            Some(Rollback::Truncate {
                durable_len: 0,
                dropped_bytes: 4
            })
        );
        assert_eq!(contents(&tmp), b"");
    }
}
