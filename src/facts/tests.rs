use std::process::Command;

use super::parse::LineProblem;
use super::*;

/// A laptop as the probe would describe it, after bash login noise, with a disk
/// model containing spaces, a two-address interface, the default route on the
/// second interface and no DMI lines at all (a host where /sys/class/dmi is absent).
const LAPTOP: &str = "\
Welcome to the lab, remember to lock your screen
parc-facts=1
hostname=lab-pc-07
os_pretty_name=\"Ubuntu 24.04.1 LTS\"
os_version_id=\"24.04\"
os_id=ubuntu
os_id_like=debian
kernel=6.8.0-45-generic
arch=x86_64
cpu_model=Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz
cpu_count=8
mem_total_kb=16226452
mem_available_kb=9876543
disk=nvme0n1 1000215216 0 Samsung SSD 970 EVO Plus 500GB
disk=sda 3907029168 1 WDC WD20EZRZ-00Z5HB0
iface=enp0s31f6 8c:16:45:aa:bb:cc
iface=wlp2s0 f8:59:71:dd:ee:ff
default_route=wlp2s0
addr=enp0s31f6 10.20.30.40/24
addr=wlp2s0 192.168.1.23/255.255.255.0
inet6=enp0s31f6 20010db8000000000000000000000040 40
inet6=wlp2s0 fe80000000000000fa5971fffedeeeff 40

uptime=93784.12
";

/// A small ARM board with device-tree identity and a readable serial.
const BOARD: &str = "\
parc-facts=1
hostname=kiosk-2
os_pretty_name=\"Debian GNU/Linux 12 (bookworm)\"
os_version_id=\"12\"
os_id=debian
kernel=6.6.51+rpt-rpi-v8
arch=aarch64
cpu_model=
cpu_count=4
mem_total_kb=3885420
mem_available_kb=3000000
disk=mmcblk0 62333952 0 SD64G
iface=eth0 d8:3a:dd:01:02:03
default_route=eth0
addr=eth0 172.16.5.9/16
dmi_product=Raspberry Pi 4 Model B Rev 1.5
dmi_serial=10000000abcdef12
uptime=5
";

fn rows() -> Vec<(String, Facts)> {
    vec![
        ("lab-pc-07.example.org".into(), parse(LAPTOP).unwrap()),
        ("kiosk-2".into(), parse(BOARD).unwrap()),
    ]
}

#[test]
fn parses_the_laptop_sample() {
    let f = parse(LAPTOP).unwrap();
    assert_eq!(f.hostname, "lab-pc-07");
    assert_eq!(
        f.os,
        Os {
            id: "ubuntu".into(),
            version_id: "24.04".into(),
            pretty_name: "Ubuntu 24.04.1 LTS".into(),
            family: "debian".into(),
        }
    );
    assert_eq!(f.cpu.count, 8);
    assert_eq!(f.memory.total_bytes, 16226452 * 1024);
    assert_eq!(
        f.disks[0],
        Disk {
            name: "nvme0n1".into(),
            size_bytes: 1000215216 * 512,
            rotational: false,
            model: "Samsung SSD 970 EVO Plus 500GB".into(),
        }
    );
    assert!(f.disks[1].rotational);
    // Default-route interface first; netmask and hex forms normalised to CIDR.
    assert_eq!(f.interfaces[0].name, "wlp2s0");
    assert_eq!(
        f.interfaces[0].addresses,
        ["192.168.1.23/24", "fe80::fa59:71ff:fede:eeff/64"]
    );
    assert_eq!(
        f.interfaces[1],
        Interface {
            name: "enp0s31f6".into(),
            mac: "8c:16:45:aa:bb:cc".into(),
            addresses: vec!["10.20.30.40/24".into(), "2001:db8::40/64".into()],
        }
    );
    assert_eq!(f.dmi, Dmi::default());
    assert_eq!(f.uptime_seconds, 93784);
}

#[test]
fn family_falls_back_to_id() {
    assert_eq!(parse(BOARD).unwrap().os.family, "debian");
}

