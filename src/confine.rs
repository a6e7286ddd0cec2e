//! Which controller files user-written input may make parc read.
//!
//! A profile tree (`profiles/` with its `templates/` and `files/`) is often
//! someone else's work: a `src: ../../../../etc/shadow`, an `include:` of
//! `../x`, a `{% include %}` of an absolute path or a symlink in `files/`
//! would otherwise copy any controller file parc can read (it runs as root)
//! to the targets. Every such read goes through a [`Tree`]: the path is
//! resolved (symlinks included) and must land inside the tree's root, or in
//! a directory the operator allowed explicitly (`--allow-outside DIR`).
//!
//! Only regular files are read ([`read_regular`]): a FIFO or a device named
//! as a profile, template or inventory would block parc or feed it forever.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::content::{Content, sha256_hex};
use crate::location::Location;

/// Why a controller file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(
        "{} resolves to {}, outside {}: parc reads only files inside the profile tree (symlinks included); pass --allow-outside DIR to permit another directory",
        path.display(), resolved.display(), root.display()
    )]
    Outside {
        path: PathBuf,
        resolved: PathBuf,
        root: PathBuf,
    },
    #[error("{} is a {kind}, not a regular file; parc reads only regular files", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{location}: not UTF-8 text; parc reads YAML and templates as UTF-8")]
    NotUtf8 { location: Location },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} changed during the run: the hosts before got it as parc first read it (sha256 {first}), it now reads otherwise (sha256 {now}); leave the profile's files alone during a run",
        path.display()
    )]
    Changed {
        path: PathBuf,
        first: String,
        now: String,
    },
}

