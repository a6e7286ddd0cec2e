# parc image deploy, target side: POSIX sh, dd and a sha256 tool, nothing installed.
# Driven by the controller over stdin/stdout (see src/image/deploy/mod.rs):
#   prints facts, "ready"; waits for "go"; then hashes every chunk in the
#   background ("h I SHA") while it reads commands: "w FIRST COUNT" + the chunks'
#   bytes, "z FIRST COUNT" (write zeros), "r" (start reading back), "q"
#   (finish). Every written chunk is re-read from the storage and hashed again
#   ("v I SHA"), once the controller said "r". Ends with "end".
# Arguments: TARGET CHUNK_SIZE IMAGE_SIZE CHUNKS
set -u
T=$1 CS=$2 SIZE=$3 N=$4
LAST=$((N - 1))
LLEN=$((SIZE - LAST * CS))
# The last chunk may be short; it is read and written in blocks of LBS, the
# largest power of two dividing its length (sizes are whole sectors).
LBS=$CS
while [ $((LLEN % LBS)) -ne 0 ]; do LBS=$((LBS / 2)); done
say() { printf '%s\n' "$*"; }

HASH=
for c in "openssl dgst -sha256 -r" sha256sum "shasum -a 256" "busybox sha256sum"; do
  h=$(printf '' | $c 2>/dev/null) || continue
  case $h in e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855*) HASH=$c; break ;; esac
done
FULL=0
dd if=/dev/null of=/dev/null iflag=fullblock 2>/dev/null && FULL=1

DEVS=
if [ -b "$T" ]; then
  KIND=block
  # shellcheck disable=SC2046 # two words: the device's major and minor, in hex
  set -- $(stat -L -c '%t %T' "$T")
  DEVS=$((0x$1)):$((0x$2))
  TSIZE=$(blockdev --getsize64 "$T" 2>/dev/null) || TSIZE=$(($(cat "/sys/dev/block/$DEVS/size") * 512))
  for p in /sys/dev/block/"$DEVS"/*/partition; do
    [ -e "$p" ] && DEVS="$DEVS $(cat "${p%/partition}/dev")"
  done
  for h in /sys/dev/block/"$DEVS"/holders/*; do
    [ -e "$h" ] && say "holder ${h##*/}"
  done