#[test]
fn json_has_the_paths_templates_use() {
    let json = serde_json::to_value(parse(LAPTOP).unwrap()).unwrap();
    assert_eq!(json["os"]["id"], "ubuntu");
    assert_eq!(json["interfaces"][0]["addresses"][0], "192.168.1.23/24");
    assert_eq!(json["dmi"]["serial"], "");
}

#[test]
fn a_bad_line_is_named() {
    let err = parse("parc-facts=1\nhostname=x\ncpu_count=eight\n").unwrap_err();
    assert_eq!(
        err,
        FactsError::BadLine {
            line: 3,
            text: "cpu_count=eight".into(),
            problem: LineProblem::NotANumber("cpu_count"),
        }
    );
    assert!(err.to_string().contains("line 3"));
    assert!(err.to_string().contains("`cpu_count=eight`"));
}

#[test]
fn malformed_structured_lines_are_rejected() {
    for (line, problem) in [
        ("just text", LineProblem::NotKeyValue),
        ("colour=blue", LineProblem::UnknownKey("colour".into())),
        ("disk=sda lots 0 X", LineProblem::BadDisk),
        ("disk=sda 10 maybe X", LineProblem::BadDisk),
        ("addr=eth0 10.0.0.300/24", LineProblem::BadAddress),
        ("addr=eth0 10.0.0.3/255.0.255.0", LineProblem::BadAddress),
        ("inet6=eth0 fe80 40", LineProblem::BadInet6),
        ("pkg=a\t1", LineProblem::PackageWithoutDb),
        ("packages=pacman", LineProblem::BadPackageDb),
    ] {
        let err = parse(&format!("parc-facts=1\n{line}\n")).unwrap_err();
        assert_eq!(
            err,
            FactsError::BadLine {
                line: 2,
                text: line.into(),
                problem
            }
        );
    }
}

#[test]
fn output_without_header_is_refused() {
    let err = parse("fish: Unknown command\n").unwrap_err();
    assert_eq!(err, FactsError::MissingHeader);
    assert!(err.to_string().contains("`parc-facts=1`"));
}

#[test]
fn table_snapshot() {
    insta::assert_snapshot!(render_table(&rows()));
}

#[test]
fn csv_snapshot() {
    insta::assert_snapshot!(render_csv(&rows()));
}

/// Run `program args...` and parse its output, checking the probe stayed quiet.
fn run_probe(cmd: &mut Command) -> Facts {
    let out = cmd.output().expect("run the probe");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "probe failed: {stderr}");
    assert!(stderr.is_empty(), "probe wrote to stderr: {stderr}");
    let facts = parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert!(!facts.hostname.is_empty());
    assert!(facts.memory.total_bytes > 0);
    assert!(facts.cpu.count > 0);
    assert!(!facts.kernel.is_empty());
    facts
}

#[test]
fn probe_runs_under_local_sh() {
    run_probe(Command::new("sh").arg("-c").arg(PROBE));
}

