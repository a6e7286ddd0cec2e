//! Who ran a run, from where, with what command line.

use serde::{Deserialize, Serialize};

use crate::render::{REDACTED, looks_secret};

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

fn is_secret(name: &str, secret_names: &[String]) -> bool {
    secret_names.iter().any(|s| s == name) || looks_secret(name)
}

/// The command line with the value of every `-e KEY=VALUE` whose key looks
/// secret (or is one of `secret_names`, the playbook's `secret_vars`)
/// replaced, in every spelling clap accepts: `-e K=V`, `-eK=V`, `-e=K=V`,
/// `-ve K=V`, `--extra-vars K=V`, `--extra-vars=K=V` (and `--extra-var`),
/// several assignments in one argument read as `-e` reads them. In a mapping
/// (`-e '{"db_password": "x"}'`, or a mapping VALUE) the value of every such
/// key is replaced, at any depth. Arguments after `--`
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
        let attached = if arg == "--extra-vars" || arg == "--extra-var" {
            value_next = true;
            None
        } else if let Some(rest) = arg
            .strip_prefix("--extra-vars=")
            .or_else(|| arg.strip_prefix("--extra-var="))
        {
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
    crate::inventory::extra_vars::redact(item, &|k| is_secret(k, secret_names), REDACTED)
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

    /// `-e` reads several assignments in one argument and takes the long
    /// spelling `--extra-vars`, as Ansible does: a secret in either never
    /// reaches the report.
    #[test]
    fn redacts_secrets_among_several_assignments_and_in_the_long_spelling() {
        let line = vec![
            "parc".to_string(),
            "apply".into(),
            "-e".into(),
            r#"user=bob share_password=hunter22  msg="a b" api_token='x y'"#.into(),
            "--extra-vars".into(),
            "wifi_psk=p1".into(),
            "--extra-vars=db_pass=p2".into(),
            "-e".into(),
            "unclosed='p3 token=p4".into(),
        ];
        let got = redact_command_line(&line, &["wifi_psk".to_string()]).join(" | ");
        assert_eq!(
            got,
            r#"parc | apply | -e | user=bob share_password=<redacted>  msg="a b" api_token=<redacted> | --extra-vars | wifi_psk=<redacted> | --extra-vars=db_pass=<redacted> | -e | <redacted>"#
        );
    }

    #[test]
    fn redacts_secret_keys_of_mappings_at_any_depth() {
        let line = vec![
            "parc".to_string(),
            "apply".into(),
            "-e".into(),
            r#"{"db_password": "x1", "site": {"api_token": "x2", "name": "hq"}, "vault": [1]}"#
                .into(),
            r#"-e=db={"admin_pass":"x3","port":5432}"#.into(),
            // Split at its spaces, as Ansible reads it: not a KEY=VALUE list.
            r#"-e=db={"admin_pass": "x5", "port": 5432}"#.into(),
            "-e".into(),
            r#"{"broken": "x4""#.into(),
        ];
        let got = redact_command_line(&line, &["vault".to_string()]).join(" ");
        assert_eq!(
            got,
            r#"parc apply -e {"db_password":"<redacted>","site":{"api_token":"<redacted>","name":"hq"},"vault":"<redacted>"} -e=db={"admin_pass":"<redacted>","port":5432} -e=<redacted> -e <redacted>"#
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
