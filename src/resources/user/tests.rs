use super::*;
use crate::resources::Touch;
use crate::resources::testing::{change, put_data, record, step_sh};

const HASH: &str = "$6$salt$Kq2ZAhnZ0yJmW3O6Ea0p6bqC8bZp9oVd1m4lXkV5t1Q";
const OLD_HASH: &str = "$6$old$Zf3mQ0aDk7zN2x1cVb9nM8lK7jH6gF5dS4aP3oI2uY1";
const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIadmin admin@desk";

const FULL: &str = r#"{name: localadmin, uid: 1500, group: localadmin, groups: [sudo, adm],
  shell: /bin/bash, home: /home/localadmin, comment: "Local admin",
  password: "$6$salt$Kq2ZAhnZ0yJmW3O6Ea0p6bqC8bZp9oVd1m4lXkV5t1Q",
  authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIadmin admin@desk"], exclusive_keys: true}"#;

fn user(yaml: &str) -> User {
    crate::location::from_yaml(yaml).unwrap()
}

/// A host without the account (home not there yet).
fn absent(tools: &str) -> Record {
    record(&[
        ("tools", tools),
        ("present", "no"),
        ("home", "/home/localadmin"),
        ("ssh_type", "none"),
        ("keys_type", "none"),
    ])
}

/// A host where the account is exactly as FULL declares it.
fn converged() -> Record {
    let mut r = record(&[
        ("tools", "shadow"),
        ("present", "yes"),
        (
            "passwd",
            "localadmin:x:1500:1500:Local admin:/home/localadmin:/bin/bash",
        ),
        ("group", "localadmin"),
        ("groups", "localadmin sudo adm"),
        ("shadow", HASH),
        ("home", "/home/localadmin"),
        ("home_exists", "yes"),
        ("ssh_type", "dir"),
        ("ssh_mode", "700"),
        ("ssh_owner", "localadmin"),
        ("ssh_group", "localadmin"),
        ("keys_type", "file"),
        ("keys_mode", "600"),
        ("keys_owner", "localadmin"),
        ("keys_group", "localadmin"),
        ("keys_sha256", "0"),
    ]);
    r.blobs
        .insert("keys".into(), format!("{KEY}\n").into_bytes());
    r
}

fn with(mut r: Record, fields: &[(&str, &str)]) -> Record {
    for (k, v) in fields {
        r.fields.insert(k.to_string(), v.to_string());
    }
    r
}

fn plan(u: &User, r: &Record) -> Result<Plan, ResourceError> {
    let plan = u.plan(r, &PlanContext::default());
    // Whatever the decision, the hash is never shown.
    let shown = match &plan {
        Ok(Plan::Change(c) | Plan::Unknown(c)) => c.what.join("\n"),
        Ok(Plan::NoChange) => String::new(),
        Err(e) => e.to_string(),
    };
    assert!(
        !shown.contains(HASH) && !shown.contains(OLD_HASH),
        "{shown}"
    );
    assert!(!format!("{u:?}").contains(HASH));
    plan
}

#[test]
fn creates_the_account_then_its_keys_in_one_step() {
    let c = change(plan(&user(FULL), &absent("shadow")).unwrap());
    assert_eq!(
        c.what,
        [
            "create (uid 1500, home /home/localadmin)",
            "password hash set",
            "create /home/localadmin/.ssh",
            "authorized_keys: exactly 1 key(s)",
        ]
    );
    let sh = step_sh(&c);
    let useradd =
        "useradd -m -d /home/localadmin -u 1500 -G 'sudo,adm' -s /bin/bash -c 'Local admin'";
    assert!(
        sh.starts_with(&format!(
            "if parc_getent group localadmin >/dev/null; then {useradd} -g localadmin localadmin; else {useradd} -U localadmin; fi\n"
        )),
        "{sh}"
    );
    assert!(
        sh.contains(&format!("printf '%s\\n' 'localadmin:{HASH}' | chpasswd -e")),
        "{sh}"
    );
    let (account, keys) = (
        sh.find("useradd").unwrap(),
        sh.find("mkdir -m 700").unwrap(),
    );
    assert!(account < keys, "the account exists before its keys: {sh}");
    assert!(
        sh.contains("chown -h -- localadmin: /home/localadmin/.ssh"),
        "{sh}"
    );
    assert!(
        sh.ends_with("put /home/localadmin/.ssh/authorized_keys 600 localadmin:"),
        "{sh}"
    );
    assert_eq!(
        put_data(&c, "/home/localadmin/.ssh/authorized_keys").unwrap(),
        format!("{KEY}\n")
    );
    // Undone newest first: keys, account, then the home useradd created.
    assert_eq!(c.touches[0], Touch::Path("/home/localadmin".into()));
    assert!(matches!(&c.touches[1], Touch::Undo(u) if u.contains("userdel localadmin")));
    assert_eq!(
        c.touches[2],
        Touch::Path("/home/localadmin/.ssh/authorized_keys".into())
    );
}

