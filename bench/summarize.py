"""Turns rollout.sh's raw timings into the table it prints and the results file.

Medians, not means: the machine is shared, and one run slowed down by a
neighbour should not move the result.
"""

import argparse
import collections
import datetime
import importlib.metadata
import os
import platform
import statistics
import subprocess

SCENARIOS = {
    "first": "first run (converge from scratch)",
    "second": "second run (nothing to change)",
    "changed": "one file changed on every host",
}


def read_tsv(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def command_output(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as e:
        return f"unavailable ({e})"
    return (out.stdout or out.stderr).strip().splitlines()[0]


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{mem_kb / 1024 / 1024:.0f} GiB",
        "kernel": platform.release(),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--times", required=True)
    ap.add_argument("--execs", required=True)
    ap.add_argument("--hosts", type=int, required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--load-before", required=True)
    ap.add_argument("--load-after", required=True)
    ap.add_argument("--parc", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    samples = collections.defaultdict(list)
    tools = []
    for tool, scenario, _round, secs in read_tsv(args.times):
        samples[(tool, scenario)].append(float(secs))
        if tool not in tools:
            tools.append(tool)
    execs = {(tool, scenario): n for tool, scenario, n in read_tsv(args.execs)}
    medians = {key: statistics.median(v) for key, v in samples.items()}

    header = "| tool | scenario | median s | ratio vs parc | round trips per host | runs (s) |"
    rows = [header, "| --- | --- | ---: | ---: | ---: | --- |"]
    for scenario in SCENARIOS:
        parc = medians.get(("parc", scenario))
        for tool in tools:
            key = (tool, scenario)
            if key not in medians:
                continue
            ratio = f"{medians[key] / parc:.1f}x" if parc else "-"
            runs = " ".join(f"{s:.2f}" for s in samples[key])
            rows.append(
                f"| {tool} | {SCENARIOS[scenario]} | {medians[key]:.2f} | {ratio} "
                f"| {execs.get(key, '-')} | {runs} |"
            )
    table = "\n".join(rows)
    print(table)

    m = machine()
    versions = {
        "parc": command_output([args.parc, "--version"]),
        "ansible-core": importlib.metadata.version("ansible-core"),
        "pyinfra": importlib.metadata.version("pyinfra"),
        "python (controller)": platform.python_version(),
        "OpenSSH client": command_output(["ssh", "-V"]),
    }
    today = datetime.date.today().isoformat()
    text = f"""# Rollout benchmark, {today}

{args.hosts} lab hosts, {args.rounds} rounds, medians. Workload: `bench/profiles/bench.yml`
(33 resources) and its Ansible and pyinfra equivalents. Ratio = median of the tool /
median of parc for the same scenario (higher is slower than parc).

{table}

Round trips per host: remote commands (and file uploads) one host saw in one run,
counted on ws-001 outside the timed runs (`execs` for parc, `SSH: EXEC` lines of
`ansible-playbook -vvv`, commands and uploads of `pyinfra --debug`).

Machine: {m['cpu']}, {m['memory']} RAM, Linux {m['kernel']}. The lab hosts run on the
same machine as the tools, and the machine was shared with other jobs: load average
{args.load_before} before, {args.load_after} after. The numbers are indicative; the
ratios measured in the same run are what to compare.

Versions: {", ".join(f"{k} {v}" for k, v in versions.items())}.
"""
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
