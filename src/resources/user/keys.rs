//! `~/.ssh/authorized_keys`: exactly the declared keys (`exclusive_keys`), or
//! at least them. sshd ignores a key file others can write, so the directory is
//! kept 0700 and the file 0600, both owned by the user.

use super::super::attrs::{Mode, attr_changes, dir_fixes_as};
use super::super::plan::{Batched, Op, Touch, UserOp};
use super::super::script::Record;
use super::super::{Kind, PathKind, PathState, ResourceError, too_large};
use super::{Current, Part, User};
use crate::transport::quote;

pub(super) fn plan(
    u: &User,
    probed: &Record,
    cur: Option<&Current>,
) -> Result<Part, ResourceError> {
    let Some(keys) = &u.authorized_keys else {
        return Ok(Part::default());
    };
    let label = u.label();
    let keys: Vec<&str> = keys.iter().map(|k| k.trim()).collect();
    if keys.iter().any(|k| k.is_empty() || k.contains('\n')) {
        return Err(ResourceError::Invalid {
            resource: label,
            reason:
                "each of `authorized_keys` must be one non-empty line; the keys are left unchanged"
                    .into(),
        });
    }
    let home = probed.get("home").unwrap_or_default();
    let ssh = format!("{}/.ssh", home.trim_end_matches('/'));
    let file = format!("{ssh}/authorized_keys");
    // "name:" makes chown use the user's login group, which is only known once
    // useradd/usermod have run, in this same step.
    let owner = format!("{}:", u.name);
    // The group the files should have now, to detect drift on existing users.
    let group = match &u.group {
        Some(g) if crate::numbers::id(g).is_none() => Some(g.clone()),
        _ => cur.map(|c| c.group.clone()),
    };
    let dir = PathState::read(probed, "ssh_", &label)?;
    let key_file = PathState::read(probed, "keys_", &label)?;
    if keys.is_empty() && (!u.exclusive_keys || key_file.kind == PathKind::Absent) {
        return Ok(Part::default());
    }
    // A user who owns their home (or ~/.ssh) may swap ~/.ssh (or what it
    // holds) for a link between parc's look and its write: an account that
    // exists has its keys written as itself (see `Op::AsUser`).
    let owns = |prefix: &str| probed.get(&format!("{prefix}owner")) == Some(u.name.as_str());
    if cur.is_some() && (owns("home_") || owns("ssh_")) {
        let place = Place {
            ssh,
            file,
            dir,
            key_file,
        };
        return plan_as(u, probed, &keys, group, place);
    }
    let mut part = Part::default();
    let mut sh = Vec::new();
    match dir.kind {
        PathKind::Absent => {
            sh.push(format!(
                "[ -d {h} ] || {{ printf '%s\\n' {msg} >&2; exit 1; }}",
                h = quote(home),
                msg = quote(&format!(
                    "home directory {home} does not exist, so authorized_keys cannot be installed"
                ))
            ));
            sh.push(format!("mkdir -m 700 -- {}", quote(&ssh)));
            sh.push(format!("chown -h -- {} {}", quote(&owner), quote(&ssh)));
            part.what.push(format!("create {ssh}"));
            if probed.get("home_exists") == Some("yes") {
                part.touches.push(Touch::Path(ssh.clone()));
            }
        }
        PathKind::Dir => {
            let (what, fixes) = attr_changes(
                dir.attrs.as_ref(),
                Some(Mode(0o700)),
                Some(&u.name),
                group.as_deref(),
                &ssh,
            );
            part.what.extend(what.iter().map(|w| format!("{ssh}: {w}")));
            sh.extend(fixes.iter().map(Batched::alone));
            if !what.is_empty() {
                part.touches.push(Touch::Attrs(ssh.clone()));
            }
        }
        _ => return Err(not_ours(&label, &ssh, &dir, "a directory")),
    }
    if !sh.is_empty() {
        part.ops.push(Op::Sh(sh.join("\n")));
    }

    let current = current_keys(&label, &file, &key_file, probed)?.unwrap_or_default();
    let (wanted, what) = wanted_keys(u, &keys, &current);
    if key_file.kind == PathKind::Absent || wanted != current {
        part.what.push(what);
        part.touches.push(Touch::Path(file.clone()));
        part.ops.push(Op::Put {
            data: crate::content::Content::shared(wanted.into_bytes()),
            dest: file,
            mode: Some(0o600),
            owner: Some(owner),
            group: None,
            stage: key_file.stage.clone(),
        });
    } else {
        let (what, fixes) = attr_changes(
            key_file.attrs.as_ref(),
            Some(Mode(0o600)),
            Some(&u.name),
            group.as_deref(),
            &file,
        );
        if !what.is_empty() {
            part.what
                .extend(what.iter().map(|w| format!("{file}: {w}")));
            part.touches.push(Touch::Attrs(file));
            part.ops.extend(fixes.into_iter().map(Op::Batch));
        }
    }
    Ok(part)
}

/// Where the keys go ([`plan`] found them): ~/.ssh and its key file, as
/// the probe saw them.
struct Place {
    ssh: String,
    file: String,
    dir: PathState,
    key_file: PathState,
}

