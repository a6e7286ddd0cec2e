use std::path::Path;

use super::*;
use crate::transport::known_hosts::HostKeyPolicy;

fn inv(text: &str) -> Inventory {
    Inventory::from_str(text, Path::new("/etc/parc/inv.yml")).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    Inventory::from_str(text, Path::new("inv.yml"))
        .unwrap_err()
        .to_string()
}

fn names(i: &Inventory, pattern: &str) -> Vec<String> {
    i.select(pattern)
        .unwrap_or_else(|e| panic!("{pattern}: {e}"))
        .into_iter()
        .map(|h| h.name.clone())
        .collect()
}

const NATIVE: &str = "\
defaults:
  user: root
  port: 22
  identity_file: keys/id_ed25519
  known_hosts: /abs/known_hosts
  host_key_policy: accept-new
vars: {level: all, ntp: pool}
hosts:
  ws-001: {address: 10.0.0.1, vars: {level: host}}
  ws-002:
    address: 10.0.0.2
    port: 2222
    user: tech
    identity_file: ~/.ssh/other
    jump: bastion
    host_key_policy: strict
    become: {user: admin, password_env: PW}
  ws-003:
  bastion: {address: 192.0.2.1, connection: local, become: true}
groups:
  office: {hosts: [ws-001, ws-002], children: [accounting], vars: {level: office, printer: p1}}
  accounting: {hosts: [ws-003], vars: {level: accounting}}
  linux: {hosts: [ws-001, ws-003]}
";

