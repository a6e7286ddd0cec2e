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


WORKLOADS = {
    "bench": "`profiles/bench.yml` (40 resources)",
    "mixed": "`profiles/mixed.yml` (every kind the lab runs, a 1 MiB file, 5 verify commands)",
    "-": "`parc run -- true` (connect and one exec)",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--times", required=True)
    ap.add_argument("--execs", required=True)
    ap.add_argument("--sizes", required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--ansible-rounds", type=int)
    ap.add_argument("--load-before", required=True)
    ap.add_argument("--load-after", required=True)
    ap.add_argument("--parc", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    samples = collections.defaultdict(list)
    peaks = collections.defaultdict(list)
    tools, sizes, workloads, scenarios = [], [], [], []
    for tool, hosts, workload, scenario, _round, secs, peak in read_tsv(args.times):
        key = (tool, int(hosts), workload, scenario)
        samples[key].append(float(secs))
        peaks[key].append(int(peak))
        if tool == "floor":
            continue
        for seen, v in ((tools, tool), (sizes, int(hosts)), (workloads, workload), (scenarios, scenario)):
            if v not in seen:
                seen.append(v)
    execs = {(tool, workload, scenario): n for tool, workload, scenario, n in read_tsv(args.execs)}
    medians = {key: statistics.median(v) for key, v in samples.items()}
    others = [t for t in tools if t != "parc"]
    floor = {h: medians.get(("floor", h, "-", "floor")) for h in sizes}

    # Side by side: one row per fleet size, workload and scenario, ratios
    # against parc, and parc's time over the floor's.
    head = ["hosts", "workload", "scenario"] + [f"{t} s" for t in tools] + [f"{t} / parc" for t in others]
    head += ["floor s", "parc / floor"]
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * 3 + " ---: |" * (len(head) - 3)]
    for hosts in sizes:
        for workload in workloads:
            for scenario in scenarios:
                m = lambda t: medians.get((t, hosts, workload, scenario))  # noqa: E731
                parc = m("parc")
                cells = [str(hosts), workload, SCENARIOS[scenario]]
                cells += [f"{m(t):.2f}" if m(t) is not None else "-" for t in tools]
                cells += [f"{m(t) / parc:.1f}x" if parc and m(t) is not None else "-" for t in others]
                f = floor.get(hosts)
                cells += [f"{f:.2f}" if f else "-", f"{parc / f:.1f}x" if parc and f else "-"]
                rows.append("| " + " | ".join(cells) + " |")
    ratios = "\n".join(rows)

    # Per tool: round trips per host and the controller's peak memory.
    rows = [
        "| tool | workload | scenario | round trips per host | "
        + " | ".join(f"peak MiB, {h} hosts" for h in sizes)
        + " | runs (s) |"
    ]
    rows.append("| --- | --- | --- | ---: |" + " ---: |" * len(sizes) + " --- |")
    keys = [(t, w, s) for t in tools for w in workloads for s in scenarios]
    keys.append(("floor", "-", "floor"))
    for tool, workload, scenario in keys:
        mem = [
            f"{max(peaks[(tool, h, workload, scenario)]) / 1024:.0f}"
            if (tool, h, workload, scenario) in peaks
            else "-"
            for h in sizes
        ]
        runs = "; ".join(
            f"{h}: " + " ".join(f"{x:.2f}" for x in samples[(tool, h, workload, scenario)])
            for h in sizes
            if (tool, h, workload, scenario) in samples
        )
        label = "connect + `true`" if tool == "floor" else SCENARIOS[scenario]
        rows.append(
            f"| {tool} | {workload} | {label} | {execs.get((tool, workload, scenario), '-')} | "
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
    ansible_rounds = (
        f" (Ansible: {args.ansible_rounds})"
        if args.ansible_rounds is not None and args.ansible_rounds != args.rounds
        else ""
    )
    text = f"""# Rollout benchmark, {today}

Fleets of {args.sizes.replace(" ", " and ")} lab hosts, {args.rounds} round(s){ansible_rounds}, medians.
Workloads: {"; ".join(f"{w}: {WORKLOADS.get(w, w)}" for w in workloads)}, each with its
Ansible and pyinfra equivalents, every host of the fleet at once. Ratio = median wall time
of the tool / median of parc for the same fleet, workload and scenario (higher is slower
than parc). Floor: `parc run -- true` on the same hosts (connect and one exec); parc /
floor is how far parc's run is from it.

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