elif [ -f "$T" ]; then
  KIND='file'
  TSIZE=$(stat -L -c %s "$T")
  ID=$(stat -L -c %d:%i "$T")
  # A disk file can still be in use, through a loop device.
  for b in /sys/block/loop*/loop/backing_file; do
    [ -r "$b" ] || continue
    f=$(cat "$b" 2>/dev/null) || continue
    [ "$(stat -L -c %d:%i "$f" 2>/dev/null)" = "$ID" ] || continue
    l=${b%/loop/backing_file}
    say "loop ${l##*/}"
    DEVS="$DEVS $(cat "$l/dev")"
    for p in "$l"/*/partition; do
      [ -e "$p" ] && DEVS="$DEVS $(cat "${p%/partition}/dev")"
    done
  done
elif [ -e "$T" ]; then KIND=other; TSIZE=0
else KIND=missing; TSIZE=0
fi
if [ -n "$DEVS" ]; then
  while read -r _ _ mm _ mp _; do
    for d in $DEVS; do [ "$mm" = "$d" ] && say "mount $mp"; done
  done < /proc/self/mountinfo
fi
if [ "$KIND" = block ] || [ "$KIND" = file ]; then
  MINE=$(stat -L -c '%t:%T:%d:%i' "$T")
  { read -r _; while read -r f _; do
      s=$(stat -L -c '%t:%T:%d:%i' "$f" 2>/dev/null) || continue
      case $KIND in
        block) [ "${s%:*:*}" = "${MINE%:*:*}" ] && say "swap $f" ;;
        file) [ "${s#*:*:}" = "${MINE#*:*:}" ] && say "swap $f" ;;
      esac
    done; } 2>/dev/null < /proc/swaps
fi

# Read-back must see what the storage holds, not the page cache: direct I/O where
# the target allows it, else drop the target's cached pages, else the whole cache.
RB=cache
if [ "$KIND" = block ] || [ "$KIND" = file ]; then
  if dd if="$T" of=/dev/null bs="$LBS" count=1 iflag=direct 2>/dev/null; then RB=direct
  elif dd if="$T" of=/dev/null count=0 iflag=nocache 2>/dev/null; then RB=nocache
  elif [ -w /proc/sys/vm/drop_caches ]; then RB=drop_caches
  fi
fi
say "info kind=$KIND size=$TSIZE hash=${HASH%% *} readback=$RB fullblock=$FULL machine=$(uname -sm | tr ' ' /)"
say ready
# "go", or "go BYTES" followed by parc's image helper (BYTES long).
read -r go hsize || exit 0
[ "$go" = go ] || exit 0

D=$(mktemp -d "${TMPDIR:-/tmp}/parc-image.XXXXXX") || { say "fail cannot create a temporary directory"; exit 3; }
DONE=0
WORKERS=
# If the controller goes away, take every worker down with this script (each
# worker stops its own readers in turn).
cleanup() {
  # shellcheck disable=SC2086 # a list of pids, one word each
  [ "$DONE" = 1 ] || kill $WORKERS 2>/dev/null
  rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 129' HUP INT TERM PIPE

# The helper does the rest when it runs here; else this script does, with the
# same protocol. Its bytes are read exactly (whole blocks, then the rest), so
# the commands that follow stay in step either way.
if [ -n "${hsize:-}" ]; then
  R=$((hsize % 65536))
  { dd of="$D/helper" bs=65536 count=$((hsize / 65536)) iflag=fullblock 2>"$D/err" &&
    { [ "$R" = 0 ] || dd of="$D/helper" bs="$R" count=1 iflag=fullblock oflag=append conv=notrunc 2>"$D/err"; }
  } || { say "fail receiving parc's image helper failed: $(head -n 1 "$D/err")"; exit 3; }
  chmod 700 "$D/helper"
  if [ "$("$D/helper" check 2>/dev/null)" = ok ]; then
    say "helper on"
    "$D/helper" run "$T" "$CS" "$SIZE" "$N" "$RB" "$KIND"
    rc=$?
    [ "$rc" = 0 ] && DONE=1
    exit "$rc"
  fi
  say "helper off"
fi

W=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
[ "$W" -gt 4 ] && W=4
[ "$W" -lt 1 ] && W=1
# Chunks hashed by one hash process: its start-up costs as much as hashing a
# 4 MiB chunk, so each reads K chunks through K fifos.
K=8
# Writes in blocks of 128 KiB: a 4 MiB dd block would stop draining the pipe
# while it is written, and stall the stream.
WBS=$CS; [ "$WBS" -gt 131072 ] && WBS=131072
TBS=$LBS; [ "$TBS" -gt 131072 ] && TBS=131072
# Reads in blocks of 1 MiB: large enough for direct I/O to stream, small enough
# that each dd does not fault in (and zero) a whole chunk-sized buffer.
RBS=$CS; [ "$RBS" -gt 1048576 ] && RBS=1048576
TRS=$LBS; [ "$TRS" -gt 1048576 ] && TRS=1048576

# shellcheck disable=SC2086 # the flag is one dd operand, or none at all
chunk() { # INDEX [DD FLAG]: the chunk's bytes on stdout
  if [ "$1" -eq "$LAST" ]; then
    dd if="$T" bs="$TRS" skip=$((LAST * (CS / TRS))) count=$((LLEN / TRS)) ${2:-} 2>/dev/null
  else
    dd if="$T" bs="$RBS" skip=$(($1 * (CS / RBS))) count=$((CS / RBS)) ${2:-} 2>/dev/null
  fi
}
stored() { # INDEX: the chunk as the storage holds it
  case $RB in
    direct) chunk "$1" iflag=direct ;;
    nocache)
      dd if=/dev/null of="$T" conv=notrunc,fsync count=0 2>/dev/null
      chunk "$1" iflag=nocache >/dev/null
      chunk "$1" ;;
    drop_caches) sync; echo 1 > /proc/sys/vm/drop_caches; chunk "$1" ;;
    *) chunk "$1" ;;
  esac
}
hashrun() { # TAG FIRST COUNT SLOT READER: print "TAG I SHA" for each chunk of the run
  tag=$1 first=$2 left=$3 slot=$4 reader=$5
  while [ "$left" -gt 0 ]; do
    k=$left; [ "$k" -gt "$K" ] && k=$K
    set --
    readers=
    j=0
    while [ "$j" -lt "$k" ]; do
      $reader $((first + j)) > "$D/$slot.$j" &
      readers="$readers $!"
      set -- "$@" "$D/$slot.$j"
      j=$((j + 1))
    done
    $HASH "$@" | { i=$first; while read -r h _; do say "$tag $i $h"; i=$((i + 1)); done; }
    wait
    first=$((first + k)); left=$((left - k))
  done
}
# The first pass reads like any reader of the target (through the page cache,
# which the kernel keeps coherent with every write to the target); only the
# read-back of what this deploy wrote must bypass it.
# A reader whose fifo the hash tool never opened (it died with the connection)
# would wait forever: a stopped worker stops its readers.
worker() { readers=; trap 'kill $readers 2>/dev/null; exit 143' TERM; "$@"; }
probe() { hashrun h "$1" $(($2 - $1)) "p$3" chunk; }
readback() { while read -r a b; do hashrun v "$a" "$b" "r$1" stored; done; }
# shellcheck disable=SC2086 # $src is one dd operand (if=PATH), or none: stdin
put() { # SOURCE FIRST COUNT: write chunks from SOURCE (empty: stdin)
  src=${1:+if=$1}
  if [ $(($2 + $3 - 1)) -eq "$LAST" ] && [ "$LLEN" -ne "$CS" ]; then
    if [ "$3" -gt 1 ]; then
      dd $src of="$T" bs="$WBS" seek=$(($2 * (CS / WBS))) count=$((($3 - 1) * (CS / WBS))) iflag=fullblock conv=notrunc 2>"$D/err" || return 1
    fi
    dd $src of="$T" bs="$TBS" seek=$((LAST * (CS / TBS))) count=$((LLEN / TBS)) iflag=fullblock conv=notrunc 2>"$D/err"
  else
    dd $src of="$T" bs="$WBS" seek=$(($2 * (CS / WBS))) count=$(($3 * (CS / WBS))) iflag=fullblock conv=notrunc 2>"$D/err"
  fi
}
zero() { # FIRST COUNT: holes in a file where possible, else written zeros
  off=$(($1 * CS)); len=$(($2 * CS))
  [ $((off + len)) -gt "$SIZE" ] && len=$((SIZE - off))
  if [ "$KIND" = file ] && fallocate -p -o "$off" -l "$len" "$T" 2>/dev/null; then return 0; fi
  put /dev/zero "$1" "$2"
}

w=0
while [ "$w" -lt "$W" ]; do
  j=0
  while [ "$j" -lt "$K" ]; do mkfifo "$D/p$w.$j" "$D/r$w.$j"; j=$((j + 1)); done
  worker probe $((N * w / W)) $((N * (w + 1) / W)) "$w" &
  WORKERS="$WORKERS $!"
  mkfifo "$D/rb$w"
  worker readback "$w" < "$D/rb$w" &
  WORKERS="$WORKERS $!"
  eval "exec $((w + 3))>\"\$D/rb$w\""
  w=$((w + 1))
done

rr=0
check() { # FIRST COUNT: hand the run to the next read-back worker
  printf '%s %s\n' "$1" "$2" >&$((rr + 3))
  rr=$(((rr + 1) % W))
}
# Read-back waits until the controller has sent everything it found different
# ("r"): reading the disk back while it is still being written would compete
# with the writes for the disk and slow the transfer; chunks rewritten after a
# mismatch are checked at once.
DEFER=1
PENDING=
release() {
  DEFER=0
  while read -r a b; do [ -n "$a" ] && check "$a" "$b"; done <<END
$PENDING
END
  PENDING=
}
quit=0
while read -r cmd a b; do
  case $cmd in
    w) put "" "$a" "$b" || { say "fail writing chunks $a-$((a + b - 1)) failed: $(head -n 1 "$D/err")"; exit 3; } ;;
    z) zero "$a" "$b" || { say "fail zeroing chunks $a-$((a + b - 1)) failed: $(head -n 1 "$D/err")"; exit 3; } ;;
    r) release; continue ;;
    q) quit=1; break ;;
    *) say "fail unknown command $cmd"; exit 3 ;;
  esac
  if [ "$DEFER" = 1 ]; then PENDING="$PENDING$a $b
"; else check "$a" "$b"; fi
done
# Stdin closed without "q": the controller is gone, stop everything.
[ "$quit" = 1 ] || exit 130
[ "$DEFER" = 0 ] || release
w=0
while [ "$w" -lt "$W" ]; do eval "exec $((w + 3))>&-"; w=$((w + 1)); done
wait
# Make what was written durable (a disk's volatile cache too). This also writes
# back chunks an interrupted deploy left in the page cache, which the first pass
# accepted from there; a write-back failure surfaces here.
if ! dd if=/dev/null of="$T" conv=notrunc,fsync count=0 2>"$D/err"; then
  say "fail flushing $T failed: $(head -n 1 "$D/err")"
  exit 3
fi
DONE=1
say end