/// parc's own layout is told by its top-level keys whatever the YAML style:
/// block, flow, or JSON (which tools write), and an Ansible inventory in
/// JSON stays one.
#[test]
fn native_layout_in_flow_style_or_json() {
    for text in [
        "{defaults: {user: tech}, hosts: {ws-001: {address: 10.0.0.1}}}",
        r#"{"hosts": {"ws-001": {"address": "10.0.0.1", "user": "tech"}}}"#,
        "---\n# comment\n{hosts: {ws-001: {address: 10.0.0.1, user: tech}}}\n",
    ] {
        let i = inv(text);
        let h = &i
            .host("ws-001")
            .unwrap_or_else(|| panic!("{text}"))
            .connection;
        assert_eq!(h.address.as_deref(), Some("10.0.0.1"), "{text}");
        assert_eq!(h.user.as_deref(), Some("tech"), "{text}");
    }
    let i = inv(r#"{"all": {"hosts": {"ws-001": {"ansible_host": "10.0.0.1"}}}}"#);
    let h = &i.host("ws-001").unwrap().connection;
    assert_eq!(h.address.as_deref(), Some("10.0.0.1"));
}

#[test]
fn native_fields_and_defaults() {
    let i = inv(NATIVE);
    let h1 = &i.host("ws-001").unwrap().connection;
    assert_eq!(h1.address.as_deref(), Some("10.0.0.1"));
    assert_eq!(h1.user.as_deref(), Some("root"));
    assert_eq!(h1.port, Some(22));
    assert_eq!(
        h1.identity_file.as_deref(),
        Some(Path::new("/etc/parc/keys/id_ed25519"))
    );
    assert_eq!(
        h1.known_hosts.as_deref(),
        Some(Path::new("/abs/known_hosts"))
    );
    assert_eq!(h1.host_key_policy, Some(HostKeyPolicy::AcceptNew));
    let h2 = &i.host("ws-002").unwrap().connection;
    assert_eq!(h2.port, Some(2222));
    assert_eq!(h2.user.as_deref(), Some("tech"));
    assert_eq!(h2.jump.as_deref(), Some("bastion"));
    assert_eq!(h2.host_key_policy, Some(HostKeyPolicy::Strict));
    assert!(h2.identity_file.as_ref().unwrap().ends_with(".ssh/other"));
    assert_eq!(
        h2.become_,
        Some(Become {
            user: "admin".into(),
            password_env: Some("PW".into())
        })
    );
    assert_eq!(
        i.host("ws-003").unwrap().connection.address,
        None,
        "name is the address"
    );
    let b = &i.host("bastion").unwrap().connection;
    assert_eq!(b.kind, ConnectionKind::Local);
    assert_eq!(b.become_.as_ref().unwrap().user, "root");
}

#[test]
fn precedence_all_then_outer_then_inner_group_then_host() {
    let i = inv(NATIVE);
    assert_eq!(i.vars_for("ws-001")["level"], "host");
    assert_eq!(i.vars_for("ws-002")["level"], "office");
    // ws-003 is in accounting, nested in office: the inner group wins.
    assert_eq!(i.vars_for("ws-003")["level"], "accounting");
    assert_eq!(
        i.vars_for("ws-003")["printer"],
        "p1",
        "inherited from the outer group"
    );
    assert_eq!(i.vars_for("bastion")["level"], "all");
    assert_eq!(i.groups_of("ws-003"), vec!["accounting", "linux", "office"]);
}

#[test]
fn native_errors_have_locations() {
    let e = err("hosts:\n  ws-001:\n    adress: 10.0.0.1\n");
    assert!(e.starts_with("inv.yml:3:5: "), "{e}");
    assert!(
        e.contains("unknown field `adress`") && e.contains("address"),
        "{e}"
    );
    insta::assert_snapshot!(e);
    let e = err("defaults:\n  usr: root\nhosts: {}\n");
    assert!(e.starts_with("inv.yml:2:3: "), "{e}");
    let e = err("hosts: {a: {}}\ngroups:\n  g:\n    hosts: [a]\n    colour: red\n");
    assert!(
        e.starts_with("inv.yml:5:5: ") && e.contains("colour"),
        "{e}"
    );
    let e = err("hosts:\n  a: {port: abc}\n");
    assert!(e.starts_with("inv.yml:2:") && e.contains("invalid"), "{e}");
    let e = err("hosts:\n  a: {address: [1\n");
    assert!(e.starts_with("inv.yml:"), "{e}");
    let e = err("hosts: {a: {}}\ngroups:\n  g: {hosts: [a, b]}\n");
    assert!(e.starts_with("inv.yml:3:") && e.contains("`b`"), "{e}");
    insta::assert_snapshot!(e);
    let e = err("hosts: {a: {}}\ngroups:\n  g: {children: [h]}\n  h: {children: [g]}\n");
    assert!(e.contains("cycle") && e.contains("g -> h -> g"), "{e}");
}

const ANSIBLE: &str = "\
all:
  vars: {level: all, ansible_user: deploy}
  hosts:
    lone: {ansible_host: 192.0.2.9}
  children:
    office:
      vars: {level: office}
      hosts:
        ws-001: {ansible_host: 10.0.0.1, ansible_port: 2222, desk: A1}
        ws-002:
      children:
        accounting:
          vars: {level: accounting, ansible_become: yes}
          hosts:
            ws-002: {ansible_ssh_private_key_file: keys/acct}
    linux:
      hosts:
        ws-001:
      vars:
        ansible_ssh_common_args: '-o UserKnownHostsFile=/lab/known_hosts -o StrictHostKeyChecking=yes -F cfg'
        ansible_ssh_extra_args: '-o\"UserKnownHostsFile=/a /b\" -oHostKeyAlias=x -v'
";

#[test]
fn ansible_layout_unchanged() {
    let i = inv(ANSIBLE);
    assert_eq!(names(&i, "all"), vec!["lone", "ws-001", "ws-002"]);
    let w1 = &i.host("ws-001").unwrap().connection;
    assert_eq!(w1.address.as_deref(), Some("10.0.0.1"));
    assert_eq!(w1.port, Some(2222));
    assert_eq!(w1.user.as_deref(), Some("deploy"));
    assert_eq!(
        w1.ssh_args.options,
        [
            "UserKnownHostsFile=/lab/known_hosts",
            "StrictHostKeyChecking=yes",
            "UserKnownHostsFile=/a /b",
            "HostKeyAlias=x"
        ]
    );
    assert_eq!(w1.ssh_args.config_file.as_deref(), Some(Path::new("cfg")));
    let w2 = &i.host("ws-002").unwrap().connection;
    assert_eq!(
        w2.identity_file.as_deref(),
        Some(Path::new("/etc/parc/keys/acct"))
    );
    assert_eq!(w2.become_.as_ref().unwrap().user, "root");
    assert_eq!(i.vars_for("ws-001")["desk"], "A1");
    assert_eq!(i.vars_for("ws-001")["level"], "office");
    assert_eq!(i.vars_for("ws-002")["level"], "accounting");
    assert_eq!(i.vars_for("lone")["level"], "all");
    assert_eq!(
        names(&i, "office"),
        vec!["ws-001", "ws-002"],
        "children included"
    );
    let e = err("all:\n  hosts: {a: }\n  childs: {}\n");
    assert!(e.starts_with("inv.yml:3:") && e.contains("childs"), "{e}");
}

#[test]
fn patterns() {
    let i = inv(NATIVE);
    assert_eq!(
        names(&i, "all"),
        vec!["ws-001", "ws-002", "ws-003", "bastion"]
    );
    assert_eq!(names(&i, "*"), names(&i, "all"));
    assert_eq!(names(&i, "office"), vec!["ws-001", "ws-002", "ws-003"]);
    assert_eq!(names(&i, "accounting"), vec!["ws-003"]);
    assert_eq!(names(&i, "ws-00*"), vec!["ws-001", "ws-002", "ws-003"]);
    assert_eq!(names(&i, "ws-00[12]"), vec!["ws-001", "ws-002"]);
    assert_eq!(
        names(&i, "acc*"),
        vec!["ws-003"],
        "globs match group names too"
    );
    assert_eq!(names(&i, "ws-001,bastion"), vec!["ws-001", "bastion"]);
    assert_eq!(names(&i, "ws-001:bastion"), vec!["ws-001", "bastion"]);
    assert_eq!(names(&i, "all:!office"), vec!["bastion"]);
    assert_eq!(names(&i, "office:&linux"), vec!["ws-001", "ws-003"]);
    assert_eq!(names(&i, "office,bastion:!ws-003:&linux"), vec!["ws-001"]);
    assert_eq!(
        names(&i, "!office"),
        vec!["bastion"],
        "only exclusions start from all"
    );
    assert!(matches!(i.select(""), Err(PatternError::Empty)));
    assert!(matches!(i.select(" , "), Err(PatternError::Empty)));
    let e = i.select("office,nosuch").unwrap_err();
    assert!(
        matches!(&e, PatternError::NoMatch { term, .. } if term == "nosuch"),
        "{e}"
    );
    insta::assert_snapshot!(e.to_string().replace("/etc/parc/", ""));
    assert!(matches!(
        i.select("ws-001:!ws-001"),
        Err(PatternError::EmptyResult { .. })
    ));
    assert!(matches!(
        i.select("ws-[1"),
        Err(PatternError::BadTerm { .. })
    ));
    assert!(matches!(
        i.select("office:&"),
        Err(PatternError::BadTerm { .. })
    ));
}

#[test]
fn ansible_ranges_and_var_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts.yml");
    std::fs::write(
        &path,
        "all:\n  vars: {level: all, site: hq}\n  children:\n    office:\n      vars: {level: office-inline}\n      hosts:\n        ws-[01:03]: {desk: open}\n",
    )
    .unwrap();
    let write = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("group_vars/office.yml", "level: office-file\nprinter: p1\n");
    write("group_vars/all/10-base.yml", "site: branch\ntz: UTC\n");
    write("group_vars/all/20-more.yaml", "tz: Europe/Paris\n");
    write("group_vars/all/.20-more.yaml.swp", "not: read\n");
    write("host_vars/ws-02.json", "{\"desk\": \"B4\"}");

    let i = Inventory::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names(&i, "office"), vec!["ws-01", "ws-02", "ws-03"]);
    let v = i.vars_for("ws-02");
    assert_eq!(v["level"], "office-file", "group_vars/ over the file");
    assert_eq!(v["printer"], "p1");
    assert_eq!(v["site"], "branch", "group_vars/all/ over all.vars");
    assert_eq!(
        v["tz"], "Europe/Paris",
        "files of a directory in name order"
    );
    assert!(!v.contains_key("not"), "hidden files are not read");
    assert_eq!(v["desk"], "B4", "host_vars/ over the host's own");
    assert_eq!(i.vars_for("ws-01")["desk"], "open");

    write("host_vars/ws-03.yml", "- a list\n");
    let e = Inventory::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("host_vars/ws-03.yml:1:1") && e.contains("mapping"),
        "{e}"
    );
    write("host_vars/ws-03.yml", "desk: [unclosed\n");
    let e = Inventory::load(&path).unwrap_err().to_string();
    assert!(e.contains("host_vars/ws-03.yml:"), "{e}");
    std::fs::remove_file(dir.path().join("host_vars/ws-03.yml")).unwrap();

    std::fs::write(&path, "all:\n  hosts:\n    ws-[09:1]: {desk: x}\n").unwrap();
    let e = Inventory::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("hosts.yml:3:") && e.contains("same number of digits"),
        "{e}"
    );
}

