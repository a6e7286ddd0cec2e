# parc target-side library: POSIX sh + core utilities (GNU or busybox).
# Sourced at the top of every probe and apply script parc sends. Output framing:
#   "@@r IDX" starts the probe record of resource IDX, "k=v" lines follow,
#   "@@blob KEY LEN" is followed by exactly LEN raw bytes then a newline.
umask 022
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
LC_ALL=C
export PATH LC_ALL

# Hash through stdin: GNU sha256sum escapes odd file names in its output.
parc_sha() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum < "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 < "$1" | cut -d' ' -f1
  else openssl dgst -sha256 -r < "$1" | cut -d' ' -f1; fi
}

# Print type/mode/owner/group/size/target of a path, and sha256 of a regular file.
parc_stat() {
  if [ -L "$1" ]; then echo "type=link"; echo "target=$(readlink "$1")"
  elif [ -d "$1" ]; then echo "type=dir"
  elif [ -f "$1" ]; then echo "type=file"; echo "sha256=$(parc_sha "$1")"
  elif [ -e "$1" ]; then echo "type=other"
  else echo "type=none"; return 0; fi
  set -- $(stat -c '%a %U %G %s' "$1")
  echo "mode=$1"; echo "owner=$2"; echo "group=$3"; echo "size=$4"
}

# Emit a file's bytes as a blob (absent file: no blob).
parc_blob() {
  if [ -f "$2" ]; then
    echo "@@blob $1 $(wc -c < "$2" | tr -d ' ')"; cat "$2"; echo
  fi
}

# Atomically install payload bytes [OFF, OFF+LEN) as DEST with MODE OWNER GROUP:
# temp file in DEST's directory, attributes set, synced, then renamed over DEST.
parc_put() {
  _off=$1 _len=$2 _dest=$3 _mode=$4 _owner=$5 _group=$6
  _tmp="$(dirname "$_dest")/.parc-tmp.$$.$(basename "$_dest")"
  tail -c +"$((_off + 1))" "$PARC_PAYLOAD" | head -c "$_len" > "$_tmp" || { rm -f "$_tmp"; return 1; }
  [ -z "$_mode" ] || chmod "$_mode" "$_tmp" || { rm -f "$_tmp"; return 1; }
  [ -z "$_owner$_group" ] || chown "$_owner${_group:+:$_group}" "$_tmp" || { rm -f "$_tmp"; return 1; }
  parc_sync "$_tmp"
  mv -f "$_tmp" "$_dest"
}

parc_sync() {
  sync "$@" 2>/dev/null || sync
}

# Run resource IDX's step (a function) with its output captured; report and stop
# the whole apply at the first failure.
parc_step() {
  _idx=$1; shift
  ( set -e; "$@" ) > "$PARC_DIR/out" 2>&1
  _rc=$?
  echo "@@done $_idx $_rc"
  parc_blob out "$PARC_DIR/out"
  [ "$_rc" -eq 0 ] || exit 1
}
