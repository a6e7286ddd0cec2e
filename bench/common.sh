# shellcheck shell=bash
# Shared by rollout.sh, scale.sh, ab.sh and imaging.sh (sourced): building parc, the
# mixed workload's wallpaper and its reset, and one lab started for the
# whole run and always stopped. Expects BENCH, ROOT, LAB, PARC and SUBNET
# to be set, and reads CONNECT_TIMEOUT (parc's --connect-timeout, default
# parc's own 10 s).

say() { printf '== %s\n' "$*" >&2; }

# The first N hosts of the lab, as a pattern parc and Ansible both read.
first_hosts() { printf 'ws-%03d,' $(seq "$1") | sed 's/,$//'; }

# results/NAME-DATE.EXT (EXT md unless given), or NAME-DATE-2.EXT (-3, ...)
# when a run of the same day already wrote it: a second run must not
# overwrite the first's results.
results_file() {
    local base ext=${2:-md} file n=2
    base=$BENCH/results/$1-$(date +%Y-%m-%d)
    file=$base.$ext
    while [ -e "$file" ]; do
        file=$base-$n.$ext
        n=$((n + 1))
    done
    printf '%s\n' "$file"
}

# trash_cmd DIR: a target command that moves DIR (when present) into
# /srv/.bench-trash rather than deleting it. The lab's hosts are overlays on
# the machine's root filesystem, and where that is ext4 without a journal
# (as on the machines this was measured on) the inode allocator skips, one
# by one, every inode freed in the last 60 s (360 s while its block is dirty:
# `recently_deleted` in fs/ext4/ialloc.c). Deleting the previous run's trees
# on 50 hosts just before a timed run made every file the next tool created
# scan thousands of them: a quarter of all CPU of parc's first run at 50
# hosts, rising round after round (8 -> 17 s over six runs); after a move
# aside, none. A real workstation does not delete a fleet's worth of files a
# second before its rollout; the trash goes with the lab.
trash_cmd() {
    # shellcheck disable=SC2016 # $(mktemp) is for the target's shell
    printf 'if [ -e %s ]; then mkdir -p /srv/.bench-trash && mv -- %s "$(mktemp -d /srv/.bench-trash/XXXXXX)"/; fi' "$1" "$1"
}

# The largest of the numbers given.
largest() { printf '%s\n' "$@" | sort -n | tail -n 1; }

# The mixed workload's 1 MiB wallpaper: seeded random bytes (incompressible,
# the same in every run), generated rather than kept in git.
wallpaper() {
    local wallpaper=$BENCH/profiles/files/wallpaper.bin
    [ -s "$wallpaper" ] || python3 -c "import random, sys; sys.stdout.buffer.write(random.Random(17).randbytes(1 << 20))" >"$wallpaper"
}

# parc in release, and the wallpaper.
prepare() {
    wallpaper
    say "building parc (release)"
    (cd "$ROOT" && cargo build --release --quiet)
}

# prefix_of WORKLOAD TOOL: where the tool's run of the workload puts its files.
prefix_of() {
    local tool=$2
    case $tool in ansible*) tool=ansible ;; esac
    echo "/srv/$1-$tool"
}

# Removes what a tool's run of a workload left: its prefix, and for `mixed`
# its accounts (named after the tool). The prefix is moved aside into
# /srv/.bench-trash rather than deleted: see `trash_cmd`.
reset_prefix() {
    local tag=$2
    case $tag in ansible*) tag=ansible ;; esac
    "$PARC" -i "$INV" run all -- "$(trash_cmd "$(prefix_of "$1" "$2")"); \
        for u in alice bob; do userdel mx-$tag-\$u 2>/dev/null; done; \
        groupdel mx-$tag-staff 2>/dev/null; true" >/dev/null 2>&1
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
