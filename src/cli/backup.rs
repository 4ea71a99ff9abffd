//! `chatd backup --out DIR`: a running server's `GET /admin/backup` (a tar), written out as a
//! data dir: each file fsynced, then the directories. DIR must be empty or missing. The copy is
//! whole only if the stream ended with its manifest (`chatd-backup.json`), which is checked.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use actix_web::web::Bytes;
use clap::Args;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::output::{client_error, Failure};
use super::Target;
use crate::store::backup::{Manifest, MANIFEST};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The directory to write the copy into (created if missing; must be empty).
    #[arg(long)]
    pub out: PathBuf,
    /// The server's `auth.admin_key` (not needed on loopback; else taken from --config, then --token).
    #[arg(long = "admin_key", env = "CHATD_ADMIN_KEY")]
    pub admin_key: Option<String>,
}

/// How long the server may take to start the stream, and then between two chunks of it.
const STALL: Duration = Duration::from_secs(90);

/// Runs the backup; answers what was written.
pub async fn run(target: &Target, args: &BackupArgs, config_key: Option<String>) -> Result<Value, Failure> {
    prepare(&args.out)?;
    let url = format!("{}/admin/backup", target.url.trim_end_matches('/'));
    let mut request = awc::Client::builder().timeout(STALL).finish().get(&url);
    let key = args.admin_key.clone().or(config_key).or_else(|| target.token.clone());
    if let Some(key) = key.filter(|k| !k.is_empty()) {
        request = request.insert_header(("authorization", format!("Bearer {key}")));
    }
    let mut response =
        request.send().await.map_err(|e| client_error("Unreachable", &format!("could not reach {url}: {e}")))?;
    if !response.status().is_success() {
        let bytes = response.body().limit(1 << 20).await.unwrap_or_default();
        return Err(match serde_json::from_slice::<Value>(&bytes) {
            Ok(error) => Failure(error),
            Err(_) => client_error("BadResponse", &format!("{url} answered {}", response.status())),
        });
    }
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let out = args.out.clone();
    let writer = tokio::task::spawn_blocking(move || unpack(&out, ChunkReader { rx, chunk: Bytes::new() }));
    let mut received = Ok(());
    loop {
        match tokio::time::timeout(STALL, response.next()).await {
            Ok(Some(Ok(chunk))) => {
                if tx.send(chunk).await.is_err() {
                    break; // the writer stopped: its error says why
                }
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                received = Err(format!("the backup stream broke off: {e}"));
                break;
            }
            Err(_) => {
                received = Err(format!("the backup stream stalled for {} s", STALL.as_secs()));
                break;
            }
        }
    }
    drop(tx);
    let written = writer.await.map_err(|e| client_error("Failed", &format!("the writer failed: {e}")))?;
    let failed =
        |why: String| client_error("Failed", &format!("{why}; {} holds an incomplete copy", args.out.display()));
    received.map_err(failed)?;
    let manifest = written.map_err(failed)?;
    Ok(json!({ "out": args.out, "end": manifest.end, "files": manifest.files, "bytes": manifest.bytes }))
}

/// Creates `out` if missing; refuses it if it holds anything.
fn prepare(out: &Path) -> Result<(), Failure> {
    let refuse = |why: String| client_error("BadRequest", &why);
    match fs::read_dir(out) {
        Ok(entries) => match entries.count() {
            0 => Ok(()),
            _ => Err(refuse(format!("{} is not empty: a backup goes into an empty or new directory", out.display()))),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(out).map_err(|e| refuse(format!("cannot create {}: {e}", out.display())))
        }
        Err(e) => Err(refuse(format!("cannot read {}: {e}", out.display()))),
    }
}

/// The response's chunks as one reader.
struct ChunkReader {
    rx: mpsc::Receiver<Bytes>,
    chunk: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.chunk = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        Ok(n)
    }
}

