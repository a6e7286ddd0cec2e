//! Numbers read from text: one home per kind of number that parc reads in
//! more than one place, each with its grammar, so a profile's value and the
//! same kind of value read back from a target cannot drift apart.
//!
//! Kinds with their home here:
//! - [`mode`]: a permission mode, octal, at most `7777`; from a profile
//!   (`mode: "0644"`, `0o644`, or an unquoted YAML number read as its
//!   digits) and from a target's `stat` output (`644`).
//! - [`id`]: a uid or gid, decimal; from a profile (`group: 100`, a gid
//!   rather than a name) and from a target's `getent passwd` / `getent
//!   group` lines.
//! - [`exit_code`]: a shell's exit status, decimal; from the framed
//!   output of parc's scripts (`@@done ID RC`) and from the lock exec.
//! - [`host_port`]: a port written after a host (`db1:2222`, `[fe80::1]:22`),
//!   in an inventory's host entries and in a jump host (`ProxyJump`).
//!
//! Kinds read in one place keep that place as their home, where the grammar
//! is documented: templated whole numbers of resources and tests
//! (`render::Number`: a number, or a template rendering to one), batch sizes
//! and failure budgets as counts or percentages (`playbook::batches::Amount`,
//! shared by both) and playbook durations (`playbook::batches::duration`),
//! byte sizes on the command line (bytesize's grammar, through clap), the image helper's
//! protocol, and the facts probe's output (`facts::parse`).
//!
//! Inventory values are deliberately NOT one grammar: an Ansible INI
//! inventory types its values as Python's `ast.literal_eval` does
//! (`inventory::pyliteral`: `0644` is a string, `0o644` a number), its YAML
//! files as PyYAML's YAML 1.1 does (`inventory::yaml11`: `0644` is octal,
//! `1:30` is 90), because Ansible does; parc's own YAML layout is YAML 1.2.
//! Unifying them would give other values than Ansible for the same file.

/// A permission mode written in octal digits (an optional `0o` prefix, as
/// Python and YAML 1.2 write it), at most `0o7777`: setuid, setgid, sticky
/// and the nine permission bits. `None` for anything else.
pub(crate) fn mode(text: &str) -> Option<u32> {
    let digits = text.trim_start_matches("0o");
    u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o7777)
}

/// A uid or gid: decimal digits, as `getent` prints them and as a profile
/// names a group by number. `None` when `text` is a name, not a number.
pub(crate) fn id(text: &str) -> Option<u32> {
    text.parse().ok()
}

/// A port written after a host, `host:2222`: the host and its port. A `:`
/// inside `[...]` (an inventory range, or an IPv6 address, given back without
/// its brackets) is not a port separator, nor is any `:` of a bare IPv6.
/// The grammar of Ansible's inventories and of OpenSSH's jump hosts
/// (`[user@]host[:port]`).
pub(crate) fn host_port(entry: &str) -> (&str, Option<u16>) {
    let Some((head, port)) = entry.rsplit_once(':') else {
        return (entry, None);
    };
    let Ok(port) = port.parse::<u16>() else {
        return (entry, None);
    };
    if let Some(v6) = head.strip_prefix('[').and_then(|h| h.strip_suffix(']'))
        && v6.contains(':')
    {
        return (v6, Some(port));
    }
    let mut depth = 0i32;
    for c in head.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => return (entry, None),
            _ => {}
        }
    }
    (head, Some(port))
}

/// A shell's exit status as a script printed it. `None` for anything else
/// (a frame that does not parse).
pub(crate) fn exit_code(text: &str) -> Option<i32> {
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal_permissions() {
        assert_eq!(mode("0644"), Some(0o644));
        assert_eq!(mode("644"), Some(0o644));
        assert_eq!(mode("0o1777"), Some(0o1777));
        assert_eq!(mode("7777"), Some(0o7777));
        assert_eq!(mode("10000"), None);
        assert_eq!(mode("0855"), None);
        assert_eq!(mode("rw-r--r--"), None);
        assert_eq!(mode(""), None);
    }

    #[test]
    fn ids_are_decimal_or_a_name() {
        assert_eq!(id("1000"), Some(1000));
        assert_eq!(id("staff"), None);
        assert_eq!(id("-1"), None);
        assert_eq!(id("4294967296"), None);
    }

    #[test]
    fn ports_after_hosts() {
        assert_eq!(host_port("db1:2200"), ("db1", Some(2200)));
        assert_eq!(host_port("n[1:2]:22"), ("n[1:2]", Some(22)));
        assert_eq!(host_port("n[1:2]"), ("n[1:2]", None));
        assert_eq!(host_port("[fe80::1]:22"), ("fe80::1", Some(22)));
        assert_eq!(host_port("fe80::1"), ("fe80::1", None));
        assert_eq!(host_port("db1:ssh"), ("db1:ssh", None));
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code("0"), Some(0));
        assert_eq!(exit_code("127"), Some(127));
        assert_eq!(exit_code("x"), None);
    }
}
