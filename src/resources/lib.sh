# parc target-side library: POSIX sh + core utilities (GNU or busybox).
# Sourced at the top of every probe and apply script parc sends. Output framing:
#   "@@r IDX" starts the probe record of resource IDX, "k=v" lines follow,
#   "@@blob KEY LEN" is followed by exactly LEN raw bytes then a newline.
# Values read on the host (link targets, names, getent lines, versions) are
# printed only by parc_kv, which escapes them: a local user who names a link
# target "x<newline>type=dir" gets a link target, not a field. Never `echo`
# such a value (dash's echo turns the two characters \n into a newline).
# Functions take their inputs as arguments. A function that computes a value
# without starting a process returns it in a variable its comment names
# (parc_dirname sets _d, parc_readlink _t, parc_unsafe _u and _why); other
# underscore variables are its scratch space.
umask 022
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
LC_ALL=C
export PATH LC_ALL
PARC_NL='
'
# shellcheck disable=SC1003 # one backslash, not an escaped quote
PARC_BS='\'

# Start record ID.
parc_rec() { printf '@@r %s\n' "$1"; }

# Print KEY=VALUE on one line, VALUE escaped ("\" as "\\", newline as "\n"),
# with shell builtins only: one loop turn per special character.
parc_kv() { # KEY VALUE
  _kv=$2
  case $_kv in
    *"$PARC_BS"*|*"$PARC_NL"*)
      _ko=
      while :; do
        case $_kv in
          *"$PARC_BS"*) _ko="$_ko${_kv%%"$PARC_BS"*}$PARC_BS$PARC_BS"; _kv=${_kv#*"$PARC_BS"} ;;
          *) break ;;
        esac
      done
      _kv=$_ko$_kv _ko=
      while :; do
        case $_kv in
          *"$PARC_NL"*) _ko="$_ko${_kv%%"$PARC_NL"*}${PARC_BS}n"; _kv=${_kv#*"$PARC_NL"} ;;
          *) break ;;
        esac
      done
      _kv=$_ko$_kv ;;
  esac
  printf '%s=%s\n' "$1" "$_kv"
}

# The target of symlink PATH, exactly: command substitution would drop the
# newlines a target ends with.
parc_readlink() { # PATH
  _t=$(readlink -- "$1"; echo .)
  _t=${_t%.}
  _t=${_t%"$PARC_NL"}
}

# Hash through stdin: GNU sha256sum escapes odd file names in its output.
# Parameter expansion rather than `cut`: one process less per file (probes and
# journals hash every file they meet, and process start-up is most of their cost).
parc_sha() {
  if command -v sha256sum >/dev/null 2>&1; then _h=$(sha256sum < "$1")
  elif command -v shasum >/dev/null 2>&1; then _h=$(shasum -a 256 < "$1")
  else _h=$(openssl dgst -sha256 -r < "$1"); fi || return 1
  echo "${_h%% *}"
}

# Set _d to the directory part of $1, as dirname(1) would print it, without
# starting a process.
parc_dirname() {
  _d=$1
  while [ "$_d" != / ] && [ "${_d%/}" != "$_d" ]; do _d=${_d%/}; done
  case $_d in */*) _d=${_d%/*} ;; *) _d=. ;; esac
  while [ "$_d" != / ] && [ "${_d%/}" != "$_d" ]; do _d=${_d%/}; done
  [ -n "$_d" ] || _d=/
}

# The nearest directory above PATH that exists now: a file installed at PATH
# is staged there, on the filesystem it will be renamed on, even when this run
# creates PATH's directory. No process is started.
parc_stage_dir() { # PATH [PREFIX]
  parc_dirname "$1"
  while [ ! -d "$_d" ] && [ "$_d" != / ] && [ "$_d" != . ]; do parc_dirname "$_d"; done
  parc_kv "${2:-}stage" "$_d"
}

# Print type/mode/owner/group/size/target of a path, sha256 of a regular file,
# and where a temp file for it can be staged (parc_stage_dir). With PREFIX,
# every key starts with it (several paths in one record). Sets _sp and _s to
# the path and size of what it found (for parc_want, which follows it).
parc_stat() { # PATH [PREFIX]
  _pf=${2:-}
  parc_stage_dir "$1" "$_pf"
  if [ -L "$1" ]; then parc_kv "${_pf}type" link; parc_readlink "$1"; parc_kv "${_pf}target" "$_t"
  elif [ -d "$1" ]; then parc_kv "${_pf}type" dir
  elif [ -f "$1" ]; then parc_kv "${_pf}type" file; parc_kv "${_pf}sha256" "$(parc_sha "$1")"
  elif [ -e "$1" ]; then parc_kv "${_pf}type" other
  else parc_kv "${_pf}type" none; PARC_PENDING=1; return 0; fi
  _sp=$1
  parc_stat_line "$(stat -c "$PARC_STAT_FORMAT" -- "$1")"
  parc_attrs "$_pf" "$_a" "$_o" "$_g" "$_s" "$_k"
}

# What every stat of a path's attributes prints: its numbers first, then its
# owner and group, the rest of the line: names from a directory service hold
# spaces ("domain users"), never a colon (passwd's and group's separator).
PARC_STAT_FORMAT='%a %s %h %U:%G'

# Set _a (mode), _s (size), _k (links), _o (owner) and _g (group) from LINE,
# one line of a stat with PARC_STAT_FORMAT, with shell builtins.
parc_stat_line() { # LINE
  _a=${1%% *} _og=${1#* }
  _s=${_og%% *} _og=${_og#* }
  _k=${_og%% *} _og=${_og#* }
  _o=${_og%:*} _g=${_og##*:}
}

# parc_stat of each PATH, with its PREFIX, for paths the probe learns only
# as it runs (a user's ~/.ssh and authorized_keys, from passwd), so not in
# its batched stat: one stat for all of them, and regular files not hashed
# (hashed=no: their readers read them whole). Sets _sp and _s to the last
# path it found and its size.
parc_stat_now() { # PATH PREFIX [PATH PREFIX]...
  _i=1 _sl='' _sn='' _sp='' _s=''
  while [ "$_i" -lt "$#" ]; do
    eval "_p=\${$_i} _pf=\${$((_i + 1))}"
    parc_stage_dir "$_p" "$_pf"
    if [ -L "$_p" ]; then parc_kv "${_pf}type" link; parc_readlink "$_p"; parc_kv "${_pf}target" "$_t"
    elif [ -d "$_p" ]; then parc_kv "${_pf}type" dir
    elif [ -f "$_p" ]; then parc_kv "${_pf}type" file; parc_kv "${_pf}hashed" no
    elif [ -e "$_p" ]; then parc_kv "${_pf}type" other
    else parc_kv "${_pf}type" none; PARC_PENDING=1; _i=$((_i + 2)); continue; fi
    _sl="$_sl \"\${$_i}\"" _sn="$_sn $((_i + 1))"
    _i=$((_i + 2))
  done
  [ -n "$_sl" ] || return 0
  eval "stat -c \"\$PARC_STAT_FORMAT\" -- $_sl" > "$PARC_DIR/stat_now" || return 0
  for _i in $_sn; do
    eval "_sp=\${$((_i - 1))} _pf=\${$_i}"
    IFS= read -r _l || return 0
    parc_stat_line "$_l"
    parc_attrs "$_pf" "$_a" "$_o" "$_g" "$_s" "$_k"
  done < "$PARC_DIR/stat_now"
}

parc_attrs() { # PREFIX MODE OWNER GROUP SIZE LINKS
  parc_kv "$1mode" "$2"; parc_kv "$1owner" "$3"; parc_kv "$1group" "$4"
  parc_kv "$1size" "$5"; parc_kv "$1links" "$6"
}

# A directory above PATH through which a local user could redirect a change
# made as root (systemd-tmpfiles' "unsafe path transition"): the first
# symbolic link (_why=link), else the first directory someone other than the
# user running parc owns (_why=owner), or that its group (_why=group) or
# everyone (_why=others) may write in without the sticky bit: they may swap
# what it holds. Sets _u (empty: none). Shell builtins only (the modes come
# from parc_dir_modes): no process, whatever the number of paths.
parc_unsafe() { # PATH
  _u='' _why='' _uc=''
  case $1 in /*) _ur=${1#/} ;; *) return 0 ;; esac
  while :; do
    case $_ur in */*) ;; *) return 0 ;; esac
    case ${_ur%%/*} in '') _ur=${_ur#/}; continue ;; esac
    _uc=$_uc/${_ur%%/*}; _ur=${_ur#*/}
    if [ -L "$_uc" ]; then _u=$_uc _why=link; return 0; fi
    [ -d "$_uc" ] || return 0
    [ -n "$_u" ] && continue
    if [ ! -O "$_uc" ]; then _u=$_uc _why=owner
    else parc_open_dir "$_uc" && _u=$_uc _why=$_ow; fi
  done
}

