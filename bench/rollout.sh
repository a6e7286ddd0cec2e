#!/usr/bin/env bash
# Side-by-side rollout benchmark: parc, Ansible (linear and free strategies) and
# pyinfra converge the same 33-resource workstation profile on the same lab
# hosts, in the same run. See README.md for what is measured and how to read it.
#
#   bench/rollout.sh [HOSTS=20] [ROUNDS=3]
#
# Environment: SUBNET (lab subnet, default 120), TOOLS (default
# "parc ansible ansible-free pyinfra"), CARGO_TARGET_DIR (where parc is built).
# Needs root (the lab does) and PyPI access the first time (bench/setup.sh).
set -euo pipefail

HOSTS=${1:-20}
ROUNDS=${2:-3}
SUBNET=${SUBNET:-120}
TOOLS=${TOOLS:-"parc ansible ansible-free pyinfra"}

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
LAB=$BENCH/.lab
OUT=$BENCH/.out   # logs of every run, raw timings, ssh control sockets
PARC=${CARGO_TARGET_DIR:-$ROOT/target}/release/parc
VENV=$BENCH/.venv
export ANSIBLE_CONFIG=$BENCH/ansible/ansible.cfg
export BENCH_LAB_DIR=$LAB

say() { printf '== %s\n' "$*" >&2; }

"$BENCH/setup.sh"
say "building parc (release)"
(cd "$ROOT" && cargo build --release --quiet)

# A lab left behind by an interrupted run is stopped first; ours is always stopped.
if [ -e "$LAB/state.json" ]; then
    "$PARC" lab down --dir "$LAB"
fi
trap '"$PARC" lab down --dir "$LAB" >&2' EXIT
say "starting a $HOSTS-host lab on subnet $SUBNET"
"$PARC" lab up --hosts "$HOSTS" --subnet "$SUBNET" --dir "$LAB" >&2
rm -rf "$OUT"
mkdir -p "$OUT"
INV=$LAB/inventory.yml
for _ in $(seq 50); do
    if "$PARC" -i "$INV" run all -- true >/dev/null 2>&1; then break; fi
    sleep 0.2
done
"$PARC" -i "$INV" run all -- true >/dev/null

prefix_of() { case $1 in ansible*) echo /srv/bench-ansible ;; *) echo "/srv/bench-$1" ;; esac; }

reset_prefix() {
    "$PARC" -i "$INV" run all -- rm -rf "$(prefix_of "$1")" >/dev/null
}

# run_tool TOOL SCENARIO LOG [LIMIT]: one run of TOOL; the "changed" scenario
# sets revision=2, which changes exactly one rendered file (the motd) on every
# host. LIMIT restricts it to one host (for counting round trips).
run_tool() {
    local tool=$1 scenario=$2 log=$3 limit=${4:-}
    local rev=1
    [ "$scenario" = changed ] && rev=2
    case $tool in
        parc)
            "$PARC" -i "$INV" --json apply "$BENCH/playbooks/bench.yml" \
                --parallel "$HOSTS" -e "revision=$rev" ${limit:+--limit "$limit"} ;;
        ansible | ansible-free)
            local strategy=linear verbose=()
            [ "$tool" = ansible-free ] && strategy=free
            [ -n "$limit" ] && verbose=(-vvv)
            ANSIBLE_STRATEGY=$strategy "$VENV/bin/ansible-playbook" "${verbose[@]}" \
                -i "$LAB/ansible-inventory.yml" --forks "$HOSTS" -e "revision=$rev" \
                ${limit:+--limit "$limit"} "$BENCH/ansible/bench.yml" ;;
        pyinfra)
            local debug=()
            [ -n "$limit" ] && debug=(--debug)
            (cd "$BENCH/pyinfra" && "$VENV/bin/pyinfra" -y "${debug[@]}" --parallel "$HOSTS" \
                --data "revision=$rev" ${limit:+--limit "$limit"} inventory.py deploy.py) ;;
        *) echo "unknown tool $tool" >&2; return 2 ;;
    esac >"$log" 2>&1
}

TIMES=$OUT/times.tsv
COUNTS=$OUT/execs.tsv
: >"$TIMES"
: >"$COUNTS"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

for round in $(seq "$ROUNDS"); do
    for tool in $TOOLS; do
        reset_prefix "$tool"
        # Each round starts without Ansible's persisted ssh master connections,
        # so its first run pays for its connections like the other tools.
        export ANSIBLE_SSH_CONTROL_PATH_DIR=$OUT/cp/$tool-$round
        for scenario in first second changed; do
            log=$OUT/$tool-$scenario-$round.log
            start=$(date +%s.%N)
            if ! run_tool "$tool" "$scenario" "$log"; then
                echo "$tool ($scenario, round $round) failed; its output: $log" >&2
                tail -n 30 "$log" >&2
                exit 1
            fi
            end=$(date +%s.%N)
            secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
            printf '%s\t%s\t%s\t%s\n' "$tool" "$scenario" "$round" "$secs" >>"$TIMES"
            say "round $round: $tool $scenario ${secs}s"
        done
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

FIRST=ws-001
# The tools must have built the same tree (names, types, modes) for the timings
# to compare the same work; contents differ only where a tool names a fact
# differently (Ansible has no OS "pretty name").
tree_of() {
    "$PARC" -i "$INV" --json run "$FIRST" -- \
        "cd $(prefix_of "$1") && find . -printf '%P %y %m\\n' | sort | cksum" |
        grep -o '"stdout":"[^"]*"'
}
reference=$(tree_of parc)
for tool in $TOOLS; do
    if [ "$(tree_of "$tool")" != "$reference" ]; then
        echo "$tool built a different tree than parc under $(prefix_of "$tool") on $FIRST:" \
            "the workloads are not equivalent, the timings are not comparable" >&2
        exit 1
    fi
done

# Round trips per host, counted on one host (they do not depend on the number
# of hosts): parc reports them (`execs`), Ansible's -vvv shows every ssh/sftp
# it starts, pyinfra's --debug every command and upload.
ADDR=$(awk -v h="  $FIRST:" '$0 == h { getline; print $2; exit }' "$INV")
say "counting round trips on $FIRST ($ADDR)"
for tool in $TOOLS; do
    reset_prefix "$tool"
    export ANSIBLE_SSH_CONTROL_PATH_DIR=$OUT/cp/$tool-count
    for scenario in first second changed; do
        log=$OUT/$tool-$scenario-count.log
        run_tool "$tool" "$scenario" "$log" "$FIRST"
        case $tool in
            parc) n=$(grep -o '"execs":[0-9]*' "$log" | cut -d: -f2) ;;
            ansible*) n=$(grep -c "^<$ADDR> SSH: EXEC" "$log" || true) ;;
            pyinfra) n=$(grep -c -e "Running command on $FIRST:" -e "Attempting upload of" "$log" || true) ;;
        esac
        printf '%s\t%s\t%s\n' "$tool" "$scenario" "$n" >>"$COUNTS"
    done
done

"$VENV/bin/python" "$BENCH/summarize.py" --times "$TIMES" --execs "$COUNTS" \
    --hosts "$HOSTS" --rounds "$ROUNDS" --load-before "$LOAD_BEFORE" --load-after "$LOAD_AFTER" \
    --parc "$PARC" --venv "$VENV" --out "$BENCH/results/rollout-$(date +%Y-%m-%d).md"
