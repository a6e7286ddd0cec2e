//! `up`: lay out a lab directory, generate keys and inventories, boot the hosts.

use std::path::{Path, PathBuf};

use super::boot::{self, Boot};
use super::inventories::{self, Entry};
use super::keys::{self, KeyRequest};
use super::layout::{self, HostDir};
use super::lifecycle::teardown;
use super::require::{self, Tools};
use super::rootfs;
use super::script::{self, NAMESPACE_LAB_DIR, SYSTEMD_LAB_DIR};
use super::{Init, Lab, LabError, LabHost, LabSpec, procs, save};

/// Starts `spec.hosts` workstations and returns the running lab.
///
/// State is recorded before anything is started, so that `down` can clean up even
/// after `up` was interrupted; if `up` itself fails after that point it tears down
/// what it created before returning the error.
pub fn up(spec: &LabSpec) -> Result<Lab, LabError> {
    let tools = require::check()?;
    layout::validate(spec)?;
    check_dir(&spec.dir)?;
    let custom_inventory = match &spec.inventory {
        Some(path) => {
            let path = std::path::absolute(path).map_err(LabError::io("resolve", path))?;
            layout::check_utf8("inventory", &path)?;
            Some(path)
        }
        None => None,
    };
    let addresses: Vec<_> = (0..spec.hosts)
        .map(|i| layout::host_address(spec.subnet, i))
        .collect();
    if let Some(&address) = addresses.iter().find(|&&a| boot::accepts(a)) {
        return Err(LabError::AddressInUse { address });
    }
    // Built (or found in the cache) before the lab directory exists, so that a
    // failed download leaves nothing to clean up.
    let rootfs = match spec.init {
        Init::None => None,
        Init::Systemd => {
            let debootstrap = require::check_systemd()?;
            let cache = std::path::absolute(&spec.rootfs_cache)
                .map_err(LabError::io("resolve", &spec.rootfs_cache))?;
            layout::check_dir_path(&cache)?;
            Some(rootfs::ensure(&cache, &debootstrap)?)
        }
    };
    let dir = create_dir(&spec.dir)?;
    let inventory = custom_inventory.unwrap_or_else(|| dir.join(layout::INVENTORY));
    let hosts: Vec<LabHost> = addresses
        .into_iter()
        .enumerate()
        .map(|(i, address)| {
            let name = layout::host_name(i, spec.hosts);
            let host_dir = HostDir::new(&dir, &name);
            LabHost {
                address,
                pid: 0,
                init: spec.init,
                upper: host_dir.upper(),
                disk: (spec.disk_size > 0).then(|| host_dir.disk()),
                name,
            }
        })
        .collect();
    let mut lab = Lab {
        key: dir.join(layout::KEY),
        known_hosts: dir.join(layout::KNOWN_HOSTS),
        dir,
        hosts,
        inventory,
        init: spec.init,
        rootfs,
    };
    save(&lab)?;
    match build(&tools, &mut lab, spec.disk_size) {
        Ok(()) => Ok(lab),
        Err(error) => match teardown(&lab.dir, Some(&lab.inventory)) {
            Ok(_) => Err(error),
            Err(cleanup) => Err(LabError::CleanupFailed {
                error: Box::new(error),
                cleanup: Box::new(cleanup),
                dir: lab.dir,
            }),
        },
    }
}

/// Makes sure `up` may use the lab directory, without creating it: a running lab
/// is refused, a stale one (hosts died, machine rebooted) is cleaned up, and a
/// directory holding files with lab names but no state is refused because those
/// files are not ours to overwrite.
fn check_dir(dir: &Path) -> Result<(), LabError> {
    let dir = match std::fs::canonicalize(dir) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(LabError::io("resolve", dir)(e)),
    };
    layout::check_dir_path(&dir)?;
    if dir.join(layout::STATE).exists() {
        if procs::any_belongs(&procs::scan()?, &dir.join(layout::HOSTS)) {
            return Err(LabError::AlreadyUp { dir });
        }
        let inventory = super::load(&dir).ok().map(|lab| lab.inventory);
        teardown(&dir, inventory.as_deref())?;
    } else if let Some(entry) = layout::LAB_FILES
        .into_iter()
        .find(|entry| dir.join(entry).symlink_metadata().is_ok())
    {
        return Err(LabError::DirInUse { dir, entry });
    }
    Ok(())
}

/// Creates the directory only once every check passed, so a refused `up` leaves
/// nothing behind.
fn create_dir(dir: &Path) -> Result<PathBuf, LabError> {
    std::fs::create_dir_all(dir).map_err(LabError::io("create", dir))?;
    let dir = std::fs::canonicalize(dir).map_err(LabError::io("resolve", dir))?;
    layout::check_dir_path(&dir)?;
    Ok(dir)
}