# The directories above the first N PATHs (up to a link or a missing one),
# and their modes, for parc_open_dir: the shell cannot read a mode. Sets
# PARC_OPEN_N and PARC_OPEN_<i>/PARC_OPEN_WHY_<i> for each one its group or
# others may write in without the sticky bit (few: names are compared, not
# parsed), or PARC_OPEN_N=-1 when the stat failed. The same stat reads the
# other PATHs that exist, for parc_prestat (PARC_STATED: how many): one
# process for both.
parc_dir_modes() { # N PATH...
  PARC_OPEN_N=0 PARC_STATED='' PARC_DM_KINDS='' _dn=$1 _ds=0 _di=0 _dl=''
  shift
  for _p; do
    shift
    _di=$((_di + 1))
    if [ "$_di" -gt "$_dn" ]; then
      parc_kind "$_p"; PARC_DM_KINDS=$PARC_DM_KINDS$_kd
      [ "$_kd" = - ] || set -- "$@" "$_p"
      continue
    fi
    case $_p in /*) _r=${_p#/} ;; *) continue ;; esac
    _c=''
    while :; do
      case $_r in */*) ;; *) break ;; esac
      case ${_r%%/*} in '') _r=${_r#/}; continue ;; esac
      _c=$_c/${_r%%/*}; _r=${_r#*/}
      if [ -L "$_c" ] || [ ! -d "$_c" ]; then break; fi
      # Each directory once: the paths come sorted (Script), so the paths
      # under a directory come together, and every directory above _dl,
      # the deepest one kept, was kept before.
      case $_dl/ in "$_c"/*) continue ;; esac
      # The first N come first: every directory is before the paths to stat.
      set -- "$@" "$_c"; _ds=$((_ds + 1)) _dl=$_c
    done
  done
  [ $# -gt 0 ] || return 0
  stat -c "$PARC_STAT_FORMAT" -- "$@" > "$PARC_DIR/stat.all" 2>/dev/null || { PARC_OPEN_N=-1; return 0; }
  # The lines are counted as they are read (the shell reads a byte per
  # system call: once is enough), and all of it is dropped unless there is
  # one per path.
  _i=0 _dt=$#
  while IFS= read -r _l; do
    _i=$((_i + 1))
    if [ "$_i" -gt "$_ds" ]; then printf '%s\n' "$_l"; continue; fi
    if parc_open_mode "${_l%% *}"; then
      PARC_OPEN_N=$((PARC_OPEN_N + 1))
      eval "PARC_OPEN_$PARC_OPEN_N=\$1 PARC_OPEN_WHY_$PARC_OPEN_N=\$_ow"
    fi
    shift
  done < "$PARC_DIR/stat.all" > "$PARC_DIR/stat"
  if [ "$_i" -ne "$_dt" ]; then PARC_OPEN_N=-1; return 0; fi
  PARC_STATED=$((_dt - _ds))
}

# Whether octal MODE lets its group (_ow=group) or others (_ow=others) write
# without the sticky bit.
parc_open_mode() { # MODE
  case $1 in ''|*[!0-7]*) _ow=others; return 0 ;; esac
  [ $((0$1 & 01000)) -eq 0 ] || return 1
  if [ $((0$1 & 02)) -ne 0 ]; then _ow=others
  elif [ $((0$1 & 020)) -ne 0 ]; then _ow=group
  else return 1; fi
}

# Whether directory DIR is one parc_dir_modes found open to others' writes
# (sets _ow); without its list (a stat that failed), DIR's own stat.
parc_open_dir() { # DIR
  case ${PARC_OPEN_N:-0} in
    -1) parc_open_mode "$(stat -c '%a' -- "$1" 2>/dev/null)"; return ;;
  esac
  _oi=0 _oc=''
  while [ "$_oi" -lt "${PARC_OPEN_N:-0}" ]; do
    _oi=$((_oi + 1))
    eval "_oc=\$PARC_OPEN_$_oi _ow=\$PARC_OPEN_WHY_$_oi"
    [ "$_oc" != "$1" ] || return 0
  done
  return 1
}

# Print PATH's unsafe directory (parc_unsafe) in the current record, if any.
parc_path_check() { # PATH
  parc_unsafe "$1"
  [ -z "$_u" ] || { parc_kv unsafe "$_u"; parc_kv unsafe_why "$_why"; }
}

# Before anything is written: no directory above PATHs is a symbolic link
# (one may have been planted since the probe).
parc_guard() { # PATH...
  for _pg; do
    parc_unsafe "$_pg"
    if [ "$_why" = link ]; then
      printf 'unsafe path: %s is now a symbolic link (it was not when parc looked); nothing was changed\n' "$_u" >&2
      return 1
    fi
  done
}

# Stat every existing PATH and hash every regular one, in one process each,
# for parc_stat_next to read back in the same order. The stat lines carry no
# names (odd names cannot break them): a line is its path's by position,
# and PARC_PS_KINDS says, a letter a PATH (parc_kind), which paths have one
# and of what kind they were when stat'ed. When the lines' count does not
# match (a tool failed), parc_stat_next falls back to parc_stat, path by
# path. A hash line is used only if it names its file (parc_stat_next).
parc_prestat() { # PATH...
  PARC_WITH_SHA=1
  parc_prestat_of "$@"
}

# parc_prestat without hashing the files (Script::stat_attrs): for probes
# that compare no content, which need not read every file whole.
# parc_stat_next then prints "hashed=no" instead of a file's hash.
parc_prestat_attrs() { # PATH...
  PARC_WITH_SHA=0
  parc_prestat_of "$@"
}

parc_prestat_of() { # PATH...
  PARC_PRESTAT=
  # The kinds when stat'ed: by parc_dir_modes's stat when it made this one
  # (PARC_STATED), else now, just before this one's.
  if [ -n "${PARC_STATED:-}" ]; then PARC_PS_KINDS=$PARC_DM_KINDS
  else
    PARC_PS_KINDS=''
    for _p; do parc_kind "$_p"; PARC_PS_KINDS=$PARC_PS_KINDS$_kd; done
  fi
  _kq=$PARC_PS_KINDS _ke=''
  for _p; do
    shift; _kd=${_kq%"${_kq#?}"}; _kq=${_kq#?}
    [ "$_kd" = - ] || { set -- "$@" "$_p"; _ke=$_ke$_kd; }
  done
  if [ $# -eq 0 ]; then : > "$PARC_DIR/stat"
  elif [ "${PARC_STATED:-}" != $# ]; then
    stat -c "$PARC_STAT_FORMAT" -- "$@" > "$PARC_DIR/stat" 2>/dev/null || return 0
    parc_lines "$PARC_DIR/stat"; [ "$_n" -eq $# ] || return 0
  fi
  PARC_LINKS=1
  parc_prestat_links "$_ke" "$@" || PARC_LINKS=0
  _kq=$_ke
  for _p; do
    shift; _kd=${_kq%"${_kq#?}"}; _kq=${_kq#?}
    if [ "$PARC_WITH_SHA" = 1 ] && [ "$_kd" = f ]; then set -- "$@" "$_p"; fi
  done
  if [ $# -gt 0 ]; then
    if command -v sha256sum >/dev/null 2>&1; then sha256sum -- "$@"
    elif command -v shasum >/dev/null 2>&1; then shasum -a 256 -- "$@"
    else openssl dgst -sha256 -r "$@"; fi > "$PARC_DIR/sha" 2>/dev/null || return 0
  else : > "$PARC_DIR/sha"; fi
  PARC_SHA_LINES=1
  exec 6< "$PARC_DIR/link" 7< "$PARC_DIR/stat" 8< "$PARC_DIR/sha"
  PARC_PRESTAT=1
}

# _kd: PATH's kind, a letter: l(ink), d(irectory), f(ile), o(ther) or -
# (none). Shell tests only.
parc_kind() { # PATH
  if [ -L "$1" ]; then _kd=l
  elif [ -d "$1" ]; then _kd=d
  elif [ -f "$1" ]; then _kd=f
  elif [ -e "$1" ]; then _kd=o
  else _kd=-; fi
}

# The targets of the links among PATHs (KINDS: theirs, as parc_kind gives
# them), one per line, from one readlink (GNU's takes several; busybox's,
# one: its count fails, and parc_stat_next falls back to one readlink per
# link).
parc_prestat_links() { # KINDS PATH...
  _kq=$1; shift
  for _p; do
    shift; _kd=${_kq%"${_kq#?}"}; _kq=${_kq#?}
    [ "$_kd" != l ] || set -- "$@" "$_p"
  done
  if [ $# -gt 0 ]; then
    readlink -- "$@" > "$PARC_DIR/link" 2>/dev/null || return 1
    parc_lines "$PARC_DIR/link"; [ "$_n" -eq $# ] || return 1
  else : > "$PARC_DIR/link"; fi
}

# Set _n to FILE's number of lines, counted by the shell (a variable rather
# than output: command substitution would fork a subshell).
parc_lines() { # FILE
  _n=0
  while IFS= read -r _l; do _n=$((_n + 1)); done < "$1"
}

# parc_stat, from what parc_prestat gathered (and setting _sp and _s as it).
# Like parc_stat, parc_getent_next and parc_pkg_query, it sets PARC_PENDING=1
# when what it looks for is not there (so does a command's probe when the
# command will run): a host where no probe found a change coming probably
# needs none, and a probe exec verifies it then (verify::probe_if_converged).
# The lines of the batch are PATH's by position (PARC_PS_KINDS, one letter
# a call), whatever PATH is now: a path made, removed or replaced since the
# batch (a local user may) is read on its own, and takes no other's line.
parc_stat_next() { # PATH [PREFIX]
  [ "${PARC_PRESTAT:-}" = 1 ] || { parc_stat "$@"; return; }
  _kn=${PARC_PS_KINDS%"${PARC_PS_KINDS#?}"}; PARC_PS_KINDS=${PARC_PS_KINDS#?}
  if [ "$_kn" != - ]; then IFS= read -r _l <&7; parc_stat_line "$_l"; fi
  _t=''
  if [ "$_kn" = l ] && [ "$PARC_LINKS" = 1 ]; then IFS= read -r _t <&6; fi
  # The hash line must name PATH: a line for another (an odd name that
  # sha256sum escaped, or busybox split in two) ends the batch's use, and
  # PATH and those after it are hashed one by one (the lines were not
  # counted first: the shell reads a byte per system call).
  _h=''
  if [ "$_kn" = f ] && [ "$PARC_WITH_SHA" = 1 ] && [ "$PARC_SHA_LINES" = 1 ]; then
    if ! read -r _h _l <&8 || [ "${_l#\*}" != "$1" ]; then PARC_SHA_LINES=0 _h=''; fi
  fi
  parc_kind "$1"
  [ "$_kd" = "$_kn" ] || { parc_stat "$@"; return; }
  _pf=${2:-}
  parc_stage_dir "$1" "$_pf"
  case $_kn in
    l) [ "$PARC_LINKS" = 1 ] || parc_readlink "$1"
      parc_kv "${_pf}type" link; parc_kv "${_pf}target" "$_t" ;;
    d) parc_kv "${_pf}type" dir ;;
    f) parc_kv "${_pf}type" file
      if [ "$PARC_WITH_SHA" = 0 ]; then parc_kv "${_pf}hashed" no
      elif [ -n "$_h" ]; then parc_kv "${_pf}sha256" "$_h"
      else parc_kv "${_pf}sha256" "$(parc_sha "$1")"; fi ;;
    o) parc_kv "${_pf}type" other ;;
    *) parc_kv "${_pf}type" none; PARC_PENDING=1; return 0 ;;
  esac
  _sp=$1
  parc_attrs "$_pf" "$_a" "$_o" "$_g" "$_s" "$_k"
}

# Ask for regular file PATH's content (at most MAX bytes) in the probe's
# closing tar: sets PARC_WANT_N, which the script's fetch reads. The size
# comes from the stat just made of PATH (_sp, _s) when there was one.
parc_want() { # N PATH [MAX]
  [ -f "$2" ] || return 0
  if [ -n "${3:-}" ]; then
    if [ "${_sp:-}" = "$2" ]; then _n=$_s; else _n=$(wc -c < "$2"); fi
    [ "$_n" -le "$3" ] || return 0
  fi
  eval "PARC_WANT_$1=1"
}

# The contents asked for, as one tar after an "@@tar" line: the last output
# of a probe. Names lose their leading "/"; a file tar cannot read is left out.
parc_fetch() { # PATH...
  [ $# -gt 0 ] || return 0
  echo "@@tar"
  # GNU tar reads backslash escapes in the names it is given (a file named
  # a\nb would be read as a<newline>b): not when a name holds a backslash.
  case $* in
    *"$PARC_BS"*) case $(tar --version 2>/dev/null) in *GNU*) set -- --no-unquote "$@" ;; esac ;;
  esac
  # From $PARC_DIR: captured files (parc_cut) are named relative to it.
  tar -C "${PARC_DIR:-/}" -c -f - "$@" 2>/dev/null
  return 0
}

# Cut every captured NAME (a file in $PARC_DIR) longer than MAX bytes to
# MAX + 1: the controller receives a bounded prefix and knows it was cut. One
# wc reads every size; only a file to cut costs a process of its own.
parc_cut() { # MAX NAME...
  _cm=$1; shift
  for _c; do shift; [ ! -f "$PARC_DIR/$_c" ] || set -- "$@" "$PARC_DIR/$_c"; done
  [ $# -gt 0 ] || return 0
  wc -c -- "$@" > "$PARC_DIR/cut" 2>/dev/null || return 0
  for _c; do
    read -r _n _ || break
    [ "$_n" -gt "$_cm" ] || continue
    head -c "$((_cm + 1))" "$_c" > "$PARC_DIR/cut.part" && mv -f -- "$PARC_DIR/cut.part" "$_c"
  done < "$PARC_DIR/cut"
}

# The frame of blob KEY: FILE's LEN bytes, then a newline. Never more than
# LEN, though FILE grow since LEN was read (a process a step left running
# writing on): the frame stays whole.
parc_blob_of() { # KEY FILE LEN
  printf '@@blob %s %d\n' "$1" "$3"; head -c "$3" -- "$2"; echo
}

# Copy at most MAX bytes of regular file SRC (never through a symlink, not a
# file with other names: a hard link to a root-only file reads as that file)
# to FILE in $PARC_DIR (a capture). GNU dd opens SRC with O_NOFOLLOW, so a
# swap to a link after the test reads nothing, and O_NONBLOCK, so a swap to
# a named pipe reads nothing instead of waiting for a writer forever (with
# the host's lock held); elsewhere the test is the guard.
parc_copy_plain() { # SRC FILE MAX
  [ ! -e "$2" ] || rm -f "$2"
  [ -f "$1" ] && [ ! -L "$1" ] || return 1
  [ -n "${PARC_DD:-}" ] || parc_dd_probe
  if [ "$PARC_DD" = 1 ]; then
    dd if="$1" of="$2" bs=65536 count="$3" iflag=nofollow,nonblock,count_bytes 2>/dev/null
  else
    head -c "$3" "$1" > "$2"
  fi
}

# Enter DIR (absolute) from /, one directory at a time, each checked after
# `cd -P` to be the directory it names: a user who swaps a directory on the
# way for a link moves the walk nowhere. A link is followed only where no
# user could have made it: in a directory root owns that is not sticky (the
# system's own links, /lib -> usr/lib), and then its target is walked the
# same way; anywhere else (a user's directory, /tmp) the walk stops, with
# status 2. `..` is the parent of the directory the walk is in. Shell
# builtins only, and a readlink a link followed.
parc_walk() { # DIR
  cd / || return 2
  _wr=${1#/} _wl=0
  while [ -n "$_wr" ]; do
    _wc=${_wr%%/*}
    case $_wr in */*) _wr=${_wr#*/} ;; *) _wr= ;; esac
    case $_wc in ''|.) continue ;; ..) cd -P .. || return 1; continue ;; esac
    if [ -L "$_wc" ]; then
      [ -O . ] && [ ! -k . ] || return 2
      # What it points to is walked like the rest, one directory at a
      # time: the kernel would resolve it whole, through a link a user made
      # on the way (root's /srv/site -> /home/alice/site, hers -> /root).
      # As many links as the kernel follows (40); one readlink each.
      _wl=$((_wl + 1))
      [ "$_wl" -le 40 ] && _wt=$(readlink -- "$_wc") && [ -n "$_wt" ] || return 2
      case $_wt in /*) cd / || return 2 ;; esac
      _wr=${_wt#/}${_wr:+/$_wr}
    else
      _ww=${PWD%/}/$_wc
      cd -P -- "$_wc" 2>/dev/null || return 1
      [ "$PWD" = "$_ww" ] || return 2
    fi
  done
}

# parc_copy_plain of SRC, in the directory parc_walk enters: what a root
# process reads for a test of a file in a user's directory is that user's
# file or nothing, never a root file behind a link the user made. Status 2:
# a link on the way is not one parc follows. The working directory is
# restored.
parc_copy_walked() { # SRC FILE MAX
  _cw=$PWD
  parc_dirname "$1"
  parc_walk "$_d"
  _cr=$?
  if [ "$_cr" = 0 ]; then parc_copy_plain "./${1##*/}" "$2" "$3"; _cr=$?; fi
  cd -- "$_cw" 2>/dev/null || cd /
  return $_cr
}

