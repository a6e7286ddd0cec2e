# pyinfra inventory generated from the lab's own inventory (BENCH_LAB_DIR, default
# bench/.lab): same hosts, same key, and the lab's known_hosts with strict host
# key checking, as for parc and Ansible.
import os

import yaml

_lab = os.environ.get("BENCH_LAB_DIR", os.path.join(os.path.dirname(__file__), "..", ".lab"))
with open(os.path.join(_lab, "inventory.yml")) as f:
    _inv = yaml.safe_load(f)

_defaults = _inv["defaults"]
_connection = {
    "ssh_user": _defaults["user"],
    "ssh_key": _defaults["identity_file"],
    "ssh_known_hosts_file": _defaults["known_hosts"],
    "ssh_strict_host_key_checking": "yes",
    "ssh_allow_agent": False,
    "ssh_look_for_keys": False,
}

# BENCH_HOSTS=N: only the first N hosts (rollout.sh measures several fleet sizes
# on one lab).
_count = int(os.environ.get("BENCH_HOSTS", "0")) or None
lab = [
    (name, dict(_connection, ssh_hostname=str(host["address"])))
    for name, host in sorted(_inv["hosts"].items())
][:_count]
