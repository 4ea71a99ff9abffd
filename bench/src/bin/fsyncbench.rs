//! fsyncbench: what one durable append costs on this disk, the floor under a durable Send.
//!
//! Appends a small record to a file in DIR and `fdatasync`s it, N times, as chatd's log writer
//! does for a batch of one; prints the latency distribution. chatd with one request in flight
//! per connection cannot answer a send faster than this, and cannot commit more than
//! 1 / latency batches per second.
//!
//! With `--prealloc`, the file is first filled with zeros and fsynced, and the records overwrite
//! it in place (`pwrite` + `fdatasync`): the file's size no longer changes, so the filesystem has
//! no metadata to commit per sync (what PostgreSQL's pre-zeroed WAL segments and RocksDB's
//! recycled logs rely on). It also reports the CPU time each sync costs this process.
//!
//! Usage: fsyncbench [--dir DIR] [--n 2000] [--bytes 200] [--prealloc]

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::Instant;

fn cpu_seconds() -> f64 {
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(u.ru_utime) + tv(u.ru_stime)
    }
}

fn main() -> std::io::Result<()> {
    let mut dir = std::env::temp_dir();
    let mut n: usize = 2000;
    let mut bytes: usize = 200;
    let mut prealloc = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--prealloc" {
            prealloc = true;
            continue;
        }
        let v = args.next().unwrap_or_default();
        match arg.as_str() {
            "--dir" => dir = v.into(),
            "--n" => n = v.parse().expect("--n takes a number"),
            "--bytes" => bytes = v.parse().expect("--bytes takes a number"),
            _ => {
                eprintln!("usage: fsyncbench [--dir DIR] [--n 2000] [--bytes 200] [--prealloc]");
                std::process::exit(2);
            }
        }
    }
    let path = dir.join(format!("fsyncbench-{}.wal", std::process::id()));
    let mut file = OpenOptions::new().create(true).read(true).write(true).append(!prealloc).open(&path)?;
    if prealloc {
        file.write_all(&vec![0u8; n * bytes + 4096])?;
        file.sync_all()?;
        std::fs::File::open(&dir)?.sync_all()?;
    }
    let record = vec![b'r'; bytes];
    let mut lat = Vec::with_capacity(n);
    let started = Instant::now();
    let cpu0 = cpu_seconds();
    for i in 0..n {
        let t0 = Instant::now();
        if prealloc {
            file.write_all_at(&record, (i * bytes) as u64)?;
        } else {
            file.write_all(&record)?;
        }
        file.sync_data()?;
        lat.push(t0.elapsed().as_micros() as u64);
    }
    let cpu = cpu_seconds() - cpu0;
    let total = started.elapsed().as_secs_f64();
    std::fs::remove_file(&path)?;
    lat.sort_unstable();
    let q = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
    let mean = lat.iter().sum::<u64>() as f64 / lat.len() as f64;
    println!(
        "{} of {bytes} B + fdatasync, {n} times in {}: mean {mean:.0} µs, p50 {} µs, p99 {} µs, max {} µs ({:.0} syncs/s, {:.0} µs CPU each)",
        if prealloc { "overwrite (preallocated file)" } else { "append" },
        dir.display(),
        q(0.5),
        q(0.99),
        lat[lat.len() - 1],
        n as f64 / total,
        cpu / n as f64 * 1e6
    );
    Ok(())
}
