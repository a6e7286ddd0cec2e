//! How an image file stores the disk: raw, seekable zstd or qcow2, recognised
//! by content (never by the file's name), and read back as the raw disk bytes.
//!
//! Why every format reads as raw bytes: the manifest describes the disk, not the
//! file, so a target ends byte-identical whatever the image was stored as, and
//! delta deploys compare the same hashes. Only formats that can be read at any
//! offset are accepted: with a plain `.zst` or `.gz`, every host would have to
//! decompress the whole stream to reach its changed chunks, so those are refused
//! with the `parc image convert` command that makes them seekable.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use imago::{DenyImplicitOpenGate, FormatAccess, FormatDriverBuilder, StorageOpenOptions};
use serde::{Deserialize, Serialize};
use zeekstd::SeekTable;

use super::ImageError;

/// How an image file stores the disk's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Raw,
    /// The Zstandard Seekable Format: independent zstd frames and a seek table.
    Zstd,
    Qcow2,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Zstd => "zstd",
            Format::Qcow2 => "qcow2",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the first and last bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Image(Format),
    /// A compressed stream that can only be read from its start.
    Stream(Stream),
}

/// Compressed streams `parc image convert` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Zstd,
    Gzip,
    Xz,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Zstd => "zstd",
            Stream::Gzip => "gzip",
            Stream::Xz => "xz",
        }
    }
}

const QCOW2_MAGIC: &[u8] = b"QFI\xfb";
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
/// A skippable zstd frame (the seek table is one): 0x184D2A5?, little-endian.
fn zstd_skippable(head: &[u8]) -> bool {
    head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18]
}
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];
/// The seekable format's footer ends with this, little-endian.
const SEEKABLE_FOOTER: [u8; 4] = zeekstd::SEEKABLE_MAGIC_NUMBER.to_le_bytes();

/// Recognise `path` by its content.
pub fn detect(path: &Path) -> Result<Content, ImageError> {
    let io = |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut head = [0u8; 8];
    let n = read_up_to(&file, &mut head, 0).map_err(io)?;
    let head = &head[..n];
    if head.starts_with(QCOW2_MAGIC) {
        return Ok(Content::Image(Format::Qcow2));
    }
    if head.starts_with(ZSTD_MAGIC) || zstd_skippable(head) {
        let mut tail = [0u8; 4];
        let seekable = len >= 4
            && read_up_to(&file, &mut tail, len - 4).map_err(io)? == 4
            && tail == SEEKABLE_FOOTER;
        return Ok(if seekable {
            Content::Image(Format::Zstd)
        } else {
            Content::Stream(Stream::Zstd)
        });
    }
    if head.starts_with(GZIP_MAGIC) {
        return Ok(Content::Stream(Stream::Gzip));
    }
    if head.starts_with(XZ_MAGIC) {
        return Ok(Content::Stream(Stream::Xz));
    }
    Ok(Content::Image(Format::Raw))
}

fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

/// An image file opened for reading its disk bytes at any offset, from any thread.
pub struct Disk {
    path: PathBuf,
    /// The image file's own size (compressed, for the compressed formats).
    file_size: u64,
    reader: Reader,
}

enum Reader {
    Raw(File),
    Zstd { file: File, table: SeekTable },
    Qcow2(Box<FormatAccess<imago::file::File>>),
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disk")
            .field("path", &self.path)
            .field("format", &self.format())
            .finish_non_exhaustive()
    }
}