#[test]
fn two_names_for_one_machine_are_refused_with_both_names() {
    let e = err("hosts:\n  a: {address: 10.0.0.1}\n  b: {address: 10.0.0.1, port: 22}\n");
    assert!(e.starts_with("inv.yml:3:6: "), "{e}");
    assert!(e.contains("`a` and `b` both reach 10.0.0.1 port 22"), "{e}");
    let e = err("hosts:\n  ws1: {}\n  b: {address: WS1}\n");
    assert!(e.contains("`ws1` and `b`"), "{e}");
    let e =
        err("all:\n  hosts:\n    a: {ansible_host: 10.0.0.1}\n    b: {ansible_host: 10.0.0.1}\n");
    assert!(e.contains("`a` and `b`"), "{e}");
    // Another port, or the same address behind another jump host, is another machine.
    inv(
        "hosts:\n  a: {address: 10.0.0.1}\n  b: {address: 10.0.0.1, port: 2222}\n  c: {address: 10.0.0.1, jump: gw}\n  gw: {}\n",
    );
}

const INI: &str = "\
# Ansible's default format
lone ansible_host=192.0.2.9
[office]
ws-[001:002] ansible_port=2222 desk=B12
ws-003:2200 ansible_become=True  # a comment
[office:vars]
level=office
ansible_user = deploy
[accounting:children]
office
[accounting:vars]
level=accounting
[all:vars]
level=all
ntp='pool'
";

