#!/usr/bin/env bash
# Side-by-side rollout benchmark: parc, Ansible and pyinfra converge the same
# 40-resource workstation profile on the same lab hosts, in the same run, for
# each fleet size. See README.md for what is measured and how to read it.
#
#   bench/rollout.sh [SIZES="10 50"] [ROUNDS=1]
#
# Environment: SUBNET (lab subnet, default 120), TOOLS (default
# "parc ansible pyinfra"; "ansible-free" adds Ansible's free strategy),
# SCENARIOS (default "first second"; "changed" adds a run where one file
# changes on every host), CARGO_TARGET_DIR (where parc is built).
# Needs root (the lab does) and PyPI access the first time (bench/setup.sh).
set -euo pipefail

SIZES=${1:-10 50}
ROUNDS=${2:-1}
SUBNET=${SUBNET:-120}
TOOLS=${TOOLS:-"parc ansible pyinfra"}
SCENARIOS=${SCENARIOS:-"first second"}

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

MAX=0
for n in $SIZES; do [ "$n" -gt "$MAX" ] && MAX=$n; done
# A lab left behind by an interrupted run is stopped first; ours is always stopped.
if [ -e "$LAB/state.json" ]; then
    "$PARC" lab down --dir "$LAB"
fi
trap '"$PARC" lab down --dir "$LAB" >&2' EXIT
say "starting a $MAX-host lab on subnet $SUBNET"
"$PARC" lab up --hosts "$MAX" --subnet "$SUBNET" --dir "$LAB" >&2
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
    "$PARC" -i "$INV" run all -- rm -rf "$(prefix_of "$1")" >/dev/null 2>&1
}

# The first N hosts of the lab, as a pattern parc and Ansible both read.
first_hosts() { printf 'ws-%03d,' $(seq "$1") | sed 's/,$//'; }

# run_tool TOOL SCENARIO LOG HOSTS [ONE]: one run of TOOL on the first HOSTS
# hosts (or on host ONE only, to count its round trips); the "changed" scenario
# sets revision=2, which changes exactly one rendered file (the motd) on every host.
run_tool() {
    local tool=$1 scenario=$2 log=$3 hosts=$4 one=${5:-}
    local rev=1 limit
    [ "$scenario" = changed ] && rev=2
    limit=${one:-$(first_hosts "$hosts")}
    case $tool in
        parc)
            "$PARC" -i "$INV" --json apply "$BENCH/playbooks/bench.yml" \
                --parallel "$hosts" -e "revision=$rev" --limit "$limit" ;;
        ansible | ansible-free)
            local strategy=linear verbose=()
            [ "$tool" = ansible-free ] && strategy=free
            [ -n "$one" ] && verbose=(-vvv)
            ANSIBLE_STRATEGY=$strategy "$VENV/bin/ansible-playbook" "${verbose[@]}" \
                -i "$LAB/ansible-inventory.yml" --forks "$hosts" -e "revision=$rev" \
                --limit "$limit" "$BENCH/ansible/bench.yml" ;;
        pyinfra)
            local debug=()
            [ -n "$one" ] && debug=(--debug --limit "$one")
            (cd "$BENCH/pyinfra" && BENCH_HOSTS=$hosts "$VENV/bin/pyinfra" -y "${debug[@]}" \
                --parallel "$hosts" --data "revision=$rev" inventory.py deploy.py) ;;
        *) echo "unknown tool $tool" >&2; return 2 ;;
    esac >"$log" 2>&1
}

# measure.py runs each timed command in a child bash: it needs these.
export -f first_hosts run_tool
export PARC INV BENCH VENV LAB

TIMES=$OUT/times.tsv
COUNTS=$OUT/execs.tsv
: >"$TIMES"
: >"$COUNTS"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

for hosts in $SIZES; do
    for round in $(seq "$ROUNDS"); do
        for tool in $TOOLS; do
            reset_prefix "$tool"
            # Each round starts without Ansible's persisted ssh master connections,
            # so its first run pays for its connections like the other tools.
            export ANSIBLE_SSH_CONTROL_PATH_DIR=$OUT/cp/$tool-$hosts-$round
            for scenario in $SCENARIOS; do
                log=$OUT/$tool-$hosts-$scenario-$round.log
                if ! "$VENV/bin/python" "$BENCH/measure.py" "$OUT/measure" -- \
                    bash -c 'run_tool "$@"' run_tool "$tool" "$scenario" "$log" "$hosts"; then
                    echo "$tool ($scenario, $hosts hosts, round $round) failed; its output: $log" >&2
                    tail -n 30 "$log" >&2
                    exit 1
                fi
                read -r secs peak _ <"$OUT/measure"
                printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$hosts" "$scenario" "$round" "$secs" "$peak" >>"$TIMES"
                say "$hosts hosts, round $round: $tool $scenario ${secs}s, controller peak $((peak / 1024)) MiB"
            done
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
    for scenario in $SCENARIOS; do
        log=$OUT/$tool-$scenario-count.log
        run_tool "$tool" "$scenario" "$log" 1 "$FIRST"
        case $tool in
            parc) n=$(grep -o '"execs":[0-9]*' "$log" | cut -d: -f2) ;;
            ansible*) n=$(grep -c "^<$ADDR> SSH: EXEC" "$log" || true) ;;
            pyinfra) n=$(grep -c -e "Running command on $FIRST:" -e "Attempting upload of" "$log" || true) ;;
        esac
        printf '%s\t%s\t%s\n' "$tool" "$scenario" "$n" >>"$COUNTS"
    done
done

"$VENV/bin/python" "$BENCH/summarize.py" --times "$TIMES" --execs "$COUNTS" \
    --sizes "$SIZES" --rounds "$ROUNDS" --load-before "$LOAD_BEFORE" --load-after "$LOAD_AFTER" \
    --parc "$PARC" --venv "$VENV" --out "$BENCH/results/rollout-$(date +%Y-%m-%d).md"
