# The pyinfra side of the mixed benchmark: the same work as
# ../profiles/mixed.yml, with the same templates and files, under
# /srv/mixed-pyinfra, accounts named mx-pyinfra-*.
import os

from pyinfra import host
from pyinfra.facts.server import Arch, Hostname, KernelVersion, LinuxDistribution
from pyinfra.operations import apt, files, server

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(HERE, "..", "profiles", "templates")
FILES = os.path.join(HERE, "..", "profiles", "files")

tag = "pyinfra"
prefix = f"/srv/mixed-{tag}"
data = {
    "tag": tag,
    "prefix": prefix,
    "revision": host.data.get("revision", 1),
    "org": "Example Corp",
    "site": "HQ",
    "timezone": "Europe/Paris",
    "proxy_url": "http://proxy.corp.example:3128",
    "no_proxy": "localhost,127.0.0.1,.corp.example",
    "support_contact": "IT support, ext. 4242",
    "admin_groups": ["corp-admins", "helpdesk"],
    "ntp_servers": ["0.pool.ntp.org", "1.pool.ntp.org"],
    "printers": ["floor1-color", "floor2-mono"],
    "users": [
        {"name": "alice", "shell": "/bin/bash", "home": "alice"},
        {"name": "bob", "shell": "/bin/sh", "home": "bob"},
    ],
}
distro = host.get_fact(LinuxDistribution)
facts = {
    "hostname": host.get_fact(Hostname),
    "kernel": host.get_fact(KernelVersion),
    "arch": host.get_fact(Arch),
    "os": {"pretty_name": distro["release_meta"].get("PRETTY_NAME", distro["name"])},
}

# Accounts (3)
staff = f"mx-{tag}-staff"
server.group(name="staff group", group=staff)
files.directory(name="dir home", path=f"{prefix}/home", mode="0755")
server.user(
    name="alice",
    user=f"mx-{tag}-alice",
    group=staff,
    groups=["users"],
    append=True,
    shell="/bin/bash",
    home=f"{prefix}/home/alice",
    create_home=True,
)
server.user(
    name="bob",
    user=f"mx-{tag}-bob",
    group=staff,
    shell="/bin/sh",
    home=f"{prefix}/home/bob",
    create_home=True,
)

# Directories (10, `home` above)
for path in [
    "etc/corp",
    "etc/profile.d",
    "etc/ssh/sshd_config.d",
    "etc/cups",
    "etc/browser/policies",
    "opt/corp/bin",
    "usr/share/backgrounds",
    "usr/local/share/ca-certificates",
    "var/backups",
]:
    files.directory(name=f"dir {path}", path=f"{prefix}/{path}", mode="0755")

# Files from templates (10)
for src, dest, mode in [
    ("managed.j2", "etc/corp/managed", "0644"),
    ("asset.json.j2", "etc/corp/asset.json", "0644"),
    ("motd.j2", "etc/motd", "0644"),
    ("issue.net.j2", "etc/issue.net", "0644"),
    ("proxy.sh.j2", "etc/profile.d/proxy.sh", "0644"),
    ("sshd-hardening.conf.j2", "etc/ssh/sshd_config.d/50-hardening.conf", "0644"),
    ("mixed-accounts.conf.j2", "etc/corp/accounts.conf", "0640"),
    ("mixed-printers.conf.j2", "etc/cups/printers.conf", "0644"),
    ("mixed-browser.json.j2", "etc/browser/policies/managed.json", "0644"),
    ("mixed-login.j2", "etc/issue", "0644"),
]:
    files.template(
        name=f"template {dest}",
        src=os.path.join(TEMPLATES, src),
        dest=f"{prefix}/{dest}",
        mode=mode,
        inventory_hostname=host.name,
        facts=facts,
        **data,
    )

# Static files (5)
for src, dest, mode in [
    ("corp-root-ca.crt", "usr/local/share/ca-certificates/corp-root-ca.crt", "0644"),
    ("support.sh", "opt/corp/bin/support.sh", "0755"),
    ("mixed-policy.json", "etc/browser/policies/policy.json", "0644"),
    ("mixed-bookmarks.html", "etc/browser/bookmarks.html", "0644"),
    ("wallpaper.bin", "usr/share/backgrounds/corp.bin", "0644"),
]:
    files.put(name=f"file {dest}", src=os.path.join(FILES, src), dest=f"{prefix}/{dest}", mode=mode)

# Line edits (5)
for path, match, line in [
    ("etc/environment", "^http_proxy=", f"http_proxy={data['proxy_url']}"),
    ("etc/environment", "^no_proxy=", f"no_proxy={data['no_proxy']}"),
    ("etc/hosts", r"proxy\.corp\.example$", "10.0.0.8 proxy.corp.example"),
    ("etc/login.defs", "^UMASK", "UMASK 027"),
    ("etc/ssh/sshd_config.d/60-banner.conf", "^Banner ", f"Banner {prefix}/etc/issue.net"),
]:
    files.line(name=f"line in {path}", path=f"{prefix}/{path}", line=match, replace=line)

# Links (2)
files.link(
    name="symlink localtime",
    path=f"{prefix}/etc/localtime",
    target=f"/usr/share/zoneinfo/{data['timezone']}",
)
files.link(
    name="symlink ca.crt",
    path=f"{prefix}/etc/corp/ca.crt",
    target=f"{prefix}/usr/local/share/ca-certificates/corp-root-ca.crt",
)

# A package the image already has: checked, never installed.
apt.packages(name="openssh-server present", packages=["openssh-server"], present=True)

# One-time jobs guarded by `creates` (3). server.shell has no `creates`: the
# guard is in the command, as pyinfra users write it.
key = f"{prefix}/etc/corp/host-id"
enrolled = f"{prefix}/etc/corp/enrolled"
backup = f"{prefix}/var/backups/corp-opt.tar"
server.shell(
    name="one-time jobs",
    commands=[
        f"test -e {key} || ssh-keygen -q -t ed25519 -N '' -C {host.name} -f {key}",
        f"test -e {enrolled} || {{ printf 'enrolled %s\\n' {host.name} > {enrolled} && chmod 0644 {enrolled}; }}",
        f"test -e {backup} || {{ tar -C {prefix}/opt/corp -cf {backup} bin && chmod 0640 {backup}; }}",
    ],
)

# Verification commands (5)
server.shell(
    name="verification",
    commands=[
        f"sh -n {prefix}/opt/corp/bin/support.sh",
        f"grep -q '^http_proxy=' {prefix}/etc/environment",
        f"id -nG mx-{tag}-alice | grep -qw {staff}",
        f'test "$(wc -c < {prefix}/usr/share/backgrounds/corp.bin)" -eq 1048576',
        f"test -s {prefix}/etc/corp/host-id.pub",
    ],
)
