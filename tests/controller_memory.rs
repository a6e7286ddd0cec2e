//! The controller's memory does not grow with hosts x payload (issue 17): a
//! file's content is held once on the controller, however many hosts it goes
//! to, and streamed to each of them. Needs root and openssh-server.

mod common;

use std::io::Read;
use std::process::Stdio;

use common::{TestLab, run_measured};

const HOSTS: usize = 20;
const SIZE: usize = 20 << 20;

#[test]
fn a_20_mib_file_pushed_to_20_hosts_is_held_once_on_the_controller() {
    common::require_root_and_sshd();
    let lab = TestLab::start(HOSTS);
    let dir = tempfile::tempdir().unwrap();
    for sub in ["profiles/files", "playbooks"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    // Incompressible, as a wallpaper or a package is.
    let mut data = vec![0u8; SIZE];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut data)
        .unwrap();
    std::fs::write(dir.path().join("profiles/files/big.bin"), &data).unwrap();
    std::fs::write(
        dir.path().join("profiles/big.yml"),
        "resources:\n  - file: {path: /var/tmp/parc-big.bin, src: big.bin, mode: \"0644\"}\n",
    )
    .unwrap();
    let playbook = dir.path().join("playbooks/big.yml");
    std::fs::write(&playbook, "- hosts: all\n  profiles: [big]\n").unwrap();

    let (status, peak_kib) = run_measured(
        lab.parc()
            .env("PARC_RUNS_DIR", dir.path().join("runs"))
            .args(["--json", "apply", "--parallel", &HOSTS.to_string()])
            .arg(&playbook)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    assert!(status.success(), "{status:?}");
    eprintln!(
        "{HOSTS} hosts x {} MiB: controller peak RSS {peak_kib} KiB",
        SIZE >> 20
    );
    for host in [0, HOSTS - 1] {
        assert!(
            lab.host_file(host, "/var/tmp/parc-big.bin").as_deref() == Some(&data[..]),
            "host {host} did not get the file"
        );
    }
    // 20 copies would be 400 MiB (it was 950 MiB: each host's archive and
    // its stdin were copies). One copy, parc itself (30 MiB unoptimized) and
    // what each host's channel holds in flight (under 1 MiB) fit in 90.
    assert!(
        peak_kib <= 90 * 1024,
        "controller peak RSS {peak_kib} KiB for {HOSTS} hosts x {} MiB",
        SIZE >> 20
    );
}