impl Disk {
    /// Open `path` as an image, refusing what cannot be read at any offset.
    pub fn open(path: &Path) -> Result<Disk, ImageError> {
        let io = |source| ImageError::Io {
            path: path.to_path_buf(),
            source,
        };
        let format = match detect(path)? {
            Content::Image(format) => format,
            Content::Stream(stream) => {
                return Err(ImageError::NotSeekable {
                    image: path.to_path_buf(),
                    stream: stream.name(),
                });
            }
        };
        let unreadable = |reason: String| ImageError::Unreadable {
            image: path.to_path_buf(),
            format,
            reason,
        };
        let mut file = File::open(path).map_err(io)?;
        let file_size = file.metadata().map_err(io)?.len();
        let reader = match format {
            Format::Raw => Reader::Raw(file),
            Format::Zstd => {
                let table = SeekTable::from_seekable(&mut file)
                    .map_err(|e| unreadable(format!("its seek table is damaged ({e})")))?;
                let frames_end = match table.num_frames() {
                    0 => 0,
                    n => table
                        .frame_end_comp(n - 1)
                        .map_err(|e| unreadable(e.to_string()))?,
                };
                if frames_end > file_size {
                    return Err(unreadable(format!(
                        "its seek table lists {frames_end} bytes of frames but the file has {file_size}: it is truncated"
                    )));
                }
                Reader::Zstd { file, table }
            }
            Format::Qcow2 => {
                let storage = imago::file::File::from_open_file(
                    file,
                    StorageOpenOptions::new().filename(path),
                )
                .map_err(|e| unreadable(e.to_string()))?;
                // A backing or external data file named inside the image is not
                // followed: the image alone must hold the disk.
                let qcow2 = imago::qcow2::Qcow2::<imago::file::File>::builder(storage)
                    .write(false)
                    .open(DenyImplicitOpenGate::default())
                    .map_err(|e| {
                        unreadable(format!(
                            "{e}; parc reads self-contained qcow2 images only (flatten one with a backing file: `qemu-img convert -O qcow2 IN OUT`)"
                        ))
                    })?;
                Reader::Qcow2(Box::new(FormatAccess::new(qcow2)))
            }
        };
        Ok(Disk {
            path: path.to_path_buf(),
            file_size,
            reader,
        })
    }

    pub fn format(&self) -> Format {
        match self.reader {
            Reader::Raw(_) => Format::Raw,
            Reader::Zstd { .. } => Format::Zstd,
            Reader::Qcow2(_) => Format::Qcow2,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The image file's size on the controller.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// The disk's size in bytes.
    pub fn size(&self) -> u64 {
        match &self.reader {
            Reader::Raw(_) => self.file_size,
            Reader::Zstd { table, .. } => table.size_decomp(),
            Reader::Qcow2(q) => q.size(),
        }
    }

    fn unreadable(&self, reason: impl std::fmt::Display) -> ImageError {
        ImageError::Unreadable {
            image: self.path.clone(),
            format: self.format(),
            reason: reason.to_string(),
        }
    }

    /// Fill `buf` with the disk's bytes from `offset`.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), ImageError> {
        let io = |source| ImageError::Io {
            path: self.path.clone(),
            source,
        };
        match &self.reader {
            Reader::Raw(file) => file.read_exact_at(buf, offset).map_err(io),
            Reader::Qcow2(q) => q.read(&mut *buf, offset).map_err(|e| self.unreadable(e)),
            Reader::Zstd { file, table } => {
                let end = offset + buf.len() as u64;
                if end > table.size_decomp() {
                    return Err(self.unreadable(format!("no disk bytes at {offset}..{end}")));
                }
                let mut done = 0usize;
                let mut frame = table.frame_index_decomp(offset);
                let mut scratch = Vec::new();
                while done < buf.len() {
                    let at = offset + done as u64;
                    let frame_start = table
                        .frame_start_decomp(frame)
                        .map_err(|e| self.unreadable(e))?;
                    let frame_len = table
                        .frame_size_decomp(frame)
                        .map_err(|e| self.unreadable(e))?;
                    let compressed = self.frame_bytes(file, table, frame, frame)?;
                    let skip = (at - frame_start) as usize;
                    let want = (frame_len as usize - skip).min(buf.len() - done);
                    if skip == 0 && want == frame_len as usize {
                        decompress_into(&compressed, &mut buf[done..done + want])
                            .map_err(|e| self.unreadable(format!("frame {frame}: {e}")))?;
                    } else {
                        scratch.resize(frame_len as usize, 0);
                        decompress_into(&compressed, &mut scratch)
                            .map_err(|e| self.unreadable(format!("frame {frame}: {e}")))?;
                        buf[done..done + want].copy_from_slice(&scratch[skip..skip + want]);
                    }
                    done += want;
                    frame += 1;
                }
                Ok(())
            }
        }
    }

    /// The compressed frames that hold exactly the disk bytes `start..end`, as
    /// they can be sent to a target that decompresses them; `None` when the
    /// image is not compressed or its frames do not start and end there.
    pub fn frames_for(&self, start: u64, end: u64) -> Result<Option<Vec<u8>>, ImageError> {
        let Reader::Zstd { file, table } = &self.reader else {
            return Ok(None);
        };
        let Some((first, last)) = frame_span(table, start, end) else {
            return Ok(None);
        };
        self.frame_bytes(file, table, first, last).map(Some)
    }

    fn frame_bytes(
        &self,
        file: &File,
        table: &SeekTable,
        first: u32,
        last: u32,
    ) -> Result<Vec<u8>, ImageError> {
        let start = table
            .frame_start_comp(first)
            .map_err(|e| self.unreadable(e))?;
        let end = table.frame_end_comp(last).map_err(|e| self.unreadable(e))?;
        let mut bytes = vec![0u8; (end - start) as usize];
        file.read_exact_at(&mut bytes, start)
            .map_err(|e| self.unreadable(format!("frames {first}-{last}: {e}")))?;
        Ok(bytes)
    }
}

/// The frames `first..=last` whose decompressed bytes are exactly `start..end`.
fn frame_span(table: &SeekTable, start: u64, end: u64) -> Option<(u32, u32)> {
    if start >= end || end > table.size_decomp() {
        return None;
    }
    let first = table.frame_index_decomp(start);
    let last = table.frame_index_decomp(end - 1);
    (table.frame_start_decomp(first).ok()? == start && table.frame_end_decomp(last).ok()? == end)
        .then_some((first, last))
}

/// Decompress zstd frames that must fill `out` exactly.
pub fn decompress_into(compressed: &[u8], out: &mut [u8]) -> Result<(), String> {
    match zstd_safe::decompress(out, compressed) {
        Ok(n) if n == out.len() => Ok(()),
        Ok(n) => Err(format!("it holds {n} bytes, not {}", out.len())),
        Err(code) => Err(zstd_safe::get_error_name(code).to_string()),
    }
}

/// Writes a seekable zstd image with one frame per chunk, so that any chunk is
/// read, or sent compressed, alone.
pub struct SeekableWriter<W: std::io::Write> {
    encoder: zeekstd::Encoder<'static, W>,
}

/// zstd's own default: a good ratio at several hundred MB/s per core.
pub const DEFAULT_LEVEL: i32 = 3;

impl<W: std::io::Write> SeekableWriter<W> {
    pub fn new(out: W, level: i32, chunk_size: u64) -> std::io::Result<Self> {
        let frame = u32::try_from(chunk_size).map_err(std::io::Error::other)?;
        let encoder = zeekstd::EncodeOptions::new()
            .compression_level(level)
            .checksum_flag(true)
            .frame_size_policy(zeekstd::FrameSizePolicy::Uncompressed(frame))
            .into_encoder(out)
            .map_err(std::io::Error::other)?;
        Ok(SeekableWriter { encoder })
    }

