//! The deploy protocol end to end against local files (the controller's own sh,
//! dd and hash tools stand in for a target's), without SSH or a lab.

use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::events::Events;
use crate::image::build;
use crate::transport::local::LocalTransport;

const CS: u64 = 65536;

/// 3 data chunks, 1 zero chunk, then a short last chunk of 3 sectors.
fn image(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("disk image.img");
    let mut data = Vec::new();
    for i in 0..3u8 {
        data.extend((0..CS).map(|b| (b as u8) ^ (i * 37 + 1)));
    }
    data.extend(std::iter::repeat_n(0u8, CS as usize));
    data.extend(std::iter::repeat_n(0xa5u8, 3 * 512));
    std::fs::write(&path, data).unwrap();
    build::build(&path, CS, &|_| {}).unwrap();
    path
}

/// A sparse disk file larger than the image: only the image's span is written.
fn sparse_target(dir: &Path, name: &str) -> std::path::PathBuf {
    let target = dir.join(name);
    std::fs::File::create(&target)
        .unwrap()
        .set_len(8 * CS)
        .unwrap();
    target
}

async fn deploy(image: &Path, target: &Path) -> ImageReport {
    deploy_with(image, target, None).await
}

async fn deploy_with(image: &Path, target: &Path, helper: Option<Helper>) -> ImageReport {
    let job = Arc::new(DeployJob {
        source: Arc::new(ImageSource::open(image).unwrap()),
        target: target.to_str().unwrap().to_string(),
        force: false,
        max_rate: None,
        helper: helper.map(Arc::new),
    });
    let (events, [_rx]) = Events::fan_out();
    deploy_host(job, "local".into(), Arc::new(LocalTransport), events).await
}

fn same_prefix(image: &Path, target: &Path) -> bool {
    let want = std::fs::read(image).unwrap();
    let got = std::fs::read(target).unwrap();
    got.len() >= want.len() && got[..want.len()] == want[..]
}

#[tokio::test]
async fn full_then_delta_then_zero_repair_on_a_disk_file() {
    let dir = tempfile::tempdir().unwrap();
    let image = image(dir.path());
    let size = std::fs::metadata(&image).unwrap().len();
    // A larger, sparse target: only the image's span is written.
    let target = sparse_target(dir.path(), "target's disk");

    let r = deploy(&image, &target).await;
    assert_eq!(r.error, None);
    assert!(r.verified);
    assert_eq!(
        r.bytes_sent,
        3 * CS + 3 * 512,
        "data chunks and the short tail"
    );
    assert_eq!(r.bytes_matched, CS, "the zero chunk was already zero");
    assert!(same_prefix(&image, &target));
    assert_eq!(std::fs::metadata(&target).unwrap().len(), 8 * CS);

    let again = deploy(&image, &target).await;
    assert_eq!((again.bytes_sent, again.bytes_zeroed), (0, 0));
    assert_eq!(again.bytes_matched, size);

    // Damage a data chunk, the zero chunk and the tail.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&target)
        .unwrap();
    for offset in [CS + 100, 3 * CS + 7, 4 * CS + 1000] {
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.write_all(b"damage").unwrap();
    }
    drop(f);
    let repair = deploy(&image, &target).await;
    assert_eq!(repair.error, None);
    assert_eq!(repair.bytes_sent, CS + 3 * 512);
    assert_eq!((repair.chunks_zeroed, repair.bytes_zeroed), (1, CS));
    assert!(same_prefix(&image, &target));
}

#[tokio::test]
async fn a_helper_that_cannot_run_leaves_the_script_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let image = image(dir.path());
    let target = sparse_target(dir.path(), "target");
    // Not a program: received (whole blocks and a remainder), tried, given up.
    let junk = vec![0u8; 3 * 65536 + 1234];
    let r = deploy_with(&image, &target, Some(Helper::fake(junk))).await;
    assert_eq!(r.error, None);
    assert!(!r.helper, "the junk helper cannot have run");
    assert!(r.verified);
    assert_eq!(r.bytes_sent, 3 * CS + 3 * 512);
    assert!(same_prefix(&image, &target));
}

#[tokio::test]
async fn refusals_leave_the_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let image = image(dir.path());
    let small = dir.path().join("small");
    std::fs::write(&small, vec![7u8; 4096]).unwrap();
    let r = deploy(&image, &small).await;
    assert!(!r.verified);
    let error = r.error.unwrap();
    assert!(error.contains("holds 4096 bytes"), "{error}");
    assert_eq!(std::fs::read(&small).unwrap(), vec![7u8; 4096]);

    let r = deploy(&image, &dir.path().join("absent")).await;
    assert!(r.error.unwrap().contains("does not exist"));
    assert!(!dir.path().join("absent").exists());
    let r = deploy(&image, dir.path()).await;
    assert!(r.error.unwrap().contains("neither a block device"));
}

#[tokio::test]
async fn an_image_changed_behind_its_manifest_is_caught_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    let image = image(dir.path());
    let source = Arc::new(ImageSource::open(&image).unwrap());
    // Same size and mtime, different bytes: only the per-chunk check can see it.
    let mtime = std::fs::metadata(&image).unwrap().modified().unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap();
    f.write_all_at(b"tampered", 10).unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    let target = sparse_target(dir.path(), "target");
    let job = Arc::new(DeployJob {
        source,
        target: target.to_str().unwrap().to_string(),
        force: false,
        max_rate: None,
        helper: None,
    });
    let (events, [_rx]) = Events::fan_out();
    let r = deploy_host(job, "local".into(), Arc::new(LocalTransport), events).await;
    let error = r.error.unwrap();
    assert!(
        error.contains("no longer matches its manifest: chunk 0 differs"),
        "{error}"
    );
}

#[tokio::test]
async fn a_seekable_zstd_image_lands_as_its_raw_bytes_through_sh() {
    let dir = tempfile::tempdir().unwrap();
    let raw = image(dir.path());
    let zst = dir.path().join("disk image.img.zst");
    crate::image::convert::convert(
        &raw,
        &zst,
        crate::image::convert::Output::Zstd { level: 3 },
        CS,
        &|_| {},
    )
    .unwrap();
    let target = sparse_target(dir.path(), "target's disk");
    let r = deploy(&zst, &target).await;
    assert_eq!(r.error, None);
    assert!(r.verified);
    assert_eq!(r.source_format, "zstd");
    // sh cannot decompress: the controller sent the disk's bytes.
    assert_eq!(r.decompressed_on.as_deref(), Some("controller"));
    assert_eq!(
        (r.bytes_read, r.bytes_sent),
        (3 * CS + 3 * 512, 3 * CS + 3 * 512)
    );
    assert!(same_prefix(&raw, &target));
}
