#!/usr/bin/env bash
# parc alone at scale (issue 17): for each fleet size, on one lab as large as
# the largest, the floor (`parc run -- true`), a first and a no-change run of
# the mixed workload; then, at the largest size, a first run of a profile
# holding one 20 MiB incompressible file. Wall time, wall time per host and
# the controller's peak memory of each; see README.md.
#
#   bench/scale.sh [--sizes "50 200 500"] [--rounds N]
#
# Environment: SUBNET (lab subnet, default 122), CARGO_TARGET_DIR,
# CONNECT_TIMEOUT (seconds, default 60: 500 hosts connecting at once on two
# cores shared with their sshd took more than parc's 10 s for some hosts).
# Needs root (the lab does); about 10 minutes at the default sizes on the
# machine in README.md, most of it the 500-host runs.
set -euo pipefail

SIZES="50 200 500"
ROUNDS=1
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || { sed -n '8p' "$0" >&2; exit 2; }
    case $1 in
        --sizes) SIZES=$2 ;;
        --rounds) ROUNDS=$2 ;;
        *) sed -n '8p' "$0" >&2; exit 2 ;;
    esac
    shift 2
done
SUBNET=${SUBNET:-122}
CONNECT_TIMEOUT=${CONNECT_TIMEOUT:-60}

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
LAB=$BENCH/.lab-scale
OUT=$BENCH/.out-scale
export PARC_RUNS_DIR=$OUT/runs   # run reports, kept with the logs
PARC=${CARGO_TARGET_DIR:-$ROOT/target}/release/parc
# shellcheck source=bench/common.sh
. "$BENCH/common.sh"

# One connection per host at once, and the lab's own descriptors.
ulimit -n "$(ulimit -Hn)"
prepare
# shellcheck disable=SC2086 # the sizes, split into words on purpose
MAX=$(largest $SIZES)
start_lab "$MAX"
rm -rf "$OUT"
mkdir -p "$OUT"
TIMES=$OUT/times.tsv
: >"$TIMES"

# measure NAME HOSTS ROUND COMMAND...: one timed run, its line in times.tsv.
measure() {
    local name=$1 hosts=$2 round=$3 secs peak
    shift 3
    local log=$OUT/$name-$hosts-$round.log
    if ! python3 "$BENCH/measure.py" "$OUT/measure" -- "$@" >"$log" 2>&1; then
        echo "$name ($hosts hosts, round $round) failed; its output: $log" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
    read -r secs peak _ <"$OUT/measure"
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$hosts" "$round" "$secs" "$peak" >>"$TIMES"
    say "$hosts hosts, round $round: $name ${secs}s, controller peak $((peak / 1024)) MiB"
}

reset() {
    "$PARC" --connect-timeout "$CONNECT_TIMEOUT" -i "$INV" run all --parallel "$MAX" -- "$(trash_cmd /srv/mixed-parc); rm -f /var/tmp/parc-scale-big.bin; \
        for u in alice bob; do userdel mx-parc-\$u 2>/dev/null; done; groupdel mx-parc-staff 2>/dev/null; true" >/dev/null
}

for hosts in $SIZES; do
    limit=$(first_hosts "$hosts")
    for round in $(seq "$ROUNDS"); do
        reset
        measure floor "$hosts" "$round" "$PARC" --connect-timeout "$CONNECT_TIMEOUT" -i "$INV" run "$limit" --parallel "$hosts" -- true
        for scenario in first second; do
            measure "mixed-$scenario" "$hosts" "$round" "$PARC" --connect-timeout "$CONNECT_TIMEOUT" -i "$INV" --json apply \
                "$BENCH/playbooks/mixed.yml" --parallel "$hosts" --limit "$limit"
        done
    done
done

# The 20 MiB file, to every host at once.
BIG=$OUT/big
mkdir -p "$BIG/profiles/files" "$BIG/playbooks"
head -c 20M /dev/urandom >"$BIG/profiles/files/big.bin"
printf 'resources:\n  - file: {path: /var/tmp/parc-scale-big.bin, src: big.bin, mode: "0644"}\n' \
    >"$BIG/profiles/big.yml"
printf -- '- hosts: all\n  profiles: [big]\n' >"$BIG/playbooks/big.yml"
reset
measure big-20MiB "$MAX" 1 "$PARC" --connect-timeout "$CONNECT_TIMEOUT" -i "$INV" --json apply "$BIG/playbooks/big.yml" --parallel "$MAX"

# The same at parc's default parallelism (64 hosts at once), as a user runs
# it: memory bounded by the hosts in flight, not by the fleet.
reset
measure big-20MiB-default "$MAX" 1 "$PARC" --connect-timeout "$CONNECT_TIMEOUT" -i "$INV" --json apply "$BIG/playbooks/big.yml"
for scenario in first second; do
    measure "mixed-$scenario-default" "$MAX" 1 "$PARC" --connect-timeout "$CONNECT_TIMEOUT" -i "$INV" --json apply \
        "$BENCH/playbooks/mixed.yml"
done

python3 - "$TIMES" "$ROUNDS" "$(results_file scale)" <<'PY'
import collections, statistics, sys

times, rounds, out = sys.argv[1], sys.argv[2], sys.argv[3]
secs, peaks = collections.defaultdict(list), collections.defaultdict(list)
for line in open(times):
    name, hosts, _round, s, peak = line.split("\t")
    secs[(name, int(hosts))].append(float(s))
    peaks[(name, int(hosts))].append(int(peak))
rows = ["| run | hosts | wall s (median) | ms per host | peak MiB | runs (s) |", "| --- | ---: | ---: | ---: | ---: | --- |"]
for (name, hosts), v in secs.items():
    m = statistics.median(v)
    rows.append(
        f"| {name} | {hosts} | {m:.2f} | {1000 * m / hosts:.1f} | {max(peaks[(name, hosts)]) / 1024:.0f} | "
        + " ".join(f"{x:.2f}" for x in v)
        + " |"
    )
table = "\n".join(rows)
print(table)
with open("/proc/loadavg") as f:
    load = " ".join(f.read().split()[:3])
with open(out, "w") as f:
    f.write(
        f"# Scale run\n\nparc alone, {rounds} round(s), every host of the fleet at once (`-default`: parc's "
        "default of 64 hosts at once); mixed = "
        "`bench/profiles/mixed.yml`, big-20MiB = one 20 MiB incompressible file. Peak MiB: the "
        "controller's resident memory (`measure.py`).\n\n"
        f"{table}\n\nLoad average after the run: {load}.\n"
    )
print(f"\nwritten to {out}")
PY