    /// One whole chunk (the last may be short): one frame.
    pub fn chunk(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let n = self.encoder.compress(data).map_err(std::io::Error::other)?;
            data = &data[n..];
        }
        self.encoder.end_frame().map_err(std::io::Error::other)?;
        Ok(())
    }

    /// Write the seek table; returns the bytes written in all.
    pub fn finish(self) -> std::io::Result<u64> {
        self.encoder.finish().map_err(std::io::Error::other)
    }
}

/// Decompress a plain (non-seekable) stream, for `parc image convert`. A
/// stream that ends mid-frame is an error, never a shorter disk.
pub fn stream_reader(stream: Stream, file: File) -> std::io::Result<Box<dyn Read + Send>> {
    let buffered = std::io::BufReader::with_capacity(1 << 20, file);
    match stream {
        Stream::Zstd => Ok(Box::new(ZstdStream {
            input: buffered,
            dctx: zstd_safe::DCtx::create(),
            in_frame: false,
        })),
        Stream::Gzip => Ok(Box::new(flate2::bufread::MultiGzDecoder::new(buffered))),
        Stream::Xz => Err(std::io::Error::other(
            "parc reads zstd and gzip streams; decompress this one with `xz -d` first",
        )),
    }
}

/// Concatenated zstd frames as one reader.
struct ZstdStream<R> {
    input: R,
    dctx: zstd_safe::DCtx<'static>,
    /// Inside a frame: the input must not end here.
    in_frame: bool,
}

impl<R: std::io::BufRead> Read for ZstdStream<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            let input = self.input.fill_buf()?;
            if input.is_empty() && !self.in_frame {
                return Ok(0);
            }
            let mut inb = zstd_safe::InBuffer::around(input);
            let mut outb = zstd_safe::OutBuffer::around(&mut *out);
            let hint = self
                .dctx
                .decompress_stream(&mut outb, &mut inb)
                .map_err(|code| std::io::Error::other(zstd_safe::get_error_name(code)))?;
            let (consumed, produced) = (inb.pos(), outb.pos());
            self.input.consume(consumed);
            self.in_frame = hint != 0;
            if produced > 0 {
                return Ok(produced);
            }
            if consumed == 0 && self.in_frame {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the zstd stream ends inside a frame: it is truncated",
                ));
            }
        }
    }
}