/// With PATH holding only busybox applets, this is what a minimal target offers;
/// the results must match the full userland's, proving no tool was silently missing.
#[test]
fn probe_runs_under_busybox_only() {
    let list = match Command::new("busybox").arg("--list").output() {
        Ok(out) if out.status.success() => out.stdout,
        _ => {
            crate::transport::local::cannot_run("busybox is not installed");
            return;
        }
    };
    let bin = tempfile::tempdir().unwrap();
    let busybox = which("busybox").unwrap();
    for applet in String::from_utf8_lossy(&list).lines() {
        std::os::unix::fs::symlink(&busybox, bin.path().join(applet)).unwrap();
    }
    let busybox_probe = || {
        run_probe(
            Command::new(bin.path().join("sh"))
                .arg("-c")
                .arg(probe_command())
                .env_clear()
                .env("PATH", bin.path()),
        )
    };
    let facts = busybox_probe();
    let full = run_probe(Command::new("sh").arg("-c").arg(PROBE));
    assert_eq!(facts.hostname, full.hostname);
    assert_eq!(facts.os, full.os);
    assert_eq!(facts.cpu, full.cpu);
    assert_eq!(facts.disks, full.disks);
    assert_eq!(facts.interfaces, full.interfaces);
    assert_eq!(facts.dmi, full.dmi);

    // Without `ip`, IPv4 addresses come from ifconfig's netmask layout instead.
    std::fs::remove_file(bin.path().join("ip")).unwrap();
    assert_eq!(busybox_probe().interfaces, full.interfaces);
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// The GLPI native inventory of a laptop, valid against the schema GLPI
/// checks inventories with (tests/fixtures/glpi, from glpi-project).
#[test]
fn glpi_inventory_is_valid_against_glpis_schema() {
    let schema: serde_json::Value = serde_json::from_str(include_str!(
        "../../tests/fixtures/glpi/inventory.schema.json"
    ))
    .unwrap();
    let validator = jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let now = jiff::Timestamp::from_second(1_795_904_102).unwrap();
    // As root reads it: the firmware's identity too.
    let laptop = parse(&format!(
        "{LAPTOP}dmi_vendor=LENOVO\ndmi_product=20XW0026FR\ndmi_serial=PF3ABCDE\n\
         bios_vendor=LENOVO\nbios_version=N32ET86W (1.62 )\nbios_date=03/14/2024\n\
         machine_id=5c1f0e9b6d2a4c7e8f0a1b2c3d4e5f60\n"
    ))
    .unwrap();
    let doc = super::glpi::render(&laptop, now);
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let mut shown = doc.clone();
    shown["content"]["versionclient"] = "parc-[version]".into();
    insta::assert_snapshot!(serde_json::to_string_pretty(&shown).unwrap());
    // A bare machine: nothing but a header still makes a valid document.
    let bare = super::glpi::render(&parse("parc-facts=1\n").unwrap(), now);
    let errors: Vec<String> = validator
        .iter_errors(&bare)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    // Its packages as glpi-agent lists them, valid too.
    let with_packages = parse(&format!(
        "{LAPTOP}packages=dpkg\npkg=openssh-server\t1:9.2p1-2\tamd64\t1801\tnet\t\t\n\
         packages_left_out=0\n"
    ))
    .unwrap();
    let doc = super::glpi::render(&with_packages, now);
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(
        doc["content"]["softwares"],
        serde_json::json!([{"name": "openssh-server", "version": "1:9.2p1-2", "arch": "amd64",
            "system_category": "net", "publisher": "Ubuntu", "from": "deb",
            "filesize": 1801 * 1024}])
    );
    let rpm = parse(
        "parc-facts=1\npackages=rpm\npkg=bash\t5.2.26-3.fc40\tx86_64\t8187414\tUnspecified\t\
         1718000000\tFedora Project\n",
    )
    .unwrap();
    let doc = super::glpi::render(&rpm, now);
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(doc["content"]["softwares"][0]["install_date"], "2024-06-10");
    assert_eq!(
        doc["content"]["softwares"][0]["publisher"],
        "Fedora Project"
    );
    // A failed query is no list at all, not an empty one.
    let failed = parse("parc-facts=1\npackages=dpkg\npackages_unreadable=1\n").unwrap();
    let doc = super::glpi::render(&failed, now);
    assert!(doc["content"].get("softwares").is_none());

    let renamed = Facts {
        hostname: "lab-pc-08".into(),
        ..laptop.clone()
    };
    let id = super::glpi::device_id(&laptop);
    assert!(id.starts_with("lab-pc-07-"), "{id}");
    assert_eq!(id, super::glpi::device_id(&laptop), "stable");
    let other = Facts {
        machine_id: "0".repeat(32),
        ..laptop
    };
    assert_ne!(
        id[10..],
        super::glpi::device_id(&other)[10..],
        "another installation, another id"
    );
    assert_eq!(id[10..], super::glpi::device_id(&renamed)[10..]);
}

/// A package database is data: `%`, tabs, newlines and escape sequences in
/// its fields come back as the same bytes, and cannot make a field, a package
/// or a facts line of their own.
#[test]
fn package_fields_are_data() {
    let out = "parc-facts=1\nhostname=pc\npackages=dpkg\n\
               pkg=ev%25il%0Ahostname=pwned\t1.0%09x\tamd64\t12\tx%1B[31m\t\t\n\
               pkg=%C3%A9t%E9\t2\tall\t\t\t\t\n\
               packages_left_out=3\n";
    let facts = parse(out).unwrap();
    assert_eq!(facts.hostname, "pc");
    let packages = facts.packages.unwrap();
    assert_eq!(packages.database, PackageDb::Dpkg);
    assert_eq!(packages.left_out, 3);
    assert!(!packages.unreadable);
    assert_eq!(
        packages.list[0],
        Package {
            name: "ev%il\nhostname=pwned".into(),
            version: "1.0\tx".into(),
            arch: "amd64".into(),
            size_bytes: Some(12 * 1024),
            category: "x\u{1b}[31m".into(),
            installed: None,
            publisher: String::new(),
        }
    );
    assert_eq!(
        packages.list[1].name, "ét\u{fffd}",
        "invalid UTF-8 replaced"
    );
    assert_eq!(packages.list[1].size_bytes, None);

    // Bounds hold whatever the probe sends.
    let long = "x".repeat(MAX_PACKAGE_FIELD * 2);
    let mut many = String::from("parc-facts=1\npackages=rpm\n");
    for _ in 0..MAX_PACKAGES + 2 {
        many.push_str(&format!("pkg={long}\t1\tx86_64\t5\tg\t1700000000\tv\n"));
    }
    let packages = parse(&many).unwrap().packages.unwrap();
    assert_eq!(packages.list.len(), MAX_PACKAGES);
    assert_eq!(packages.left_out, 2);
    assert_eq!(packages.list[0].name.len(), MAX_PACKAGE_FIELD);
    assert_eq!(
        packages.list[0].installed,
        Some(jiff::Timestamp::from_second(1_700_000_000).unwrap())
    );

    let err = parse("parc-facts=1\npackages=apk\npkg=a\t1\n").unwrap_err();
    assert!(matches!(
        err,
        FactsError::BadLine {
            problem: LineProblem::BadPackage,
            ..
        }
    ));
}

/// The probe's own framing, end to end: a package database (a fake
/// dpkg-query, first in PATH) whose fields hold `%`, tabs, newlines, escape
/// sequences and Latin-1, read by the local awk and, when busybox is
/// installed, by busybox's.
#[test]
fn the_probe_frames_hostile_package_fields() {
    let (bin, path) = fake_tool(
        "dpkg-query",
        "#!/bin/sh\n\
             printf 'install ok installed\\tev%%il\\t1.0\\001x\\tamd64\\t12\\tx\\033[31m\\n'\n\
             printf 'install ok installed\\tnew\\nhostname=pwned\\t1\\tall\\t1\\ty\\n'\n\
             printf 'install ok installed\\tbad\\ttab\\there\\t1\\t2\\t3\\n'\n\
             printf 'deinstall ok config-files\\tgone\\t1\\tall\\t1\\tz\\n'\n\
             printf 'install ok installed\\t\\303\\251t\\351\\t2\\tall\\t\\t\\n'\n",
    );
    let check = |facts: Facts| {
        assert_ne!(facts.hostname, "pwned");
        let packages = facts.packages.expect("packages listed");
        let names: Vec<&str> = packages.list.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["ev%il", "ét\u{fffd}"]);
        assert_eq!(packages.list[0].version, "1.0\u{1}x");
        assert_eq!(packages.list[0].category, "x\u{1b}[31m");
        // The split line (2 lines) and the one with too many fields.
        assert_eq!(packages.left_out, 3);
    };
    check(run_probe(
        Command::new("sh")
            .arg("-c")
            .arg(inventory_probe_command())
            .env("PATH", &path),
    ));
    if let Some(busybox) = which("busybox") {
        let list = Command::new(&busybox)
            .arg("--list")
            .output()
            .unwrap()
            .stdout;
        for applet in String::from_utf8_lossy(&list).lines() {
            std::os::unix::fs::symlink(&busybox, bin.path().join(applet)).unwrap();
        }
        check(run_probe(
            Command::new(bin.path().join("sh"))
                .arg("-c")
                .arg(inventory_probe_command())
                .env_clear()
                .env("PATH", bin.path()),
        ));
    }
}

