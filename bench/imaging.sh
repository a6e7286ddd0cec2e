#!/usr/bin/env bash
# Imaging figures, side by side in one run (not run by CI; needs root and
# openssh-server, like `parc lab`):
#   - full deploy of a 1 GiB image to 1 and to 10 lab hosts, against the
#     baseline `ssh HOST 'cat > TARGET' < IMAGE` (OpenSSH, same hosts, same run);
#   - a delta re-deploy after 1% of the image's chunks changed, with parc's
#     image helper on the targets and with sh alone (--no-helper), against its
#     bound: the time the target took to hash itself plus the time the changed
#     chunks took to send (both from the same run's report);
#   - the same image stored as seekable zstd (`parc image convert`) and as
#     qcow2 (`qemu-img convert`): whole deploy time against raw, and bytes sent
#     (helper targets get the compressed frames; sh-only ones raw bytes).
# The image is 1/2 random chunks, 1/4 text chunks (slices of a tar of the
# system's Python library: compressible, like a real system disk) and 1/4 zero
# chunks (every fourth), like a disk with free space. Every disk is reset to
# empty (sparse) before each full deploy.
#
# Usage: bench/imaging.sh            (builds the release binary)
#        PARC=/path/to/parc SUBNET=240 bench/imaging.sh
#        HOSTS=2 SIZE_MIB=64 RESULTS=/tmp/smoke.txt bench/imaging.sh   (a smoke run)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
# shellcheck source=bench/common.sh
. "$BENCH/common.sh"
SUBNET=${SUBNET:-240}
HOSTS=${HOSTS:-10}
SIZE=$((${SIZE_MIB:-1024} * 1024 * 1024))
CHUNK=$((4 * 1024 * 1024))
if [ -z "${PARC:-}" ]; then
  (cd "$ROOT" && cargo build --release --quiet)
  PARC=${CARGO_TARGET_DIR:-$ROOT/target}/release/parc
fi

WORK=$(mktemp -d /tmp/parc-bench-imaging.XXXXXX)
LAB=$WORK/lab
cleanup() {
  "$PARC" lab down --dir "$LAB" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$PARC" lab up --hosts "$HOSTS" --subnet "$SUBNET" --dir "$LAB" --disk-size "$((SIZE >> 20))MiB" >/dev/null
export PARC_INVENTORY=$LAB/inventory.yml
mapfile -t NAMES < <(python3 -c 'import json,sys; [print(h["name"]) for h in json.load(open(sys.argv[1]))["hosts"]]' "$LAB/state.json")
mapfile -t ADDRS < <(python3 -c 'import json,sys; [print(h["address"]) for h in json.load(open(sys.argv[1]))["hosts"]]' "$LAB/state.json")
SSH=(ssh -F /dev/null -i "$LAB/id_ed25519" -o "UserKnownHostsFile=$LAB/known_hosts" -o BatchMode=yes)

IMAGE=$WORK/golden.img
echo "making a $((SIZE >> 20)) MiB image (1/2 random, 1/4 text, 1/4 zero chunks)..." >&2
TEXT=$WORK/text
tar -cf - /usr/lib/python3* 2>/dev/null | head -c $((64 * CHUNK)) > "$TEXT" || true
[ -s "$TEXT" ] || { echo "no text to make compressible chunks from" >&2; exit 1; }
TEXT_CHUNKS=$(($(stat -c %s "$TEXT") / CHUNK))
truncate -s "$SIZE" "$IMAGE"
for ((i = 0; i < SIZE / CHUNK; i++)); do
  case $((i % 4)) in
    0 | 1) head -c "$CHUNK" /dev/urandom | dd of="$IMAGE" bs="$CHUNK" seek="$i" conv=notrunc status=none ;;
    2) dd if="$TEXT" of="$IMAGE" bs="$CHUNK" skip=$((i / 4 % TEXT_CHUNKS)) seek="$i" count=1 conv=notrunc status=none ;;
  esac
done

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }

t0=$(now); "$PARC" image build "$IMAGE" >/dev/null; t1=$(now)
BUILD=$(secs "$t0" "$t1")

reset_disks() { # N: empty (sparse) disks on the first N hosts
  for ((h = 0; h < $1; h++)); do
    truncate -s 0 "$LAB/hosts/${NAMES[h]}/disk.img"
    truncate -s "$SIZE" "$LAB/hosts/${NAMES[h]}/disk.img"
  done
  sync
}

baseline() { # N: seconds for `ssh HOST 'cat > /dev/parc-disk' < IMAGE` on N hosts at once
  reset_disks "$1"
  local t0 t1
  t0=$(now)
  for ((h = 0; h < $1; h++)); do
    "${SSH[@]}" "root@${ADDRS[h]}" 'cat > /dev/parc-disk' < "$IMAGE" &
  done
  wait
  t1=$(now)
  secs "$t0" "$t1"
}

