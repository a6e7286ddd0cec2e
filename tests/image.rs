//! Disk imaging on a real lab (needs root and openssh-server): full deploy to 10
//! hosts, delta repair of a corrupted chunk, resume after the controller is
//! killed, capture, and the safety refusals. Every "the target holds the image"
//! check hashes on the host with its own sha256sum, independently of parc.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{TestLab, events, finished};
use sha2::{Digest, Sha256};

const MIB: u64 = 1 << 20;
const CHUNK: u64 = 4 * MIB;
const SIZE: u64 = 256 * MIB;
const CHUNKS: u64 = SIZE / CHUNK;

/// Chunks that are all zeros in the test image: every fourth, and 20..30.
fn is_zero_chunk(i: u64) -> bool {
    i % 4 == 3 || (20..30).contains(&i)
}

/// A 256 MiB image: random chunks, zero chunks, and one half-zero chunk (6).
fn make_image(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = dir.join("golden.img");
    let mut data = vec![0u8; SIZE as usize];
    let mut random = std::fs::File::open("/dev/urandom").unwrap();
    for i in 0..CHUNKS {
        if is_zero_chunk(i) {
            continue;
        }
        let start = (i * CHUNK) as usize;
        let len = if i == 6 { CHUNK / 2 } else { CHUNK } as usize;
        random.read_exact(&mut data[start..start + len]).unwrap();
    }
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

fn data_bytes() -> u64 {
    (0..CHUNKS).filter(|&i| !is_zero_chunk(i)).count() as u64 * CHUNK
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// sha256 of the first `SIZE` bytes of the host's disk, computed on the host.
fn host_hash(lab: &TestLab, host: usize) -> String {
    host_hash_of(lab, host, SIZE)
}

/// Per-chunk sha256 of the host's disk, computed on the host.
fn host_chunk_hashes(lab: &TestLab, host: usize) -> Vec<String> {
    let script = format!(
        "i=0; while [ $i -lt {CHUNKS} ]; do dd if=/dev/parc-disk bs={CHUNK} skip=$i count=1 2>/dev/null | sha256sum; i=$((i+1)); done"
    );
    let out = lab.ssh(host, &script);
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

fn build(lab: &TestLab, image: &Path) {
    run_ok(lab.parc().args(["image", "build"]).arg(image));
}

fn deploy(
    lab: &TestLab,
    image: &Path,
    to: &str,
    extra: &[&str],
) -> (Output, Vec<serde_json::Value>) {
    let out = lab
        .parc()
        .args(["--json", "image", "deploy"])
        .arg(image)
        .args(["--to", to, "--target", "/dev/parc-disk"])
        .args(extra)
        .output()
        .unwrap();
    let ev = events(&out);
    (out, ev)
}

#[test]
fn deploy_to_10_hosts_repair_one_chunk_and_capture() {
    common::require_root_and_sshd();
    let lab = TestLab::start_with(10, &["--disk-size", "256MiB"]);
    let dir = tempfile::tempdir().unwrap();
    let (image, data) = make_image(dir.path());
    let image_hash = sha256_hex(&data);
    build(&lab, &image);

    let (out, ev) = deploy(&lab, &image, "all", &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done = finished(&ev);
    assert_eq!(done.len(), 10);
    for e in &done {
        let o = &e["outcome"];
        assert_eq!(e["state"], "changed", "{e}");
        assert_eq!(e["execs"], 1, "one exec per host: {e}");
        assert_eq!(o["verified"], true);
        // A fresh sparse disk already holds the zero chunks: only data is sent.
        assert_eq!(o["bytes_sent"], data_bytes(), "{e}");
        assert_eq!(o["bytes_matched"], SIZE - data_bytes());
        assert_eq!(o["readback"], "direct");
        assert_eq!(o["helper"], true, "parc's helper did the writing: {e}");
    }
    assert!(ev.iter().any(|e| e["event"] == "host_progress"));
    std::thread::scope(|s| {
        let lab = &lab;
        let handles: Vec<_> = (0..10)
            .map(|i| s.spawn(move || host_hash(lab, i)))
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(
                h.join().unwrap(),
                image_hash,
                "host {i} differs from the image"
            );
        }
    });

    // One data chunk corrupted on one host: only that chunk goes out again,
    // this time with sh and core utilities alone on the targets.
    let corrupt = lab.ssh(
        3,
        &format!("dd if=/dev/urandom of=/dev/parc-disk bs={CHUNK} seek=9 count=1 conv=notrunc 2>/dev/null"),
    );
    assert!(corrupt.status.success());
    assert_ne!(host_hash(&lab, 3), image_hash);
    let (out, ev) = deploy(&lab, &image, "all", &["--no-helper"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for e in finished(&ev) {
        let o = &e["outcome"];
        if e["host"] == lab.lab.hosts[3].name {
            assert_eq!(e["state"], "changed");
            assert_eq!(o["bytes_sent"], CHUNK, "{e}");
            assert_eq!(o["chunks_sent"], 1);
        } else {
            assert_eq!(e["state"], "ok", "{e}");
            assert_eq!(o["bytes_sent"], 0);
        }
        assert_eq!(o["bytes_zeroed"], 0);
        assert_eq!(o["helper"], false, "{e}");
    }
    assert_eq!(host_hash(&lab, 3), image_hash);

    // Capture host 3 back: same bytes, zero chunks left as holes.
    let captured = dir.path().join("captured.img");
    let out = lab
        .parc()
        .args([
            "image",
            "capture",
            &lab.lab.hosts[3].name,
            "--source",
            "/dev/parc-disk",
            "-o",
        ])
        .arg(&captured)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha256_hex(&std::fs::read(&captured).unwrap()), image_hash);
    use std::os::unix::fs::MetadataExt;
    let allocated = std::fs::metadata(&captured).unwrap().blocks() * 512;
    // Data chunks plus a block of file-system slack; no zero chunk was written.
    assert!(
        allocated < data_bytes() + CHUNK,
        "zero chunks were written: {allocated} bytes allocated"
    );
    let manifest = |p: &Path| -> serde_json::Value {
        let mut m = p.as_os_str().to_owned();
        m.push(".parc-manifest.json");
        serde_json::from_str(&std::fs::read_to_string(PathBuf::from(m)).unwrap()).unwrap()
    };
    assert_eq!(manifest(&captured)["chunks"], manifest(&image)["chunks"]);
    let out = lab
        .parc()
        .args(["image", "verify"])
        .arg(&captured)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_killed_deploy_resumes_sending_only_what_is_missing() {
    common::require_root_and_sshd();
    let lab = TestLab::start_with(1, &["--disk-size", "256MiB"]);
    let dir = tempfile::tempdir().unwrap();
    let (image, data) = make_image(dir.path());
    build(&lab, &image);
    let host = lab.lab.hosts[0].name.clone();

    // Paced so that the kill lands mid-transfer whatever the machine's speed.
    let mut child = lab
        .parc()
        .args(["--json", "image", "deploy"])
        .arg(&image)
        .args([
            "--to",
            &host,
            "--target",
            "/dev/parc-disk",
            "--max-rate",
            "40MiB",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed once more than half the image is handled (zeroed, or sent at the
    // paced rate; the zero chunks, 37.5%, go at once): a good part of the data
    // is still to come, and nothing has been read back yet.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in stdout.lines() {
            let Ok(line) = line else { break };
            let ev: serde_json::Value = serde_json::from_str(&line).unwrap();
            if ev["event"] == "host_progress" && ev["done_bytes"].as_u64().unwrap() > SIZE / 2 {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the deploy never got past half of the image");
    child.kill().unwrap(); // SIGKILL: no chance to clean up anything.
    child.wait().unwrap();
    reader.join().unwrap();

    // What the target holds now, as the target itself hashes it.
    let wanted: Vec<String> = data.chunks(CHUNK as usize).map(sha256_hex).collect();
    let held = host_chunk_hashes(&lab, 0);
    let missing_data: u64 = (0..CHUNKS as usize)
        .filter(|&i| !is_zero_chunk(i as u64) && held[i] != wanted[i])
        .count() as u64
        * CHUNK;
    assert!(missing_data > 0, "the deploy finished before it was killed");
    assert!(
        missing_data < data_bytes(),
        "nothing reached the target before the kill"
    );

    let (out, ev) = deploy(&lab, &image, &host, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let o = &finished(&ev)[0]["outcome"];
    assert_eq!(o["bytes_sent"], missing_data, "{o}");
    assert_eq!(o["verified"], true);
    assert_eq!(o["helper"], true, "{o}");
    assert_eq!(host_hash(&lab, 0), sha256_hex(&data));

    // The same image as the `image:` stage of a play: only a damaged chunk goes out.
    let damage = lab.ssh(
        0,
        &format!("dd if=/dev/urandom of=/dev/parc-disk bs={CHUNK} seek=2 count=1 conv=notrunc 2>/dev/null"),
    );
    assert!(damage.status.success());
    std::fs::create_dir(dir.path().join("playbooks")).unwrap();
    let playbook = dir.path().join("playbooks/reimage.yml");
    std::fs::write(
        &playbook,
        "- name: reimage\n  hosts: all\n  image: {file: ../golden.img, target: /dev/parc-disk}\n",
    )
    .unwrap();
    let out = lab
        .parc()
        .args(["--json", "apply"])
        .arg(&playbook)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out);
    let e = finished(&ev)[0];
    assert_eq!(e["state"], "changed", "{e}");
    let stage = &e["outcome"]["resources"][0];
    assert_eq!(stage["status"], "changed", "{stage}");
    assert!(
        stage["changes"][0]
            .as_str()
            .unwrap()
            .starts_with("4.0 MiB sent"),
        "{stage}"
    );
    assert_eq!(host_hash(&lab, 0), sha256_hex(&data));

    // The killed run's temporary directory (and the helper in it) did not
    // outlive it.
    let leftover = lab.ssh(0, "ls -d /tmp/parc-image.* 2>/dev/null | wc -l");
    assert_eq!(String::from_utf8_lossy(&leftover.stdout).trim(), "0");
}

#[test]
fn mounted_and_too_small_targets_are_refused() {
    common::require_root_and_sshd();
    let lab = TestLab::start_with(1, &["--disk-size", "256MiB"]);
    let dir = tempfile::tempdir().unwrap();
    let (image, _) = make_image(dir.path());
    build(&lab, &image);
    let host = lab.lab.hosts[0].name.clone();

    let mount = lab.ssh(
        0,
        // Read-only, so that the file system itself never changes the disk.
        "mkfs.ext4 -q -F /dev/parc-disk && mkdir -p /mnt/golden \\
         && mount -o loop,ro /dev/parc-disk /mnt/golden",
    );
    assert!(
        mount.status.success(),
        "{}",
        String::from_utf8_lossy(&mount.stderr)
    );
    let before = host_hash(&lab, 0);
    let (out, ev) = deploy(&lab, &image, &host, &[]);
    let after = host_hash(&lab, 0);
    let umount = lab.ssh(0, "umount /mnt/golden");
    assert_eq!(out.status.code(), Some(3));
    let e = finished(&ev)[0];
    assert_eq!(e["state"], "failed");
    let error = e["outcome"]["error"].as_str().unwrap();
    assert!(
        error.contains("is mounted (at /mnt/golden through loop"),
        "{error}"
    );
    assert!(error.contains("--force"), "{error}");
    assert_eq!(e["outcome"]["bytes_sent"], 0);
    assert!(umount.status.success());
    assert_eq!(after, before, "a refused deploy wrote to the disk");

    let small = lab.ssh(0, "truncate -s 1M /root/small.img");
    assert!(small.status.success());
    let out = lab
        .parc()
        .args(["image", "deploy"])
        .arg(&image)
        .args(["--to", &host, "--target", "/root/small.img"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("holds 1048576 bytes but the image is 268435456 bytes"),
        "{text}"
    );

    // An image changed after its manifest is refused before any host is touched.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&image)
        .unwrap()
        .set_len(SIZE + 512)
        .unwrap();
    let out = lab
        .parc()
        .args(["image", "deploy"])
        .arg(&image)
        .args(["--to", &host, "--target", "/dev/parc-disk"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no longer matches its manifest"), "{err}");
}

/// sha256 of the first `len` bytes of the host's disk, computed on the host.
fn host_hash_of(lab: &TestLab, host: usize, len: u64) -> String {
    let out = lab.ssh(host, &format!("head -c {len} /dev/parc-disk | sha256sum"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn run_ok(command: &mut std::process::Command) -> Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// 32 MiB in 4 MiB chunks: random, text (compressible), zeros.
const SMALL: u64 = 32 * MIB;

fn make_small_image(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = dir.join("golden.img");
    let mut data = vec![0u8; SMALL as usize];
    let mut random = std::fs::File::open("/dev/urandom").unwrap();
    let text = b"parc deploys golden images to fleets of workstations. ";
    for i in 0..(SMALL / CHUNK) as usize {
        let chunk = &mut data[i * CHUNK as usize..(i + 1) * CHUNK as usize];
        match i % 4 {
            0 => random.read_exact(chunk).unwrap(),
            1 | 2 => {
                for (j, b) in chunk.iter_mut().enumerate() {
                    *b = text[(j + i) % text.len()];
                }
                chunk[i * 1000] = i as u8; // chunks differ from each other
            }
            _ => {}
        }
    }
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

fn manifest_of(image: &Path) -> serde_json::Value {
    let mut m = image.as_os_str().to_owned();
    m.push(".parc-manifest.json");
    serde_json::from_str(&std::fs::read_to_string(PathBuf::from(m)).unwrap()).unwrap()
}

#[test]
fn raw_seekable_zstd_and_qcow2_images_land_identical_and_capture_round_trips() {
    common::require_root_and_sshd();
    let lab = TestLab::start_with(3, &["--disk-size", "32MiB"]);
    let dir = tempfile::tempdir().unwrap();
    let (raw, data) = make_small_image(dir.path());
    let expected = sha256_hex(&data);

    // qemu-img makes the qcow2 image and is the oracle for its disk bytes.
    let qcow2 = dir.path().join("golden.qcow2");
    run_ok(
        std::process::Command::new("qemu-img")
            .args(["convert", "-f", "raw", "-O", "qcow2"])
            .arg(&raw)
            .arg(&qcow2),
    );
    let oracle = dir.path().join("oracle.img");
    run_ok(
        std::process::Command::new("qemu-img")
            .args(["convert", "-f", "qcow2", "-O", "raw"])
            .arg(&qcow2)
            .arg(&oracle),
    );
    assert_eq!(sha256_hex(&std::fs::read(&oracle).unwrap()), expected);
    // `build --compress` writes golden.img.zst, one frame per chunk.
    run_ok(
        lab.parc()
            .args(["image", "build", "--compress", "zstd:3"])
            .arg(&raw),
    );
    let zst = dir.path().join("golden.img.zst");
    build(&lab, &qcow2);
    for (image, format) in [(&raw, "raw"), (&zst, "zstd"), (&qcow2, "qcow2")] {
        let m = manifest_of(image);
        assert_eq!(m["sha256"], expected, "{format}");
        assert_eq!(m["chunks"], manifest_of(&raw)["chunks"], "{format}");
    }

    // zstd to a host running parc's helper: sent compressed. zstd to a sh-only
    // host: decompressed here. qcow2 to the third.
    let host = |i: usize| lab.lab.hosts[i].name.clone();
    let cases: [(&Path, usize, &[&str], &str); 3] = [
        (&zst, 0, &[], "zstd"),
        (&zst, 1, &["--no-helper"], "zstd"),
        (&qcow2, 2, &[], "qcow2"),
    ];
    for (image, h, extra, format) in cases {
        let (out, ev) = deploy(&lab, image, &host(h), extra);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let e = finished(&ev)[0];
        let o = &e["outcome"];
        assert_eq!(o["verified"], true, "{e}");
        assert_eq!(o["readback"], "direct", "{e}");
        assert_eq!(o["source_format"], format, "{e}");
        let (read, sent) = (
            o["bytes_read"].as_u64().unwrap(),
            o["bytes_sent"].as_u64().unwrap(),
        );
        assert_eq!(read, 6 * CHUNK, "the six data chunks: {e}");
        match (format, h) {
            ("zstd", 0) => {
                assert_eq!(o["decompressed_on"], "target", "{e}");
                // Random chunks stay their size; text ones shrink to almost nothing.
                assert!(sent < 3 * CHUNK, "sent {sent} of {read}: {e}");
                assert!(o["ratio"].as_f64().unwrap() < 0.5, "{e}");
            }
            ("zstd", _) => {
                assert_eq!(o["decompressed_on"], "controller", "{e}");
                assert_eq!(sent, read, "{e}");
            }
            _ => {
                assert!(o.get("decompressed_on").is_none(), "{e}");
                assert_eq!(sent, read, "{e}");
            }
        }
        assert_eq!(
            host_hash_of(&lab, h, SMALL),
            expected,
            "host {h} from {format}"
        );
    }

    // A re-deploy of the raw image finds every host already identical.
    let (out, ev) = deploy(&lab, &raw, "all", &[]);
    assert_eq!(out.status.code(), Some(0));
    for e in finished(&ev) {
        assert_eq!(e["state"], "ok", "{e}");
        assert_eq!(e["outcome"]["bytes_sent"], 0, "{e}");
    }

    // Capture to .zst: seekable zstd whose disk is the image, byte for byte.
    let captured = dir.path().join("captured.img.zst");
    run_ok(
        lab.parc()
            .args([
                "image",
                "capture",
                &host(0),
                "--source",
                "/dev/parc-disk",
                "-o",
            ])
            .arg(&captured),
    );
    let m = manifest_of(&captured);
    assert_eq!(m["stored"]["format"], "zstd", "{m}");
    assert_eq!(m["sha256"], expected);
    assert_eq!(m["chunks"], manifest_of(&raw)["chunks"]);
    assert!(std::fs::metadata(&captured).unwrap().len() < SMALL / 2);
    run_ok(lab.parc().args(["image", "verify"]).arg(&captured));
    let back = dir.path().join("captured.raw");
    run_ok(
        lab.parc()
            .args(["image", "convert"])
            .arg(&captured)
            .arg(&back),
    );
    assert_eq!(sha256_hex(&std::fs::read(&back).unwrap()), expected);
}

#[test]
fn truncated_or_corrupt_compressed_images_are_refused_before_anything_is_written() {
    common::require_root_and_sshd();
    let lab = TestLab::start_with(1, &["--disk-size", "32MiB"]);
    let dir = tempfile::tempdir().unwrap();
    let (raw, _) = make_small_image(dir.path());
    let zst = dir.path().join("golden.img.zst");
    run_ok(lab.parc().args(["image", "convert"]).arg(&raw).arg(&zst));
    let bytes = std::fs::read(&zst).unwrap();
    let manifest =
        std::fs::read(Path::new(&format!("{}.parc-manifest.json", zst.display()))).unwrap();
    let host = lab.lab.hosts[0].name.clone();
    let before = host_hash_of(&lab, 0, SMALL);

    // Each broken image beside the good one's manifest, as a copy gone wrong.
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 3] ^= 0x55;
    let plain = {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&std::fs::read(&raw).unwrap()).unwrap();
        gz.finish().unwrap()
    };
    for (name, content, expected) in [
        (
            "cut.img.zst",
            bytes[..bytes.len() / 2].to_vec(),
            "plain zstd stream",
        ),
        ("bad.img.zst", flipped, "cannot be read as a zstd image"),
        ("copy.img.gz", plain, "parc image convert"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        std::fs::write(format!("{}.parc-manifest.json", path.display()), &manifest).unwrap();
        let (out, ev) = deploy(&lab, &path, &host, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(expected), "{name}: {err}");
        assert!(finished(&ev).is_empty(), "{name}: no host was contacted");
    }
    assert_eq!(
        host_hash_of(&lab, 0, SMALL),
        before,
        "a refused image wrote to the disk"
    );
}
