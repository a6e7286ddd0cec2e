//! parc's image helper: the target side of `parc image deploy`, as one small
//! program instead of sh, dd and a hash tool.
//!
//! The deploy's sh script (src/image/deploy/target.sh) still runs first: it
//! describes the target and decides the safety refusals with the controller.
//! When the controller sends this helper along, the script stores it in its
//! temporary directory, checks that it runs, and hands it the rest of the
//! stream; it is deleted with that directory when the deploy ends. Where it
//! cannot run (another architecture, a `noexec` /tmp, an older C library), the
//! script goes on alone with the same protocol.
//!
//! Why a helper at all: with only sh, every chunk costs a `dd` process and its
//! bytes cross a pipe into the hash tool. On small machines that costs more
//! than hashing itself. Here every thread reads the target directly
//! (`pread`), hashes with the CPU's SHA extensions, and writes with `pwrite`,
//! so a re-deploy is bound by hashing, not by process start-up.
//!
//! Protocol (the same lines as the script, see src/image/deploy/mod.rs):
//! prints `h I SHA` for every chunk as found before any write; reads
//! `w FIRST COUNT` + bytes, `z FIRST COUNT`, `r` and `q`, and (from the
//! helper only) `c INDEX LEN` + LEN bytes of zstd frames holding one chunk,
//! which it decompresses, so that a compressed image crosses the network
//! compressed; prints `v I SHA` for
//! every written chunk re-read from storage once `r` came; `fail MESSAGE` on
//! an error; `end` once the target is flushed.
//!
//! Usage: `parc-image-helper check` | `parc-image-helper run TARGET CHUNK_SIZE
//! IMAGE_SIZE CHUNKS READBACK KIND`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::process::ExitCode;
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::thread;

#[path = "../../image/aligned.rs"]
mod aligned;
#[path = "../../image/digest.rs"]
mod digest;

use aligned::Aligned;
use digest::ChunkHasher;
use nix::fcntl::{FallocateFlags, OFlag, PosixFadviseAdvice, fallocate, posix_fadvise};

/// How written chunks are re-read: decided by the script, which tried them.
enum ReadBack {
    /// Through this `O_DIRECT` descriptor: straight from the storage.
    Direct(File),
    /// Flush, drop the range from the page cache, then read.
    NoCache,
    /// Flush, drop the whole page cache, then read.
    DropCaches,
    /// Nothing bypasses the cache here: read what the kernel has.
    Cache,
}

struct Target {
    path: String,
    file: File,
    readback: ReadBack,
    is_file: bool,
    chunk_size: u64,
    size: u64,
    chunks: usize,
}

impl Target {
    fn chunk_len(&self, index: usize) -> usize {
        let start = index as u64 * self.chunk_size;
        (self.size - start).min(self.chunk_size) as usize
    }

    fn offset(&self, index: usize) -> u64 {
        index as u64 * self.chunk_size
    }

    /// The chunk as the storage holds it. `buf` is as long as the chunk, and
    /// aligned for direct I/O.
    fn read_stored(&self, index: usize, buf: &mut [u8]) -> std::io::Result<()> {
        let (offset, len) = (self.offset(index), buf.len());
        match &self.readback {
            ReadBack::Direct(direct) => return direct.read_exact_at(buf, offset),
            ReadBack::NoCache => {
                self.file.sync_data()?;
                posix_fadvise(
                    self.file.as_fd(),
                    offset as i64,
                    len as i64,
                    PosixFadviseAdvice::POSIX_FADV_DONTNEED,
                )?;
            }
            ReadBack::DropCaches => {
                self.file.sync_data()?;
                std::fs::write("/proc/sys/vm/drop_caches", "1\n")?;
            }
            ReadBack::Cache => {}
        }
        self.file.read_exact_at(buf, offset)
    }

    fn write(&self, index: usize, data: &[u8]) -> std::io::Result<()> {
        self.file.write_all_at(data, self.offset(index))
    }

    /// Holes in a disk file where the filesystem can punch them, else zeros.
    fn zero(&self, first: usize, count: usize, zeros: &[u8]) -> std::io::Result<()> {
        let start = self.offset(first);
        let end = (self.offset(first + count)).min(self.size);
        if self.is_file
            && fallocate(
                self.file.as_fd(),
                FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
                start as i64,
                (end - start) as i64,
            )
            .is_ok()
        {
            return Ok(());
        }
        (first..first + count).try_for_each(|i| self.write(i, &zeros[..self.chunk_len(i)]))
    }
}

