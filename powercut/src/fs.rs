//! The FUSE side: each kernel request becomes an operation on the [`Tree`], under one lock
//! shared with the control commands, so a cut falls between two operations, never inside one.
//!
//! Files are opened with direct I/O, so every read and write reaches this process (nothing is
//! served from or held in the kernel's page cache), and attributes are never cached. Once frozen
//! (after a cut), every request fails with EIO.

use std::ffi::OsStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::faults::Faults;
use crate::tree::{self, Ino, Node, Tree};

/// Nothing is cached by the kernel: each lookup and stat asks again.
const TTL: Duration = Duration::ZERO;
const BLOCK: u64 = 4096;

/// Everything the filesystem and the control commands share.
pub struct State {
    pub tree: Tree,
    pub faults: Faults,
    pub frozen: bool,
    pub file_fsyncs: u64,
    pub dir_fsyncs: u64,
    pub failed_fsyncs: u64,
}

pub type Shared = Arc<Mutex<State>>;

pub fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct PowerFs {
    pub state: Shared,
    /// Owner of every file: whoever owns the backing directory.
    pub uid: u32,
    pub gid: u32,
}

fn errno(e: tree::Errno) -> Errno {
    Errno::from_i32(e)
}

impl PowerFs {
    /// Runs `op` on the state unless frozen.
    fn with<T>(&self, op: impl FnOnce(&mut State) -> Result<T, tree::Errno>) -> Result<T, Errno> {
        let mut state = lock(&self.state);
        if state.frozen {
            return Err(Errno::EIO);
        }
        op(&mut state).map_err(errno)
    }

    fn attr(&self, ino: Ino, node: &Node) -> FileAttr {
        let size = node.size();
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: node.mtime,
            mtime: node.mtime,
            ctime: node.mtime,
            crtime: node.mtime,
            kind: if node.is_dir() { FileType::Directory } else { FileType::RegularFile },
            perm: node.perm,
            nlink: node.links.max(1),
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: BLOCK as u32,
            flags: 0,
        }
    }

    fn attr_of(&self, tree: &Tree, ino: Ino) -> Result<FileAttr, tree::Errno> {
        Ok(self.attr(ino, tree.node(ino)?))
    }

    /// Grows or shrinks a file, if the disk has room.
    fn resize(state: &mut State, ino: Ino, len: u64) -> Result<(), tree::Errno> {
        let growth = len.saturating_sub(state.tree.node(ino)?.size());
        if !state.faults.has_room(state.tree.used_bytes(), growth) {
            return Err(libc::ENOSPC);
        }
        state.tree.set_len(ino, len)
    }

    fn make(&self, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, dir: bool) -> Result<FileAttr, Errno> {
        self.with(|s| {
            let ino = s.tree.create(parent.0, name, (mode & !umask & 0o7777) as u16, dir)?;
            self.attr_of(&s.tree, ino)
        })
    }
}

impl Filesystem for PowerFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.with(|s| s.tree.lookup(parent.0, name).and_then(|ino| self.attr_of(&s.tree, ino))) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.with(|s| self.attr_of(&s.tree, ino.0)) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
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
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let done = self.with(|s| {
            if let Some(len) = size {
                Self::resize(s, ino.0, len)?;
            }
            let node = s.tree.node_mut(ino.0)?;
            if let Some(mode) = mode {
                node.perm = (mode & 0o7777) as u16;
            }
            match mtime {
                Some(TimeOrNow::SpecificTime(t)) => node.mtime = t,
                Some(TimeOrNow::Now) => node.mtime = SystemTime::now(),
                None => {}
            }
            self.attr_of(&s.tree, ino.0)
        });
        match done {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(Errno::EPERM);
        }
        match self.make(parent, name, mode, umask, false) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        match self.make(parent, name, mode, umask, true) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.with(|s| s.tree.remove(parent.0, name, false)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.with(|s| s.tree.remove(parent.0, name, true)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
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
        let bits = flags.bits();
        if bits & !libc::RENAME_NOREPLACE != 0 {
            return reply.error(Errno::EINVAL);
        }
        let noreplace = bits & libc::RENAME_NOREPLACE != 0;
        match self.with(|s| s.tree.rename(parent.0, name, newparent.0, newname, noreplace)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let done = self.with(|s| {
            if flags.0 & libc::O_TRUNC != 0 && flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
                Self::resize(s, ino.0, 0)?;
            }
            s.tree.opened(ino.0)
        });
        match done {
            Ok(()) => reply.opened(FileHandle(ino.0), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
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
        let done = self.with(|s| {
            let ino = match s.tree.lookup(parent.0, name) {
                Ok(_) if flags & libc::O_EXCL != 0 => return Err(libc::EEXIST),
                Ok(ino) => {
                    if flags & libc::O_TRUNC != 0 {
                        Self::resize(s, ino, 0)?;
                    }
                    ino
                }
                Err(_) => s.tree.create(parent.0, name, (mode & !umask & 0o7777) as u16, false)?,
            };
            s.tree.opened(ino)?;
            self.attr_of(&s.tree, ino)
        });
        match done {
            Ok(attr) => reply.created(&TTL, &attr, Generation(0), FileHandle(attr.ino.0), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let done = self.with(|s| {
            let mut buf = s.tree.read(ino.0, offset, size)?;
            s.faults.flip(ino.0, offset, &mut buf);
            Ok(buf)
        });
        match done {
            Ok(buf) => reply.data(&buf),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let done = self.with(|s| {
            let growth = (offset + data.len() as u64).saturating_sub(s.tree.node(ino.0)?.size());
            if !s.faults.has_room(s.tree.used_bytes(), growth) {
                return Err(libc::ENOSPC);
            }
            s.tree.write(ino.0, offset, data)
        });
        match done {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        // close(2) is not a durability point.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        lock(&self.state).tree.released(ino.0);
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let done = self.with(|s| {
            if s.faults.fsync_fails(ino.0) {
                s.failed_fsyncs += 1;
                s.tree.forget_unsynced(ino.0)?;
                return Err(libc::EIO);
            }
            s.file_fsyncs += 1;
            s.tree.sync_file(ino.0)
        });
        match done {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let listed = self.with(|s| {
            let mut all = vec![(ino.0, FileType::Directory, ".".into()), (ino.0, FileType::Directory, "..".into())];
            for (name, child) in s.tree.entries(ino.0)? {
                let kind = if s.tree.node(child)?.is_dir() { FileType::Directory } else { FileType::RegularFile };
                all.push((child, kind, name));
            }
            Ok(all)
        });
        match listed {
            Ok(all) => {
                for (i, (child, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(child), i as u64 + 1, kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let done = self.with(|s| {
            s.dir_fsyncs += 1;
            s.tree.sync_dir(ino.0)
        });
        match done {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let state = lock(&self.state);
        let total = state.faults.space.unwrap_or(1 << 40) / BLOCK;
        let free = total.saturating_sub(state.tree.used_bytes().div_ceil(BLOCK));
        reply.statfs(total, free, free, 1 << 20, 1 << 20, BLOCK as u32, 255, BLOCK as u32);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        if mode != 0 {
            return reply.error(Errno::EOPNOTSUPP);
        }
        let done = self.with(|s| {
            let end = offset.saturating_add(length);
            if end > s.tree.node(ino.0)?.size() {
                Self::resize(s, ino.0, end)?;
            }
            Ok(())
        });
        match done {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}