#[test]
fn creates_with_busybox_when_useradd_is_missing() {
    let u = user("{name: kiosk, group: users, groups: [video], shell: /bin/sh, comment: Kiosk}");
    let c = change(plan(&u, &with(absent("busybox"), &[("home", "/home/kiosk")])).unwrap());
    let sh = step_sh(&c);
    assert!(
        sh.starts_with("# no useradd on this host: busybox adduser -D"),
        "{sh}"
    );
    assert!(
        sh.contains(
            "adduser -D -h /home/kiosk -s /bin/sh -g Kiosk -G users kiosk\naddgroup kiosk video"
        ),
        "{sh}"
    );
    assert!(matches!(&c.touches[1], Touch::Undo(u) if u.contains("deluser kiosk")));
    let e = plan(&u, &absent("none")).unwrap_err();
    assert!(matches!(e, ResourceError::Unsupported { .. }), "{e}");
}

#[test]
fn a_converged_account_is_left_alone() {
    assert!(matches!(
        plan(&user(FULL), &converged()).unwrap(),
        Plan::NoChange
    ));
    // Undeclared fields are not compared.
    assert!(matches!(
        plan(&user("{name: localadmin}"), &converged()).unwrap(),
        Plan::NoChange
    ));
}

#[test]
fn modifies_each_field_that_differs_and_can_undo_it() {
    let host = with(
        converged(),
        &[
            ("passwd", "localadmin:x:1001:1001:Old:/home/old:/bin/sh"),
            ("group", "staff"),
        ],
    );
    let u = user(
        "{name: localadmin, uid: 1500, group: localadmin, shell: /bin/bash, home: /home/localadmin, comment: New}",
    );
    let c = change(plan(&u, &host).unwrap());
    assert_eq!(
        c.what,
        [
            "group staff -> localadmin",
            "uid 1001 -> 1500",
            "shell /bin/sh -> /bin/bash",
            "home /home/old -> /home/localadmin (contents not moved)",
            "comment Old -> New",
        ]
    );
    assert_eq!(
        step_sh(&c),
        "usermod -g localadmin -u 1500 -s /bin/bash -d /home/localadmin -c New localadmin"
    );
    assert_eq!(
        c.touches,
        [Touch::Undo(
            "usermod -g 1001 -u 1001 -s /bin/sh -d /home/old -c Old localadmin".into()
        )]
    );
    // A primary group given by gid compares with the gid.
    assert!(matches!(
        plan(&user("{name: localadmin, group: '1500'}"), &converged()).unwrap(),
        Plan::NoChange
    ));
}

#[test]
fn groups_are_added_unless_exclusive() {
    let host = with(converged(), &[("groups", "localadmin adm lpadmin")]);
    let c = change(plan(&user("{name: localadmin, groups: [sudo, adm]}"), &host).unwrap());
    assert_eq!(c.what, ["groups +sudo"]);
    assert_eq!(step_sh(&c), "usermod -a -G sudo localadmin");
    assert_eq!(
        c.touches,
        [Touch::Undo("usermod -G 'adm,lpadmin' localadmin".into())]
    );
    let exclusive = user("{name: localadmin, groups: [sudo, adm], groups_exclusive: true}");
    let c = change(plan(&exclusive, &host).unwrap());
    assert_eq!(c.what, ["groups +sudo -lpadmin"]);
    assert_eq!(step_sh(&c), "usermod -G 'sudo,adm' localadmin");
    let busybox = with(host, &[("tools", "busybox")]);
    let c = change(plan(&exclusive, &busybox).unwrap());
    assert_eq!(
        step_sh(&c),
        "addgroup localadmin sudo\ndelgroup localadmin lpadmin"
    );
}

#[test]
fn busybox_cannot_change_other_fields() {
    let host = with(converged(), &[("tools", "busybox")]);
    let e = plan(
        &user("{name: localadmin, uid: 1600, shell: /bin/sh}"),
        &host,
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ResourceError::Unsupported { .. }));
    assert!(
        text.contains("uid 1500 -> 1600") && text.contains("shell"),
        "{text}"
    );
}