deploy() { # PATTERN OUT [FLAG...]: parc deploy of $SOURCE (default the raw image), JSON events in OUT; prints wall seconds
  local t0 t1
  t0=$(now)
  "$PARC" --json image deploy "${SOURCE:-$IMAGE}" --to "$1" --target /dev/parc-disk "${@:3}" > "$2"
  t1=$(now)
  secs "$t0" "$t1"
}

# Transfer window across hosts (first byte sent to last byte sent, hosts start
# together) and the bytes sent in it, from the run's host_finished events.
transfer() { # OUT -> "seconds bytes"
  python3 - "$1" <<'PY'
import json, sys
done = [json.loads(l) for l in open(sys.argv[1]) if '"host_finished"' in l]
outs = [d["outcome"] for d in done]
assert all(o.get("verified") for o in outs), outs
start = min(o["transfer_start_ms"] for o in outs)
end = max(o["transfer_start_ms"] + o["transfer_ms"] for o in outs)
print(f"{(end - start) / 1000:.2f} {sum(o['bytes_sent'] for o in outs)}")
PY
}

# The delta's bound, per host: hashing the target (probe_ms) plus sending the
# changed chunks (transfer_ms), against the host's whole time (total_ms); the
# worst host's ratio.
bound() { # OUT -> "total_seconds bound_seconds"
  python3 - "$1" <<'PY'
import json, sys
outs = [json.loads(l)["outcome"] for l in open(sys.argv[1]) if '"host_finished"' in l]
assert all(o.get("verified") for o in outs), outs
worst = max(outs, key=lambda o: o["total_ms"] / max(1, o["probe_ms"] + o["transfer_ms"]))
print(f"{worst['total_ms'] / 1000:.2f} {(worst['probe_ms'] + worst['transfer_ms']) / 1000:.2f}")
PY
}

declare -A R
for n in 1 "$HOSTS"; do
  pattern=$([ "$n" = 1 ] && echo "${NAMES[0]}" || echo all)
  echo "full deploy to $n host(s)..." >&2
  R[base_$n]=$(baseline "$n")
  reset_disks "$n"
  R[full_$n]=$(deploy "$pattern" "$WORK/full_$n.json")
  R[xfer_$n]=$(transfer "$WORK/full_$n.json")
done

# 1% of the chunks (3 of 256, all data chunks) changes, the targets holding
# the image as it was; then the same with sh and core utilities alone on the
# targets (--no-helper), after another 1% changed.
delta_runs() { # KEY "CHUNK..." [FLAG...]: R[KEY_n] (seconds), R[KEYsent_n]
  local key=$1 i n pattern
  for i in $2; do
    head -c "$CHUNK" /dev/urandom | dd of="$IMAGE" bs="$CHUNK" seek="$i" conv=notrunc status=none
  done
  "$PARC" image build "$IMAGE" >/dev/null
  for n in 1 "$HOSTS"; do
    pattern=$([ "$n" = 1 ] && echo "${NAMES[0]}" || echo all)
    echo "delta re-deploy to $n host(s) ${*:3}..." >&2
    R[${key}_$n]=$(deploy "$pattern" "$WORK/${key}_$n.json" "${@:3}")
    R[${key}sent_$n]=$(transfer "$WORK/${key}_$n.json")
    R[${key}bound_$n]=$(bound "$WORK/${key}_$n.json")
  done
}
CH=$((SIZE / CHUNK))
delta_runs delta "$((CH * 10 / 256)) $((CH * 100 / 256)) $((CH * 200 / 256))"
delta_runs shdelta "$((CH * 50 / 256)) $((CH * 150 / 256)) $((CH * 250 / 256))" --no-helper

# The same (last) image as seekable zstd and as qcow2: full deploys.
echo "converting to seekable zstd and qcow2..." >&2
t0=$(now); "$PARC" image convert "$IMAGE" "$WORK/golden.img.zst" >/dev/null; t1=$(now)
R[zconvert]=$(secs "$t0" "$t1")
qemu-img convert -f raw -O qcow2 "$IMAGE" "$WORK/golden.qcow2"
"$PARC" image build "$WORK/golden.qcow2" >/dev/null
R[zsize]=$(stat -c %s "$WORK/golden.img.zst")
R[qsize]=$(stat -c %s "$WORK/golden.qcow2")
for n in 1 "$HOSTS"; do
  pattern=$([ "$n" = 1 ] && echo "${NAMES[0]}" || echo all)
  echo "full deploy to $n host(s) from raw, zstd, zstd --no-helper, qcow2..." >&2
  reset_disks "$n"; R[rfull_$n]=$(deploy "$pattern" "$WORK/rfull_$n.json")
  R[rsent_$n]=$(transfer "$WORK/rfull_$n.json")
  reset_disks "$n"; R[zfull_$n]=$(SOURCE=$WORK/golden.img.zst deploy "$pattern" "$WORK/zfull_$n.json")
  R[zsent_$n]=$(transfer "$WORK/zfull_$n.json")
  reset_disks "$n"; R[zshfull_$n]=$(SOURCE=$WORK/golden.img.zst deploy "$pattern" "$WORK/zshfull_$n.json" --no-helper)
  R[zshsent_$n]=$(transfer "$WORK/zshfull_$n.json")
  reset_disks "$n"; R[qfull_$n]=$(SOURCE=$WORK/golden.qcow2 deploy "$pattern" "$WORK/qfull_$n.json")
  R[qsent_$n]=$(transfer "$WORK/qfull_$n.json")
