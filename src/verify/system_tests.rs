use super::super::tests::{passed, record};
use super::*;

fn eval<T: Probe + serde::de::DeserializeOwned>(
    yaml: &str,
    r: &crate::resources::script::Record,
) -> Vec<Check> {
    serde_norway::from_str::<T>(yaml)
        .unwrap()
        .evaluate(&Probed(r))
}

#[test]
fn package_installed_and_version() {
    let r = record(
        &[
            ("manager", "dpkg"),
            ("i0", "yes"),
            ("v0", "1:9.2p1-2+deb12u3"),
        ],
        &[],
    );
    assert!(passed(&eval::<PackageTest>(
        "{name: openssh-server, version: '1:9.2'}",
        &r
    )));
    let checks = eval::<PackageTest>("{name: openssh-server, version: '1:9.20'}", &r);
    assert!(
        !checks[1].passed,
        "9.20 is not a prefix of 9.2p1 at a separator"
    );
    let absent = record(&[("manager", "dpkg")], &[]);
    assert!(passed(&eval::<PackageTest>(
        "{name: telnetd, installed: false}",
        &absent
    )));
    let checks = eval::<PackageTest>("{name: cups}", &absent);
    assert_eq!(
        (checks[0].expected.as_str(), checks[0].actual.as_str()),
        ("installed", "not installed")
    );
    let none = record(&[("manager", "none")], &[]);
    let checks = eval::<PackageTest>("{name: cups}", &none);
    assert!(!checks[0].passed && checks[0].actual.contains("no package manager"));
}

#[test]
fn service_needs_systemd() {
    let r = record(
        &[
            ("systemd", "yes"),
            ("active", "active"),
            ("enabled", "enabled"),
        ],
        &[],
    );
    assert!(passed(&eval::<ServiceTest>("{name: ssh}", &r)));
    assert!(passed(&eval::<ServiceTest>(
        "{name: ssh, running: true, enabled: true}",
        &r
    )));
    let r = record(
        &[
            ("systemd", "yes"),
            ("active", "inactive"),
            ("enabled", "disabled"),
        ],
        &[],
    );
    assert!(passed(&eval::<ServiceTest>(
        "{name: telnet, running: false, enabled: false}",
        &r
    )));
    let checks = eval::<ServiceTest>("{name: cups, enabled: true}", &r);
    assert_eq!(checks.len(), 1, "only what was asked");
    assert_eq!(checks[0].actual, "disabled");
    let checks = eval::<ServiceTest>(
        "{name: ssh, running: true, enabled: true}",
        &record(&[], &[]),
    );
    assert_eq!(checks.len(), 2);
    assert!(
        checks
            .iter()
            .all(|c| !c.passed && c.actual.contains("does not run systemd"))
    );
}

#[test]
fn dns_resolution() {
    let r = record(&[("addresses", "127.0.0.1 ::1")], &[]);
    assert!(passed(&eval::<DnsTest>(
        "{name: localhost, address: '::1'}",
        &r
    )));
    let checks = eval::<DnsTest>("{name: localhost, address: 10.0.0.1}", &r);
    assert_eq!(checks[1].actual, "resolves to 127.0.0.1, ::1");
    assert!(!checks[1].passed);
    let nx = record(&[("addresses", "")], &[]);
    assert!(!passed(&eval::<DnsTest>("{name: nope.invalid}", &nx)));
    assert!(passed(&eval::<DnsTest>(
        "{name: nope.invalid, resolves: false}",
        &nx
    )));
}

#[test]
fn mount_points_from_proc_mounts() {
    let table = "overlay / overlay rw 0 0\nproc /proc proc rw 0 0\n\
                 /dev/sdb1 /mnt/my\\040disk ext4 rw 0 0\ntmpfs /mnt/my\\040disk tmpfs rw 0 0\n";
    let r = record(&[], &[("mounts", table)]);
    assert!(passed(&eval::<MountTest>(
        "{path: /proc/, fstype: proc}",
        &r
    )));
    assert!(passed(&eval::<MountTest>("{path: /, fstype: overlay}", &r)));
    let checks = eval::<MountTest>("{path: /mnt/my disk, fstype: ext4}", &r);
    assert_eq!(
        checks[1].actual, "tmpfs",
        "the last mount on a point is the visible one"
    );
    let checks = eval::<MountTest>("{path: /home}", &r);
    assert_eq!(checks[0].actual, "not a mount point");
    assert!(!checks[0].passed);
}

#[test]
fn kernel_params_from_proc_sys() {
    let t: KernelParamTest =
        serde_norway::from_str("{name: net.ipv4.ip_local_port_range, value: '32768 60999'}")
            .unwrap();
    assert_eq!(
        t.proc_path().as_deref(),
        Some("/proc/sys/net/ipv4/ip_local_port_range")
    );
    let r = record(&[], &[("value", "32768\t60999\n")]);
    assert!(passed(&t.evaluate(&Probed(&r))));
    let slash: KernelParamTest =
        serde_norway::from_str("{name: net/ipv4/conf/eth0.100/forwarding, value: '1'}").unwrap();
    assert_eq!(
        slash.proc_path().as_deref(),
        Some("/proc/sys/net/ipv4/conf/eth0.100/forwarding")
    );
    let evil: KernelParamTest =
        serde_norway::from_str("{name: '../../etc/shadow', value: x}").unwrap();
    assert_eq!(evil.proc_path(), None);
    assert!(!passed(&evil.evaluate(&Probed(&r))));
    let checks = t.evaluate(&Probed(&record(&[], &[])));
    assert!(checks[0].actual.starts_with("no such parameter"));
}
