//! Staging: the files an apply script installs, written to temp files by one
//! `tar -x` before the first step, so that each step is left with its rename.
//!
//! Architecture note: writing a file costs processes on the target (a `dd`,
//! a `chmod` for most modes, a `mv`), and process start-up is most of what an
//! apply costs. The script's stdin starts with a tar archive of every file it
//! installs; `parc_stage` extracts it (modes included), the script's one
//! `sync` makes the temp files durable with the journal, and each step renames
//! its temp file over its destination (`parc_mv`). A temp file is created in
//! the nearest directory above its destination that existed when the host was
//! probed (its own directory, unless this run creates it), so the rename stays
//! on one filesystem. A host without tar gets one `dd` per file, cut out of
//! the same archive.
//!
//! Consecutive steps that only install files (a run) go further: the files of
//! a run bound for one directory are extracted under their final names into a
//! private directory, and one `mv … DIR/` renames them all before the run's
//! first step; each step then finds its file already in place. Of a
//! destination written several times in a run (line edits of one file, each
//! built on the one before), only the last write is staged and renamed: it is
//! what the run leaves there, and the earlier ones would cost a rename each.
//!
//! Symbolic links are staged the same way: the tar holds the new link, under
//! its final name in a private directory, and `mv … DIR/` renames it over the
//! old one. No link is ever missing (busybox's `ln -sf` removes the old link
//! before it makes the new one), a run's links share its renames, and the
//! target-directory form matters: `mv TEMP DEST` would move the new link into
//! the directory an existing link `DEST` points at.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::ops::Range;
use std::sync::Arc;

use super::payload::Payload;
use crate::content::Content;
use crate::transport::quote;

/// What a staged entry installs.
enum Body {
    /// A regular file. Shared with every other host installing the same
    /// content.
    Data(Arc<Content>),
    /// A symbolic link to this target.
    Link(String),
}

struct File {
    body: Body,
    /// The directory the temp file is created in.
    dir: String,
    dest: String,
    mode: u32,
    /// What `chown -h` sets before the rename (`owner[:group]`, as
    /// parc_mv does), `None` when owner and group are root's or
    /// unspecified.
    chown: Option<String>,
}

#[derive(Default)]
pub(super) struct Stage {
    files: Vec<File>,
    /// Runs of consecutive steps that only install files: ranges of `files`.
    runs: Vec<Range<usize>>,
}

/// Where the staged files go.
struct Names {
    temps: Vec<String>,
    /// Renamed by a batch (its temp is in one of `dirs`).
    batched: Vec<bool>,
    /// Superseded by a later write of its destination in the same run: not
    /// staged at all, its step finds the last write in place.
    skipped: Vec<bool>,
    /// Batch directories.
    dirs: Vec<String>,
    /// sh: the `parc_batch_N` functions.
    batches: String,
}

/// A finished stage, for [`super::script::Script::finish`].
pub(super) struct Staged {
    /// The tar archive, first on the script's stdin; the files' contents
    /// in it are the shared contents, not copies.
    pub archive: Payload,
    /// sh: the temp path variables and the functions `parc_stage`,
    /// `parc_unstage` and `parc_batch_N`.
    pub functions: String,
    /// Quoted temp files, to sync before the first change.
    pub temps: Vec<String>,
    /// sh removing every temp file and batch directory.
    pub remove: String,
}

impl Stage {
    /// Stage `data` for `dest`, in directory `dir`; returns the sh line that
    /// installs it (its step's part). `None`: `dir` is not absolute (see
    /// [`Stage::push`]).
    pub fn add(
        &mut self,
        data: &Arc<Content>,
        dir: &str,
        dest: &str,
        mode: u32,
        owner: &str,
        group: &str,
    ) -> Option<String> {
        let chown =
            (!(matches!(owner, "" | "root") && matches!(group, "" | "root"))).then(
                || match group {
                    "" => owner.to_string(),
                    g => format!("{owner}:{g}"),
                },
            );
        let n = self.push(Body::Data(data.clone()), dir, dest, mode, chown)?;
        Some(format!(
            "parc_mv {n} {} {} {}",
            quote(dest),
            quote(owner),
            quote(group)
        ))
    }

