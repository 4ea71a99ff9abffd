//! The model of a disk behind a volatile cache: the files and directories as programs see them,
//! and, beside each, what a power failure would leave of it.
//!
//! A file keeps its current bytes and its durable bytes; `fsync`/`fdatasync` makes the current
//! ones durable (a write or truncate not yet synced is lost at a cut, whole). A directory keeps
//! its current entries and its durable entries; fsyncing the directory makes its current entries
//! durable, so a create, rename or unlink survives a cut only once its directory was fsynced
//! (the conservative POSIX reading that ALICE, OSDI '14, and Jepsen's LazyFS test against). What
//! survives is the tree reached from the root through durable entries, each file with its durable
//! bytes: [`Tree::write_durable`] lays exactly that into the backing directory.
//!
//! Errors are errno values: the filesystem answers them as they are.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::path::Path;
use std::time::SystemTime;

pub type Errno = i32;
pub type Ino = u64;
pub const ROOT: Ino = 1;

pub struct FileBody {
    pub data: Vec<u8>,
    pub durable: Vec<u8>,
    /// The byte range `[lo, hi)` that may differ between `data` and `durable` (lengths included).
    dirty: Option<(u64, u64)>,
}

pub struct DirBody {
    pub entries: BTreeMap<OsString, Ino>,
    pub durable: BTreeMap<OsString, Ino>,
}

pub enum Body {
    File(FileBody),
    Dir(DirBody),
}

pub struct Node {
    pub body: Body,
    pub perm: u16,
    pub mtime: SystemTime,
    /// Current names of this node.
    pub links: u32,
    /// Open handles on it.
    pub open: u32,
}

impl Node {
    fn file(perm: u16, data: Vec<u8>, links: u32) -> Node {
        let body = FileBody { durable: data.clone(), data, dirty: None };
        Node { body: Body::File(body), perm, mtime: SystemTime::now(), links, open: 0 }
    }

    fn dir(perm: u16, links: u32) -> Node {
        let body = DirBody { entries: BTreeMap::new(), durable: BTreeMap::new() };
        Node { body: Body::Dir(body), perm, mtime: SystemTime::now(), links, open: 0 }
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.body, Body::Dir(_))
    }

    /// The current size: a file's length, a directory's entry count.
    pub fn size(&self) -> u64 {
        match &self.body {
            Body::File(f) => f.data.len() as u64,
            Body::Dir(d) => d.entries.len() as u64,
        }
    }
}

/// Every node, by inode number. Nodes are never reused while mounted: the kernel may still
/// name an unlinked one, and a durable entry may still point at it.
pub struct Tree {
    nodes: HashMap<Ino, Node>,
    next: Ino,
}

fn union(dirty: Option<(u64, u64)>, lo: u64, hi: u64) -> Option<(u64, u64)> {
    if lo >= hi {
        return dirty;
    }
    Some(match dirty {
        Some((a, b)) => (a.min(lo), b.max(hi)),
        None => (lo, hi),
    })
}