impl ReadError {
    /// The file does not exist (as opposed to existing and being refused).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// A directory whose files user input may name, plus the directories the
/// operator allowed beyond it.
#[derive(Debug, Clone)]
pub struct Tree {
    /// As given: paths in messages and lookups are built from it.
    dir: PathBuf,
    /// `dir` with its symlinks resolved: what a resolved path must start with.
    root: PathBuf,
    /// Resolved `--allow-outside` directories.
    allowed: Arc<[PathBuf]>,
    /// Files read by [`Tree::read_shared`], shared by every clone of the tree.
    shared: Arc<Mutex<Shared>>,
}

/// Contents handed out by [`Tree::read_shared`] that some host still holds,
/// by resolved path and by digest. Weak: a content no host holds any more is
/// freed, and read again if a later host needs it.
#[derive(Debug, Default)]
struct Shared {
    by_path: HashMap<PathBuf, Weak<Content>>,
    by_digest: HashMap<String, Weak<Content>>,
    /// The digest of every file as the run first read it, kept for the run
    /// (a few bytes a file, not its content): a file read again for a later
    /// host must still be what the earlier hosts got. Otherwise a file
    /// edited during a run (hosts taken a wave at a time) reached the later
    /// hosts in its new version, each report saying "changed" alike.
    first: HashMap<PathBuf, String>,
}

impl Tree {
    /// `dir` need not exist: every read from it then fails as not found.
    /// An empty `dir` (the parent of a bare file name) is the current one.
    pub fn new(dir: &Path, allow_outside: &[PathBuf]) -> Tree {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        Tree {
            dir: dir.to_path_buf(),
            root: resolved_dir(dir),
            allowed: allow_outside.iter().map(|d| resolved_dir(d)).collect(),
            shared: Arc::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directories allowed beyond the tree.
    pub fn allowed(&self) -> &[PathBuf] {
        &self.allowed
    }

    /// `path` (relative paths are taken from the tree's directory) resolved,
    /// if it lies inside the tree or an allowed directory.
    pub fn resolve(&self, path: &Path) -> Result<PathBuf, ReadError> {
        let joined = self.dir.join(path);
        let outside = |resolved: PathBuf| ReadError::Outside {
            path: joined.clone(),
            resolved,
            root: self.root.clone(),
        };
        // Said as such even when the file does not exist.
        let lexical = normalize(&self.root.join(path));
        if !self.contains(&lexical) {
            return Err(outside(lexical));
        }
        let resolved = std::fs::canonicalize(&joined).map_err(|source| ReadError::Io {
            path: joined.clone(),
            source,
        })?;
        if self.contains(&resolved) {
            Ok(resolved)
        } else {
            Err(outside(resolved))
        }
    }

    fn contains(&self, path: &Path) -> bool {
        std::iter::once(&self.root)
            .chain(self.allowed.iter())
            .any(|root| path.starts_with(root))
    }

    /// Whether `path` may be read: inside the tree and a regular file.
    pub fn check(&self, path: &Path) -> Result<(), ReadError> {
        let resolved = self.resolve(path)?;
        let kind = std::fs::metadata(&resolved)
            .map_err(|source| ReadError::Io {
                path: resolved,
                source,
            })?
            .file_type();
        if kind.is_file() {
            Ok(())
        } else {
            Err(ReadError::NotRegular {
                path: self.dir.join(path),
                kind: kind_name(kind),
            })
        }
    }

    /// The bytes of a regular file inside the tree.
    pub fn read(&self, path: &Path) -> Result<Vec<u8>, ReadError> {
        self.read_resolved(path).map(|(_, bytes)| bytes)
    }

    /// [`Tree::read`], with the path the file resolved to.
    fn read_resolved(&self, path: &Path) -> Result<(PathBuf, Vec<u8>), ReadError> {
        let resolved = self.resolve(path)?;
        let bytes = read_regular(&resolved).map_err(|e| self.as_written(path, e))?;
        Ok((resolved, bytes))
    }

    /// The text of a regular file inside the tree that every host reads
    /// again (a template, loaded by each host's renderer), refused unless it
    /// is what the run first read.
    pub fn read_for_hosts(&self, path: &Path) -> Result<String, ReadError> {
        let (resolved, bytes) = self.read_resolved(path)?;
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        self.as_first_read(&mut shared, path, resolved, &sha256_hex(&bytes))?;
        drop(shared);
        utf8(&self.dir.join(path), bytes)
    }

    /// Whether a file read again has `digest`, the digest it had when the
    /// run first read it (see [`Shared::first`]).
    fn as_first_read(
        &self,
        shared: &mut Shared,
        path: &Path,
        resolved: PathBuf,
        digest: &str,
    ) -> Result<(), ReadError> {
        let first = (shared.first)
            .entry(resolved)
            .or_insert_with(|| digest.to_string());
        if first == digest {
            Ok(())
        } else {
            Err(ReadError::Changed {
                path: self.dir.join(path),
                first: first.clone(),
                now: digest.to_string(),
            })
        }
    }

    /// Name the file as the user wrote it, not as it resolved.
    fn as_written(&self, path: &Path, e: ReadError) -> ReadError {
        match e {
            ReadError::NotRegular { kind, .. } => ReadError::NotRegular {
                path: self.dir.join(path),
                kind,
            },
            other => other,
        }
    }

    /// The content of a regular file inside the tree, as one [`Content`]
    /// shared by every caller (every host of a run renders from a clone of
    /// its profile's tree): a file is opened and hashed once while any host
    /// holds it, and files with the same content share one. A 20 MiB
    /// wallpaper sent to 500 hosts is then read from its file as it is sent
    /// (see [`crate::content`]), not held 500 times. The path is checked on
    /// every call, as [`Tree::read`] does, and a file read again must have
    /// the digest it had when the run first read it.
    pub fn read_shared(&self, path: &Path) -> Result<Arc<Content>, ReadError> {
        let resolved = self.resolve(path)?;
        // Held while reading: hosts asking for the same file wait for the
        // one read instead of each making a copy.
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(data) = shared.by_path.get(&resolved).and_then(Weak::upgrade) {
            return Ok(data);
        }
        let file = open_regular(&resolved).map_err(|e| self.as_written(path, e))?;
        let data =
            Content::from_file(file, &self.dir.join(path)).map_err(|source| ReadError::Io {
                path: self.dir.join(path),
                source,
            })?;
        self.as_first_read(&mut shared, path, resolved.clone(), data.sha256())?;
        let data = shared
            .by_digest
            .get(data.sha256())
            .and_then(Weak::upgrade)
            .unwrap_or_else(|| Arc::new(data));
        shared.by_path.retain(|_, d| d.strong_count() > 0);
        shared.by_digest.retain(|_, d| d.strong_count() > 0);
        shared.by_path.insert(resolved, Arc::downgrade(&data));
        shared
            .by_digest
            .insert(data.sha256().to_string(), Arc::downgrade(&data));
        Ok(data)
    }

    /// The text of a regular file inside the tree.
    pub fn read_to_string(&self, path: &Path) -> Result<String, ReadError> {
        let bytes = self.read(path)?;
        utf8(&self.dir.join(path), bytes)
    }
}

/// `dir` absolute, with its symlinks resolved when it exists: a relative or
/// empty root would be a prefix of nothing, or of everything.
fn resolved_dir(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir)
        .or_else(|_| std::path::absolute(dir))
        .map(|d| normalize(&d))
        .unwrap_or_else(|_| PathBuf::from("/nonexistent-parc-tree"))
}

/// `path` with `.` and `..` taken away without looking at the file system.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The bytes of `path` if it is a regular file.
pub fn read_regular(path: &Path) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    open_regular(path)?
        .read_to_end(&mut bytes)
        .map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(bytes)
}

/// `path` opened for reading if it is a regular file. The file is opened
/// without blocking and checked on the open descriptor, so a FIFO swapped in
/// after a check cannot make parc wait for a writer.
fn open_regular(path: &Path) -> Result<std::fs::File, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(io)?;
    let kind = file.metadata().map_err(io)?.file_type();
    if !kind.is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_name(kind),
        });
    }
    Ok(file)
}

