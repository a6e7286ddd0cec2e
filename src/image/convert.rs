//! `parc image convert` and `parc image build --compress`: any image (raw,
//! seekable zstd, qcow2) or plain zstd/gzip stream into a seekable zstd image
//! or a sparse raw one, hashed on the way so its manifest is written with it.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ImageError;
use super::build::{mtime_ns, new_manifest};
use super::format::{Content, DEFAULT_LEVEL, Disk, Format, SeekableWriter, detect, stream_reader};
use super::hash::{Hashed, chunk_entry};
use super::manifest::{Manifest, SECTOR, check_chunk_size};

/// What `convert` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Sparse: zero chunks stay holes.
    Raw,
    /// Seekable zstd at this level, one frame per chunk.
    Zstd { level: i32 },
}

impl Output {
    /// What a file name asks for: `.zst` is seekable zstd, anything else raw.
    pub fn for_path(path: &Path) -> Output {
        if path.extension().is_some_and(|e| e == "zst") {
            Output::Zstd {
                level: DEFAULT_LEVEL,
            }
        } else {
            Output::Raw
        }
    }

    /// `zstd` or `zstd:LEVEL` (the form `--compress` takes).
    pub fn parse(text: &str) -> Result<Output, String> {
        let (name, level) = text.split_once(':').unwrap_or((text, ""));
        if name != "zstd" {
            return Err(format!("unknown compression `{name}`: parc writes zstd"));
        }
        if level.is_empty() {
            return Ok(Output::Zstd {
                level: DEFAULT_LEVEL,
            });
        }
        let max = zstd_safe::max_c_level();
        match level.parse::<i32>() {
            Ok(l) if (1..=max).contains(&l) => Ok(Output::Zstd { level: l }),
            _ => Err(format!("zstd level `{level}` must be from 1 to {max}")),
        }
    }

    fn format(self) -> Format {
        match self {
            Output::Raw => Format::Raw,
            Output::Zstd { .. } => Format::Zstd,
        }
    }
}

/// A file being written: removed unless it completes.
pub(super) struct Partial {
    pub path: PathBuf,
    pub keep: bool,
}

impl Partial {
    /// `OUTPUT.partial`, created new; refuses an existing `output`.
    pub fn create(output: &Path) -> Result<(Partial, File), ImageError> {
        if output.exists() {
            return Err(ImageError::Exists {
                path: output.to_path_buf(),
            });
        }
        let mut name = output.as_os_str().to_owned();
        name.push(".partial");
        let partial = Partial {
            path: PathBuf::from(name),
            keep: false,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial.path)
            .map_err(|source| ImageError::Io {
                path: partial.path.clone(),
                source,
            })?;
        Ok((partial, file))
    }