# Atomically install stash bytes [OFF, OFF+LEN) as DEST with MODE OWNER GROUP:
# temp file in DEST's directory, synced, attributes set, then renamed over DEST
# (the rename is journaled after the attribute changes, so it never lands
# without them). Files the probe located are staged instead (parc_mv).
parc_put() {
  _off=$1 _len=$2 _dest=$3 _mode=$4 _owner=$5 _group=$6
  parc_dirname "$_dest"
  _tmp="$_d/.parc-tmp.$$.${_dest##*/}"
  parc_slice "$((PARC_STASH + _off))" "$_len" "$_tmp" || { rm -f "$_tmp"; return 1; }
  # The temp file was just created under umask 022: it is 644 already.
  [ -z "$_mode" ] || [ "$_mode" = 644 ] || chmod -- "$_mode" "$_tmp" || { rm -f "$_tmp"; return 1; }
  [ -z "$_owner$_group" ] || chown -h -- "$_owner${_group:+:$_group}" "$_tmp" || { rm -f "$_tmp"; return 1; }
  mv -f -- "$_tmp" "$_dest"
}

# Run COMMAND... as USER: USER's uid, primary group and groups, stdin as
# given, stdout and stderr as they are and no other open file (the lock's,
# a probe's batch files). What parc changes in a directory a local user owns
# it changes as that user: root acting there by path could be sent anywhere
# by the user swapping a directory for a link between parc's check and its
# write, and USER cannot go beyond USER's own rights. util-linux's setpriv
# (no PAM session), else runuser, else su (Alpine's busybox); else nothing
# is done (Debian's busybox has none of them, and its setpriv no --reuid).
parc_as() { # USER COMMAND...
  _au=$1; shift
  case $_au in ''|-*) echo "parc_as: bad user name" >&2; return 1 ;; esac
  [ -n "${PARC_AS:-}" ] || parc_as_probe
  case $PARC_AS in
    setpriv)
      _ag=$(id -g -- "$_au") || return 1
      setpriv --reuid="$_au" --regid="$_ag" --init-groups -- "$@" ;;
    runuser) runuser -u "$_au" -- "$@" ;;
    su)
      # shellcheck disable=SC2016 # expanded by the user's shell
      su -s /bin/sh -c 'exec "$0" "$@"' "$_au" "$@" ;;
    *)
      printf 'cannot act as %s on this host (no setpriv, runuser or su), and parc does not act as root in the directories %s owns\n' "$_au" "$_au" >&2
      return 1 ;;
  esac 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
}