#[test]
fn password_hashes_are_compared_never_shown() {
    let host = with(converged(), &[("shadow", OLD_HASH)]);
    let c = change(plan(&user(FULL), &host).unwrap());
    assert_eq!(c.what, ["password hash changed"]);
    assert!(step_sh(&c).contains("| chpasswd -e"));
    assert!(matches!(&c.touches[0], Touch::Undo(u) if u.contains(OLD_HASH)));
    // Without root the probe cannot read /etc/shadow: no guessing.
    let mut unreadable = converged();
    unreadable.fields.remove("shadow");
    let e = plan(&user(FULL), &unreadable).unwrap_err();
    assert!(e.to_string().contains("could not read /etc/shadow"), "{e}");
    // A clear-text password is refused without echoing it.
    let e = plan(
        &user("{name: localadmin, password: hunter22}"),
        &converged(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("must be a crypt hash"), "{e}");
    assert!(!e.to_string().contains("hunter22"));
    let e = plan(&user("{name: localadmin, password: ''}"), &converged()).unwrap_err();
    assert!(e.to_string().contains("without a password"), "{e}");
    for locked in ["'!'", "'*'", "'!$6$x$y'", "abJnggxhB/yWI"] {
        let u = user(&format!("{{name: localadmin, password: {locked}}}"));
        assert!(plan(&u, &converged()).is_ok(), "{locked}");
    }
}

#[test]
fn absent_removes_the_account_and_keeps_its_home() {
    let u = user("{name: localadmin, state: absent}");
    assert!(matches!(
        plan(&u, &absent("shadow")).unwrap(),
        Plan::NoChange
    ));
    let c = change(plan(&u, &converged()).unwrap());
    assert_eq!(c.what, ["remove (home /home/localadmin kept)"]);
    assert_eq!(step_sh(&c), "userdel localadmin");
    let [Touch::Undo(undo)] = c.touches.as_slice() else {
        panic!("{:?}", c.touches)
    };
    assert!(undo.contains("groupadd -g 1500 localadmin"), "{undo}");
    assert!(
        undo.contains("useradd -M -u 1500 -g 1500 -d /home/localadmin -s /bin/bash -c 'Local admin' localadmin"),
        "{undo}"
    );
    assert!(undo.contains("usermod -G 'sudo,adm' localadmin"), "{undo}");
    let wipe = user("{name: localadmin, state: absent, remove_home: true}");
    let c = change(plan(&wipe, &converged()).unwrap());
    assert_eq!(step_sh(&c), "userdel -r localadmin");
    assert_eq!(c.touches[0], Touch::Path("/home/localadmin".into()));
}

#[test]
fn exclusive_keys_make_the_file_exactly_the_list() {
    let mut host = converged();
    host.blobs.insert(
        "keys".into(),
        format!("{KEY}\nssh-rsa AAAAstranger\n").into_bytes(),
    );
    let c = change(plan(&user(FULL), &host).unwrap());
    assert_eq!(c.what, ["authorized_keys: exactly 1 key(s)"]);
    assert_eq!(
        put_data(&c, "/home/localadmin/.ssh/authorized_keys").unwrap(),
        format!("{KEY}\n")
    );
    // localadmin owns ~/.ssh: the file is written as localadmin.
    assert_eq!(
        c.touches,
        [Touch::User {
            user: "localadmin".into(),
            path: "/home/localadmin/.ssh/authorized_keys".into(),
            attrs_only: false
        }]
    );
    assert_eq!(
        step_sh(&c),
        "as localadmin: put /home/localadmin/.ssh/authorized_keys 600 localadmin"
    );
}

/// An account that owns its home or ~/.ssh could swap what they hold for
/// links while parc writes there: its keys are written as itself, and only
/// taking a ~/.ssh root owns is root's (from the home, entered and checked).
/// One that owns neither (a root-owned home, as for chrooted accounts) has
/// them written by root, as for a new account.
#[test]
fn keys_in_directories_the_account_owns_are_written_as_it() {
    let host = with(
        converged(),
        &[
            ("ssh_owner", "root"),
            ("ssh_mode", "755"),
            ("keys_owner", "root"),
            ("home_owner", "localadmin"),
        ],
    );
    let c = change(plan(&user(FULL), &host).unwrap());
    assert_eq!(
        step_sh(&c),
        "chown-in localadmin /home/localadmin/.ssh\n\
         as localadmin: chmod 700 /home/localadmin/.ssh\n\
         as localadmin: put /home/localadmin/.ssh/authorized_keys 600 localadmin"
    );
    let host = with(
        converged(),
        &[
            ("ssh_type", "none"),
            ("keys_type", "none"),
            ("home_owner", "localadmin"),
        ],
    );
    let c = change(plan(&user(FULL), &host).unwrap());
    assert_eq!(
        step_sh(&c),
        "as localadmin: mkdir -p -m 700 -- /home/localadmin/.ssh\n\
         as localadmin: put /home/localadmin/.ssh/authorized_keys 600 localadmin"
    );
    let host = with(
        converged(),
        &[
            ("ssh_owner", "root"),
            ("ssh_mode", "755"),
            ("home_owner", "root"),
        ],
    );
    let c = change(plan(&user(FULL), &host).unwrap());
    assert!(!step_sh(&c).contains("as localadmin"), "{}", step_sh(&c));
}

#[test]
fn other_keys_are_kept_by_default() {
    let mut host = converged();
    host.blobs
        .insert("keys".into(), b"ssh-rsa AAAAother old-laptop".to_vec());
    let u = user(&format!(
        "{{name: localadmin, authorized_keys: ['{KEY}', 'ssh-rsa AAAAother renamed']}}"
    ));
    let c = change(plan(&u, &host).unwrap());
    assert_eq!(c.what, ["authorized_keys: add 1 key(s)"]);
    assert_eq!(
        put_data(&c, "/home/localadmin/.ssh/authorized_keys").unwrap(),
        format!("ssh-rsa AAAAother old-laptop\n{KEY}\n")
    );
    // Nothing declared to ensure: the file is not even looked at.
    let none = user("{name: localadmin, authorized_keys: []}");
    assert!(
        matches!(plan(&none, &absent("shadow")).unwrap(), Plan::Change(c) if c.what.len() == 1)
    );
}

#[test]
fn key_file_attributes_are_fixed_in_place() {
    let host = with(converged(), &[("keys_mode", "644"), ("ssh_owner", "root")]);
    let c = change(plan(&user(FULL), &host).unwrap());
    assert_eq!(
        c.what,
        [
            "/home/localadmin/.ssh: owner root -> localadmin",
            "/home/localadmin/.ssh/authorized_keys: mode 0644 -> 0600",
        ]
    );
    assert_eq!(
        step_sh(&c),
        "chown -h -- localadmin /home/localadmin/.ssh\nparc_chmod 600 /home/localadmin/.ssh/authorized_keys"
    );
    assert!(matches!(c.touches[0], Touch::Attrs(_)));
    let link = with(
        converged(),
        &[("keys_type", "link"), ("keys_target", "/etc/shadow")],
    );
    let e = plan(&user(FULL), &link).unwrap_err();
    assert!(e.to_string().contains("is a symlink"), "{e}");
}

#[test]
fn names_and_keys_are_checked() {
    for (yaml, words) in [
        ("{name: '-o'}", "not a portable account name"),
        ("{name: ok, groups: ['a,b']}", "not a portable account name"),
        ("{name: ok, authorized_keys: ['']}", "one non-empty line"),
    ] {
        let e = plan(&user(yaml), &absent("shadow")).unwrap_err();
        assert!(e.to_string().contains(words), "{yaml}: {e}");
    }
}

#[test]
fn a_uid_written_as_text_plans_as_its_number_and_a_non_number_is_refused() {
    // What a `uid: "{{ 1000 + 500 }}"` template may leave after rendering.
    let u = user(&FULL.replace("uid: 1500", "uid: \"01500\""));
    assert!(matches!(plan(&u, &converged()).unwrap(), Plan::NoChange));
    let c = change(plan(&u, &absent("shadow")).unwrap());
    assert_eq!(c.what[0], "create (uid 1500, home /home/localadmin)");
    assert!(step_sh(&c).contains("useradd -m -d /home/localadmin -u 1500 "));
    for bad in [r#""{{ desk }}""#, "5000000000"] {
        let u = user(&FULL.replace("uid: 1500", &format!("uid: {bad}")));
        let e = plan(&u, &absent("shadow")).unwrap_err().to_string();
        assert!(e.contains("is not a number from 0 to 4294967295"), "{e}");
    }
    assert!(crate::location::from_yaml::<User>("{name: a, uid: desk}").is_err());
}