/// Lines out, whole, from every thread.
#[derive(Clone)]
struct Out(Arc<Mutex<std::io::Stdout>>);

impl Out {
    fn say(&self, line: std::fmt::Arguments) {
        let mut out = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // The controller going away ends the deploy through stdin; a failed
        // write here has nothing better to do.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }

    /// `TAG INDEX SHA`; zero chunks are recognised without hashing them, as
    /// when the manifest is built (free space is often zeros: new or
    /// discarded disks, holes in disk files).
    fn hash(&self, tag: char, index: usize, data: &[u8]) {
        let (sha, _) = digest::chunk_sha256(data);
        self.say(format_args!("{tag} {index} {sha}"));
    }

    fn fail(&self, what: std::fmt::Arguments) -> ExitCode {
        self.say(format_args!("fail {what}"));
        ExitCode::from(3)
    }
}

/// Largest compressed chunk accepted: zstd never grows 1 GiB (the largest
/// chunk) by more than a fraction of a percent.
const MAX_FRAMES: usize = (1 << 30) + (1 << 24);

/// Parts read and hashed at a time: small enough to stay in the CPU's cache
/// between the copy out of the page cache and the hash (several hosts' threads
/// share a core here), large enough that system calls are few.
const PART: usize = 256 * 1024;

/// Hash chunks `first..end` as found, one after the other.
fn probe(t: &Target, out: &Out, first: usize, end: usize) -> Result<(), String> {
    let mut buf = Aligned::new(PART);
    for i in first..end {
        let (start, len) = (t.offset(i), t.chunk_len(i));
        let mut hasher = ChunkHasher::default();
        let mut done = 0;
        while done < len {
            let part = buf.get(len - done);
            t.file
                .read_exact_at(part, start + done as u64)
                .map_err(|e| format!("reading chunk {i} of {} failed: {e}", t.path))?;
            hasher.update(part);
            done += part.len();
        }
        out.say(format_args!("h {i} {}", hasher.finish().0));
    }
    Ok(())
}

/// Re-read and hash every run handed over, until the sender is gone.
fn read_back(t: &Target, out: &Out, runs: &Mutex<Receiver<(usize, usize)>>) -> Result<(), String> {
    let mut buf = Aligned::new(t.chunk_size as usize);
    loop {
        let run = runs.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok((first, count)) = run else {
            return Ok(());
        };
        for i in first..first + count {
            let chunk = buf.get(t.chunk_len(i));
            t.read_stored(i, chunk)
                .map_err(|e| format!("reading back chunk {i} of {} failed: {e}", t.path))?;
            out.hash('v', i, chunk);
        }
    }
}

fn run(args: &[String], out: &Out) -> ExitCode {
    let [path, chunk_size, size, chunks, readback, kind] = args else {
        return out.fail(format_args!("the helper got the wrong arguments"));
    };
    let (Ok(chunk_size), Ok(size), Ok(chunks)) = (
        chunk_size.parse::<u64>(),
        size.parse::<u64>(),
        chunks.parse::<usize>(),
    ) else {
        return out.fail(format_args!("the helper got the wrong arguments"));
    };
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) => return out.fail(format_args!("opening {path} failed: {e}")),
    };
    let readback = match readback.as_str() {
        "direct" => match OpenOptions::new()
            .read(true)
            .custom_flags(OFlag::O_DIRECT.bits())
            .open(path)
        {
            Ok(direct) => ReadBack::Direct(direct),
            Err(e) => return out.fail(format_args!("opening {path} for direct reads failed: {e}")),
        },
        "nocache" => ReadBack::NoCache,
        "drop_caches" => ReadBack::DropCaches,
        _ => ReadBack::Cache,
    };
    let t = Arc::new(Target {
        path: path.clone(),
        file,
        readback,
        is_file: kind == "file",
        chunk_size,
        size,
        chunks,
    });
    let workers = thread::available_parallelism().map_or(1, |n| n.get().min(4));

    // A failing thread says why and ends the helper at once: the controller
    // would otherwise wait for its hashes forever.
    let spawn = |job: Box<dyn FnOnce() -> Result<(), String> + Send>| {
        let out = out.clone();
        thread::spawn(move || {
            if let Err(e) = job() {
                out.fail(format_args!("{e}"));
                std::process::exit(3);
            }
        })
    };
    for w in 0..workers {
        let (t, out) = (t.clone(), out.clone());
        let (first, end) = (t.chunks * w / workers, t.chunks * (w + 1) / workers);
        spawn(Box::new(move || probe(&t, &out, first, end)));
    }
    let (runs_tx, runs) = channel::<(usize, usize)>();
    let runs = Arc::new(Mutex::new(runs));
    let readers: Vec<_> = (0..workers)
        .map(|_| {
            let (t, out, runs) = (t.clone(), out.clone(), runs.clone());
            spawn(Box::new(move || read_back(&t, &out, &runs)))
        })
        .collect();

    // Read-back waits for `r`, as in the script: reading the disk while it is
    // still being written would slow the transfer. Until then, written runs
    // wait in `pending`; after, they go to the readers at once.
    let mut pending = Some(Vec::new());
    let check = |run: (usize, usize), pending: &mut Option<Vec<(usize, usize)>>| match pending {
        Some(p) => p.push(run),
        None => {
            let _ = runs_tx.send(run);
        }
    };
    let release = |pending: &mut Option<Vec<(usize, usize)>>| {
        for run in pending.take().unwrap_or_default() {
            let _ = runs_tx.send(run);
        }
    };
    let mut input = BufReader::with_capacity(1 << 20, std::io::stdin().lock());
    let mut data = Aligned::new(chunk_size as usize);
    let mut zeros = Aligned::new(chunk_size as usize);
    let mut compressed = Vec::new();
    let mut dctx = zstd_safe::DCtx::create();
    let mut line = String::new();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => return ExitCode::from(130), // the controller is gone
            Ok(_) => {}
        }
        let mut words = line.split_whitespace();
        let cmd = words.next().unwrap_or("");
        let mut num = || words.next().and_then(|w| w.parse::<usize>().ok());
        let run = (num(), num());
        match (cmd, run) {
            ("w", (Some(first), Some(count))) if first + count <= t.chunks => {
                for i in first..first + count {
                    let chunk = data.get(t.chunk_len(i));
                    if input.read_exact(chunk).is_err() {
                        return ExitCode::from(130);
                    }
                    if let Err(e) = t.write(i, chunk) {
                        let last = first + count - 1;
                        return out.fail(format_args!("writing chunks {first}-{last} failed: {e}"));
                    }
                }
                check((first, count), &mut pending);
            }
            ("c", (Some(index), Some(len))) if index < t.chunks && len <= MAX_FRAMES => {
                compressed.resize(len, 0);
                if input.read_exact(&mut compressed).is_err() {
                    return ExitCode::from(130);
                }
                let chunk = data.get(t.chunk_len(index));
                match dctx.decompress(&mut *chunk, &compressed) {
                    Ok(n) if n == chunk.len() => {}
                    Ok(n) => {
                        return out.fail(format_args!(
                            "chunk {index} decompressed to {n} bytes, not {}",
                            chunk.len()
                        ));
                    }
                    Err(code) => {
                        let why = zstd_safe::get_error_name(code);
                        return out.fail(format_args!("decompressing chunk {index} failed: {why}"));
                    }
                }
                if let Err(e) = t.write(index, chunk) {
                    return out.fail(format_args!("writing chunk {index} failed: {e}"));
                }
                check((index, 1), &mut pending);
            }
            ("z", (Some(first), Some(count))) if first + count <= t.chunks => {
                if let Err(e) = t.zero(first, count, zeros.get(chunk_size as usize)) {
                    let last = first + count - 1;
                    return out.fail(format_args!("zeroing chunks {first}-{last} failed: {e}"));
                }
                check((first, count), &mut pending);
            }
            ("r", _) => release(&mut pending),
            ("q", _) => break,
            _ => return out.fail(format_args!("unknown command {}", line.trim_end())),
        }
    }
    release(&mut pending);
    drop(runs_tx);
    for r in readers {
        let _ = r.join();
    }
    // Durable, a disk's volatile cache included; also writes back chunks an
    // interrupted deploy left in the page cache, which the probe accepted.
    if let Err(e) = t.file.sync_all() {
        return out.fail(format_args!("flushing {} failed: {e}", t.path));
    }
    out.say(format_args!("end"));
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = Out(Arc::new(Mutex::new(std::io::stdout())));
    match args.first().map(String::as_str) {
        Some("check") => {
            out.say(format_args!("ok"));
            ExitCode::SUCCESS
        }
        Some("run") => run(&args[1..], &out),
        _ => {
            eprintln!("{}", USAGE);
            ExitCode::from(2)
        }
    }
}

const USAGE: &str = "parc-image-helper: run by `parc image deploy` on a target, not by hand.
usage: parc-image-helper check
       parc-image-helper run TARGET CHUNK_SIZE IMAGE_SIZE CHUNKS READBACK KIND";