/// [`plan`] for a user who owns their home or ~/.ssh: every change made as
/// the user, but taking a ~/.ssh root owns (`Op::ChownIn`); key files not
/// as declared are written again, as the user.
fn plan_as(
    u: &User,
    probed: &Record,
    keys: &[&str],
    group: Option<String>,
    place: Place,
) -> Result<Part, ResourceError> {
    let label = u.label();
    let Place {
        ssh,
        file,
        dir,
        key_file,
    } = place;
    let user = u.name.clone();
    let touch = |path: &str, attrs_only| Touch::User {
        user: user.clone(),
        path: path.to_string(),
        attrs_only,
    };
    let mut part = Part::default();
    match dir.kind {
        PathKind::Absent => {
            part.what.push(format!("create {ssh} (as {user})"));
            part.touches.push(touch(&ssh, false));
            part.ops.push(Op::AsUser {
                user: user.clone(),
                op: UserOp::Mkdir {
                    path: ssh.clone(),
                    mode: Some(0o700),
                },
            });
        }
        PathKind::Dir => {
            let (what, fixes) = attr_changes(
                dir.attrs.as_ref(),
                Some(Mode(0o700)),
                Some(&u.name),
                group.as_deref(),
                &ssh,
            );
            if !what.is_empty() {
                part.what.extend(what.iter().map(|w| format!("{ssh}: {w}")));
                part.touches.push(touch(&ssh, true));
            }
            part.ops.extend(dir_fixes_as(&user, fixes));
        }
        _ => return Err(not_ours(&label, &ssh, &dir, "a directory")),
    }
    let current = current_keys(&label, &file, &key_file, probed)?;
    let (wanted, what) = wanted_keys(u, keys, current.as_deref().unwrap_or(""));
    let (attrs, _) = attr_changes(
        key_file.attrs.as_ref(),
        Some(Mode(0o600)),
        Some(&u.name),
        group.as_deref(),
        &file,
    );
    if current.as_deref() != Some(&wanted) || !attrs.is_empty() {
        if current.as_deref() != Some(&wanted) {
            part.what.push(what);
        }
        part.what
            .extend(attrs.iter().map(|w| format!("{file}: {w}")));
        part.touches.push(touch(&file, false));
        part.ops.push(Op::AsUser {
            user: user.clone(),
            op: UserOp::Put {
                data: crate::content::Content::shared(wanted.into_bytes()),
                dest: file,
                mode: 0o600,
                group,
            },
        });
    }
    Ok(part)
}

/// The key file's new text and what changes in it: exactly the declared
/// keys (`exclusive_keys`), or `current` with those it lacks added.
fn wanted_keys(u: &User, keys: &[&str], current: &str) -> (String, String) {
    if u.exclusive_keys {
        let mut text = keys.join("\n");
        if !keys.is_empty() {
            text.push('\n');
        }
        let what = format!("authorized_keys: exactly {} key(s)", keys.len());
        (text, what)
    } else {
        let missing: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| !has_key(current, k))
            .collect();
        let mut text = current.to_string();
        if !missing.is_empty() && !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        for k in &missing {
            text.push_str(k);
            text.push('\n');
        }
        (
            text,
            format!("authorized_keys: add {} key(s)", missing.len()),
        )
    }
}

/// What the key file `file` holds as the probe read it (`None`: absent).
fn current_keys(
    label: &str,
    file: &str,
    key_file: &PathState,
    probed: &Record,
) -> Result<Option<String>, ResourceError> {
    match key_file.kind {
        PathKind::Absent => Ok(None),
        PathKind::File { .. } if key_file.attrs.as_ref().is_some_and(|a| a.links != 1) => {
            Err(hard_linked(label, file))
        }
        PathKind::File { .. } => {
            // Too large as the probe saw its size, or as it grew while read
            // (the read stops one byte past the limit).
            let read = probed.blobs.get("keys").map(|k| k.len() as u64);
            for size in [key_file.size(), read.unwrap_or(0)] {
                if let Some(e) = too_large(label.to_string(), file, size) {
                    return Err(e);
                }
            }
            match read {
                Some(_) => Ok(Some(probed.text("keys"))),
                // Not read: it was replaced (by a link?) between the stat and
                // the read. What it holds now is unknown.
                None => Err(ResourceError::Conflict {
                    resource: label.to_string(),
                    reason: format!("{file} changed while parc read it; nothing was done"),
                }),
            }
        }
        _ => Err(not_ours(label, file, key_file, "a regular file")),
    }
}

fn hard_linked(label: &str, file: &str) -> ResourceError {
    ResourceError::Conflict {
        resource: label.to_string(),
        reason: format!(
            "{file} has other names (hard links): it may be another user's file, and parc neither reads nor replaces it"
        ),
    }
}

fn not_ours(label: &str, path: &str, now: &PathState, expected: &str) -> ResourceError {
    ResourceError::Conflict {
        resource: label.to_string(),
        reason: format!(
            "{path} is a {} where {expected} is expected; parc leaves it alone and installs no keys",
            now.what()
        ),
    }
}

/// Whether `text` (an authorized_keys file) already authorizes `key`: the
/// same key blob, whatever its options or comment.
fn has_key(text: &str, key: &str) -> bool {
    let lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    match key_blob(key) {
        Some(blob) => lines.into_iter().any(|l| key_blob(l) == Some(blob)),
        None => lines.into_iter().any(|l| l == key),
    }
}

/// The base64 part of a key line: the word after the key type (options may
/// come first).
fn key_blob(line: &str) -> Option<&str> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| {
            ["ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-"]
                .iter()
                .any(|p| w[0].starts_with(p))
        })
        .map(|w| w[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_by_blob_whatever_the_comment_or_options() {
        let file = "# ssh-ed25519 AAAAcommented old\nfrom=\"10.0.0.0/8\" ssh-ed25519 AAAAone laptop\nssh-rsa AAAAtwo\n";
        assert!(has_key(file, "ssh-ed25519 AAAAone admin@desk"));
        assert!(has_key(file, "ssh-rsa AAAAtwo"));
        assert!(!has_key(file, "ssh-ed25519 AAAAcommented"));
        assert!(!has_key(file, "ssh-ed25519 AAAAthree"));
        assert!(has_key("weird line\n", "weird line"));
    }
}
