//! The account itself: useradd / usermod / userdel (or busybox's closest
//! equivalents), with the journal's undo for each.

use super::super::accounts::{Tools, group_exists_sh, set_hash_sh, user_exists_sh};
use super::super::plan::{Op, Touch};
use super::super::script::Record;
use super::super::{Kind, ResourceError};
use super::{Current, Part, User};
use crate::render::Number;
use crate::transport::quote;

/// `useradd`/`adduser` for a new account, then its groups and password.
pub(super) fn create(u: &User, tools: Tools, probed: &Record) -> Part {
    let n = quote(&u.name);
    let home = probed.get("home").unwrap_or_default();
    let groups = u.groups.clone().unwrap_or_default();
    let mut sh = Vec::new();
    // Flags before the primary group, which depends on what exists at apply time.
    let (mut flags, group_flag, own_group_flag) = match tools {
        Tools::Shadow => {
            let mut f = format!("useradd -m -d {}", quote(home));
            push_opt(&mut f, "-u", u.uid.as_ref().map(Number::to_string));
            if !groups.is_empty() {
                push_opt(&mut f, "-G", Some(groups.join(",")));
            }
            (f, "-g", " -U")
        }
        Tools::Busybox => {
            sh.push(
                "# no useradd on this host: busybox adduser -D creates the account without a \
                 password, addgroup adds each supplementary group, chpasswd -e sets the hash"
                    .to_string(),
            );
            let mut f = format!("adduser -D -h {}", quote(home));
            push_opt(&mut f, "-u", u.uid.as_ref().map(Number::to_string));
            (f, "-G", "")
        }
    };
    let (shell_flag, comment_flag) = match tools {
        Tools::Shadow => ("-s", "-c"),
        Tools::Busybox => ("-s", "-g"),
    };
    push_opt(&mut flags, shell_flag, u.shell.clone());
    push_opt(&mut flags, comment_flag, u.comment.clone());
    match u.group.as_deref() {
        // A group named after the user is created along with it, unless a
        // `group` resource (or anything else) created it first.
        Some(g) if g == u.name => sh.push(format!(
            "if parc_getent group {n} >/dev/null; then {flags} {group_flag} {n} {n}; else {flags}{own_group_flag} {n}; fi"
        )),
        Some(g) => sh.push(format!("{flags} {group_flag} {} {n}", quote(g))),
        None => sh.push(format!("{flags} {n}")),
    }
    if tools == Tools::Busybox {
        sh.extend(groups.iter().map(|g| format!("addgroup {n} {}", quote(g))));
    }
    let mut what = vec![match &u.uid {
        Some(uid) => format!("create (uid {uid}, home {home})"),
        None => format!("create (home {home})"),
    }];
    if let Some(hash) = &u.password {
        sh.push(set_hash_sh(&u.name, &hash.0));
        what.push("password hash set".into());
    }
    let mut touches = Vec::new();
    // Restored newest first: the account goes, then the home it created.
    if probed.get("home_exists") != Some("yes") {
        touches.push(Touch::Path(home.to_string()));
    }
    touches.push(Touch::Undo(format!(
        "if {}; then {}; fi",
        user_exists_sh(&u.name),
        delete_sh(tools, &u.name, false)
    )));
    // Each line a command (busybox's start with a comment): a plain step.
    let ops = match tools {
        Tools::Shadow => sh.into_iter().map(Op::Run).collect(),
        Tools::Busybox => vec![Op::Sh(sh.join("\n"))],
    };
    Part { what, ops, touches }
}

