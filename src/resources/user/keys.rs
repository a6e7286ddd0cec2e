//! `~/.ssh/authorized_keys`: exactly the declared keys (`exclusive_keys`), or
//! at least them. sshd ignores a key file others can write, so the directory is
//! kept 0700 and the file 0600, both owned by the user.

use std::sync::Arc;

use super::super::attrs::{Mode, attr_changes};
use super::super::plan::{Op, Touch};
use super::super::script::Record;
use super::super::{Kind, ResourceError, too_large};
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
        Some(g) if g.parse::<u32>().is_err() => Some(g.clone()),
        _ => cur.map(|c| c.group.clone()),
    };
    let (dir, key_file) = (sub(probed, "ssh_"), sub(probed, "keys_"));
    let kind = key_file.get("type").unwrap_or("none");
    if keys.is_empty() && (!u.exclusive_keys || kind == "none") {
        return Ok(Part::default());
    }
    let mut part = Part::default();
    let mut sh = Vec::new();
    match dir.get("type").unwrap_or("none") {
        "none" => {
            sh.push(format!(
                "[ -d {h} ] || {{ echo \"home directory {h} does not exist, so authorized_keys cannot be installed\" >&2; exit 1; }}",
                h = quote(home)
            ));
            sh.push(format!("mkdir -m 700 {}", quote(&ssh)));
            sh.push(format!("chown {} {}", quote(&owner), quote(&ssh)));
            part.what.push(format!("create {ssh}"));
            if probed.get("home_exists") == Some("yes") {
                part.touches.push(Touch::Path(ssh.clone()));
            }
        }
        "dir" => {
            let (what, fixes) = attr_changes(
                &dir,
                Some(Mode(0o700)),
                Some(&u.name),
                group.as_deref(),
                &quote(&ssh),
            );
            part.what.extend(what.iter().map(|w| format!("{ssh}: {w}")));
            sh.extend(fixes);
            if !what.is_empty() {
                part.touches.push(Touch::Attrs(ssh.clone()));
            }
        }
        other => {
            return Err(not_ours(&label, &ssh, other, "a directory"));
        }
    }
    if !sh.is_empty() {
        part.ops.push(Op::Sh(sh.join("\n")));
    }

    let current = match kind {
        "none" => String::new(),
        "file" => match too_large(label.clone(), &file, key_file.get("size")) {
            Some(e) => return Err(e),
            None => probed.text("keys"),
        },
        other => return Err(not_ours(&label, &file, other, "a regular file")),
    };
    let (wanted, what) = if u.exclusive_keys {
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
            .filter(|k| !has_key(&current, k))
            .collect();
        let mut text = current.clone();
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
    };
    if kind == "none" || wanted != current {
        part.what.push(what);
        part.touches.push(Touch::Path(file.clone()));
        part.ops.push(Op::Put {
            data: Arc::new(wanted.into_bytes()),
            dest: file,
            mode: Some(0o600),
            owner: Some(owner),
            group: None,
            stage: key_file.get("stage").map(str::to_string),
        });
    } else {
        let (what, fixes) = attr_changes(
            &key_file,
            Some(Mode(0o600)),
            Some(&u.name),
            group.as_deref(),
            &quote(&file),
        );
        if !what.is_empty() {
            part.what
                .extend(what.iter().map(|w| format!("{file}: {w}")));
            part.touches.push(Touch::Attrs(file));
            part.ops.push(Op::Sh(fixes.join("\n")));
        }
    }
    Ok(part)
}

/// The fields of `probed` starting with `prefix`, without it.
fn sub(probed: &Record, prefix: &str) -> Record {
    let mut r = Record::default();
    for (k, v) in &probed.fields {
        if let Some(k) = k.strip_prefix(prefix) {
            r.fields.insert(k.to_string(), v.clone());
        }
    }
    r
}

fn not_ours(label: &str, path: &str, kind: &str, expected: &str) -> ResourceError {
    ResourceError::Conflict {
        resource: label.to_string(),
        reason: format!(
            "{path} is a {} where {expected} is expected; parc leaves it alone and installs no keys",
            if kind == "link" { "symlink" } else { kind }
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
