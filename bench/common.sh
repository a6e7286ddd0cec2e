# shellcheck shell=bash
# Shared by rollout.sh and scale.sh (sourced): building parc, the mixed
# workload's wallpaper, and one lab started for the whole run and always
# stopped. Expects BENCH, ROOT, LAB, PARC and SUBNET to be set, and reads
# CONNECT_TIMEOUT (parc's --connect-timeout, default parc's own 10 s).

say() { printf '== %s\n' "$*" >&2; }

# The first N hosts of the lab, as a pattern parc and Ansible both read.
first_hosts() { printf 'ws-%03d,' $(seq "$1") | sed 's/,$//'; }

# results/NAME-DATE.md, or NAME-DATE-2.md (-3, ...) when a run of the same
# day already wrote it: a second run must not overwrite the first's results.
results_file() {
    local base file n=2
    base=$BENCH/results/$1-$(date +%Y-%m-%d)
    file=$base.md
    while [ -e "$file" ]; do
        file=$base-$n.md
        n=$((n + 1))
    done
    printf '%s\n' "$file"
}

# The largest of the numbers given.
largest() { printf '%s\n' "$@" | sort -n | tail -n 1; }

# parc in release, and the mixed workload's 1 MiB wallpaper: seeded random
# bytes (incompressible, the same in every run), generated rather than kept
# in git.
prepare() {
    local wallpaper=$BENCH/profiles/files/wallpaper.bin
    [ -s "$wallpaper" ] || python3 -c "import random, sys; sys.stdout.buffer.write(random.Random(17).randbytes(1 << 20))" >"$wallpaper"
    say "building parc (release)"
    (cd "$ROOT" && cargo build --release --quiet)
}

# start_lab HOSTS: a lab of HOSTS hosts in $LAB, stopped when the script
# exits (a lab left behind by an interrupted run is stopped first), once
# every host answers. Sets INV.
start_lab() {
    if [ -e "$LAB/state.json" ]; then
        "$PARC" lab down --dir "$LAB"
    fi
    trap '"$PARC" lab down --dir "$LAB" >&2' EXIT
    say "starting a $1-host lab on subnet $SUBNET"
    "$PARC" lab up --hosts "$1" --subnet "$SUBNET" --dir "$LAB" >&2
    INV=$LAB/inventory.yml
    for _ in $(seq 50); do
        if "$PARC" --connect-timeout "${CONNECT_TIMEOUT:-10}" -i "$INV" run all --parallel "$1" -- true >/dev/null 2>&1; then break; fi
        sleep 0.2
    done
    "$PARC" --connect-timeout "${CONNECT_TIMEOUT:-10}" -i "$INV" run all --parallel "$1" -- true >/dev/null
}
