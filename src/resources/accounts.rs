//! What `user` and `group` share: name rules and the account tools a host has.
//!
//! Hosts come in two flavours: the shadow utilities (`useradd`, `usermod`,
//! `groupadd`, ...) found on every mainstream distribution, and busybox
//! (`adduser`, `addgroup`, ...) on minimal images, which has no way to modify an
//! existing account beyond group membership and password.

use super::ResourceError;
use super::script::Record;
use crate::render::Number;
use crate::transport::quote;

/// Which account tools the probe found (`parc_account_tools` in lib.sh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tools {
    Shadow,
    Busybox,
}

impl Tools {
    /// The tools of the probed host, or why accounts cannot be managed there.
    pub(super) fn of(probed: &Record, resource: &str, tool: &str) -> Result<Tools, ResourceError> {
        match probed.get("tools") {
            Some("shadow") => Ok(Tools::Shadow),
            Some("busybox") => Ok(Tools::Busybox),
            _ => Err(ResourceError::Unsupported {
                resource: resource.to_string(),
                reason: format!(
                    "this host has neither `{tool}` (shadow utilities) nor busybox, so accounts cannot be created or changed here"
                ),
            }),
        }
    }
}

/// A uid or gid (a number, or a template that rendered to one) must fit the
/// account tools: 0 to 4294967295.
pub(super) fn check_id(
    id: Option<&Number>,
    resource: &str,
    what: &str,
) -> Result<(), ResourceError> {
    match id {
        Some(n) if n.value().is_none_or(|v| v > u64::from(u32::MAX)) => {
            Err(ResourceError::Invalid {
                resource: resource.to_string(),
                reason: format!(
                    "{what} `{n}` is not a number from 0 to 4294967295; nothing is changed for it"
                ),
            })
        }
        _ => Ok(()),
    }
}

/// Account names parc accepts: the portable set (letters, digits, `.`, `_`,
/// `-`, not starting with a digit, `-` or `.`, optionally ending in `$` for
/// Samba machine accounts). Anything else would be read as an option or a
/// number by the account tools, or rejected by some of them only.
pub(super) fn check_name(name: &str, resource: &str, what: &str) -> Result<(), ResourceError> {
    let mut chars = name.strip_suffix('$').unwrap_or(name).chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(ResourceError::Invalid {
            resource: resource.to_string(),
            reason: format!(
                "{what} `{name}` is not a portable account name (letters, digits, `.`, `_` and `-`, starting with a letter or `_`); nothing is changed for it"
            ),
        })
    }
}

/// sh condition, usable without lib.sh (journal undo scripts run standalone):
/// whether group `name` exists.
pub(super) fn group_exists_sh(name: &str) -> String {
    format!(
        "awk -F: -v n={} '$1 == n {{ f = 1 }} END {{ exit !f }}' /etc/group",
        quote(name)
    )
}

/// sh condition, usable without lib.sh: whether user `name` exists.
pub(super) fn user_exists_sh(name: &str) -> String {
    format!("id {} >/dev/null 2>&1", quote(name))
}

/// sh that sets the password hash of `name` without putting it on a command
/// line (`printf` is a shell builtin, so it never shows in `ps`).
pub(super) fn set_hash_sh(name: &str, hash: &str) -> String {
    format!(
        "printf '%s\\n' {} | chpasswd -e",
        quote(&format!("{name}:{hash}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["localadmin", "_chrony", "a.b-c_d", "WS01$", "x1"] {
            assert!(check_name(ok, "user x", "user").is_ok(), "{ok}");
        }
        for bad in [
            "", "-r", "1500", ".hidden", "a b", "a:b", "a/b", "é", "$", "a\nb",
        ] {
            let e = check_name(bad, "user x", "user").unwrap_err().to_string();
            assert!(e.contains("not a portable account name"), "{bad}: {e}");
        }
    }
}