# Set PARC_AS to the tool parc_as runs (none: no tool). Run once, on first
# use.
parc_as_probe() {
  PARC_AS=none
  if setpriv --reuid=0 --regid=0 --clear-groups -- true 2>/dev/null; then PARC_AS=setpriv
  elif command -v runuser >/dev/null 2>&1; then PARC_AS=runuser
  elif command -v su >/dev/null 2>&1; then PARC_AS=su
  fi
}

# At most MAX bytes of PATH into FILE, read as USER (parc_as): PATH lies in a
# directory USER owns, where root reading by path could be sent to a root
# file of the same name. Never waits on a named pipe put there (GNU dd's
# nonblock). No FILE when the read fails.
parc_read_as() { # USER PATH FILE MAX
  [ -n "${PARC_DD:-}" ] || parc_dd_probe
  if [ "$PARC_DD" = 1 ]; then
    parc_as "$1" dd if="$2" bs=65536 count="$4" iflag=nonblock,count_bytes < /dev/null > "$3" 2>/dev/null
  else
    parc_as "$1" head -c "$4" -- "$2" < /dev/null > "$3" 2>/dev/null
  fi || rm -f "$3"
}

# The sh that writes its stdin as file $1 with mode $2 (and group $3 unless
# empty), run as a user by parc_as: a temp file beside $1, synced, then
# renamed over it. The user writes it, so it is the user's.
# shellcheck disable=SC2016 # expanded by the user's shell
PARC_AS_PUT='cd / && umask 077 && t=${1%/*}/.parc-tmp.$$.${1##*/} &&
{ { cat > "$t" && { sync -- "$t" 2>/dev/null || sync; } && chmod -- "$2" "$t" &&
  { [ -z "$3" ] || chgrp -- "$3" "$t"; } && mv -f -- "$t" "$1"; } || { rm -f -- "$t"; exit 1; }; }'

# Install stash bytes [OFF, OFF+LEN) as DEST with MODE (and GROUP), as
# USER (parc_as, PARC_AS_PUT): DEST lies in a directory USER owns.
parc_put_as() { # OFF LEN DEST MODE USER GROUP
  parc_slice_out "$((PARC_STASH + $1))" "$2" | parc_as "$5" sh -c "$PARC_AS_PUT" parc "$3" "$4" "$6"
}

# Print payload bytes [OFF, OFF+LEN).
parc_slice_out() { # OFF LEN
  [ -n "${PARC_DD:-}" ] || parc_dd_probe
  if [ "$PARC_DD" = 1 ]; then
    dd if="$PARC_PAYLOAD" bs=65536 skip="$1" count="$2" iflag=skip_bytes,count_bytes 2>/dev/null
  else
    tail -c +"$(($1 + 1))" "$PARC_PAYLOAD" | head -c "$2"
  fi
}

# chown -h SPEC PATH as root, from PATH's directory as the working
# directory, entered by parc_walk (no link a user could have made on the
# way): the user who owns it may swap what it holds, but not where the chown
# acts. Only for what the user may not do (take a directory, set a group the
# user is not in); never to give the user a file (a hard link to another's
# file would take it).
parc_chown_in() { # SPEC PATH
  parc_dirname "$2"
  ( if ! parc_walk "$_d"; then
      printf '%s: the directory above it is gone, or past a link a user could have made; its owner is left alone\n' "$2" >&2
      exit 1
    fi
    exec chown -h -- "$1" "./${2##*/}" )
}

# Write payload bytes [OFF, OFF+LEN) to FILE, synced.
parc_slice() { # OFF LEN FILE
  [ -n "${PARC_DD:-}" ] || parc_dd_probe
  # GNU dd writes and fsyncs the slice in one process (conv=fsync).
  if [ "$PARC_DD" = 1 ]; then
    dd if="$PARC_PAYLOAD" of="$3" bs=65536 skip="$1" count="$2" iflag=skip_bytes,count_bytes conv=fsync 2>/dev/null
  else
    parc_slice_out "$1" "$2" > "$3" && parc_sync "$3"
  fi
}

# Install staged file N (parc_stage wrote it, with its mode) as DEST: set its
# owner (unless it is root's and we are root: tar made it so), then rename.
# A file its run's parc_batch_* already renamed is in place.
parc_mv() { # N DEST OWNER GROUP
  eval "_t=\$PARC_T$1 _m=\${PARC_MOVED_$1:-}"
  if [ -n "$_m" ] && [ ! -e "$_t" ]; then return 0; fi
  case ${PARC_EUID:-}:${3:-root}:${4:-root} in
    0:root:root) ;;
    *) [ -z "$3$4" ] || chown -h -- "$3${4:+:$4}" "$_t" || return 1 ;;
  esac
  mv -f -- "$_t" "$2"
}