    /// Move into place as `output`.
    pub fn finish(mut self, output: &Path) -> Result<(), ImageError> {
        std::fs::rename(&self.path, output).map_err(|source| ImageError::Io {
            path: output.to_path_buf(),
            source,
        })?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes an image chunk by chunk, in order, and hashes it for its manifest.
pub(super) struct ImageWriter {
    sink: Sink,
    path: PathBuf,
    chunk_size: u64,
    whole: Sha256,
    hashed: Vec<super::manifest::Chunk>,
    offset: u64,
}

enum Sink {
    Raw(File),
    Zstd(SeekableWriter<BufWriter<File>>, File),
}

impl ImageWriter {
    pub fn new(
        file: File,
        path: &Path,
        output: Output,
        chunk_size: u64,
    ) -> Result<Self, ImageError> {
        let sink = match output {
            Output::Raw => Sink::Raw(file),
            Output::Zstd { level } => {
                let copy = file.try_clone().map_err(|source| ImageError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                let writer =
                    SeekableWriter::new(BufWriter::with_capacity(1 << 20, file), level, chunk_size)
                        .map_err(|source| ImageError::Io {
                            path: path.to_path_buf(),
                            source,
                        })?;
                Sink::Zstd(writer, copy)
            }
        };
        Ok(ImageWriter {
            sink,
            path: path.to_path_buf(),
            chunk_size,
            whole: Sha256::new(),
            hashed: Vec::new(),
            offset: 0,
        })
    }

    fn io(&self, source: std::io::Error) -> ImageError {
        ImageError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// The next chunk (whole, but the last may be short).
    pub fn chunk(&mut self, data: &[u8]) -> Result<(), ImageError> {
        self.whole.update(data);
        let entry = chunk_entry(data);
        let written = match &mut self.sink {
            // Zero chunks stay holes in a raw file.
            Sink::Raw(_) if entry.zero => Ok(()),
            Sink::Raw(file) => file.write_all_at(data, self.offset),
            Sink::Zstd(writer, _) => writer.chunk(data),
        };
        written.map_err(|e| self.io(e))?;
        self.hashed.push(entry);
        self.offset += data.len() as u64;
        Ok(())
    }

    /// Complete and flush the file; its hashes for the manifest.
    pub fn finish(self) -> Result<Hashed, ImageError> {
        let size = self.offset;
        let path = self.path;
        let io = |source| ImageError::Io {
            path: path.clone(),
            source,
        };
        match self.sink {
            Sink::Raw(file) => file
                .set_len(size)
                .and_then(|()| file.sync_all())
                .map_err(io)?,
            Sink::Zstd(writer, file) => {
                writer.finish().map_err(io)?;
                file.sync_all().map_err(io)?;
            }
        }
        Ok(Hashed {
            size,
            chunk_size: self.chunk_size,
            sha256: super::manifest::hex(&self.whole.finalize()),
            chunks: self.hashed,
        })
    }
}

/// Fills a buffer with the input's next disk bytes; fewer only at its end.
type FillChunk<'a> = dyn FnMut(&mut [u8]) -> Result<usize, ImageError> + 'a;

/// Write `input` as `output` (which must not exist) and its manifest.
pub fn convert(
    input: &Path,
    output: &Path,
    to: Output,
    chunk_size: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(Manifest, PathBuf), ImageError> {
    check_chunk_size(chunk_size).map_err(|reason| ImageError::ChunkSize { reason })?;
    let io = |source| ImageError::Io {
        path: input.to_path_buf(),
        source,
    };
    let mut next: Box<FillChunk> = match detect(input)? {
        Content::Stream(stream) => {
            let file = File::open(input).map_err(io)?;
            let mut reader = stream_reader(stream, file).map_err(io)?;
            let unreadable = move |e: std::io::Error| ImageError::Unreadable {
                image: input.to_path_buf(),
                format: Format::Zstd,
                reason: format!("as a {} stream: {e}", stream.name()),
            };
            Box::new(move |buf: &mut [u8]| {
                let mut done = 0;
                while done < buf.len() {
                    match reader.read(&mut buf[done..]) {
                        Ok(0) => break,
                        Ok(n) => done += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(unreadable(e)),
                    }
                }
                Ok(done)
            })
        }
        Content::Image(_) => {
            let disk = Disk::open(input)?;
            let size = disk.size();
            let mut at = 0u64;
            Box::new(move |buf: &mut [u8]| {
                let len = (size - at).min(buf.len() as u64) as usize;
                disk.read_at(&mut buf[..len], at)?;
                at += len as u64;
                Ok(len)
            })
        }
    };
    let (partial, file) = Partial::create(output)?;
    let mut writer = ImageWriter::new(file, output, to, chunk_size)?;
    let mut buf = vec![0u8; chunk_size as usize];
    let mut total = 0u64;
    loop {
        let n = next(&mut buf)?;
        if n == 0 {
            break;
        }
        writer.chunk(&buf[..n])?;
        total += n as u64;
        progress(total);
        if n < buf.len() {
            break;
        }
    }
    if !total.is_multiple_of(SECTOR) {
        return Err(ImageError::Unaligned {
            image: input.to_path_buf(),
            size: total,
        });
    }
    let hashed = writer.finish()?;
    partial.finish(output)?;
    let file_size = std::fs::metadata(output)
        .map_err(|source| ImageError::Io {
            path: output.to_path_buf(),
            source,
        })?
        .len();
    let manifest = new_manifest(output, hashed, to.format(), file_size, mtime_ns(output)?);
    let path = manifest.save(output)?;
    Ok((manifest, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::build::{build, verify};
    use std::io::Write;

    const K: usize = 64 * 1024;

    /// Data, zeros, data, and a short half-zero tail.
    fn disk() -> Vec<u8> {
        let mut data = vec![0u8; 3 * K + K / 2];
        for (i, b) in data[..K].iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        data[2 * K + 9] = 7;
        data[3 * K + 5] = 1;
        data
    }

    #[test]
    fn a_raw_image_converts_to_seekable_zstd_and_back_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("d.img");
        let data = disk();
        std::fs::write(&raw, &data).unwrap();
        let (raw_manifest, _) = build(&raw, K as u64, &|_| {}).unwrap();

        let zst = dir.path().join("d.img.zst");
        let (m, _) = convert(&raw, &zst, Output::Zstd { level: 3 }, K as u64, &|_| {}).unwrap();
        assert_eq!(m.chunks, raw_manifest.chunks);
        assert_eq!(m.sha256, raw_manifest.sha256);
        assert_eq!(m.format(), Format::Zstd);
        assert!(std::fs::metadata(&zst).unwrap().len() < data.len() as u64);
        assert_eq!(detect(&zst).unwrap(), Content::Image(Format::Zstd));
        let (_, diff) = verify(&zst, &|_| {}).unwrap();
        assert!(diff.is_empty(), "{diff}");
        // Every chunk is exactly one frame, so it can travel alone.
        let d = Disk::open(&zst).unwrap();
        for i in 0..m.chunks.len() {
            let (start, end) = m.chunk_range(i);
            assert!(d.frames_for(start, end).unwrap().is_some(), "chunk {i}");
        }
        // Reads across frame boundaries give the disk's bytes.
        let mut part = vec![0u8; K + 100];
        d.read_at(&mut part, K as u64 - 50).unwrap();
        assert_eq!(part, data[K - 50..2 * K + 50]);

        let back = dir.path().join("back.img");
        convert(&zst, &back, Output::Raw, K as u64, &|_| {}).unwrap();
        assert_eq!(std::fs::read(&back).unwrap(), data);
        assert!(matches!(
            convert(&zst, &back, Output::Raw, K as u64, &|_| {}),
            Err(ImageError::Exists { .. })
        ));
    }

    #[test]
    fn plain_streams_are_refused_by_build_and_converted() {
        let dir = tempfile::tempdir().unwrap();
        let data = disk();
        let gz = dir.path().join("d.img.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&data).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let zst = dir.path().join("d.img.zst");
        std::fs::write(&zst, zstd_safe_compress(&data)).unwrap();
        for plain in [&gz, &zst] {
            let err = build(plain, K as u64, &|_| {}).unwrap_err();
            assert!(matches!(err, ImageError::NotSeekable { .. }), "{err}");
            assert!(err.to_string().contains("parc image convert"), "{err}");
            let out = dir.path().join(format!(
                "{}.seekable.zst",
                plain.file_name().unwrap().to_string_lossy()
            ));
            convert(plain, &out, Output::Zstd { level: 1 }, K as u64, &|_| {}).unwrap();
            let raw = dir.path().join("raw.img");
            convert(&out, &raw, Output::Raw, K as u64, &|_| {}).unwrap();
            assert_eq!(std::fs::read(&raw).unwrap(), data);
            std::fs::remove_file(&raw).unwrap();
        }
    }

    #[test]
    fn truncated_and_corrupt_compressed_images_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("d.img");
        std::fs::write(&raw, disk()).unwrap();
        let zst = dir.path().join("d.img.zst");
        convert(&raw, &zst, Output::Zstd { level: 3 }, K as u64, &|_| {}).unwrap();
        let bytes = std::fs::read(&zst).unwrap();

        // Cut: the seek table at the end is gone.
        let cut = dir.path().join("cut.img.zst");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        assert!(build(&cut, K as u64, &|_| {}).is_err());
        let out = dir.path().join("cut.raw");
        let err = convert(&cut, &out, Output::Raw, K as u64, &|_| {}).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        assert!(!out.exists() && !dir.path().join("cut.raw.partial").exists());

        // A byte changed inside the first frame's data.
        let bad = dir.path().join("bad.img.zst");
        let mut flipped = bytes.clone();
        flipped[40] ^= 0xff;
        std::fs::write(&bad, &flipped).unwrap();
        let err = build(&bad, K as u64, &|_| {}).unwrap_err();
        assert!(matches!(err, ImageError::Unreadable { .. }), "{err}");
    }

    #[test]
    fn compression_is_named_by_flag_or_file_name() {
        assert_eq!(
            Output::parse("zstd"),
            Ok(Output::Zstd {
                level: DEFAULT_LEVEL
            })
        );
        assert_eq!(Output::parse("zstd:19"), Ok(Output::Zstd { level: 19 }));
        for bad in ["gzip", "zstd:0", "zstd:99", "zstd:x"] {
            assert!(Output::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Output::for_path(Path::new("a.img")), Output::Raw);
        assert!(matches!(
            Output::for_path(Path::new("a.img.zst")),
            Output::Zstd { .. }
        ));
    }

    fn zstd_safe_compress(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; zstd_safe::compress_bound(data.len())];
        let n = zstd_safe::compress(&mut out[..], data, 3).unwrap();
        out.truncate(n);
        out
    }
}
