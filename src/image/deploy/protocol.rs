//! What the target script prints, and the safety refusals decided from it.
//!
//! The script only reports facts (what the target is, where it is mounted); the
//! decision to refuse is made here, in Rust, where it is unit-tested.

/// One line of the target script's output. Unknown lines (a noisy login shell)
/// are ignored by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Info(Vec<(String, String)>),
    Mount(String),
    Holder(String),
    Loop(String),
    Swap(String),
    Ready,
    /// Whether the target runs parc's helper (`helper on`) or goes on in sh.
    Helper(bool),
    /// A chunk hashed before anything was written.
    Probed(usize, String),
    /// A chunk hashed again after it was written.
    ReadBack(usize, String),
    Fail(String),
    /// A chunk line whose hash is missing: the target's hash tool failed.
    Unhashed(String),
    End,
}

pub fn parse_line(line: &str) -> Option<Line> {
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    let chunk = |rest: &str| {
        let (i, h) = rest.split_once(' ')?;
        let h = h.trim();
        (h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Some((i.parse().ok()?, h.to_ascii_lowercase())))?
    };
    Some(match word {
        "info" => Line::Info(
            rest.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        "mount" => Line::Mount(rest.to_string()),
        "holder" => Line::Holder(rest.to_string()),
        "loop" => Line::Loop(rest.to_string()),
        "swap" => Line::Swap(rest.to_string()),
        "ready" => Line::Ready,
        "helper" => Line::Helper(rest == "on"),
        "h" => match chunk(rest) {
            Some((i, h)) => Line::Probed(i, h),
            None => Line::Unhashed(line.to_string()),
        },
        "v" => match chunk(rest) {
            Some((i, h)) => Line::ReadBack(i, h),
            None => Line::Unhashed(line.to_string()),
        },
        "fail" => Line::Fail(rest.to_string()),
        "end" => Line::End,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Block,
    File,
    Other,
    Missing,
}

/// What the script found out about the target before touching it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    pub kind: Kind,
    pub size: u64,
    /// The sha256 tool it will use, if any.
    pub hash_tool: Option<String>,
    /// How written chunks are read back: direct, nocache, drop_caches or cache.
    pub readback: String,
    /// `dd iflag=fullblock` works (needed to cut the stream into chunks).
    pub fullblock: bool,
    /// `uname -sm`, with `/` for the space: which helper could run there.
    pub machine: String,
    /// Mount points of the target, its partitions, or loop devices backed by it.
    pub mounts: Vec<String>,
    /// Devices stacked on it (device-mapper, md).
    pub holders: Vec<String>,
    pub loops: Vec<String>,
    /// Active swap areas on it.
    pub swaps: Vec<String>,
}

impl TargetInfo {
    pub fn from_lines(lines: &[Line]) -> Option<TargetInfo> {
        let fields = lines.iter().find_map(|l| match l {
            Line::Info(f) => Some(f),
            _ => None,
        })?;
        let get = |k: &str| {
            fields
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let collect = |f: fn(&Line) -> Option<&String>| -> Vec<String> {
            lines.iter().filter_map(f).cloned().collect()
        };
        Some(TargetInfo {
            kind: match get("kind")? {
                "block" => Kind::Block,
                "file" => Kind::File,
                "missing" => Kind::Missing,
                _ => Kind::Other,
            },
            size: get("size").and_then(|s| s.parse().ok()).unwrap_or(0),
            hash_tool: get("hash").filter(|h| !h.is_empty()).map(str::to_string),
            readback: get("readback").unwrap_or("cache").to_string(),
            fullblock: get("fullblock") == Some("1"),
            machine: get("machine").unwrap_or("").to_string(),
            mounts: collect(|l| match l {
                Line::Mount(m) => Some(m),
                _ => None,
            }),
            holders: collect(|l| match l {
                Line::Holder(h) => Some(h),
                _ => None,
            }),
            loops: collect(|l| match l {
                Line::Loop(d) => Some(d),
                _ => None,
            }),
            swaps: collect(|l| match l {
                Line::Swap(s) => Some(s),
                _ => None,
            }),
        })
    }
}

/// Why parc will not write to a target. Each message says what was found, why
/// it matters and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "{target} does not exist on the host: parc writes images onto existing disks or files and will not create one at a guessed path; check --target"
    )]
    Missing { target: String },
    #[error(
        "{target} is neither a block device nor a regular file: parc can only write an image onto a disk or a disk file; check --target"
    )]
    NotADisk { target: String },
    #[error(
        "{target} backs the running system ({why}): overwriting it would crash the host mid-write and leave it unbootable; nothing was written, and --force does not override this"
    )]
    RunningSystem { target: String, why: String },
    #[error(
        "{target} is in use by {holders} (device-mapper, LVM or RAID stacked on it): writing under them would corrupt what they hold; nothing was written, and --force does not override this"
    )]
    InUse { target: String, holders: String },
    #[error(
        "{target} is mounted ({mounts}): writing under a mounted filesystem corrupts it and whatever uses it; nothing was written. Unmount it first, or pass --force if you are sure nothing writes to it"
    )]
    Mounted { target: String, mounts: String },
    #[error(
        "{target} holds {size} bytes but the image is {image} bytes: the end of the image would not fit; nothing was written. Use a larger disk or a smaller image"
    )]
    TooSmall {
        target: String,
        size: u64,
        image: u64,
    },
    #[error(
        "the host has no working sha256 tool (openssl, sha256sum or shasum): parc needs one to compare chunks and to read them back; install coreutils or openssl on it"
    )]
    NoHashTool,
    #[error(
        "dd on the host does not support iflag=fullblock (GNU coreutils, or busybox 1.24 or later, do): parc needs it to cut the stream it sends into chunks; nothing was written"
    )]
    NoFullblock,
}