done

if [ -z "${RESULTS:-}" ]; then
  mkdir -p "$BENCH/results"
  RESULTS=$(results_file imaging txt)
fi
python3 - "$SIZE" "$HOSTS" "$BUILD" "$(cut -d" " -f1-3 /proc/loadavg)" > "$RESULTS" <<PY
import sys
size, hosts, build, load = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
R = {$(for k in "${!R[@]}"; do printf '"%s": "%s", ' "$k" "${R[$k]}"; done)}
mib = lambda b: b / 2**20
print(f"# bench/imaging.sh, release build; load average at the end: {load}")
print()
print(f"manifest build of the {mib(size):.0f} MiB image: {build:.2f}s ({mib(size) / build:.0f} MiB/s)")
print()
print(f"{'':41} {'baseline':>10} {'parc':>10} {'ratio':>8}")
for n in (1, hosts):
    base, full = float(R[f"base_{n}"]), float(R[f"full_{n}"])
    xs, xb = R[f"xfer_{n}"].split(); xs, xb = float(xs), int(xb)
    base_rate = mib(size * n) / base          # MiB/s through ssh | cat
    xfer_rate = mib(xb) / xs                  # MiB/s of chunk bytes in the transfer window
    print(f"{n:>2} host(s), transfer phase (MiB/s)        {base_rate:>10.0f} {xfer_rate:>10.0f} {xfer_rate / base_rate:>7.2f}x")
    print(f"{n:>2} host(s), whole deploy (s)              {base:>10.2f} {full:>10.2f} {base / full:>7.2f}x")
for n in (1, hosts):
    full, delta = float(R[f"full_{n}"]), float(R[f"delta_{n}"])
    sent = int(R[f"deltasent_{n}"].split()[1])
    print(f"{n:>2} host(s), delta 1% (s)                  {full:>10.2f} {delta:>10.2f} {full / delta:>7.2f}x  ({mib(sent):.0f} MiB sent)")
for n in (1, hosts):
    full, delta = float(R[f"full_{n}"]), float(R[f"shdelta_{n}"])
    print(f"{n:>2} host(s), delta 1%, sh only (s)         {full:>10.2f} {delta:>10.2f} {full / delta:>7.2f}x")
for key, label in (("delta", "delta 1%"), ("shdelta", "delta 1%, sh only")):
    for n in (1, hosts):
        total, bound = map(float, R[f"{key}bound_{n}"].split())
        print(f"{n:>2} host(s), {label + ' vs bound (s)':30} {bound:>10.2f} {total:>10.2f} {total / max(bound, 1e-3):>7.2f}x  (goal: within 1.5x)")
print()
print(f"image as seekable zstd: {mib(int(R['zsize'])):.0f} MiB ({int(R['zsize']) / size:.0%}), converted in {float(R['zconvert']):.2f}s; as qcow2: {mib(int(R['qsize'])):.0f} MiB")
print(f"{'':41} {'raw':>10} {'source':>10} {'ratio':>8} {'MiB sent':>18}")
for key, label in (("zfull", "zstd"), ("zshfull", "zstd, sh only"), ("qfull", "qcow2")):
    for n in (1, hosts):
        raw, t = float(R[f"rfull_{n}"]), float(R[f"{key}_{n}"])
        rsent = int(R[f"rsent_{n}"].split()[1])
        sent = int(R[f"{key.replace('full', 'sent')}_{n}"].split()[1])
        print(f"{n:>2} host(s), {label + ' whole deploy (s)':30} {raw:>10.2f} {t:>10.2f} {raw / t:>7.2f}x {mib(sent):>8.0f} of {mib(rsent):.0f}")
print()
print("transfer phase: baseline = image bytes / wall time of ssh|cat; parc = chunk bytes sent /")
print("  time from the first to the last chunk byte sent (the probe runs meanwhile; read-back follows).")
print("whole deploy: wall time, parc including the target's hashing pass and read-back.")
print("delta: 'baseline' column is parc's full deploy; ratio = how many times faster the delta is.")
print("sh only: targets run the deploy script alone (--no-helper), as where parc's helper cannot run.")
print("vs bound: the slowest host's whole time against its own hashing pass plus sending the changed chunks.")
print("zstd/qcow2: full deploys of the same image stored that way, against raw deploys in the same run;")
print("  MiB sent: bytes that crossed the connection (compressed frames to helper targets).")
PY
cat "$RESULTS"
echo "written to $RESULTS" >&2