fn build(tools: &Tools, lab: &mut Lab, disk_size: u64) -> Result<(), LabError> {
    let dirs: Vec<HostDir> = lab
        .hosts
        .iter()
        .map(|h| HostDir::new(&lab.dir, &h.name))
        .collect();
    for dir in &dirs {
        for sub in [
            dir.upper(),
            dir.work(),
            dir.merged(),
            dir.devfs(),
            dir.config(),
        ] {
            std::fs::create_dir_all(&sub).map_err(LabError::io("create", &sub))?;
        }
    }
    let mut requests = vec![KeyRequest {
        path: lab.key.clone(),
        comment: "parc-lab".into(),
    }];
    requests.extend(lab.hosts.iter().zip(&dirs).map(|(host, dir)| KeyRequest {
        path: dir.config().join("host_key"),
        comment: host.name.clone(),
    }));
    keys::generate(&tools.ssh_keygen, &requests)?;

    let client_pub = read(&keys::public_path(&lab.key))?;
    let mut known_hosts = String::new();
    for (host, dir) in lab.hosts.iter().zip(&dirs) {
        let config = dir.config();
        write(&config.join("authorized_keys"), &client_pub)?;
        let start_script = match &lab.rootfs {
            None => {
                let sshd = script::sshd_config(
                    host.address,
                    NAMESPACE_LAB_DIR,
                    &format!("{NAMESPACE_LAB_DIR}/sshd.pid"),
                );
                write(&config.join("sshd_config"), &sshd)?;
                write(&config.join("bashrc"), script::BASHRC)?;
                write(&config.join("profile"), script::PROFILE)?;
                script::start_script(dir, &host.name, host.disk.is_some())
            }
            Some(rootfs) => {
                let sshd = script::sshd_config(host.address, SYSTEMD_LAB_DIR, "/run/sshd.pid");
                write(&config.join("sshd_config"), &sshd)?;
                write(&config.join("ssh-lab.conf"), &script::ssh_dropin())?;
                // The host's identity, in its upper layer as a real install has it.
                let etc = dir.upper().join("etc");
                std::fs::create_dir_all(&etc).map_err(LabError::io("create", &etc))?;
                write(&etc.join("hostname"), &format!("{}\n", host.name))?;
                write(&etc.join("machine-id"), &rootfs::machine_id()?)?;
                let lower = layout::check_utf8("root file system cache", rootfs)?;
                script::systemd_start_script(dir, &host.name, lower, host.disk.is_some())
            }
        };
        write(&dir.script(), &start_script)?;
        if let Some(disk) = &host.disk {
            // set_len on a new file leaves it sparse: no space is used until written.
            std::fs::File::create(disk)
                .and_then(|f| f.set_len(disk_size))
                .map_err(LabError::io("create", disk))?;
        }
        let pub_path = keys::public_path(&config.join("host_key"));
        known_hosts.push_str(&keys::known_hosts_line(
            host.address,
            &read(&pub_path)?,
            &pub_path,
        )?);
    }
    write(&lab.known_hosts, &known_hosts)?;
    write_inventories(lab)?;

    let boots: Vec<Boot<'_>> = lab
        .hosts
        .iter()
        .zip(&dirs)
        .map(|(host, dir)| Boot {
            name: &host.name,
            address: host.address,
            dir,
            init: lab.init,
        })
        .collect();
    let pids = boot::start(tools, &boots)?;
    for (host, pid) in lab.hosts.iter_mut().zip(pids) {
        host.pid = pid;
    }
    save(lab)
}

fn write_inventories(lab: &Lab) -> Result<(), LabError> {
    let entries: Vec<Entry<'_>> = lab
        .hosts
        .iter()
        .map(|h| Entry {
            name: &h.name,
            address: h.address,
        })
        .collect();
    let key = layout::check_utf8("lab directory", &lab.key)?;
    let known_hosts = layout::check_utf8("lab directory", &lab.known_hosts)?;
    let native = inventories::native(&entries, key, known_hosts, &lab.inventory)?;
    write(&lab.inventory, &native)?;
    let ansible_path = lab.dir.join(layout::ANSIBLE_INVENTORY);
    let ansible = inventories::ansible(&entries, key, known_hosts, &ansible_path)?;
    write(&ansible_path, &ansible)
}

fn read(path: &Path) -> Result<String, LabError> {
    std::fs::read_to_string(path).map_err(LabError::io("read", path))
}

fn write(path: &Path, text: &str) -> Result<(), LabError> {
    std::fs::write(path, text).map_err(LabError::io("write", path))
}