#[test]
fn ansible_ini_unchanged() {
    let i = inv(INI);
    assert_eq!(names(&i, "all"), vec!["lone", "ws-001", "ws-002", "ws-003"]);
    assert_eq!(names(&i, "ungrouped"), vec!["lone"]);
    assert_eq!(names(&i, "accounting"), names(&i, "office"));
    let w1 = &i.host("ws-001").unwrap().connection;
    assert_eq!(w1.port, Some(2222));
    assert_eq!(w1.user.as_deref(), Some("deploy"));
    let w3 = &i.host("ws-003").unwrap().connection;
    assert_eq!(w3.port, Some(2200), "the port written with the host");
    assert_eq!(w3.become_.as_ref().unwrap().user, "root");
    let v = i.vars_for("ws-001");
    assert_eq!(v["ansible_port"], 2222, "typed as Python types it");
    assert_eq!(v["desk"], "B12");
    assert_eq!(v["level"], "office", "the inner group wins");
    assert_eq!(i.vars_for("lone")["ntp"], "pool");
    assert_eq!(
        i.host("lone").unwrap().connection.address.as_deref(),
        Some("192.0.2.9")
    );
}

#[test]
fn ini_errors_name_the_line_and_what_was_expected() {
    let cases = [
        ("[web]\nws1 desk\n", "inv.yml:2:1: ", "key=value"),
        ("[web]\n  ws1 x='open\n", "inv.yml:2:3: ", "does not close"),
        (
            "[web:hosts]\nw\n[web:kids]\n",
            "inv.yml:3:1: ",
            "unknown type",
        ),
        (
            "[web]\nw\n[web:children]\nnope\n",
            "inv.yml:4:1: ",
            "`nope`",
        ),
        ("[web:vars]\na=1\n", "inv.yml:1:1: ", "defined nowhere"),
        (
            "[web]\nw\n[web:vars]\njust a line\n",
            "inv.yml:4:1: ",
            "key=value",
        ),
        ("[web]\nw\n[web x]\n", "inv.yml:3:1: ", "not a section"),
        ("[web]\nws-[3:1]\n", "inv.yml:2:1: ", "comes after"),
    ];
    for (text, at, what) in cases {
        let e = err(text);
        assert!(e.starts_with(at) && e.contains(what), "{text:?}: {e}");
    }
}
