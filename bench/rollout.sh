#!/usr/bin/env bash
# Side-by-side rollout benchmark: parc, Ansible and pyinfra converge the same
# workloads on the same lab hosts, in the same run, for each fleet size, next
# to the floor (`parc run all -- true`: connect and one exec). See README.md
# for what is measured and how to read it.
#
#   bench/rollout.sh [--sizes "10 50"] [--rounds N] [--ansible-rounds N]
#                    [--workloads "bench mixed"]
#   bench/rollout.sh ["10 50"] [ROUNDS]          (the old positional form)
#
# --ansible-rounds (default: --rounds) runs Ansible in the first N rounds
# only: at 50 hosts one Ansible run takes about 10 minutes.
# Environment: SUBNET (lab subnet, default 120), TOOLS (default
# "parc ansible pyinfra"; "ansible-free" adds Ansible's free strategy),
# SCENARIOS (default "first second"; "changed" adds a run where one file
# changes on every host), CARGO_TARGET_DIR (where parc is built).
# Needs root (the lab does) and PyPI access the first time (bench/setup.sh).
set -euo pipefail

SIZES="10 50"
ROUNDS=1
ANSIBLE_ROUNDS=
WORKLOADS="bench mixed"
usage() { sed -n '7,10p' "$0" | sed 's/^# //' >&2; exit 2; }
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
    SIZES=$1
    ROUNDS=${2:-1}
    shift $(($# < 2 ? $# : 2))
fi
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage
    case $1 in
        --sizes) SIZES=$2 ;;
        --rounds) ROUNDS=$2 ;;
        --ansible-rounds) ANSIBLE_ROUNDS=$2 ;;
        --workloads) WORKLOADS=$2 ;;
        *) usage ;;
    esac
    shift 2
done
ANSIBLE_ROUNDS=${ANSIBLE_ROUNDS:-$ROUNDS}
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

# shellcheck source=bench/common.sh
. "$BENCH/common.sh"

"$BENCH/setup.sh"
prepare

# shellcheck disable=SC2086 # the sizes, split into words on purpose
MAX=$(largest $SIZES)
start_lab "$MAX"
rm -rf "$OUT"
mkdir -p "$OUT"

# run_tool TOOL WORKLOAD SCENARIO LOG HOSTS [ONE]: one run of TOOL on the
# first HOSTS hosts (or on host ONE only, to count its round trips); the
# "changed" scenario sets revision=2, which changes exactly one rendered file
# (the motd) on every host. Tool "floor" is `parc run -- true`.
run_tool() {
    local tool=$1 workload=$2 scenario=$3 log=$4 hosts=$5 one=${6:-}
    local rev=1 limit
    [ "$scenario" = changed ] && rev=2
    limit=${one:-$(first_hosts "$hosts")}
    case $tool in
        floor)
            "$PARC" -i "$INV" run "$limit" --parallel "$hosts" -- true ;;
        parc)
            "$PARC" -i "$INV" --json apply "$BENCH/playbooks/$workload.yml" \
                --parallel "$hosts" -e "revision=$rev" --limit "$limit" ;;
        ansible | ansible-free)
            local strategy=linear verbose=()
            [ "$tool" = ansible-free ] && strategy=free
            [ -n "$one" ] && verbose=(-vvv)
            ANSIBLE_STRATEGY=$strategy "$VENV/bin/ansible-playbook" "${verbose[@]}" \
                -i "$LAB/ansible-inventory.yml" --forks "$hosts" -e "revision=$rev" \
                --limit "$limit" "$BENCH/ansible/$workload.yml" ;;
        pyinfra)
            local debug=() deploy=deploy.py
            [ "$workload" = mixed ] && deploy=mixed.py
            [ -n "$one" ] && debug=(--debug --limit "$one")
            (cd "$BENCH/pyinfra" && BENCH_HOSTS=$hosts "$VENV/bin/pyinfra" -y "${debug[@]}" \
                --parallel "$hosts" --data "revision=$rev" inventory.py "$deploy") ;;
        *) echo "unknown tool $tool" >&2; return 2 ;;
    esac >"$log" 2>&1
}

