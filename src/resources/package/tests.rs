use super::*;
use crate::resources::testing::{change as changed, put_data, record, step_sh};

fn package(yaml: &str) -> Package {
    crate::location::from_yaml(yaml).unwrap()
}

fn plan(p: &Package, fields: &[(&str, &str)]) -> Result<Plan, ResourceError> {
    p.plan(&record(fields), &PlanContext::default())
}

fn undo(c: &Change) -> &str {
    match c.touches.as_slice() {
        [Touch::Undo(u)] => u,
        other => panic!("expected one undo, got {other:?}"),
    }
}

#[test]
fn installs_only_the_missing_names_in_one_command() {
    let p = package("{names: [git, make, curl]}");
    let c = changed(plan(&p, &[("manager", "apt"), ("i1", "yes"), ("v1", "4.3-4")]).unwrap());
    assert_eq!(c.what, ["install git, curl"]);
    assert_eq!(
        step_sh(&c),
        "parc_apt_install --no-install-recommends git curl"
    );
    assert!(undo(&c).starts_with("set --; for p in git curl; do"));
    assert!(undo(&c).ends_with("apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold remove \"$@\""));
    let all = [
        ("manager", "apt"),
        ("i0", "yes"),
        ("i1", "yes"),
        ("i2", "yes"),
    ];
    assert!(matches!(plan(&p, &all).unwrap(), Plan::NoChange));
}

#[test]
fn every_manager_has_its_commands() {
    let p = package("{name: chrony}");
    for (manager, install) in [
        ("dnf", "dnf install -y chrony"),
        ("yum", "yum install -y chrony"),
        ("apk", "apk add chrony"),
        ("pacman", "pacman -S --noconfirm --needed chrony"),
        ("zypper", "zypper -n install chrony"),
    ] {
        let c = changed(plan(&p, &[("manager", manager)]).unwrap());
        assert_eq!(step_sh(&c), install, "{manager}");
    }
    let e = plan(&p, &[("manager", "none")]).unwrap_err();
    assert!(matches!(e, ResourceError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("no package manager"), "{e}");
}

#[test]
fn absent_removes_what_is_installed_and_can_reinstall_that_version() {
    let p = package("{names: [cups, avahi-daemon], state: absent}");
    assert!(matches!(
        plan(&p, &[("manager", "dnf")]).unwrap(),
        Plan::NoChange
    ));
    let c = changed(plan(&p, &[("manager", "dnf"), ("i0", "yes"), ("v0", "2.4-1")]).unwrap());
    assert_eq!(c.what, ["remove cups"]);
    assert_eq!(step_sh(&c), "dnf remove -y cups");
    assert_eq!(undo(&c), "dnf install -y cups-2.4-1");
    // pacman cannot install a given version: no undo rather than a wrong one.
    let c = changed(plan(&p, &[("manager", "pacman"), ("i1", "yes"), ("v1", "1")]).unwrap());
    assert!(c.touches.is_empty());
}

#[test]
fn latest_upgrades_what_the_repositories_offer() {
    let p = package("{names: [git, vim], state: latest}");
    let up_to_date = [("manager", "apt"), ("i0", "yes"), ("i1", "yes")];
    assert!(matches!(plan(&p, &up_to_date).unwrap(), Plan::NoChange));
    let c = changed(
        plan(
            &p,
            &[
                ("manager", "apt"),
                ("i0", "yes"),
                ("v0", "1:2.39-1"),
                ("u0", "1:2.40-1"),
            ],
        )
        .unwrap(),
    );
    assert_eq!(c.what, ["install vim", "upgrade git 1:2.39-1 -> 1:2.40-1"]);
    assert_eq!(
        step_sh(&c),
        "parc_apt_install --no-install-recommends vim\nparc_apt_install --no-install-recommends --only-upgrade git"
    );
    assert!(undo(&c).contains("--allow-downgrades install 'git=1:2.39-1'"));
    let c = changed(
        plan(
            &p,
            &[
                ("manager", "apk"),
                ("i0", "yes"),
                ("v0", "2.39"),
                ("u0", "newer"),
                ("i1", "yes"),
            ],
        )
        .unwrap(),
    );
    assert_eq!(c.what, ["upgrade git (from 2.39)"]);
    assert_eq!(step_sh(&c), "apk add -u git");
}

#[test]
fn declarations_are_checked() {
    for (yaml, words) in [
        ("{state: present}", "declares no package"),
        ("{name: a, names: [b]}", "either name or names"),
        ("{name: a, deb: a.deb}", "either name/names or deb"),
        ("{name: '-y'}", "is not a package name"),
        ("{names: ['git make']}", "is not a package name"),
    ] {
        let e = plan(&package(yaml), &[("manager", "apt")]).unwrap_err();
        assert!(e.to_string().contains(words), "{yaml}: {e}");
    }
}

fn deb_package(yaml: &str) -> Package {
    let dir = tempfile::tempdir().unwrap();
    let mut p = package(yaml);
    let bytes = crate::resources::testing::build_deb(dir.path(), "parc-tool", "xz");
    p.resolved = Some(DebFile::parse(crate::content::Content::shared(bytes)).unwrap());
    p
}

#[test]
fn a_deb_is_pushed_then_installed_unless_that_version_is_there() {
    let p = deb_package("{deb: tool.deb}");
    assert_eq!(p.label(), "package tool.deb");
    let same = [("manager", "dpkg"), ("i0", "yes"), ("v0", "1:2.0-1")];
    assert!(matches!(plan(&p, &same).unwrap(), Plan::NoChange));
    let c = changed(plan(&p, &[("manager", "dpkg")]).unwrap());
    assert_eq!(c.what, ["install parc-tool 1:2.0-1 (from tool.deb)"]);
    let sh = step_sh(&c);
    let tmp = sh
        .lines()
        .find_map(|l| l.strip_prefix("put "))
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .to_string();
    assert!(tmp.starts_with("/var/lib/parc/packages/parc-tool_"), "{sh}");
    assert!(put_data(&c, &tmp).is_some());
    assert!(
        sh.contains(&format!("dpkg -i --force-confdef --force-confold {tmp} ||")),
        "{sh}"
    );
    assert!(sh.ends_with(&format!("rm -f {tmp}")), "{sh}");
    assert_eq!(undo(&c), "dpkg -r parc-tool");
    let c = changed(plan(&p, &[("manager", "dpkg"), ("i0", "yes"), ("v0", "1.0")]).unwrap());
    assert_eq!(c.what, ["parc-tool 1.0 -> 1:2.0-1 (from tool.deb)"]);
    assert!(undo(&c).contains("install 'parc-tool=1.0'"));
}

#[test]
fn a_deb_needs_dpkg_and_has_no_latest() {
    let p = deb_package("{deb: tool.deb}");
    let e = plan(&p, &[]).unwrap_err();
    assert!(e.to_string().contains("needs dpkg"), "{e}");
    let latest = deb_package("{deb: tool.deb, state: latest}");
    assert!(matches!(
        plan(&latest, &[("manager", "dpkg")]),
        Err(ResourceError::Invalid { .. })
    ));
    let absent = deb_package("{deb: tool.deb, state: absent}");
    let c = changed(
        plan(
            &absent,
            &[("manager", "dpkg"), ("i0", "yes"), ("v0", "1:2.0-1")],
        )
        .unwrap(),
    );
    assert_eq!(step_sh(&c), "dpkg -r parc-tool");
}