/// Without the switch, the probe does not look at packages at all.
#[test]
fn the_plain_probe_lists_no_packages() {
    let facts = run_probe(Command::new("sh").arg("-c").arg(probe_command()));
    assert_eq!(facts.packages, None);
}

/// The apk branch reads Alpine's database format (`X:value` lines, a blank
/// line between packages); the probe is pointed at a sample of it, with
/// dpkg and rpm out of the way.
#[test]
fn the_probe_reads_apks_database() {
    let db = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        db.path(),
        "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nS:383152\nI:622592\nT:the musl c library\n\
         m:Timo <timo@alpinelinux.org>\n\nP:busybox\nV:1.36.1-r5\nA:x86_64\nI:958464\n",
    )
    .unwrap();
    let probe = inventory_probe_command()
        .replace("/lib/apk/db/installed", &db.path().display().to_string())
        .replace("command -v dpkg-query", "false")
        .replace("command -v rpm", "false");
    let packages = run_probe(Command::new("sh").arg("-c").arg(probe))
        .packages
        .unwrap();
    assert_eq!(packages.database, PackageDb::Apk);
    assert_eq!(
        packages.list,
        [
            Package {
                name: "musl".into(),
                version: "1.2.4-r2".into(),
                arch: "x86_64".into(),
                size_bytes: Some(622592),
                ..Package::default()
            },
            Package {
                name: "busybox".into(),
                version: "1.36.1-r5".into(),
                arch: "x86_64".into(),
                size_bytes: Some(958464),
                ..Package::default()
            },
        ]
    );
}

