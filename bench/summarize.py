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
    ap.add_argument("--sizes", required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--load-before", required=True)
    ap.add_argument("--load-after", required=True)
    ap.add_argument("--parc", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    samples = collections.defaultdict(list)
    peaks = collections.defaultdict(list)
    tools, sizes, scenarios = [], [], []
    for tool, hosts, scenario, _round, secs, peak in read_tsv(args.times):
        key = (tool, int(hosts), scenario)
        samples[key].append(float(secs))
        peaks[key].append(int(peak))
        for seen, v in ((tools, tool), (sizes, int(hosts)), (scenarios, scenario)):
            if v not in seen:
                seen.append(v)
    execs = {(tool, scenario): n for tool, scenario, n in read_tsv(args.execs)}
    medians = {key: statistics.median(v) for key, v in samples.items()}
    others = [t for t in tools if t != "parc"]

    # Side by side: one row per fleet size and scenario, ratios against parc.
    head = ["hosts", "scenario"] + [f"{t} s" for t in tools] + [f"{t} / parc" for t in others]
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * 2 + " ---: |" * (len(head) - 2)]
    for hosts in sizes:
        for scenario in scenarios:
            parc = medians.get(("parc", hosts, scenario))
            cells = [str(hosts), SCENARIOS[scenario]]
            cells += [f"{medians[(t, hosts, scenario)]:.2f}" if (t, hosts, scenario) in medians else "-" for t in tools]
            cells += [
                f"{medians[(t, hosts, scenario)] / parc:.1f}x" if parc and (t, hosts, scenario) in medians else "-"
                for t in others
            ]
            rows.append("| " + " | ".join(cells) + " |")
    ratios = "\n".join(rows)

    # Per tool: round trips per host and the controller's peak memory.
    rows = ["| tool | scenario | round trips per host | " + " | ".join(f"peak MiB, {h} hosts" for h in sizes) + " | runs (s) |"]
    rows.append("| --- | --- | ---: |" + " ---: |" * len(sizes) + " --- |")
    for tool in tools:
        for scenario in scenarios:
            mem = [
                f"{max(peaks[(tool, h, scenario)]) / 1024:.0f}" if (tool, h, scenario) in peaks else "-"
                for h in sizes
            ]
            runs = "; ".join(
                f"{h}: " + " ".join(f"{x:.2f}" for x in samples[(tool, h, scenario)])
                for h in sizes
                if (tool, h, scenario) in samples
            )
            rows.append(
                f"| {tool} | {SCENARIOS[scenario]} | {execs.get((tool, scenario), '-')} | "
                + " | ".join(mem)
                + f" | {runs} |"
            )
    details = "\n".join(rows)
    table = ratios + "\n\n" + details
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

Fleets of {args.sizes.replace(" ", " and ")} lab hosts, {args.rounds} round(s), medians. Workload:
`bench/profiles/bench.yml` (40 resources) and its Ansible and pyinfra equivalents, every
host of the fleet at once. Ratio = median wall time of the tool / median of parc for the
same fleet and scenario (higher is slower than parc).

{table}

Peak MiB: largest sum of resident memory over the tool's process tree on the controller
(`measure.py`, sampled every 50 ms). Round trips per host: remote commands (and file uploads) one host saw in one run,
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