    /// Stage a symbolic link to `target` for `dest`, in directory `dir`;
    /// returns the sh line that renames it into place (its step's part).
    /// `None` as for [`Stage::add`], or when `dest` names no file in a
    /// directory.
    pub fn add_link(&mut self, target: &str, dir: &str, dest: &str) -> Option<String> {
        let (dest_dir, base) = dest.rsplit_once('/')?;
        if base.is_empty() {
            return None;
        }
        let n = self.push(Body::Link(target.to_string()), dir, dest, 0o777, None)?;
        Some(format!("parc_ln {n} {}", quote(&format!("{dest_dir}/"))))
    }

    /// The entry's number once added; `None` when `dir` is not absolute: tar
    /// extracting under `/` would not put it where the step looks.
    fn push(
        &mut self,
        body: Body,
        dir: &str,
        dest: &str,
        mode: u32,
        chown: Option<String>,
    ) -> Option<usize> {
        if !dir.starts_with('/') {
            return None;
        }
        self.files.push(File {
            body,
            dir: dir.trim_end_matches('/').to_string(),
            dest: dest.to_string(),
            mode,
            chown,
        });
        Some(self.files.len() - 1)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// `files` (indices) were staged by one run of consecutive steps that
    /// only install files: the line to run before the run's first step.
    pub fn run(&mut self, files: Range<usize>) -> Option<String> {
        if files.len() < 2 {
            return None;
        }
        self.runs.push(files);
        Some(format!("parc_batch_{}", self.runs.len() - 1))
    }

    /// `None` when nothing is staged; an error only if tar refuses a name.
    /// The temp files are named with `token`, else with a random one.
    pub fn finish(self, token: Option<&str>) -> Option<Result<Staged, std::io::Error>> {
        if self.files.is_empty() {
            return None;
        }
        // Unpredictable: temp names may land in shared directories.
        Some(self.build(token.map_or_else(random_token, str::to_string)))
    }

    fn build(&self, token: String) -> Result<Staged, std::io::Error> {
        let names = self.names(&token);
        let (archive, offsets) = self.archive(&names)?;
        let quoted: Vec<String> = names.temps.iter().map(|t| quote(t)).collect();
        let dirs: Vec<String> = names.dirs.iter().map(|d| quote(d)).collect();
        let dirs = dirs.join(" ");
        let vars: String = quoted
            .iter()
            .enumerate()
            .map(|(n, q)| format!("PARC_T{n}={q}\n"))
            .collect();
        // Read by parc_mv through `eval`, where shellcheck cannot see them.
        let vars = format!("# shellcheck disable=SC2034 # read by parc_mv (eval)\n{{\n{vars}}}\n");
        // Without tar: the batch directories, then one dd (and chmod) a file.
        // When that fails after a tar that failed (a full or read-only
        // disk), tar's message is the target's real error: shown.
        let mut by_dd = String::new();
        if !dirs.is_empty() {
            by_dd.push_str(&format!(
                "\n    mkdir -m 700 {dirs} || parc_stage_failed || return 1"
            ));
        }
        let files = self.files.iter().zip(&quoted).zip(&offsets);
        for (((f, q), off), _) in files.zip(&names.skipped).filter(|(_, s)| !**s) {
            let make = match &f.body {
                Body::Data(data) => format!(
                    "parc_slice {off} {} {q} && chmod {:o} {q}",
                    data.len(),
                    f.mode
                ),
                Body::Link(target) => format!("ln -s -- {} {q}", quote(target)),
            };
            by_dd.push_str(&format!("\n    {make} || parc_stage_failed || return 1"));
        }
        // On exit: what no step renamed (batch directories, links' among
        // them, are always left),
        // and the script's private directory, whose removal this trap takes
        // over from the bootstrap's (see `Assembled::command`): one `rm`.
        let flat: Vec<&str> = quoted
            .iter()
            .enumerate()
            .filter(|(n, _)| {
                !names.batched[*n]
                    && !names.skipped[*n]
                    && matches!(self.files[*n].body, Body::Data(_))
            })
            .map(|(_, q)| q.as_str())
            .collect();
        let mut unstage = String::new();
        match flat.as_slice() {
            [] => {}
            [one] => unstage.push_str(&format!("  [ ! -e {one} ] || rm -f -- {one}\n")),
            many => unstage.push_str(&format!(
                "  for _t in {}; do [ ! -e \"$_t\" ] || rm -f -- \"$_t\"; done\n",
                many.join(" ")
            )),
        }
        let gone = [dirs.as_str(), "\"$PARC_DIR\""].join(" ");
        unstage.push_str(&format!("  rm -rf {}", gone.trim_start()));
        let functions = format!(
            "{vars}{batches}\
             parc_unstage() {{\n{unstage}\n}}\n\
             parc_stage_failed() {{\n  [ ! -s \"$PARC_DIR/tar.err\" ] || cat \"$PARC_DIR/tar.err\" >&2\n  return 1\n}}\n\
             parc_stage() {{\n  parc_euid\n  trap parc_unstage EXIT\n  trap 'exit 129' HUP INT TERM PIPE\n  umask 0\n  \
             if command -v tar >/dev/null 2>&1 && tar -x -o -m -f \"$PARC_PAYLOAD\" -C / 2>\"$PARC_DIR/tar.err\"; then umask 022\n  \
             else\n    umask 022{by_dd}\n  fi\n}}\n",
            batches = names.batches
        );
        Ok(Staged {
            archive,
            functions,
            remove: format!("rm -rf -- {} {dirs}", quoted.join(" ")),
            // A link is not synced: `sync` opens what it names, and would
            // open the link's target.
            temps: quoted
                .into_iter()
                .zip(&names.skipped)
                .zip(&self.files)
                .filter(|((_, s), f)| !**s && matches!(f.body, Body::Data(_)))
                .map(|((q, _), _)| q)
                .collect(),
        })
    }

    /// Every file's temp path: under its final name in a batch directory
    /// when its run renames it together with others, flat otherwise.
    fn names(&self, token: &str) -> Names {
        let mut names = Names {
            temps: (0..self.files.len())
                .map(|n| format!("{}/.parc-tmp.{token}.{n}", self.files[n].dir))
                .collect(),
            batched: vec![false; self.files.len()],
            skipped: vec![false; self.files.len()],
            dirs: Vec::new(),
            batches: String::new(),
        };
        for (r, run) in self.runs.iter().enumerate() {
            let mut lines = Vec::new();
            for (dest_dir, members, skipped) in self.groups(run.clone()) {
                let g = format!(
                    "{}/.parc-tmp.{token}.g{}",
                    self.files[members[0]].dir,
                    names.dirs.len()
                );
                let mut words = Vec::new();
                let mut moved = String::new();
                // One chown per owner before the one mv; when it fails, the
                // mv does not run and each step's parc_mv says why.
                let mut chowns: BTreeMap<&str, Vec<String>> = BTreeMap::new();
                for &m in &members {
                    let base = self.files[m].dest.rsplit('/').next().unwrap_or_default();
                    names.temps[m] = format!("{g}/{base}");
                    names.batched[m] = true;
                    words.push(quote(&names.temps[m]));
                    moved.push_str(&format!(" PARC_MOVED_{m}=1"));
                    if let Some(spec) = &self.files[m].chown {
                        chowns.entry(spec).or_default().push(quote(&names.temps[m]));
                    }
                }
                let chowns: String = chowns
                    .iter()
                    .map(|(spec, temps)| {
                        format!(
                            "chown -h -- {} {} 2>/dev/null && ",
                            quote(spec),
                            temps.join(" ")
                        )
                    })
                    .collect();
                // Superseded writes are done once the last one is in place.
                let mut superseded = String::new();
                for m in skipped {
                    names.skipped[m] = true;
                    superseded.push_str(&format!(" PARC_MOVED_{m}=1"));
                }
                let superseded = if superseded.is_empty() {
                    superseded
                } else {
                    format!(" &&{superseded}")
                };
                lines.push(format!(
                    "  {chowns}mv -f {} {}/ 2>/dev/null{superseded};{moved}",
                    words.join(" "),
                    quote(&dest_dir)
                ));
                names.dirs.push(g);
            }
            if lines.is_empty() {
                lines.push("  :".into());
            }
            names.batches.push_str(&format!(
                "# shellcheck disable=SC2034 # PARC_MOVED_N: read by parc_mv (eval)\nparc_batch_{r}() {{\n{}\n}}\n",
                lines.join("\n")
            ));
        }
        // A link its run does not rename is still staged under its final
        // name, in a directory of its own: parc_ln renames it into its
        // destination's directory.
        for (n, f) in self.files.iter().enumerate() {
            if matches!(f.body, Body::Link(_)) && !names.batched[n] && !names.skipped[n] {
                let base = f.dest.rsplit('/').next().unwrap_or_default();
                let dir = format!("{}/.parc-tmp.{token}.l{n}", f.dir);
                names.temps[n] = format!("{dir}/{base}");
                names.dirs.push(dir);
            }
        }
        names
    }

    /// The archive (batch directories first, mode 0700), and the offset of
    /// each file's data in it (for the dd fallback). tar writes the headers
    /// (long names included); each file's data is its shared content, then
    /// the zeros that pad it to a block.
    fn archive(&self, names: &Names) -> Result<(Payload, Vec<usize>), std::io::Error> {
        let mut archive = tar::Builder::new(Vec::new());
        for dir in &names.dirs {
            let mut header = header(0o700, 0, tar::EntryType::Directory)?;
            archive.append_data(&mut header, dir.trim_start_matches('/'), std::io::empty())?;
        }
        let mut payload = Payload::default();
        let mut offsets = Vec::new();
        for ((file, tmp), &skipped) in self.files.iter().zip(&names.temps).zip(&names.skipped) {
            if skipped {
                offsets.push(0);
                continue;
            }
            let data = match &file.body {
                Body::Data(data) => data,
                Body::Link(target) => {
                    let mut header = header(file.mode, 0, tar::EntryType::Symlink)?;
                    link_target(&mut archive, &mut header, target)?;
                    archive.append_data(
                        &mut header,
                        tmp.trim_start_matches('/'),
                        std::io::empty(),
                    )?;
                    offsets.push(0);
                    continue;
                }
            };
            let len = data.len();
            let mut header = header(file.mode, len, tar::EntryType::Regular)?;
            // An empty reader: tar writes the header (sized `len`) alone.
            archive.append_data(&mut header, tmp.trim_start_matches('/'), std::io::empty())?;
            payload.push(std::mem::take(archive.get_mut()));
            offsets.push(payload.len());
            payload.push_shared(data.clone());
            payload.push(vec![0; len.next_multiple_of(512) - len]);
        }
        payload.push(archive.into_inner()?);
        Ok((payload, offsets))
    }

    /// The files of `run` whose renames can share one `mv` (after a `chown`
    /// per owner other than root): the last write of their destination in
    /// the run, grouped by (temp directory, destination directory), in
    /// groups of two or more; each group with the earlier writes of its
    /// members' destinations, which its `mv` supersedes.
    fn groups(&self, run: Range<usize>) -> Vec<Group> {
        let mut last: HashMap<&str, usize> = HashMap::new();
        for n in run.clone() {
            last.insert(self.files[n].dest.as_str(), n);
        }
        let mut groups: Vec<((String, String), Vec<usize>)> = Vec::new();
        for n in run.clone() {
            let f = &self.files[n];
            if last[f.dest.as_str()] != n {
                continue;
            }
            let Some((dest_dir, base)) = f.dest.rsplit_once('/') else {
                continue;
            };
            if base.is_empty() {
                continue;
            }
            let dest_dir = if dest_dir.is_empty() { "/" } else { dest_dir };
            let key = (f.dir.clone(), dest_dir.to_string());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(n),
                None => groups.push((key, vec![n])),
            }
        }
        groups
            .into_iter()
            .filter(|(_, members)| members.len() > 1)
            .map(|((_, dest_dir), members)| {
                let skipped = run
                    .clone()
                    .filter(|&n| {
                        let last = last[self.files[n].dest.as_str()];
                        last != n && members.contains(&last)
                    })
                    .collect();
                (dest_dir, members, skipped)
            })
            .collect()
    }
}