/// The rpm branch: `rpm -qa --queryformat` lines (a fake rpm first in PATH,
/// its database taken as present), rpm's `(none)` vendor as no publisher.
#[test]
fn the_probe_reads_rpms_query() {
    let (_bin, path) = fake_tool(
        "rpm",
        "#!/bin/sh\n\
             printf 'bash\\t5.2.26-3.fc40\\tx86_64\\t8187414\\tUnspecified\\t1718000000\\tFedora Project\\n'\n\
             printf 'gpg-pubkey\\t8d44-6a1d\\t(none)\\t0\\tPublic Keys\\t1718000001\\t(none)\\n'\n",
    );
    let probe = inventory_probe_command()
        .replace("command -v dpkg-query", "false")
        .replace("[ -d /var/lib/rpm ]", "true");
    let packages = run_probe(Command::new("sh").arg("-c").arg(probe).env("PATH", path))
        .packages
        .unwrap();
    assert_eq!(packages.database, PackageDb::Rpm);
    assert_eq!(packages.list.len(), 2);
    assert_eq!(packages.list[0].publisher, "Fedora Project");
    assert_eq!(packages.list[0].size_bytes, Some(8187414));
    assert_eq!(
        packages.list[0].installed,
        Some(jiff::Timestamp::from_second(1_718_000_000).unwrap())
    );
    assert_eq!(packages.list[1].publisher, "");
}

/// A directory holding an executable `name` running `script`, and a PATH
/// that finds it first.
fn fake_tool(name: &str, script: &str) -> (tempfile::TempDir, String) {
    let bin = tempfile::tempdir().unwrap();
    let fake = bin.path().join(name);
    std::fs::write(&fake, script).unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (bin, path)
}