# Rename staged link N (parc_stage made it, under its final name) into DIR,
# over what stands there: into the directory, because `mv TEMP DEST` would
# move it into the directory an existing link DEST points at. A link its
# run's parc_batch_* already renamed is in place.
parc_ln() { # N DIR
  eval "_t=\$PARC_T$1 _m=\${PARC_MOVED_$1:-}"
  if [ -n "$_m" ] && [ ! -L "$_t" ]; then return 0; fi
  mv -f -- "$_t" "$2"
}

# Whether this dd takes every flag parc gives it (GNU's does): slices by
# bytes (one process per file installed instead of two), opens without
# following a link or waiting on a named pipe (parc_copy_plain). Run once,
# on first use.
parc_dd_probe() {
  PARC_DD=0
  # Every flag parc gives dd: busybox's knows skip_bytes and count_bytes but
  # not nofollow or nonblock, and refuses the whole line (parc_copy_plain
  # then read nothing there).
  dd if=/dev/null of=/dev/null iflag=nofollow,nonblock,skip_bytes,count_bytes 2>/dev/null && PARC_DD=1
  export PARC_DD
}

# Set PARC_EUID, the effective uid, read without starting `id` (Linux;
# elsewhere unknown, and parc_mv then always sets the owner). Run by
# parc_stage: only scripts that install staged files need it.
parc_euid() {
  PARC_EUID=
  [ -r /proc/self/status ] || return 0
  while read -r _k _r _e _; do
    if [ "$_k" = Uid: ]; then PARC_EUID=$_e; break; fi
  done < /proc/self/status
}

# chmod has no "do not follow" flag: a path that became a symbolic link since
# the probe is refused rather than followed.
parc_chmod() { # MODE PATH
  if [ -L "$2" ]; then
    printf '%s: a symbolic link stands there now; its target is left alone\n' "$2" >&2
    return 1
  fi
  chmod -- "$1" "$2"
}

# parc_chmod for many paths with one process (see Op::Batch): chmod MODE
# every PATH that is not a symbolic link, and set each one's VAR once done.
# A link is left to its step, whose parc_chmod refuses it.
parc_chmod_all() { # MODE VAR PATH...
  _m=$1 _l='' _v=''
  shift
  _i=1
  while [ "$_i" -lt "$#" ]; do
    eval "_p=\${$((_i + 1))}"
    if [ ! -L "$_p" ]; then
      _l="$_l \"\${$((_i + 1))}\""
      eval "_v=\"\$_v \${$_i}\""
    fi
    _i=$((_i + 2))
  done
  [ -n "$_l" ] || return 0
  eval "chmod -- $_m $_l" 2>/dev/null || return 0
  for _x in $_v; do eval "$_x=1"; done
}

parc_sync() {
  sync "$@" 2>/dev/null || sync
}

# Make every file and directory under DIR durable, and DIR's own entry: fsync
# of each (one process for all) rather than a system-wide sync, whose cost
# depends on whatever else the host has dirty (a download, a build).
parc_sync_tree() { # DIR
  parc_dirname "$1"
  if ! { find "$1" -exec sync -- {} + && sync -- "$_d"; } 2>/dev/null; then sync; fi
}

# Run resource IDX's step (a function) with its output captured; report and stop
# the whole apply at the first failure.
parc_step() { # IDX FUNCTION
  ( set -e; "$2" ) > "$PARC_DIR/out" 2>&1
  parc_step_done "$1" $?
}

# parc_step for a step of plain ops (Step::is_plain): its commands are chained
# with && and return their status, so it runs without a subshell.
parc_step_plain() { # IDX FUNCTION
  "$2" > "$PARC_DIR/out" 2>&1
  parc_step_done "$1" $?
}

# A `command` with a `timeout:` ran under `timeout SECS`, whose status RC is
# returned as it is: when it says `timeout` stopped the command (GNU's 124,
# or busybox's SIGTERM and SIGKILL), that is said too, in the step's output.
parc_timed_out() { # SECS RC
  case $2 in 124|137|143) echo "parc: stopped when it ran past its timeout of $1 s (exit $2)" >&2 ;; esac
  return "$2"
}

# What runs next in an apply may act for the steps up to STEP (a batch acts
# for the steps of its run): read by parc_step_done.
parc_reach() { # STEP
  PARC_REACH=$1
}

# A failed step stops the script; in a journaled apply it first writes in
# the journal's `reached` the last step that could have changed the host
# (parc_reach): a restore runs no undo of a later step, which never ran.
parc_step_done() { # IDX RC
  echo "@@done $1 $2"
  [ ! -s "$PARC_DIR/out" ] || parc_blob_max out "$PARC_DIR/out" "$PARC_OUT_MAX"
  [ "$2" -eq 0 ] && return 0
  if [ -n "${PARC_REACH:-}" ] && [ -n "${PARC_JOURNAL:-}" ]; then echo "$PARC_REACH" > "$PARC_JOURNAL/reached"; fi
  exit 1
}

# At most 1 MiB of what a step printed reaches the controller, which holds
# what it is sent: the host, not parc, decides how much a command prints.
PARC_OUT_MAX=1048576

# Blob KEY: at most MAX bytes of FILE (in $PARC_DIR); a longer one is cut,
# and KEY_cut_from says its whole size.
parc_blob_max() { # KEY FILE MAX
  _n=$(wc -c < "$2")
  if [ "$_n" -gt "$3" ]; then
    parc_kv "$1_cut_from" "$_n"
    head -c "$3" "$2" > "$2.kept"
    parc_blob_of "$1" "$2.kept" "$3"
  else
    parc_blob_of "$1" "$2" "$_n"
  fi
}

# Fetch the entries NAME... of account database DB (passwd, group, shadow)
# (Script::getent), for parc_getent_next. When /etc/nsswitch.conf has DB
# answered by files first (Debian's "files systemd", not "compat" or
# "[SUCCESS=merge]"; parc_nss_read), /etc/DB is read by the shell, once
# (parc_db_read), and one getent fetches only the names it lacks (a directory
# service's accounts, or none: no process when every account is local); else
# one getent fetches them all. Without getent (busybox) nothing is fetched:
# the lookups read /etc/DB.
parc_getent_all() { # DB NAME...
  _db=$1; shift
  # What an earlier round of reads fetched (Script::read_again) is not
  # read again: the accounts may have changed since.
  [ ! -f "$PARC_DIR/getent.$_db" ] || : > "$PARC_DIR/getent.$_db"
  eval "PARC_DB_$_db="
  # A shadow entry is only read for an account passwd has (fetched first:
  # the databases come in name order): no getent for accounts to create.
  if [ "$_db" = shadow ]; then
    for _gn; do
      shift
      if parc_getent_next passwd "$_gn"; then set -- "$@" "$_gn"; fi
    done
    [ $# -gt 0 ] || return 0
  fi
  if eval "[ \"\${PARC_NSS_$_db:-}\" = 1 ]"; then
    parc_db_read "$_db"
    for _gn; do
      shift
      parc_entry_of "$_db" "$_gn" || set -- "$@" "$_gn"
    done
    [ $# -gt 0 ] || return 0
  fi
  if command -v getent >/dev/null 2>&1; then
    # Without a name getent would list the whole database.
    [ $# -gt 0 ] || return 0
    getent "$_db" "$@" > "$PARC_DIR/getent.$_db" 2>/dev/null
  else
    parc_db_read "$_db"
  fi
  return 0
}

# Which account databases /etc/nsswitch.conf has answered by files first,
# with no action that would merge or skip their answer: PARC_NSS_passwd,
# PARC_NSS_group and PARC_NSS_shadow set to 1 (yes) or 0, from the first
# line naming each. Read once for a round of reads rather than once per
# database: the shell's read takes one byte per system call.
parc_nss_read() {
  # shellcheck disable=SC2034 # read through eval (parc_getent_all)
  PARC_NSS_passwd='' PARC_NSS_group='' PARC_NSS_shadow=''
  [ -r /etc/nsswitch.conf ] || return 0
  while read -r _nk _nv; do
    case $_nk in passwd:|group:|shadow:) ;; *) continue ;; esac
    eval "[ -z \"\$PARC_NSS_${_nk%:}\" ]" || continue
    case $_nv in *'['*) _ny=0 ;; files|'files '*) _ny=1 ;; *) _ny=0 ;; esac
    eval "PARC_NSS_${_nk%:}=\$_ny"
  done < /etc/nsswitch.conf
}