impl Tree {
    /// An empty tree: just the root directory.
    pub fn new() -> Tree {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node::dir(0o755, 1));
        Tree { nodes, next: ROOT + 1 }
    }

    /// The tree held by `backing` (regular files and directories; anything else is skipped),
    /// all of it durable.
    pub fn load(backing: &Path) -> io::Result<Tree> {
        let mut tree = Tree::new();
        tree.load_dir(backing, ROOT)?;
        Ok(tree)
    }

    fn load_dir(&mut self, path: &Path, dir: Ino) -> io::Result<()> {
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let ino = if kind.is_dir() {
                let ino = self.add(Node::dir(0o755, 1));
                self.load_dir(&entry.path(), ino)?;
                ino
            } else if kind.is_file() {
                self.add(Node::file(0o644, fs::read(entry.path())?, 1))
            } else {
                eprintln!("powercut: skipping {} (neither a file nor a directory)", entry.path().display());
                continue;
            };
            if let Some(Body::Dir(d)) = self.nodes.get_mut(&dir).map(|n| &mut n.body) {
                d.entries.insert(entry.file_name(), ino);
                d.durable.insert(entry.file_name(), ino);
            }
        }
        Ok(())
    }

    fn add(&mut self, node: Node) -> Ino {
        let ino = self.next;
        self.next += 1;
        self.nodes.insert(ino, node);
        ino
    }

    pub fn node(&self, ino: Ino) -> Result<&Node, Errno> {
        self.nodes.get(&ino).ok_or(libc::ENOENT)
    }

    pub fn node_mut(&mut self, ino: Ino) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&ino).ok_or(libc::ENOENT)
    }

    fn dir(&self, ino: Ino) -> Result<&DirBody, Errno> {
        match &self.node(ino)?.body {
            Body::Dir(d) => Ok(d),
            Body::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut DirBody, Errno> {
        match &mut self.node_mut(ino)?.body {
            Body::Dir(d) => Ok(d),
            Body::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn file_mut(&mut self, ino: Ino) -> Result<&mut FileBody, Errno> {
        match &mut self.node_mut(ino)?.body {
            Body::File(f) => Ok(f),
            Body::Dir(_) => Err(libc::EISDIR),
        }
    }

    pub fn lookup(&self, parent: Ino, name: &OsStr) -> Result<Ino, Errno> {
        self.dir(parent)?.entries.get(name).copied().ok_or(libc::ENOENT)
    }

    /// A directory's current entries, in name order.
    pub fn entries(&self, dir: Ino) -> Result<Vec<(OsString, Ino)>, Errno> {
        Ok(self.dir(dir)?.entries.iter().map(|(name, &ino)| (name.clone(), ino)).collect())
    }

    /// The node at `path` (relative to the root, `/`-separated), through current entries.
    pub fn resolve(&self, path: &str) -> Result<Ino, Errno> {
        path.split('/').filter(|part| !part.is_empty()).try_fold(ROOT, |at, part| self.lookup(at, OsStr::new(part)))
    }

    /// Adds `name` in `parent`: a new empty file, or a new directory.
    pub fn create(&mut self, parent: Ino, name: &OsStr, perm: u16, dir: bool) -> Result<Ino, Errno> {
        if self.dir(parent)?.entries.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let ino = self.add(if dir { Node::dir(perm, 1) } else { Node::file(perm, Vec::new(), 1) });
        self.dir_mut(parent)?.entries.insert(name.to_owned(), ino);
        self.touch(parent);
        Ok(ino)
    }

    /// Removes the name `name` from `parent`: a file (`dir` false) or an empty directory.
    pub fn remove(&mut self, parent: Ino, name: &OsStr, dir: bool) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        let node = self.node(ino)?;
        match (&node.body, dir) {
            (Body::Dir(_), false) => return Err(libc::EISDIR),
            (Body::File(_), true) => return Err(libc::ENOTDIR),
            (Body::Dir(d), true) if !d.entries.is_empty() => return Err(libc::ENOTEMPTY),
            _ => {}
        }
        self.dir_mut(parent)?.entries.remove(name);
        self.touch(parent);
        self.unlinked(ino);
        Ok(())
    }

    /// `rename(2)`: `noreplace` is `RENAME_NOREPLACE`.
    pub fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        to_parent: Ino,
        to_name: &OsStr,
        noreplace: bool,
    ) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        self.dir(to_parent)?;
        if let Ok(old) = self.lookup(to_parent, to_name) {
            if old == ino {
                return Ok(());
            }
            if noreplace {
                return Err(libc::EEXIST);
            }
            let (moving, target) = (self.node(ino)?, self.node(old)?);
            match (moving.is_dir(), target.is_dir()) {
                (true, false) => return Err(libc::ENOTDIR),
                (false, true) => return Err(libc::EISDIR),
                (true, true) if target.size() > 0 => return Err(libc::ENOTEMPTY),
                _ => {}
            }
            self.unlinked(old);
        }
        self.dir_mut(parent)?.entries.remove(name);
        self.dir_mut(to_parent)?.entries.insert(to_name.to_owned(), ino);
        self.touch(parent);
        self.touch(to_parent);
        Ok(())
    }

    fn touch(&mut self, ino: Ino) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.mtime = SystemTime::now();
        }
    }

    /// One name of `ino` is gone; with no name and no handle left, its current bytes are dropped
    /// (a durable entry elsewhere may still need its durable ones).
    fn unlinked(&mut self, ino: Ino) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.links = node.links.saturating_sub(1);
            self.drop_if_unused(ino);
        }
    }

    fn drop_if_unused(&mut self, ino: Ino) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            if let (0, 0, Body::File(f)) = (node.links, node.open, &mut node.body) {
                f.data = Vec::new();
                f.dirty = None;
            }
        }
    }

    pub fn opened(&mut self, ino: Ino) -> Result<(), Errno> {
        self.node_mut(ino)?.open += 1;
        Ok(())
    }

    pub fn released(&mut self, ino: Ino) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.open = node.open.saturating_sub(1);
            self.drop_if_unused(ino);
        }
    }

    pub fn read(&self, ino: Ino, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        match &self.node(ino)?.body {
            Body::File(f) => {
                let start = (offset as usize).min(f.data.len());
                let end = start.saturating_add(size as usize).min(f.data.len());
                Ok(f.data[start..end].to_vec())
            }
            Body::Dir(_) => Err(libc::EISDIR),
        }
    }

    pub fn write(&mut self, ino: Ino, offset: u64, bytes: &[u8]) -> Result<(), Errno> {
        let end = offset.checked_add(bytes.len() as u64).ok_or(libc::EFBIG)?;
        let file = self.file_mut(ino)?;
        let len = file.data.len() as u64;
        if end > len {
            file.data.resize(end as usize, 0);
        }
        file.data[offset as usize..end as usize].copy_from_slice(bytes);
        file.dirty = union(file.dirty, offset.min(len), end);
        self.touch(ino);
        Ok(())
    }

    pub fn set_len(&mut self, ino: Ino, len: u64) -> Result<(), Errno> {
        let file = self.file_mut(ino)?;
        let old = file.data.len() as u64;
        file.data.resize(usize::try_from(len).map_err(|_| libc::EFBIG)?, 0);
        file.dirty = union(file.dirty, old.min(len), old.max(len));
        self.touch(ino);
        Ok(())
    }

    /// `fsync`/`fdatasync` of a file: its current bytes become durable.
    pub fn sync_file(&mut self, ino: Ino) -> Result<(), Errno> {
        let file = self.file_mut(ino)?;
        if let Some((lo, hi)) = file.dirty.take() {
            let len = file.data.len();
            file.durable.resize(len, 0);
            let (lo, hi) = ((lo as usize).min(len), (hi as usize).min(len));
            file.durable[lo..hi].copy_from_slice(&file.data[lo..hi]);
        }
        Ok(())
    }

    /// A failed fsync: like Linux after a writeback error, the unsynced bytes are no longer
    /// dirty, so a later fsync succeeds without making them durable ("fsyncgate").
    pub fn forget_unsynced(&mut self, ino: Ino) -> Result<(), Errno> {
        self.file_mut(ino)?.dirty = None;
        Ok(())
    }

    /// `fsync` of a directory: its current entries become durable.
    pub fn sync_dir(&mut self, ino: Ino) -> Result<(), Errno> {
        let dir = self.dir_mut(ino)?;
        dir.durable = dir.entries.clone();
        Ok(())
    }

    /// `sync(2)`: everything becomes durable.
    pub fn sync_all(&mut self) {
        let inos: Vec<Ino> = self.nodes.keys().copied().collect();
        for ino in inos {
            let _ = self.sync_file(ino).or_else(|_| self.sync_dir(ino));
        }
    }

    /// The bytes of every file that still has a name or a handle.
    pub fn used_bytes(&self) -> u64 {
        let live = self.nodes.values().filter(|n| n.links > 0 || n.open > 0);
        live.filter(|n| !n.is_dir()).map(Node::size).sum()
    }

    /// Replaces the contents of `backing` with the durable tree: what the disk holds after a power
    /// failure. A directory reached twice (a rename durable in both parents) is written twice; a
    /// cycle is cut.
    pub fn write_durable(&self, backing: &Path) -> io::Result<()> {
        for entry in fs::read_dir(backing)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                fs::remove_dir_all(entry.path())?;
            } else {
                fs::remove_file(entry.path())?;
            }
        }
        self.write_dir(ROOT, backing, &mut HashSet::new())
    }

    fn write_dir(&self, ino: Ino, path: &Path, above: &mut HashSet<Ino>) -> io::Result<()> {
        let Some(Node { body: Body::Dir(dir), .. }) = self.nodes.get(&ino) else {
            return Ok(());
        };
        above.insert(ino);
        for (name, child) in &dir.durable {
            let at = path.join(name);
            match self.nodes.get(child).map(|n| &n.body) {
                Some(Body::File(f)) => fs::write(&at, &f.durable)?,
                Some(Body::Dir(_)) if !above.contains(child) => {
                    fs::create_dir(&at)?;
                    self.write_dir(*child, &at, above)?;
                }
                _ => {}
            }
        }
        above.remove(&ino);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(tree: &Tree) -> (tempfile_dir::Dir, Tree) {
        let dir = tempfile_dir::Dir::new();
        tree.write_durable(dir.path()).expect("write the durable tree");
        let after = Tree::load(dir.path()).expect("load it back");
        (dir, after)
    }

    fn content(tree: &Tree, path: &str) -> Option<Vec<u8>> {
        let ino = tree.resolve(path).ok()?;
        tree.read(ino, 0, u32::MAX).ok()
    }

    #[test]
    fn unsynced_writes_and_sizes_are_lost_synced_ones_kept() {
        let mut tree = Tree::new();
        let f = tree.create(ROOT, OsStr::new("f"), 0o644, false).expect("create");
        tree.sync_dir(ROOT).expect("sync root");
        tree.write(f, 0, b"hello").expect("write");
        tree.sync_file(f).expect("sync");
        tree.write(f, 5, b" world").expect("write");
        tree.write(f, 0, b"J").expect("write");
        assert_eq!(content(&cut(&tree).1, "f").as_deref(), Some(&b"hello"[..]));
        tree.sync_file(f).expect("sync");
        tree.set_len(f, 2).expect("truncate");
        assert_eq!(content(&cut(&tree).1, "f").as_deref(), Some(&b"Jello world"[..]));
        tree.write(f, 4, b"!").expect("write past a hole");
        tree.sync_file(f).expect("sync");
        assert_eq!(content(&cut(&tree).1, "f").as_deref(), Some(&b"Je\0\0!"[..]));
    }

    #[test]
    fn entries_are_durable_only_once_their_directory_is_synced() {
        let mut tree = Tree::new();
        let d = tree.create(ROOT, OsStr::new("d"), 0o755, true).expect("mkdir");
        let f = tree.create(d, OsStr::new("f"), 0o644, false).expect("create");
        tree.write(f, 0, b"x").expect("write");
        tree.sync_file(f).expect("sync");
        tree.sync_dir(d).expect("sync d");
        assert!(cut(&tree).1.resolve("d").is_err(), "d was never made durable in the root");
        tree.sync_dir(ROOT).expect("sync root");
        assert_eq!(content(&cut(&tree).1, "d/f").as_deref(), Some(&b"x"[..]));

        let tmp = tree.create(d, OsStr::new("tmp"), 0o644, false).expect("create");
        tree.write(tmp, 0, b"new").expect("write");
        tree.sync_file(tmp).expect("sync");
        tree.rename(d, OsStr::new("tmp"), d, OsStr::new("f"), false).expect("rename");
        assert_eq!(content(&cut(&tree).1, "d/f").as_deref(), Some(&b"x"[..]), "rename not yet durable");
        tree.sync_dir(d).expect("sync d");
        let (_dir, after) = cut(&tree);
        assert_eq!(content(&after, "d/f").as_deref(), Some(&b"new"[..]));
        assert!(after.resolve("d/tmp").is_err());

        tree.remove(d, OsStr::new("f"), false).expect("unlink");
        assert_eq!(content(&cut(&tree).1, "d/f").as_deref(), Some(&b"new"[..]), "unlink not yet durable");
        tree.sync_dir(d).expect("sync d");
        assert!(cut(&tree).1.resolve("d/f").is_err());
    }

    #[test]
    fn a_failed_fsync_leaves_the_unsynced_bytes_behind_for_good() {
        let mut tree = Tree::new();
        let f = tree.create(ROOT, OsStr::new("f"), 0o644, false).expect("create");
        tree.sync_dir(ROOT).expect("sync root");
        tree.write(f, 0, b"lost").expect("write");
        tree.forget_unsynced(f).expect("a failed fsync");
        tree.sync_file(f).expect("a later fsync");
        assert_eq!(content(&cut(&tree).1, "f").as_deref(), Some(&b""[..]));
    }

    /// A temporary directory, removed on drop (no dependency for one test helper).
    mod tempfile_dir {
        use std::path::{Path, PathBuf};
        use std::sync::atomic::{AtomicU32, Ordering};

        pub struct Dir(PathBuf);

        impl Dir {
            pub fn new() -> Dir {
                static NEXT: AtomicU32 = AtomicU32::new(0);
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                let path = std::env::temp_dir().join(format!("powercut-test-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&path).expect("create a temp dir");
                Dir(path)
            }

            pub fn path(&self) -> &Path {
                &self.0
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