/// A batch: the destination directory, the files renamed into it, the
/// files their renames supersede.
type Group = (String, Vec<usize>, Vec<usize>);

fn header(mode: u32, size: usize, kind: tar::EntryType) -> Result<tar::Header, std::io::Error> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size as u64);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(kind);
    header.set_username("root")?;
    header.set_groupname("root")?;
    Ok(header)
}

/// Sets `header`'s link target to `target`, byte for byte: the tar crate's
/// `append_link` normalises a short one (`a//b` to `a/b`, `d/` to `d`), and
/// a link made from it would differ from the declared target at every
/// probe. A target too long for the header goes first in a GNU long-link
/// entry, as GNU tar writes it (busybox's tar reads it too).
fn link_target(
    archive: &mut tar::Builder<Vec<u8>>,
    header: &mut tar::Header,
    target: &str,
) -> Result<(), std::io::Error> {
    let bytes = target.as_bytes();
    const FIELD: usize = 100;
    if bytes.len() > FIELD {
        let mut long = tar::Header::new_gnu();
        let name = b"././@LongLink";
        long.as_old_mut().name[..name.len()].copy_from_slice(name);
        long.set_size(bytes.len() as u64 + 1);
        long.set_mode(0o644);
        long.set_entry_type(tar::EntryType::GNULongLink);
        long.set_cksum();
        archive.append(&long, bytes.chain(&[0u8][..]))?;
    }
    header.set_link_name_literal(&bytes[..bytes.len().min(FIELD)])
}

