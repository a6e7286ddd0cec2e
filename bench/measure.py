"""Runs one command and reports its wall time and the controller's peak memory.

    measure.py RESULT_FILE -- COMMAND [ARG...]

Writes "SECONDS PEAK_KIB EXIT_STATUS" to RESULT_FILE. Peak memory is the
largest sum of the resident set sizes of the command's whole process tree
(Ansible forks a worker per host and an ssh client per connection; parc is one
process), sampled every 50 ms. Shared pages count once per process, so the
figure leans high for forking tools; the sampling can miss a peak shorter than
50 ms. Lab hosts' processes are children of their sshd, not of the command, so
they are not counted: this is the controller's memory only.
"""

import os
import subprocess
import sys
import time


def children_map():
    """pid -> list of child pids, for every process visible now."""
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: ppid follows the last ')'.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(root):
    kids = children_map()
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss_kib(pid)
        todo.extend(kids.get(pid, []))
    return total


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(__doc__)
    result, argv = sys.argv[1], sys.argv[3:]
    start = time.monotonic()
    proc = subprocess.Popen(argv)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_kib(proc.pid))
        time.sleep(0.05)
    secs = time.monotonic() - start
    with open(result, "w") as f:
        f.write(f"{secs:.2f} {peak} {proc.returncode}\n")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