/// The text of `path` if it is a regular file holding UTF-8.
pub fn read_regular_to_string(path: &Path) -> Result<String, ReadError> {
    utf8(path, read_regular(path)?)
}

fn utf8(path: &Path, bytes: Vec<u8>) -> Result<String, ReadError> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let before = String::from_utf8_lossy(&valid[line_start..]);
        ReadError::NotUtf8 {
            location: Location {
                file: path.to_path_buf(),
                line: valid.iter().filter(|b| **b == b'\n').count() + 1,
                column: before.chars().count() + 1,
            },
        }
    })
}

fn kind_name(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "directory"
    } else if kind.is_fifo() {
        "FIFO"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_char_device() {
        "character device"
    } else if kind.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_leaving_the_tree_are_refused_unless_allowed() {
        let base = tempfile::tempdir().unwrap();
        let tree_dir = base.path().join("profiles");
        std::fs::create_dir_all(tree_dir.join("files")).unwrap();
        std::fs::write(tree_dir.join("files/ok"), "ok").unwrap();
        std::fs::write(base.path().join("secret"), "secret").unwrap();
        std::os::unix::fs::symlink(base.path().join("secret"), tree_dir.join("files/link"))
            .unwrap();
        std::os::unix::fs::symlink("ok", tree_dir.join("files/inner")).unwrap();
        let tree = Tree::new(&tree_dir, &[]);
        assert_eq!(tree.read(Path::new("files/ok")).unwrap(), b"ok");
        assert_eq!(tree.read(Path::new("files/inner")).unwrap(), b"ok");
        for escape in [
            "../secret",
            "files/link",
            "/etc/passwd",
            "files/../../secret",
        ] {
            let err = tree.read(Path::new(escape)).unwrap_err();
            assert!(matches!(err, ReadError::Outside { .. }), "{escape}: {err}");
            assert!(err.to_string().contains("--allow-outside"), "{err}");
        }
        let allowed = Tree::new(&tree_dir, &[base.path().to_path_buf()]);
        assert_eq!(allowed.read(Path::new("files/link")).unwrap(), b"secret");
        // The directory of a bare file name (`parc verify p.yml`) is "".
        let here = Tree::new(Path::new(""), &[]);
        let err = here.read(Path::new("/etc/passwd")).unwrap_err();
        assert!(matches!(err, ReadError::Outside { .. }), "{err}");
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("t.j2");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = read_regular(&fifo).unwrap_err();
        assert!(err.to_string().contains("is a FIFO"), "{err}");
        let err = read_regular(dir.path()).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
        let latin1 = dir.path().join("p.yml");
        std::fs::write(&latin1, b"a: 1\nb: caf\xe9\n").unwrap();
        let err = read_regular_to_string(&latin1).unwrap_err().to_string();
        assert!(
            err.ends_with("p.yml:2:7: not UTF-8 text; parc reads YAML and templates as UTF-8"),
            "{err}"
        );
    }

    #[test]
    fn a_file_read_again_in_a_run_must_be_what_the_earlier_hosts_got() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("files")).unwrap();
        std::fs::write(dir.path().join("files/motd"), "v1\n").unwrap();
        let tree = Tree::new(dir.path(), &[]);
        let motd = Path::new("files/motd");
        let first = tree.read_shared(motd).unwrap();
        // Held: the same content, whatever the file holds now.
        std::fs::write(dir.path().join("files/motd"), "v2\n").unwrap();
        assert!(Arc::ptr_eq(
            &first,
            &tree.clone().read_shared(motd).unwrap()
        ));
        drop(first);
        // Freed, then read again: refused, naming both digests.
        let err = tree.read_shared(motd).unwrap_err();
        assert!(matches!(err, ReadError::Changed { .. }), "{err}");
        assert!(
            err.to_string().contains(&sha256_hex(b"v1\n"))
                && err.to_string().contains(&sha256_hex(b"v2\n")),
            "{err}"
        );
        // Put back as it was: read again as the same.
        std::fs::write(dir.path().join("files/motd"), "v1\n").unwrap();
        assert_eq!(
            tree.read_shared(motd).unwrap().in_memory(),
            Some(&b"v1\n"[..])
        );
    }
}