/// 64 random bits, hex.
fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::Stage;

    #[test]
    fn one_mv_renames_a_runs_files_bound_for_one_directory() {
        let mut stage = Stage::default();
        let add = |s: &mut Stage, dest: &str, owner: &str| {
            s.add(
                &crate::content::Content::shared(b"x"),
                "/d",
                dest,
                0o644,
                owner,
                "",
            )
            .unwrap()
        };
        assert_eq!(
            add(&mut stage, "/d/before", ""),
            "parc_mv 0 /d/before '' ''"
        );
        assert_eq!(stage.run(0..1), None, "a run of one file renames nothing");
        let from = stage.len();
        add(&mut stage, "/d/a", "");
        add(&mut stage, "/d/b", "root");
        add(&mut stage, "/d/twice", "");
        add(&mut stage, "/d/twice", "");
        add(&mut stage, "/d/theirs", "alice");
        add(&mut stage, "/e/alone", "");
        assert_eq!(
            stage.run(from..stage.len()).as_deref(),
            Some("parc_batch_0")
        );
        let staged = stage.finish(None).unwrap().unwrap();
        let mvs: Vec<&str> = staged
            .functions
            .lines()
            .filter(|l| l.contains("mv -f"))
            .collect();
        assert_eq!(mvs.len(), 1, "{}", staged.functions);
        let batch = mvs[0];
        assert!(batch.contains("/a ") && batch.contains("/b "), "{batch}");
        assert!(
            batch.contains("/twice "),
            "the last write is batched: {batch}"
        );
        assert!(batch.contains(" /d/ "), "{batch}");
        assert!(
            batch.starts_with("  chown -h -- alice ") && batch.contains("/theirs "),
            "a file of another owner is batched after its chown: {batch}"
        );
        for flat in ["alone", "before"] {
            assert!(
                !batch.contains(flat),
                "{flat} must be renamed by its step: {batch}"
            );
        }
        assert!(
            batch.ends_with(
                "&& PARC_MOVED_3=1; PARC_MOVED_1=1 PARC_MOVED_2=1 PARC_MOVED_4=1 PARC_MOVED_5=1"
            ),
            "the first write of twice is superseded once the batch is in place: {batch}"
        );
        assert_eq!(staged.temps.len(), 6, "the superseded write is not staged");
    }
}