/// Writes the tar's entries under `out` (only `snap/*`, `wal/*` and the manifest, nothing
/// outside), fsyncing each file and then the directories. Answers the manifest. Blocking.
fn unpack(out: &Path, reader: impl Read) -> Result<Manifest, String> {
    let mut archive = tar::Archive::new(reader);
    let (mut files, mut bytes, mut manifest) = (0u64, 0u64, None);
    for entry in archive.entries().map_err(|e| format!("not a backup: {e}"))? {
        let mut entry = entry.map_err(|e| format!("the backup is damaged: {e}"))?;
        let name = entry.path().map_err(|e| format!("a bad name in the backup: {e}"))?.into_owned();
        let parts: Vec<&str> = name
            .components()
            .map(|c| match c {
                Component::Normal(part) => part.to_str().unwrap_or("/"),
                _ => "/",
            })
            .collect();
        let kind = entry.header().entry_type();
        match (parts.as_slice(), kind) {
            (["snap" | "wal"], tar::EntryType::Directory) => {
                fs::create_dir_all(out.join(&name)).map_err(|e| format!("cannot create {}: {e}", name.display()))?;
            }
            ([MANIFEST], tar::EntryType::Regular) => {
                let mut text = String::new();
                entry.by_ref().take(1 << 16).read_to_string(&mut text).map_err(|e| format!("the manifest: {e}"))?;
                manifest = Some(serde_json::from_str::<Manifest>(&text).map_err(|e| format!("the manifest: {e}"))?);
            }
            (["snap" | "wal", file], tar::EntryType::Regular) if !file.contains('/') => {
                let path = out.join(&name);
                let mut file = File::create_new(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                bytes += io::copy(&mut entry, &mut file).map_err(|e| format!("writing {}: {e}", path.display()))?;
                file.sync_all().map_err(|e| format!("fsync {}: {e}", path.display()))?;
                files += 1;
            }
            _ => return Err(format!("the backup holds {} ({kind:?}), which no data dir has", name.display())),
        }
    }
    let Some(manifest) = manifest else {
        return Err("the backup ended before its manifest: the stream was cut off".into());
    };
    if (manifest.files, manifest.bytes) != (files, bytes) {
        return Err(format!(
            "the manifest lists {} files of {} bytes, the backup held {files} of {bytes}",
            manifest.files, manifest.bytes
        ));
    }
    let manifest_path = out.join(MANIFEST);
    fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).unwrap_or_default())
        .and_then(|()| File::open(&manifest_path)?.sync_all())
        .map_err(|e| format!("writing {}: {e}", manifest_path.display()))?;
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    for dir in [out.join("snap"), out.join("wal"), out.to_path_buf(), parent.to_path_buf()] {
        if dir.is_dir() {
            File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| format!("fsync {}: {e}", dir.display()))?;
        }
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::Pos;

    /// A tar of `files` (name, bytes), with the manifest last if `manifest`.
    fn tar_of(files: &[(&str, &[u8])], manifest: bool) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut add = |name: &str, bytes: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, name, bytes).expect("append"); // ok: test
        };
        for (name, bytes) in files {
            add(name, bytes);
        }
        let bytes = files.iter().map(|(_, b)| b.len() as u64).sum();
        let summary = Manifest { end: Pos { segment: 1, offset: 3 }, files: files.len() as u64, bytes };
        if manifest {
            add(MANIFEST, &serde_json::to_vec(&summary).expect("json")); // ok: test
        }
        tar.into_inner().expect("tar") // ok: test
    }

    fn unpacked(tar: &[u8]) -> (tempfile::TempDir, Result<Manifest, String>) {
        let dir = tempfile::tempdir().expect("tmp"); // ok: test
        for sub in ["snap", "wal"] {
            fs::create_dir(dir.path().join(sub)).expect("mkdir"); // ok: test
        }
        let res = unpack(dir.path(), tar);
        (dir, res)
    }

    /// Proves a copy counts as whole only with its manifest, and matching it: a stream cut off
    /// before it (a server stopped mid-backup) or holding anything but data dir files fails.
    #[test]
    fn a_backup_is_whole_only_with_its_manifest_and_only_data_dir_files() {
        let files: [(&str, &[u8]); 2] = [("snap/catalog.snap", b"cat"), ("wal/00000000000000000001.wal", b"log")];
        let (dir, res) = unpacked(&tar_of(&files, true));
        assert_eq!(res.expect("whole").files, 2); // ok: test
        assert_eq!(fs::read(dir.path().join("wal/00000000000000000001.wal")).expect("read"), b"log"); // ok: test

        let (_, res) = unpacked(&tar_of(&files, false));
        assert!(res.expect_err("no manifest").contains("before its manifest")); // ok: test
        let whole = tar_of(&files, true);
        let (_, res) = unpacked(&whole[..whole.len() - 2048]);
        assert!(res.is_err(), "a cut stream");
        let (_, res) = unpacked(&tar_of(&[("etc/passwd", b"x")], true));
        assert!(res.expect_err("outside").contains("no data dir has")); // ok: test
    }
}