# measure LOG TOOL WORKLOAD SCENARIO HOSTS ROUND: one timed run, its line in
# times.tsv.
measure() {
    local log=$1 tool=$2 workload=$3 scenario=$4 hosts=$5 round=$6 secs peak
    if ! "$VENV/bin/python" "$BENCH/measure.py" "$OUT/measure" -- \
        bash -c 'run_tool "$@"' run_tool "$tool" "$workload" "$scenario" "$log" "$hosts"; then
        echo "$tool ($workload $scenario, $hosts hosts, round $round) failed; its output: $log" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
    read -r secs peak _ <"$OUT/measure"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$hosts" "$workload" "$scenario" "$round" "$secs" "$peak" >>"$TIMES"
    say "$hosts hosts, round $round: $tool $workload $scenario ${secs}s, controller peak $((peak / 1024)) MiB"
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
        measure "$OUT/floor-$hosts-$round.log" floor - floor "$hosts" "$round"
        for workload in $WORKLOADS; do
            for tool in $TOOLS; do
                case $tool in ansible*) [ "$round" -le "$ANSIBLE_ROUNDS" ] || continue ;; esac
                reset_prefix "$workload" "$tool"
                # Each round starts without Ansible's persisted ssh master connections,
                # so its first run pays for its connections like the other tools.
                export ANSIBLE_SSH_CONTROL_PATH_DIR=$OUT/cp/$tool-$workload-$hosts-$round
                for scenario in $SCENARIOS; do
                    measure "$OUT/$tool-$workload-$hosts-$scenario-$round.log" \
                        "$tool" "$workload" "$scenario" "$hosts" "$round"
                done
            done
        done
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

FIRST=ws-001
# The tools must have built the same tree (names, types, modes) and the same
# accounts (home, shell, groups) for the timings to compare the same work;
# contents differ only where a tool names a fact differently (Ansible has no
# OS "pretty name").
state_of() {
    local tag=$2
    case $tag in ansible*) tag=ansible ;; esac
    "$PARC" -i "$INV" --json run "$FIRST" -- \
        "cd $(prefix_of "$1" "$2") && { find . -printf '%P %y %m\\n' | sort; \
         for u in alice bob; do getent passwd mx-$tag-\$u | cut -d: -f6,7; id -nG mx-$tag-\$u; done; \
         getent group mx-$tag-staff | cut -d: -f1; } | sed 's/$tag/TOOL/g' | cksum" |
        grep -o '"stdout":"[^"]*"'
}
for workload in $WORKLOADS; do
    reference=$(state_of "$workload" parc)
    for tool in $TOOLS; do
        if [ "$(state_of "$workload" "$tool")" != "$reference" ]; then
            echo "$tool built a different tree or accounts than parc for $workload on $FIRST" \
                "($(prefix_of "$workload" "$tool")): the workloads are not equivalent," \
                "the timings are not comparable" >&2
            exit 1
        fi
    done
done

# Round trips per host, counted on one host (they do not depend on the number
# of hosts): parc reports them (`execs`), Ansible's -vvv shows every ssh/sftp
# it starts, pyinfra's --debug every command and upload.
ADDR=$(awk -v h="  $FIRST:" '$0 == h { getline; print $2; exit }' "$INV")
say "counting round trips on $FIRST ($ADDR)"
for workload in $WORKLOADS; do
    for tool in $TOOLS; do
        reset_prefix "$workload" "$tool"
        export ANSIBLE_SSH_CONTROL_PATH_DIR=$OUT/cp/$tool-$workload-count
        for scenario in $SCENARIOS; do
            log=$OUT/$tool-$workload-$scenario-count.log
            run_tool "$tool" "$workload" "$scenario" "$log" 1 "$FIRST"
            case $tool in
                parc) n=$(grep -o '"execs":[0-9]*' "$log" | cut -d: -f2) ;;
                ansible*) n=$(grep -c "^<$ADDR> SSH: EXEC" "$log" || true) ;;
                pyinfra) n=$(grep -c -e "Running command on $FIRST:" -e "Attempting upload of" "$log" || true) ;;
            esac
            printf '%s\t%s\t%s\t%s\n' "$tool" "$workload" "$scenario" "$n" >>"$COUNTS"
        done
    done
done

"$VENV/bin/python" "$BENCH/summarize.py" --times "$TIMES" --execs "$COUNTS" \
    --sizes "$SIZES" --rounds "$ROUNDS" --ansible-rounds "$ANSIBLE_ROUNDS" --load-before "$LOAD_BEFORE" --load-after "$LOAD_AFTER" \
    --parc "$PARC" --venv "$VENV" --out "$(results_file rollout)"
