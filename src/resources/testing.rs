//! Helpers for the plan tests of every kind: hand-made probe records, a
//! readable view of the planned step, and real .deb files.

use super::plan::{Change, Op, Plan, UserOp};
use super::script::Record;

pub fn record(fields: &[(&str, &str)]) -> Record {
    let mut r = Record::default();
    for (k, v) in fields {
        r.fields.insert(k.to_string(), v.to_string());
    }
    r
}

/// A probe record of a path below /home/alice, a directory alice owns
/// (`unsafe_why=owner`), with `fields` besides.
pub fn in_alices_directory(fields: &[(&str, &str)]) -> Record {
    let mut r = record(&[("unsafe", "/home/alice"), ("unsafe_why", "owner")]);
    for (k, v) in fields {
        r.fields.insert(k.to_string(), v.to_string());
    }
    r
}

pub fn change(plan: Plan) -> Change {
    match plan {
        Plan::Change(c) => c,
        other => panic!("expected a change, got {other:?}"),
    }
}

/// The step as text, `Put` ops shown as `put DEST MODE OWNER`, `Link` ops
/// as `link DEST -> TARGET`, ops as a user as `as USER: OP` (a user's `Put`
/// as `put DEST MODE GROUP`).
pub fn step_sh(c: &Change) -> String {
    c.step
        .0
        .iter()
        .map(|op| match op {
            Op::Sh(s) | Op::Run(s) => s.clone(),
            Op::Batch(b) => b.alone(),
            Op::Mkdir { path, mode } => super::plan::mkdir_line(*mode, &[path]),
            Op::NeedParent(path) => super::plan::need_parent(path),
            Op::Put {
                dest, mode, owner, ..
            } => format!(
                "put {dest} {:o} {}",
                mode.unwrap_or(0),
                owner.as_deref().unwrap_or("-")
            ),
            Op::Link { target, dest, .. } => format!("link {dest} -> {target}"),
            Op::ChownIn { spec, path } => format!("chown-in {spec} {path}"),
            Op::AsUser { user, op } => format!(
                "as {user}: {}",
                match op {
                    UserOp::Put {
                        dest, mode, group, ..
                    } => format!("put {dest} {mode:o} {}", group.as_deref().unwrap_or("-")),
                    UserOp::Mkdir { path, mode } => super::plan::mkdir_line(*mode, &[path]),
                    UserOp::Chmod { path, mode } => format!("chmod {mode:o} {path}"),
                    UserOp::Remove { path } => format!("rm {path}"),
                }
            ),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The bytes a `Put` op of the step installs at `dest`.
pub fn put_data(c: &Change, dest: &str) -> Option<String> {
    c.step.0.iter().find_map(|op| match op {
        Op::Put { data, dest: d, .. }
        | Op::AsUser {
            op: UserOp::Put { data, dest: d, .. },
            ..
        } if d == dest => {
            Some(String::from_utf8_lossy(&data.whole().expect("readable content")).into_owned())
        }
        _ => None,
    })
}

/// A tiny .deb (version `1:2.0-1`) built by `dpkg-deb` with the given
/// compression: parc is developed and tested on Debian, which has it.
pub fn build_deb(dir: &std::path::Path, package: &str, compression: &str) -> Vec<u8> {
    let root = dir.join(format!("{package}-{compression}"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {package}\nVersion: 1:2.0-1\nArchitecture: all\nMaintainer: parc <parc@example.org>\nDescription: parc test package\n  spanning two lines\n"
        ),
    )
    .unwrap();
    let out = dir.join(format!("{package}-{compression}.deb"));
    let status = std::process::Command::new("dpkg-deb")
        .arg(format!("-Z{compression}"))
        .arg("--build")
        .arg(&root)
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("dpkg-deb runs");
    assert!(status.success());
    std::fs::read(out).unwrap()
}