# Set _rl to FILE's lines after a newline, each ending with one (a newline
# alone when FILE cannot be read): read once, then searched with `case` by
# the callers with no system call, where the shell's read takes one byte a
# call.
parc_read_lines() { # FILE
  _rl=$PARC_NL
  [ -r "$1" ] || return 0
  while IFS= read -r _l || [ -n "$_l" ]; do _rl=$_rl$_l$PARC_NL; done < "$1"
}

# Read /etc/DB into PARC_DB_<DB> (parc_read_lines). Read once per round of
# reads (parc_getent_all), then searched by parc_entry_of: a file read once
# per name was most of a probe's reads.
parc_db_read() { # DB
  parc_read_lines "/etc/$1"
  eval "PARC_DB_$1=\$_rl"
}

# Set _ge to the line of PARC_DB_<DB> (parc_db_read) for NAME; false when
# there is none. No name holds a colon or a newline, so none can match
# across the fields or the lines of another entry.
parc_entry_of() { # DB NAME
  _ge=
  case $2 in ''|*:*|*"$PARC_NL"*) return 1 ;; esac
  eval "_dv=\${PARC_DB_$1:-}"
  # Split into lines by the shell, in one pass: dash removes a pattern
  # such as ${_dv#*"$PARC_NL$2:"} by matching it against every prefix, a
  # cost that grows with the square of the database's size.
  _gi=$IFS; IFS=$PARC_NL; set -f
  # shellcheck disable=SC2086,SC2154 # one word per line, globbing off; _dv is the eval's
  for _ge in $_dv; do
    case $_ge in "$2":*) IFS=$_gi; set +f; return 0 ;; esac
  done
  IFS=$_gi; set +f
  _ge=
  return 1
}

# Set _ge to the line of FILE (what getent fetched) for NAME; false when
# there is none.
parc_entry_in() { # FILE NAME
  _ge=
  [ -r "$1" ] || return 1
  while IFS= read -r _ge; do
    case $_ge in "$2":*) return 0 ;; esac
  done < "$1"
  _ge=
  return 1
}

# Set _ge to DB's entry NAME: from /etc/DB as parc_getent_all read it
# (files answer first, or no getent), then from what getent fetched; false
# when there is none.
parc_getent_next() { # DB NAME
  if parc_entry_of "$1" "$2" || parc_entry_in "$PARC_DIR/getent.$1" "$2"; then
    return 0
  fi
  PARC_PENDING=1
  return 1
}

# Set _gp to the name of the group whose gid is GID (GID itself when there
# is none) and _gs to the names of the other groups that list USER as a
# member (each after a space), as `id -Gn` prints them, read by the shell
# rather than an `id` per user: from /etc/group (the groups useradd and
# usermod manage; as parc_getent_all read it when it did), then the entries
# parc_getent_all fetched by name (groups of a directory service, which
# /etc/group does not hold).
parc_user_groups() { # USER GID
  _gp=$2 _gs='' _gu=$1 _gd=$2 _gi=$IFS
  set -f
  if [ -n "${PARC_DB_group:-}" ]; then
    IFS=$PARC_NL
    # shellcheck disable=SC2086 # one word per line, globbing off
    for _gl in $PARC_DB_group; do parc_group_line "$_gl"; done
  elif [ -r /etc/group ]; then
    while IFS= read -r _gl; do parc_group_line "$_gl"; done < /etc/group
  fi
  if [ -r "$PARC_DIR/getent.group" ]; then
    while IFS= read -r _gl; do parc_group_line "$_gl"; done < "$PARC_DIR/getent.group"
  fi
  IFS=$_gi
  set +f
}

# One line of a group database, for parc_user_groups (USER in _gu, GID in
# _gd; globbing off).
parc_group_line() { # LINE
  _gli=$IFS; IFS=:
  # shellcheck disable=SC2086 # split on colons
  set -- $1
  IFS=$_gli
  if [ "${3:-}" = "$_gd" ]; then
    [ "$_gp" != "$_gd" ] || _gp=$1
    return 0
  fi
  case ,${4:-}, in
    *,"$_gu",*) case "$_gs " in *" $1 "*) ;; *) _gs="$_gs $1" ;; esac ;;
  esac
}

# One passwd/group/shadow entry by name; busybox systems may have no getent.
parc_getent() { # DB NAME
  if command -v getent >/dev/null 2>&1; then getent "$1" "$2"
  else awk -F: -v n="$2" '$1 == n { print; f = 1 } END { exit !f }' "/etc/$1"; fi
}

# Set _hb to where useradd puts a new user's home: the HOME= of
# /etc/default/useradd (what `useradd -D` prints), else /home (busybox's
# adduser too). Read by the shell rather than `useradd -D | sed`: no process.
parc_home_base() {
  _hb=
  if [ -r /etc/default/useradd ]; then
    while IFS= read -r _l || [ -n "$_l" ]; do
      case $_l in HOME=*) _hb=${_l#HOME=} ;; esac
    done < /etc/default/useradd
  fi
  [ -n "$_hb" ] || _hb=/home
}

# Which account tools the host has: the shadow utilities (TOOL, e.g. useradd),
# busybox's applet (APPLET, e.g. adduser), or none.
parc_account_tools() { # TOOL APPLET
  if command -v "$1" >/dev/null 2>&1; then echo tools=shadow
  elif command -v "$2" >/dev/null 2>&1 && readlink -f "$(command -v "$2")" | grep -q busybox; then echo tools=busybox
  else echo tools=none; fi
}

# apt-get install/upgrade; when it fails (missing or stale package lists), run
# `apt-get update` once per apply and retry.
parc_apt_install() { # ARGS...
  parc_apt install "$@" && return 0
  [ ! -e "$PARC_DIR/apt-updated" ] || return 1
  : > "$PARC_DIR/apt-updated"
  parc_apt update && parc_apt install "$@"
}

parc_apt() {
  DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}

# Set parc_pm to the package manager of this host (a variable: command
# substitution would fork a subshell per package resource).
# shellcheck disable=SC2034 # parc_pm is read by the callers
parc_pkg_manager() {
  if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then parc_pm=apt
  elif command -v dnf >/dev/null 2>&1; then parc_pm=dnf
  elif command -v yum >/dev/null 2>&1; then parc_pm=yum
  elif command -v apk >/dev/null 2>&1; then parc_pm=apk
  elif command -v pacman >/dev/null 2>&1; then parc_pm=pacman
  elif command -v zypper >/dev/null 2>&1; then parc_pm=zypper
  else parc_pm=none; fi
}

# The state of every package NAME a script queries (Script::package), for
# parc_pkg_query, from one process for all of them: dpkg's status ("NAME
# STATUS VERSION" lines, in dpkg's order), else rpm's (parc_rpm_all), apk's
# (parc_apk_all) or pacman's (parc_pacman_all).
parc_pkg_all() { # NAME...
  PARC_RPM='' PARC_APK='' PARC_PACMAN=''
  if command -v dpkg-query >/dev/null 2>&1; then
    parc_dpkg_all "$@"
  elif command -v rpm >/dev/null 2>&1; then
    parc_rpm_all "$@"
  elif command -v apk >/dev/null 2>&1; then
    parc_apk_all "$@"
  elif command -v pacman >/dev/null 2>&1; then
    parc_pacman_all "$@"
  fi
  return 0
}