/// `usermod` for what differs; busybox can only change groups and password.
pub(super) fn modify(
    u: &User,
    tools: impl Fn() -> Result<Tools, ResourceError>,
    cur: &Current,
) -> Result<Part, ResourceError> {
    let n = quote(&u.name);
    let (mut what, mut flags, mut undo_flags) = (Vec::new(), String::new(), String::new());
    let group = u.group.as_ref().filter(|g| match crate::numbers::id(g) {
        Some(gid) => gid != cur.gid,
        None => **g != cur.group,
    });
    if let Some(g) = group {
        what.push(format!("group {} -> {g}", cur.group));
        push_opt(&mut flags, "-g", Some(g.clone()));
        push_opt(&mut undo_flags, "-g", Some(cur.gid.to_string()));
    }
    for (label, flag, old, new, note) in [
        (
            "uid",
            "-u",
            cur.uid.to_string(),
            u.uid.as_ref().map(Number::to_string),
            "",
        ),
        ("shell", "-s", cur.shell.clone(), u.shell.clone(), ""),
        (
            "home",
            "-d",
            cur.home.clone(),
            u.home.clone(),
            " (contents not moved)",
        ),
        ("comment", "-c", cur.comment.clone(), u.comment.clone(), ""),
    ] {
        if let Some(new) = new.filter(|new| *new != old) {
            what.push(format!("{label} {old} -> {new}{note}"));
            push_opt(&mut flags, flag, Some(new));
            push_opt(&mut undo_flags, flag, Some(old));
        }
    }
    let fields_changed = !what.is_empty();

    let want = u.groups.clone().unwrap_or_default();
    let added: Vec<&String> = want.iter().filter(|g| !cur.groups.contains(g)).collect();
    let removed: Vec<&String> = if u.groups_exclusive && u.groups.is_some() {
        cur.groups.iter().filter(|g| !want.contains(g)).collect()
    } else {
        vec![]
    };
    let mut changes: Vec<String> = added.iter().map(|g| format!("+{g}")).collect();
    changes.extend(removed.iter().map(|g| format!("-{g}")));
    if !changes.is_empty() {
        what.push(format!("groups {}", changes.join(" ")));
    }

    let hash_changed = match (&u.password, &cur.hash) {
        (None, _) => false,
        (Some(want), Some(have)) => want.0 != *have,
        (Some(_), None) => {
            return Err(ResourceError::Unsupported {
                resource: u.label(),
                reason: "the probe could not read /etc/shadow (it needs root: use become), so parc cannot tell whether the password hash differs".into(),
            });
        }
    };
    if hash_changed {
        what.push("password hash changed".into());
    }
    if what.is_empty() {
        return Ok(Part::default());
    }

    let tools = tools()?;
    let (mut sh, mut undo) = (Vec::new(), Vec::new());
    match tools {
        Tools::Shadow => {
            if !changes.is_empty() {
                if removed.is_empty() {
                    let list: Vec<&str> = added.iter().map(|g| g.as_str()).collect();
                    push_opt(&mut flags, "-a -G", Some(list.join(",")));
                } else {
                    push_opt(&mut flags, "-G", Some(want.join(",")));
                }
                push_opt(&mut undo_flags, "-G", Some(cur.groups.join(",")));
            }
            if !flags.is_empty() {
                sh.push(format!("usermod{flags} {n}"));
                undo.push(format!("usermod{undo_flags} {n}"));
            }
        }
        Tools::Busybox => {
            if fields_changed {
                return Err(ResourceError::Unsupported {
                    resource: u.label(),
                    reason: format!(
                        "busybox has no usermod, so parc can only change groups and password here, not: {} (install the shadow utilities)",
                        what.iter()
                            .filter(|w| !w.starts_with("groups") && !w.starts_with("password"))
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            for g in &added {
                sh.push(format!("addgroup {n} {}", quote(g)));
                undo.push(format!("delgroup {n} {}", quote(g)));
            }
            for g in &removed {
                sh.push(format!("delgroup {n} {}", quote(g)));
                undo.push(format!("addgroup {n} {}", quote(g)));
            }
        }
    }
    if let (true, Some(want), Some(have)) = (hash_changed, &u.password, &cur.hash) {
        sh.push(set_hash_sh(&u.name, &want.0));
        undo.push(set_hash_sh(&u.name, have));
    }
    Ok(Part {
        what,
        // Each line one command: a plain step.
        ops: sh.into_iter().map(Op::Run).collect(),
        touches: vec![Touch::Undo(undo.join("\n"))],
    })
}

/// `userdel` (home kept unless `remove_home`); the undo recreates the account
/// as it was, with its primary group if that went with it.
pub(super) fn delete(u: &User, tools: Tools, cur: &Current) -> Part {
    let n = quote(&u.name);
    let g = quote(&cur.group);
    let mut recreate = vec![format!(
        "if ! {}; then {}; fi",
        group_exists_sh(&cur.group),
        match tools {
            Tools::Shadow => format!("groupadd -g {} {g}", cur.gid),
            Tools::Busybox => format!("addgroup -g {} {g}", cur.gid),
        }
    )];
    let mut add = match tools {
        Tools::Shadow => format!(
            "useradd -M -u {} -g {} -d {}",
            cur.uid,
            cur.gid,
            quote(&cur.home)
        ),
        Tools::Busybox => format!(
            "adduser -D -H -u {} -G {g} -h {}",
            cur.uid,
            quote(&cur.home)
        ),
    };
    push_opt(
        &mut add,
        "-s",
        Some(cur.shell.clone()).filter(|s| !s.is_empty()),
    );
    let comment_flag = if tools == Tools::Shadow { "-c" } else { "-g" };
    push_opt(
        &mut add,
        comment_flag,
        Some(cur.comment.clone()).filter(|c| !c.is_empty()),
    );
    recreate.push(format!("{add} {n}"));
    if !cur.groups.is_empty() {
        recreate.push(match tools {
            Tools::Shadow => format!("usermod -G {} {n} || true", quote(&cur.groups.join(","))),
            Tools::Busybox => cur
                .groups
                .iter()
                .map(|s| format!("addgroup {n} {} || true", quote(s)))
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    if let Some(hash) = &cur.hash {
        recreate.push(set_hash_sh(&u.name, hash));
    }
    let mut touches = Vec::new();
    // Saved first, restored last: into the recreated account's home.
    if u.remove_home {
        touches.push(Touch::Path(cur.home.clone()));
    }
    touches.push(Touch::Undo(format!(
        "if ! {}; then\n{}\nfi",
        user_exists_sh(&u.name),
        recreate.join("\n")
    )));
    Part {
        what: vec![if u.remove_home {
            format!("remove, with its home {}", cur.home)
        } else {
            format!("remove (home {} kept)", cur.home)
        }],
        ops: vec![Op::Sh(delete_sh(tools, &u.name, u.remove_home))],
        touches,
    }
}

fn delete_sh(tools: Tools, name: &str, remove_home: bool) -> String {
    let n = quote(name);
    match (tools, remove_home) {
        (Tools::Shadow, false) => format!("userdel {n}"),
        (Tools::Shadow, true) => format!("userdel -r {n}"),
        (Tools::Busybox, false) => format!("deluser {n}"),
        (Tools::Busybox, true) => format!("deluser --remove-home {n}"),
    }
}

/// Append ` FLAG 'VALUE'` to a command line.
fn push_opt(line: &mut String, flag: &str, value: Option<String>) {
    if let Some(v) = value {
        line.push_str(&format!(" {flag} {}", quote(&v)));
    }
}
