# The pyinfra side of the benchmark: the same 40 resources as
# ../profiles/bench.yml, with the same templates and files, under /srv/bench-pyinfra.
# The "one file changed" run passes --data revision=2.
import os
from io import StringIO

from pyinfra import host
from pyinfra.facts.server import Arch, Hostname, KernelVersion, LinuxDistribution
from pyinfra.operations import files, server

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(HERE, "..", "profiles", "templates")
FILES = os.path.join(HERE, "..", "profiles", "files")

prefix = "/srv/bench-pyinfra"
data = {
    "prefix": prefix,
    "revision": host.data.get("revision", 1),
    "org": "Example Corp",
    "site": "HQ",
    "timezone": "Europe/Paris",
    "ntp_servers": ["0.pool.ntp.org", "1.pool.ntp.org"],
    "proxy_url": "http://proxy.corp.example:3128",
    "no_proxy": "localhost,127.0.0.1,.corp.example",
    "support_contact": "IT support, ext. 4242",
    "admin_user": "localadmin",
    "admin_groups": ["corp-admins", "helpdesk"],
    "journald_max_use": "200M",
}

# The shape parc gives facts, so that the three tools share their templates.
distro = host.get_fact(LinuxDistribution)
facts = {
    "hostname": host.get_fact(Hostname),
    "kernel": host.get_fact(KernelVersion),
    "arch": host.get_fact(Arch),
    "os": {"pretty_name": distro["release_meta"].get("PRETTY_NAME", distro["name"])},
}

# Directory layout (16)
for path, mode in [
    ("etc/corp", "0755"),
    ("etc/profile.d", "0755"),
    ("etc/ssh/sshd_config.d", "0755"),
    ("etc/systemd/timesyncd.conf.d", "0755"),
    ("etc/systemd/journald.conf.d", "0755"),
    ("etc/sudoers.d", "0755"),
    ("etc/sysctl.d", "0755"),
    ("opt/corp/bin", "0755"),
    ("var/log", "0755"),
    ("var/log/corp", "0750"),
    ("var/lib/corp", "0755"),
    ("srv", "0755"),
    ("srv/scratch", "1777"),
    ("usr/local/share/ca-certificates", "0755"),
    ("etc/apt/apt.conf.d", "0755"),
    ("etc/xdg/autostart", "0755"),
]:
    files.directory(name=f"dir {path}", path=f"{prefix}/{path}", mode=mode)

# Files from templates, with vars and facts (6)
for src, dest in [
    ("managed.j2", "etc/corp/managed"),
    ("asset.json.j2", "etc/corp/asset.json"),
    ("motd.j2", "etc/motd"),
    ("issue.net.j2", "etc/issue.net"),
    ("proxy.sh.j2", "etc/profile.d/proxy.sh"),
    ("sshd-hardening.conf.j2", "etc/ssh/sshd_config.d/50-hardening.conf"),
]:
    files.template(
        name=f"template {dest}",
        src=os.path.join(TEMPLATES, src),
        dest=f"{prefix}/{dest}",
        mode="0644",
        inventory_hostname=host.name,
        facts=facts,
        **data,
    )

# Files with inline content (7)
for dest, content, mode in [
    ("etc/timezone", f"{data['timezone']}\n", "0644"),
    ("etc/systemd/timesyncd.conf.d/50-ntp.conf", f"[Time]\nNTP={' '.join(data['ntp_servers'])}\n", "0644"),
    ("etc/systemd/journald.conf.d/50-size.conf", f"[Journal]\nSystemMaxUse={data['journald_max_use']}\n", "0644"),
    ("etc/sudoers.d/50-admin", f"{data['admin_user']} ALL=(ALL:ALL) NOPASSWD: ALL\n", "0440"),
    ("etc/sysctl.d/60-inotify.conf", "fs.inotify.max_user_watches = 524288\n", "0644"),
    ("etc/apt/apt.conf.d/95proxy", f'Acquire::http::Proxy "{data["proxy_url"]}";\n', "0644"),
    (
        "etc/xdg/autostart/corp-support.desktop",
        f"[Desktop Entry]\nType=Application\nName=Corp support\nExec={prefix}/opt/corp/bin/support.sh --tray\n",
        "0644",
    ),
]:
    files.put(name=f"file {dest}", src=StringIO(content), dest=f"{prefix}/{dest}", mode=mode)

# Files copied as they are (2)
files.put(
    name="file corp-root-ca.crt",
    src=os.path.join(FILES, "corp-root-ca.crt"),
    dest=f"{prefix}/usr/local/share/ca-certificates/corp-root-ca.crt",
    mode="0644",
)
files.put(
    name="file support.sh",
    src=os.path.join(FILES, "support.sh"),
    dest=f"{prefix}/opt/corp/bin/support.sh",
    mode="0755",
)

# Line edits (6)
for path, match, line in [
    ("etc/environment", "^no_proxy=", f"no_proxy={data['no_proxy']}"),
    ("etc/environment", "^http_proxy=", f"http_proxy={data['proxy_url']}"),
    ("etc/environment", "^https_proxy=", f"https_proxy={data['proxy_url']}"),
    ("etc/hosts", r"proxy\.corp\.example$", "10.0.0.8 proxy.corp.example"),
    ("etc/fstab", r"^//files\.corp\.example/", "//files.corp.example/office /mnt/shared cifs _netdev,noauto,x-systemd.automount 0 0"),
    ("etc/locale.gen", r"^#\? *en_US\.UTF-8 ", "en_US.UTF-8 UTF-8"),
]:
    files.line(name=f"line in {path}", path=f"{prefix}/{path}", line=match, replace=line)

# Links: time zone, and the CA where corp tools look for it (2)
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

# One-time enrolment: a host identity key, generated once (1). server.shell has
# no `creates`: the guard is in the command, as pyinfra users write it.
key = f"{prefix}/etc/corp/host-id"
server.shell(
    name="host identity key",
    commands=[f"test -e {key} || ssh-keygen -q -t ed25519 -N '' -C {host.name} -f {key}"],
)