# dpkg's answer for every NAME, as `dpkg-query -W -f '${Package}
# ${db:Status-Status} ${Version}\n' -- NAME...` prints it, to $PARC_DIR/dpkg:
# a line for each package so named (of any architecture), in the status
# file's order, which is dpkg-query's (by name, then architecture). One awk
# reads the status file (2.7 ms on the lab, against 7.8 ms for dpkg-query,
# which loads dpkg's whole database) where that file is all dpkg would read:
# the default database, no update left unmerged by an interrupted dpkg
# (updates/NNNN), no trigger to incorporate (dpkg-query shows those packages
# as triggers-pending). Else, or when a NAME is a pattern or names an
# architecture (NAME:ARCH), dpkg-query is asked.
parc_dpkg_all() { # NAME...
  _dk=/var/lib/dpkg
  if [ -n "${DPKG_ADMINDIR:-}" ] || [ ! -r "$_dk/status" ] || [ -s "$_dk/triggers/Unincorp" ]; then _dk=''; fi
  for _n in /var/lib/dpkg/updates/[0-9]*; do [ ! -e "$_n" ] || _dk=''; done
  for _n do case $_n in *[]*?:[\\]*) _dk='' ;; esac; done
  # The names are awk's operands after the file, read (and blanked) first:
  # a NAME holding = is not an assignment.
  if [ -n "$_dk" ] && awk -- 'BEGIN { for (i = 2; i < ARGC; i++) { want[ARGV[i]] = 1; ARGV[i] = "" } }
      /^Package:/ { p = $2 }
      /^Status:/ { s = $4 }
      /^Version:/ { v = $2 }
      /^$/ { if (p in want) print p, s, v; p = s = v = "" }
      END { if (p in want) print p, s, v }' "$_dk/status" "$@" > "$PARC_DIR/dpkg" 2>/dev/null; then
    return 0
  fi
  dpkg-query -W -f '${Package} ${db:Status-Status} ${Version}\n' -- "$@" > "$PARC_DIR/dpkg" 2>/dev/null
}

# apk's database of installed packages (/lib/apk/db/installed: "P:NAME" and
# "V:VERSION" lines, a blank line between packages) read once, by one awk,
# for every NAME: PARC_AV_I is the version of the package named as the I-th
# NAME, empty when none is. apk alone is asked about such a NAME (not
# installed, or what another package provides: parc_pkg_query).
parc_apk_all() { # NAME...
  [ -r /lib/apk/db/installed ] || return 0
  _i=0
  for _n do _i=$((_i + 1)); eval "PARC_AV_$_i=''"; done
  # The names are awk's operands after the file, read (and blanked) first:
  # a NAME holding = is not an assignment, one holding a newline no line.
  awk -- 'BEGIN {
      for (i = 2; i < ARGC; i++) { if (!(ARGV[i] in at)) at[ARGV[i]] = i - 1; ARGV[i] = "" }
    }
    /^P:/ { p = substr($0, 3) }
    /^V:/ && (p in at) { print at[p], substr($0, 3); delete at[p] }
    /^$/ { p = "" }' /lib/apk/db/installed "$@" > "$PARC_DIR/apk" 2>/dev/null || return 0
  while read -r _i _v; do
    # Only the indexes awk printed name variables (eval).
    case $_i in '' | *[!0-9]*) continue ;; esac
    eval "PARC_AV_$_i=\$_v"
  done < "$PARC_DIR/apk"
  PARC_APK=1
}