/// Decide whether `info` may receive an image of `image_size` bytes.
pub fn check(target: &str, info: &TargetInfo, image_size: u64, force: bool) -> Result<(), Refusal> {
    let target = target.to_string();
    match info.kind {
        Kind::Missing => return Err(Refusal::Missing { target }),
        Kind::Other => return Err(Refusal::NotADisk { target }),
        Kind::Block | Kind::File => {}
    }
    let system: Vec<&str> = info
        .mounts
        .iter()
        .filter(|m| m.as_str() == "/")
        .map(|_| "mounted at /")
        .chain(info.swaps.iter().map(|_| "swap in use on it"))
        .collect();
    if let Some(why) = system.first() {
        return Err(Refusal::RunningSystem {
            target,
            why: why.to_string(),
        });
    }
    if !info.holders.is_empty() {
        return Err(Refusal::InUse {
            target,
            holders: info.holders.join(", "),
        });
    }
    if !info.mounts.is_empty() && !force {
        let via = if info.loops.is_empty() {
            String::new()
        } else {
            format!(" through {}", info.loops.join(", "))
        };
        let mut shown: Vec<&str> = info.mounts.iter().take(3).map(String::as_str).collect();
        let more = info.mounts.len().saturating_sub(shown.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        shown.dedup();
        return Err(Refusal::Mounted {
            target,
            mounts: format!("at {}{more}{via}", shown.join(", ")),
        });
    }
    if info.size < image_size {
        return Err(Refusal::TooSmall {
            target,
            size: info.size,
            image: image_size,
        });
    }
    if info.hash_tool.is_none() {
        return Err(Refusal::NoHashTool);
    }
    if !info.fullblock {
        return Err(Refusal::NoFullblock);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(text: &str) -> TargetInfo {
        let lines: Vec<Line> = text.lines().filter_map(parse_line).collect();
        TargetInfo::from_lines(&lines).unwrap()
    }

    const GOOD: &str =
        "info kind=block size=1073741824 hash=openssl readback=direct fullblock=1\nready";

    #[test]
    fn lines_parse_and_noise_is_ignored() {
        let h = "a".repeat(64);
        assert_eq!(
            parse_line(&format!("h 12 {h}")),
            Some(Line::Probed(12, h.clone()))
        );
        assert_eq!(
            parse_line(&format!("v 3 {}", h.to_uppercase())),
            Some(Line::ReadBack(3, h))
        );
        assert_eq!(parse_line("h 12 "), Some(Line::Unhashed("h 12 ".into())));
        assert_eq!(
            parse_line("v x aaaa"),
            Some(Line::Unhashed("v x aaaa".into()))
        );
        assert_eq!(parse_line("Welcome to Debian"), None);
        assert_eq!(
            parse_line("mount /mnt/data disk"),
            Some(Line::Mount("/mnt/data disk".into()))
        );
        assert_eq!(
            parse_line("fail write: no space"),
            Some(Line::Fail("write: no space".into()))
        );
        assert_eq!(parse_line("end"), Some(Line::End));
    }

    #[test]
    fn a_free_disk_large_enough_is_accepted() {
        let i = info(GOOD);
        assert_eq!(i.kind, Kind::Block);
        assert_eq!(i.readback, "direct");
        assert_eq!(check("/dev/sdb", &i, 1 << 30, false), Ok(()));
    }

    #[test]
    fn mounted_targets_are_refused_unless_forced() {
        let i = info(&format!("{GOOD}\nloop loop3\nmount /mnt/golden"));
        let err = check("/dev/parc-disk", &i, 1 << 20, false).unwrap_err();
        assert!(matches!(err, Refusal::Mounted { .. }));
        assert!(
            err.to_string().contains("at /mnt/golden through loop3"),
            "{err}"
        );
        assert!(err.to_string().contains("--force"));
        assert_eq!(check("/dev/parc-disk", &i, 1 << 20, true), Ok(()));
    }

    #[test]
    fn the_running_system_is_refused_even_with_force() {
        for extra in ["mount /boot\nmount /", "swap /dev/sda2"] {
            let i = info(&format!("{GOOD}\n{extra}"));
            let err = check("/dev/sda", &i, 1 << 20, true).unwrap_err();
            assert!(
                matches!(err, Refusal::RunningSystem { .. }),
                "{extra}: {err}"
            );
            assert!(err.to_string().contains("--force does not override"));
        }
        let i = info(&format!("{GOOD}\nholder dm-0"));
        assert!(matches!(
            check("/dev/sda", &i, 1 << 20, true),
            Err(Refusal::InUse { .. })
        ));
    }

    #[test]
    fn size_kind_and_tools_are_checked() {
        let i = info(GOOD);
        let err = check("/dev/sdb", &i, 2 << 30, false).unwrap_err();
        assert_eq!(
            err,
            Refusal::TooSmall {
                target: "/dev/sdb".into(),
                size: 1 << 30,
                image: 2 << 30
            }
        );
        for (text, expected) in [
            (
                "info kind=missing size=0 hash=openssl fullblock=1",
                "does not exist",
            ),
            (
                "info kind=other size=0 hash=openssl fullblock=1",
                "neither a block device",
            ),
            (
                "info kind=file size=4096 hash= fullblock=1",
                "no working sha256 tool",
            ),
            (
                "info kind=file size=4096 hash=sha256sum fullblock=0",
                "iflag=fullblock",
            ),
        ] {
            let err = check("/x", &info(text), 4096, false).unwrap_err();
            assert!(err.to_string().contains(expected), "{text}: {err}");
        }
    }
}
