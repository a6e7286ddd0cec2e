#!/usr/bin/env bash
# Two parc builds on one lab, run by run in turn (issue 17): what a change
# saves or costs, measured so that the machine's drift (a tenth either way
# over minutes on the machine in README.md) falls on both alike. For each
# build and each scenario of `mixed` on every host at once (first: the last
# run's files and accounts moved aside before it; second: nothing left to
# change), the wall time, the machine's busy CPU over the run (/proc/stat:
# parc, its `ssh -G` and the lab's hosts alike) and parc's own peak resident
# memory (GNU time's maximum RSS: parc alone, its binary's pages included).
#
#   bench/ab.sh A_PARC B_PARC [--hosts N] [--rounds N] [--names "A B"]
#
# Environment: SUBNET (lab subnet, default 124). Needs root (the lab does)
# and GNU time (/usr/bin/time). Prints a table of medians and writes it to
# results/ab-<date>.md; the lab is started with B_PARC.
set -euo pipefail

usage() { sed -n '11p' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
A=$(realpath "$1") B=$(realpath "$2")
shift 2
HOSTS=50
ROUNDS=6
NAMES="$A $B"
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage
    case $1 in
        --hosts) HOSTS=$2 ;;
        --rounds) ROUNDS=$2 ;;
        --names) NAMES=$2 ;;
        *) usage ;;
    esac
    shift 2
done
SUBNET=${SUBNET:-124}

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
LAB=$BENCH/.lab-ab
OUT=$BENCH/.out-ab
export PARC_RUNS_DIR=$OUT/runs
PARC=$B
# shellcheck source=bench/common.sh
. "$BENCH/common.sh"

command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"
wallpaper
rm -rf "$OUT"
mkdir -p "$OUT"
start_lab "$HOSTS"
TICK=$(getconf CLK_TCK)
RUNS=$OUT/runs.tsv

# Busy CPU ticks of the whole machine so far: user, nice, system, irq,
# softirq (the first line of /proc/stat).
busy() {
    local _cpu user nice system _idle _iowait irq softirq
    read -r _cpu user nice system _idle _iowait irq softirq _ </proc/stat
    echo $((user + nice + system + irq + softirq))
}

# run BUILD LABEL SCENARIO ROUND: one timed apply, its line in runs.tsv.
run() {
    local bin=$1 label=$2 scenario=$3 round=$4 t0 t1 c0 c1
    c0=$(busy)
    t0=$(date +%s.%N)
    if ! /usr/bin/time -f %M -o "$OUT/rss" "$bin" -i "$INV" --json apply \
        "$BENCH/playbooks/mixed.yml" --parallel "$HOSTS" -e revision=1 >"$OUT/log" 2>&1; then
        echo "$label ($scenario, round $round) failed; its output: $OUT/log" >&2
        tail -n 20 "$OUT/log" >&2
        exit 1
    fi
    t1=$(date +%s.%N)
    c1=$(busy)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$scenario" "$round" \
        "$(echo "$t1 - $t0" | bc)" "$(echo "scale=2; ($c1 - $c0) / $TICK" | bc)" \
        "$(tail -n 1 "$OUT/rss")" >>"$RUNS"
}

# A warm-up first run, whose files the first round moves aside.
"$B" -i "$INV" --json apply "$BENCH/playbooks/mixed.yml" --parallel "$HOSTS" -e revision=1 >/dev/null 2>&1
for round in $(seq "$ROUNDS"); do
    # A then B in odd rounds, B then A in even ones.
    order="A B"
    [ $((round % 2)) -eq 0 ] && order="B A"
    for label in $order; do
        bin=$A
        [ "$label" = B ] && bin=$B
        reset_prefix mixed parc
        run "$bin" "$label" first "$round"
        run "$bin" "$label" second "$round"
    done
    say "round $round of $ROUNDS done"
done

file=$(results_file ab)
# shellcheck disable=SC2086 # the two names, split into words on purpose
python3 - "$RUNS" $NAMES "$HOSTS" "$ROUNDS" >"$file" <<'PY'
import statistics, sys
runs, a, b, hosts, rounds = sys.argv[1:]
rows = {}
for line in open(runs):
    label, scenario, _, wall, cpu, rss = line.split("\t")
    rows.setdefault((scenario, label), []).append((float(wall), float(cpu), int(rss) / 1024))
print(f"# A/B of two parc builds, mixed, {hosts} hosts at once, {rounds} rounds alternated\n")
print(f"A: {a}; B: {b}. Medians; wall and machine CPU (`/proc/stat`, every process) in seconds,")
print("parc's peak RSS (GNU time) in MiB. The first rounds on a fresh lab are the slowest.\n")
print("| scenario | A wall | B wall | A CPU | B CPU | A peak | B peak | B wall runs |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for scenario in ("first", "second"):
    med = {l: [statistics.median(x[i] for x in rows[(scenario, l)]) for i in range(3)] for l in "AB"}
    runs_b = " ".join(f"{x[0]:.2f}" for x in rows[(scenario, "B")])
    print(f"| {scenario} | {med['A'][0]:.2f} | {med['B'][0]:.2f} | {med['A'][1]:.2f} | {med['B'][1]:.2f} "
          f"| {med['A'][2]:.1f} | {med['B'][2]:.1f} | {runs_b} |")
PY
cat "$file"
echo "written to $file"