# pacman's answer for each NAME as `pacman -Q NAME` gives it alone: a line
# "PACKAGE VERSION" when NAME is found (as a package's name, or as what an
# installed package provides), none when it is not. From one pacman -Q for
# all: when every NAME has its line, the I-th line is the I-th NAME's; else
# a NAME is read from the line of the package so named, and the rest are
# asked of one pacman -T (which prints those no package satisfies: not
# installed). PARC_PV_I is the I-th NAME's version, empty when it is not
# installed; PARC_PA_I is set when it is to be asked alone (what a package
# provides, or a NAME with a /, which -Q reads as a database and -T does
# not). A NAME with a newline could forge lines: then each is asked alone.
parc_pacman_all() { # NAME...
  _i=0
  for _n do
    case $_n in *"$PARC_NL"*) return 0 ;; esac
    _i=$((_i + 1))
    eval "PARC_PV_$_i='' PARC_PA_$_i=''"
  done
  pacman -Q -- "$@" > "$PARC_DIR/pacman" 2>/dev/null
  _i=0 _pl=$PARC_NL
  while IFS= read -r _l; do
    _i=$((_i + 1)) _pl=$_pl$_l$PARC_NL
    eval "PARC_PV_$_i=\${_l#* }"
  done < "$PARC_DIR/pacman"
  PARC_PACMAN=1
  [ "$_i" -ne "$#" ] || return 0
  _i=0 _a=''
  for _n do
    _i=$((_i + 1))
    case $_pl in
      *"$PARC_NL$_n "*) _v=${_pl#*"$PARC_NL$_n "}; eval "PARC_PV_$_i=\${_v%%\"\$PARC_NL\"*}" ;;
      *) eval "PARC_PV_$_i=''"
        case $_n in
          */*) eval "PARC_PA_$_i=1" ;;
          *) _a="$_a \"\${$_i}\"" ;;
        esac ;;
    esac
  done
  [ -n "$_a" ] || return 0
  eval "pacman -T -- $_a" > "$PARC_DIR/pacman" 2>/dev/null
  parc_read_lines "$PARC_DIR/pacman"
  _i=0
  for _n do
    _i=$((_i + 1))
    case $_a in *"{$_i}"*) ;; *) continue ;; esac
    case $_rl in *"$PARC_NL$_n$PARC_NL"*) ;; *) eval "PARC_PA_$_i=1" ;; esac
  done
}

# rpm's answer for each NAME as `rpm -q NAME` gives it alone, from one rpm:
# after each NAME comes a name no package can have (it holds a space), whose
# line ("package parc end is not installed") ends NAME's answer, whatever
# its lines (one a version installed, a "not installed", or none at all for
# a NAME ending in .rpm that is no package). PARC_RV_I is the first version
# (VERSION-RELEASE) of the I-th NAME, empty when it is not installed;
# PARC_RPM is set only when every answer ended where expected. A NAME with a
# newline could forge lines: then each is asked alone (parc_pkg_query).
parc_rpm_all() { # NAME...
  _a='' _i=0
  for _n do
    case $_n in *"$PARC_NL"*) return 0 ;; esac
    _i=$((_i + 1)) _a="$_a \"\${$_i}\" 'parc end'"
  done
  eval "rpm -q --qf '@%{VERSION}-%{RELEASE}\\n' -- $_a" > "$PARC_DIR/rpm" 2>/dev/null
  _i=1 _v=''
  while IFS= read -r _l; do
    case $_l in
      @*) [ -n "$_v" ] || _v=${_l#@} ;;
      'package parc end is not installed')
        eval "PARC_RV_$_i=\$_v"; _i=$((_i + 1)) _v='' ;;
    esac
  done < "$PARC_DIR/rpm"
  [ "$_i" -ne "$(($# + 1))" ] || PARC_RPM=1
}

# The state of every systemd unit NAME of a round of reads, for
# parc_unit_next, in order: one `systemctl show` (load and active states)
# and one `systemctl is-enabled` (for the units loaded or masked, the others
# having no unit file state), rather than three systemctl a unit. When
# systemctl answers otherwise than unit by unit (a block or a line missing),
# parc_unit_next asks each unit itself.
parc_unit_all() { # NAME...
  PARC_UNIT_N=0 PARC_UNITS='' _un=''
  [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 || return 0
  systemctl show -p LoadState -p ActiveState -- "$@" > "$PARC_DIR/units" 2>/dev/null || return 0
  _i=0 _ul='' _ua='' _ur='' _l=''
  # Blocks of KEY=VALUE lines, one a unit, between empty lines.
  while :; do
    IFS= read -r _l || _l=EOF
    case $_l in
      LoadState=*) _ul=${_l#*=} ;;
      ActiveState=*) _ua=${_l#*=} ;;
      '' | EOF)
        if [ -n "$_ul$_ua" ]; then
          _i=$((_i + 1))
          eval "PARC_UL_$_i=\$_ul PARC_UA_$_i=\$_ua PARC_UE_$_i="
          case $_ul in loaded | masked) _ur="$_ur \"\${$_i}\"" _un="$_un $_i" ;; esac
          _ul='' _ua=''
        fi
        [ "$_l" != EOF ] || break ;;
    esac
  done < "$PARC_DIR/units"
  [ "$_i" -eq "$#" ] || return 0
  if [ -n "$_ur" ]; then
    eval "systemctl is-enabled -- $_ur" > "$PARC_DIR/units" 2>/dev/null
    for _i in $_un; do
      IFS= read -r _l || return 0
      eval "PARC_UE_$_i=\$_l"
    done < "$PARC_DIR/units"
  fi
  PARC_UNITS=1
}

# Make systemd read its unit files again if the file of any UNIT changed
# since it read them: one systemctl show for all, one daemon-reload at most.
parc_units_reload() { # UNIT...
  case $(systemctl show -p NeedDaemonReload -- "$@") in *=yes*) systemctl daemon-reload ;; esac
}

# Set _ul, _ua and _ue (load, active and unit file states) of the next unit
# of parc_unit_all, which is NAME; empty without systemd.
parc_unit_next() { # NAME
  PARC_UNIT_N=$((${PARC_UNIT_N:-0} + 1))
  if [ -n "${PARC_UNITS:-}" ]; then
    eval "_ul=\$PARC_UL_$PARC_UNIT_N _ua=\$PARC_UA_$PARC_UNIT_N _ue=\$PARC_UE_$PARC_UNIT_N"
    return 0
  fi
  _ul='' _ua='' _ue=''
  [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 || return 0
  _ul=$(systemctl show -p LoadState --value -- "$1" 2>/dev/null)
  _ua=$(systemctl is-active -- "$1" 2>/dev/null)
  _ue=$(systemctl is-enabled -- "$1" 2>/dev/null)
}

# Print "iN=yes" and "vN=VERSION" when package NAME, the I-th of
# parc_pkg_all, is installed.
parc_pkg_query() { # MANAGER NAME N I
  # Missing until found (PARC_PENDING, see parc_stat_next).
  _pa=${PARC_PENDING:-}; PARC_PENDING=1
  case $1 in
    apt) # The first installed line (one per architecture) that NAME matches:
      # a name, or a pattern (dpkg-query's are the shell's); an
      # architecture qualifier (NAME:ARCH) is not part of the package name.
      _v=
      [ -f "$PARC_DIR/dpkg" ] || return 0
      while read -r _pn _ps _pv; do
        # shellcheck disable=SC2254 # NAME is a pattern, as dpkg-query reads it
        case $_pn in ${2%%:*}) [ "$_ps" != installed ] || { _v=$_pv; break; } ;; esac
      done < "$PARC_DIR/dpkg"
      [ -n "$_v" ] || return 0 ;;
    dnf|yum|zypper|rpm)
      if [ -n "${PARC_RPM:-}" ]; then
        eval "_v=\${PARC_RV_$4:-}"; [ -n "$_v" ] || return 0
      else
        _v=$(rpm -q --qf '%{VERSION}-%{RELEASE}\n' -- "$2" 2>/dev/null) || return 0
        _v=${_v%%"$PARC_NL"*}
      fi ;;
    apk) _v=''
      [ -z "${PARC_APK:-}" ] || eval "_v=\${PARC_AV_$4:-}"
      if [ -z "$_v" ]; then
        apk info -e -- "$2" >/dev/null 2>&1 || return 0
        _v=$(apk info -e -v -- "$2" 2>/dev/null); _v=${_v#"$2"-}
      fi ;;
    pacman)
      if [ -n "${PARC_PACMAN:-}" ] && eval "[ -z \"\${PARC_PA_$4:-}\" ]"; then
        eval "_v=\${PARC_PV_$4:-}"; [ -n "$_v" ] || return 0
      else
        _v=$(pacman -Q -- "$2" 2>/dev/null) || return 0
        _v=${_v%%"$PARC_NL"*}; _v=${_v#* }
      fi ;;
    *) return 0 ;;
  esac
  PARC_PENDING=$_pa
  parc_kv "i$3" yes; parc_kv "v$3" "$_v"
}

# What the host's package metadata offers to upgrade among every package
# NAME a round asks about (Script::upgradable), from one process for all of
# them, for parc_pkg_upgradable: apt's installed and candidate versions (a
# block a package, headed "NAME:"), else dnf's list of upgrades, else the
# names in zypper's table of every update (PARC_ZYPPER, as parc_read_lines
# reads them), which zypper lists whole whatever it is asked.
parc_pkg_upgrades() { # NAME...
  PARC_ZYPPER=''
  if command -v apt-cache >/dev/null 2>&1; then
    apt-cache policy -- "$@" > "$PARC_DIR/policy" 2>/dev/null
  elif command -v dnf >/dev/null 2>&1; then
    # No -- (dnf 5 refuses it); no NAME starts with - (Script::upgradable).
    dnf -q list --upgrades "$@" > "$PARC_DIR/dnf" 2>/dev/null
  elif command -v zypper >/dev/null 2>&1; then
    zypper -n -q list-updates 2>/dev/null | awk -F'|' '{ gsub(/ /, "", $3); print $3 }' > "$PARC_DIR/zypper"
    parc_read_lines "$PARC_DIR/zypper"
    PARC_ZYPPER=$_rl
  fi
  return 0
}

# Whether package NAME has an upgrade in parc_pkg_upgrades' dnf list
# ("NAME.ARCH VERSION REPO" lines, a long NAME.ARCH alone on its line): 0
# yes, 1 no, 2 unknown, when NAME holds a pattern or may be a listed
# package's name with a version or an architecture (dnf reads NAME in every
# such form): then dnf is asked about NAME alone.
parc_dnf_upgrade_of() { # NAME
  [ -f "$PARC_DIR/dnf" ] || return 2
  case $1 in *'*'* | *'?'* | *'['*) return 2 ;; esac
  while IFS= read -r _l; do
    case $_l in '' | [[:space:]]*) continue ;; esac
    _l=${_l%%[[:space:]]*}
    case $_l in *.*) _l=${_l%.*} ;; *) continue ;; esac
    [ "$_l" != "$1" ] || return 0
    case $1 in "$_l"-* | "$_l".*) return 2 ;; esac
  done < "$PARC_DIR/dnf"
  return 1
}

# Set _i and _c to the installed and candidate versions of package NAME in
# parc_pkg_upgrades' apt answer; fail when no block is headed with NAME itself
# (an architecture or a pattern in NAME: apt-cache is asked about it alone).
parc_pkg_policy_of() { # NAME
  _i='' _c='' _f=''
  [ -f "$PARC_DIR/policy" ] || return 1
  while IFS= read -r _l; do
    case $_l in
      ' '*) [ -n "$_f" ] || continue
        _l=${_l#"${_l%%[! ]*}"}
        case $_l in
          'Installed: '*) _i=${_l#Installed: } ;;
          'Candidate: '*) _c=${_l#Candidate: } ;;
        esac ;;
      "$1:") _f=1 ;;
      *) [ -z "$_f" ] || break ;;
    esac
  done < "$PARC_DIR/policy"
  [ -n "$_f" ]
}

# Print "uN=CANDIDATE" (or "uN=newer") when the host's package metadata offers
# an upgrade of installed package NAME. Nothing is downloaded by apt and apk.
parc_pkg_upgradable() { # MANAGER NAME N
  case $1 in
    apt) if ! parc_pkg_policy_of "$2"; then
        _i=$(apt-cache policy -- "$2" 2>/dev/null | sed -n 's/^ *Installed: //p')
        _c=$(apt-cache policy -- "$2" 2>/dev/null | sed -n 's/^ *Candidate: //p')
      fi
      if [ -n "$_c" ] && [ "$_c" != "(none)" ] && [ "$_c" != "$_i" ]; then parc_kv "u$3" "$_c"; fi ;;
    dnf) parc_dnf_upgrade_of "$2"
      case $? in
        0) echo "u$3=newer" ;;
        2) if dnf -q list --upgrades "$2" >/dev/null 2>&1; then echo "u$3=newer"; fi ;;
      esac ;;
    yum) if yum -q list updates "$2" >/dev/null 2>&1; then echo "u$3=newer"; fi ;;
    apk) if [ -n "$(apk list -u "$2" 2>/dev/null)" ]; then echo "u$3=newer"; fi ;;
    pacman) if pacman -Qu "$2" >/dev/null 2>&1; then echo "u$3=newer"; fi ;;
    zypper)
      if [ -n "${PARC_ZYPPER:-}" ]; then
        case $PARC_ZYPPER in *"$PARC_NL$2$PARC_NL"*) echo "u$3=newer" ;; esac
      elif zypper -n -q list-updates 2>/dev/null | awk -F'|' -v n="$2" '{ gsub(/ /, "", $3) } $3 == n { f = 1 } END { exit !f }'; then
        echo "u$3=newer"
      fi ;;
  esac
}
