//! Who ran a run, from where, with what command line.

use serde::{Deserialize, Serialize};

use crate::render::REDACTED;

/// The person behind a run, for the record and the targets' history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Operator {
    /// The human: `$SUDO_USER` when parc runs under sudo (root's name would
    /// say nothing about who did it), else `$USER`, else the account name.
    pub user: String,
    /// The account parc ran as (0 under sudo).
    pub uid: u32,
    /// Whether `user` came from sudo.
    #[serde(default)]
    pub sudo: bool,
}

impl Operator {
    pub fn current() -> Operator {
        let uid = nix::unistd::getuid();
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(user) = env("SUDO_USER") {
            return Operator {
                user,
                uid: uid.as_raw(),
                sudo: true,
            };
        }
        let user = env("USER")
            .or_else(|| {
                nix::unistd::User::from_uid(uid)
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .unwrap_or_else(|| format!("uid {uid}"));
        Operator {
            user,
            uid: uid.as_raw(),
            sudo: false,
        }
    }
}

impl std::fmt::Display for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (uid {}", self.user, self.uid)?;
        if self.sudo {
            f.write_str(", via sudo")?;
        }
        f.write_str(")")
    }
}

/// The controller's name as the record shows it; a machine without one is
/// recorded as such rather than failing the run.
pub fn controller_hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "(unknown host)".to_string())
}

/// Words in a variable name that suggest its value is a secret.
const SECRET_WORDS: &[&str] = &[
    "pass", "pwd", "secret", "token", "key", "cred", "auth", "private",
];

fn looks_secret(name: &str, secret_names: &[String]) -> bool {
    let lower = name.to_ascii_lowercase();
    secret_names.iter().any(|s| s == name) || SECRET_WORDS.iter().any(|w| lower.contains(w))
}

/// The command line with the value of every `-e KEY=VALUE` whose key looks
/// secret (or is one of `secret_names`, the playbook's `secret_vars`)
/// replaced, in every spelling clap accepts: `-e K=V`, `-eK=V`, `-e=K=V`,
/// `-ve K=V`, `--extra-var K=V`, `--extra-var=K=V`. Arguments after `--`
/// (a `parc run` command) are kept: nothing says which of them are secret.
pub fn redact_command_line(args: &[String], secret_names: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut value_next = false;
    for (i, arg) in args.iter().enumerate() {
        if arg == "--" {
            out.extend(args[i..].iter().cloned());
            break;
        }
        if std::mem::take(&mut value_next) {
            out.push(redact_assignment(arg, secret_names));
            continue;
        }
        // Byte index where an attached `K=V` value starts, if this is an -e option.
        let attached = if arg == "--extra-var" {
            value_next = true;
            None
        } else if let Some(rest) = arg.strip_prefix("--extra-var=") {
            Some(arg.len() - rest.len())
        } else if let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.starts_with('-')) {
            // `-v` is the only short flag without a value that can precede `e`.
            let after_v = cluster.trim_start_matches('v');
            match after_v.strip_prefix('e') {
                Some("") => {
                    value_next = true;
                    None
                }
                Some(value) => {
                    let value = value.strip_prefix('=').unwrap_or(value);
                    Some(arg.len() - value.len())
                }
                None => None,
            }
        } else {
            None
        };
        match attached {
            Some(at) => out.push(format!(
                "{}{}",
                &arg[..at],
                redact_assignment(&arg[at..], secret_names)
            )),
            None => out.push(arg.clone()),
        }
    }
    out
}

fn redact_assignment(item: &str, secret_names: &[String]) -> String {
    match item.split_once('=') {
        Some((key, _)) if looks_secret(key.trim(), secret_names) => format!("{key}={REDACTED}"),
        _ => item.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn redacts_secret_extra_vars_in_every_spelling() {
        let line = words(
            "parc -v apply pb.yml -e share_password=hunter22 -eAPI_TOKEN=abc -e=db_pass=x \
             -ve ssh_key=k --extra-var wifi_psk=p --extra-var=proxy=http://p:3128 -e port=2222",
        );
        let got = redact_command_line(&line, &["wifi_psk".to_string()]).join(" ");
        assert_eq!(
            got,
            "parc -v apply pb.yml -e share_password=<redacted> -eAPI_TOKEN=<redacted> \
             -e=db_pass=<redacted> -ve ssh_key=<redacted> --extra-var wifi_psk=<redacted> \
             --extra-var=proxy=http://p:3128 -e port=2222"
        );
    }

    #[test]
    fn leaves_run_commands_and_other_options_alone() {
        let line = words("parc run -i inv.yml all -- echo password=x -e token=y");
        assert_eq!(redact_command_line(&line, &[]), line);
        // `-i` takes a value: `-ie` is the inventory file `e`, not -e.
        let line = words("parc apply -ie pb.yml");
        assert_eq!(redact_command_line(&line, &[]), line);
    }

    #[test]
    fn operator_under_sudo_names_the_human() {
        let op = Operator {
            user: "alice".into(),
            uid: 0,
            sudo: true,
        };
        assert_eq!(op.to_string(), "alice (uid 0, via sudo)");
    }
}
