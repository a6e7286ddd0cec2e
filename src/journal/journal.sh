# parc journal: target-side save and restore. Included in apply scripts and
# written beside each journal as restore.sh, so a host can be restored from its
# journal alone: by `parc rollback`, after a controller crash, or by the
# dead-man watchdog when the controller never confirms.
#
# Layout of a journal (directory mode 0700):
#   state               applying | applied | confirmed | rolling_back |
#                       rolled_back | incomplete (what happened so far)
#   fate                a symlink whose target names who decided the host's
#                       fate, once (parc_decide): confirmed | watchdog | keep |
#                       rollback | fallback
#   watchdog.pid        the armed dead-man watchdog
#   apply.pgid          the apply exec's process group (the watchdog stops it
#                       if its window ends while the apply still runs)
#   complete            written and synced after every entry and the staged
#                       files, before the first change: a journal without it
#                       belongs to an apply that changed nothing
#   entries/N.path      the path, byte for byte
#   entries/N.type      absent | file | link | dir | attrs
#   saved.tar           a copy of the files and links that stood there, all
#                       in one tar (paths kept; see parc_journal_save_all)
#   saved/              saved.tar unpacked, by the first restore that needs it
#   entries/N.data      a copy (cp -a) of what stood there, when not in
#                       saved.tar (a directory; see parc_journal_save_all)
#   entries/N.attrs     "mode owner:group" (every type but absent; names
#                       may hold spaces, never a colon)
#   entries/N.target_attrs  "mode owner:group" of what a link pointed to: the
#                       restore check proves the restore did not change it
#   entries/N.sha256    content hash of a regular file
#   entries/N.undo      sh to run on restore (command resources' `undo:`)
#   entries/N.step      the number of the step whose undo it is
#   entries/N.undo.out  what it printed (parc_undo); N.undo.status: its
#                       exit status
#   reached             the last step that could have changed the host, when
#                       the apply stopped at a failed step (undos of later
#                       steps do not run)
#   entries/N.done      written last: an entry without it is never acted on
#   (Files named after the entry, not a directory per entry: a directory costs
#   its own inode allocation, the dearest step of a first run on ext4, and a
#   run has an entry per path it touches. Journals written before kept
#   entries/N/path...: parc_entry reads both.)
#   post-restore        sh run after a restore (handlers that ran, so services
#                       reload the restored configuration); .out and .status
#                       as an entry's undo
#   unstage             sh removing the run's staged temp files (first thing a
#                       restore does)

# What entries/N.attrs and N.target_attrs hold, written and checked with
# this one format: "mode owner:group".
PARC_ATTRS_FORMAT='%a %U:%G'

# Record every PATH as it is now, as entry N (WHAT: `path`, or `attrs` for
# its mode and owner alone), starting as few processes as it can whatever
# the number of paths: one stat for every mode and owner, one tar for every
# file's and link's copy (saved.tar), one sha256sum, one stat -L for
# what the links point to. A directory is copied on its own (cp -a), and so
# is a link another path of the run lies below: the tar would hold a path
# below a link, which tar refuses to unpack (GNU) or unpacks elsewhere
# (busybox, which makes links last). An entry's `done` is written once
# everything it needs is.
parc_journal_save_all() { # N WHAT PATH...
  _st='' _stn='' _lt='' _ltn='' _tar='' _sha='' _shan='' _hs='' _nl='
'
  if command -v sha256sum >/dev/null 2>&1; then _hs=1; fi
  _i=1
  while [ "$_i" -le "$#" ]; do
    # Paths are named, in the lists run by eval below, by their position.
    eval "_n=\${$_i} _w=\${$((_i + 1))} _p=\${$((_i + 2))}"
    _ref="\"\${$((_i + 2))}\""
    _e="$PARC_JOURNAL/entries/$_n."
    printf '%s' "$_p" > "${_e}path" || return 1
    # WHAT:USER: a path in a directory USER owns, which the run changes as
    # USER (parc_as): its copy is made as USER, so it holds what USER may
    # read, whatever USER swaps; a link is copied as the link it is.
    _wu=''
    case $_w in
      *:*) _wu=${_w#*:} _w=${_w%%:*}; printf '%s\n' "$_wu" > "${_e}user" || return 1 ;;
    esac
    if [ -L "$_p" ] || [ -e "$_p" ]; then _st="$_st $_ref" _stn="$_stn $_n"; fi
    if [ "$_w" = attrs ] && [ -e "$_p" ]; then
      _t=attrs
    elif [ -n "$_wu" ] && [ -L "$_p" ]; then
      _t='link'; cp -P -- "$_p" "${_e}data" || return 1
    elif [ -n "$_wu" ] && [ -f "$_p" ]; then
      _t='file'
      if ! parc_as "$_wu" cat -- "$_p" < /dev/null > "${_e}data"; then
        echo "$_p: $_wu, who owns a directory above it and makes the change, may not read it, so parc cannot save it first (give it to $_wu, or set follow: true)" >&2
        return 1
      fi
      parc_sha "${_e}data" > "${_e}sha256" || return 1
    elif [ -n "$_wu" ] && [ -e "$_p" ]; then
      echo "cannot journal $_p as $_wu: not a file or symlink" >&2; return 1
    elif [ -L "$_p" ]; then
      _t='link'
      if parc_journal_above "$_p" "$@"; then
        cp -a "$_p" "${_e}data" || return 1
      else
        _tar="$_tar $_ref"
      fi
      if [ -e "$_p" ]; then _lt="$_lt $_ref" _ltn="$_ltn $_n"; fi
    elif [ -d "$_p" ]; then
      _t=dir; cp -a "$_p" "${_e}data" && parc_sync_tree "${_e}data" || return 1
    elif [ -f "$_p" ]; then
      _t=file _tar="$_tar $_ref"
      # sha256sum escapes (GNU) or splits (busybox) a name holding these.
      case $_hs in
        1) case $_p in
            *"$_nl"* | *\\*) parc_sha "$_p" > "${_e}sha256" || return 1 ;;
            *) _sha="$_sha $_ref" _shan="$_shan $_n" ;;
          esac ;;
        *) parc_sha "$_p" > "${_e}sha256" || return 1 ;;
      esac
    elif [ -e "$_p" ]; then
      echo "cannot journal $_p: not a file, directory or symlink" >&2; return 1
    else
      _t=absent
    fi
    eval "_jt$_n=\$_t"
    _i=$((_i + 3))
  done
  if [ -n "$_st" ]; then
    eval "stat -c \"\$PARC_ATTRS_FORMAT\" -- $_st" > "$PARC_DIR/journal.out" &&
      parc_journal_spread attrs "$_stn" < "$PARC_DIR/journal.out" || return 1
  fi
  if [ -n "$_lt" ]; then
    eval "stat -L -c \"\$PARC_ATTRS_FORMAT\" -- $_lt" > "$PARC_DIR/journal.out" &&
      parc_journal_spread target_attrs "$_ltn" < "$PARC_DIR/journal.out" || return 1
  fi
  if [ -n "$_sha" ]; then
    eval "sha256sum -- $_sha" > "$PARC_DIR/journal.out" &&
      parc_journal_spread sha256 "$_shan" < "$PARC_DIR/journal.out" || return 1
  fi
  # (GNU tar says, on stderr, that it drops the leading `/`.) Without tar, or
  # when it fails, each file and link is copied on its own, into its entry.
  if [ -n "$_tar" ] && ! { command -v tar >/dev/null 2>&1 &&
    eval "tar -c -f \"\$PARC_JOURNAL/saved.tar\" -- $_tar" 2> "$PARC_DIR/journal.out"; }; then
    rm -f "$PARC_JOURNAL/saved.tar"
    _i=1
    while [ "$_i" -le "$#" ]; do
      eval "_n=\${$_i} _p=\${$((_i + 2))}"
      eval "_t=\$_jt$_n"
      if [ "$_t" = file ] || { [ "$_t" = link ] && [ ! -L "$PARC_JOURNAL/entries/$_n.data" ]; }; then
        cp -a "$_p" "$PARC_JOURNAL/entries/$_n.data" || return 1
      fi
      _i=$((_i + 3))
    done
  fi
  # The type, then the completion marker, last: an entry is whole or ignored.
  _i=1
  while [ "$_i" -le "$#" ]; do
    eval "_n=\${$_i}"
    eval "_t=\$_jt$_n"
    echo "$_t" > "$PARC_JOURNAL/entries/$_n.type" && : > "$PARC_JOURNAL/entries/$_n.done" || return 1
    _i=$((_i + 3))
  done
}

# Whether a PATH of the N WHAT PATH triples lies below P.
parc_journal_above() { # P N WHAT PATH...
  _a=$1
  shift
  while [ "$#" -ge 3 ]; do
    case $3 in "$_a"/*) return 0 ;; esac
    shift 3
  done
  return 1
}

# Each line of stdin into entries/N.SUFFIX, for each N of NUMBERS in turn: as
# many lines as numbers, or it fails. Of sha256sum's lines, the hash.
parc_journal_spread() { # SUFFIX NUMBERS
  for _n in $2; do
    IFS= read -r _l || return 1
    if [ "$1" = sha256 ]; then _l=${_l%% *}; fi
    printf '%s\n' "$_l" > "$PARC_JOURNAL/entries/$_n.$1" || return 1
  done
  ! IFS= read -r _l
}

# Set _pg to the process group of PID, from /proc (a builtin read); fails,
# leaving _pg as it was, when PID is gone.
parc_pgid() { # PID
  read -r _ _ _ _ _pg _ 2>/dev/null < "/proc/$1/stat"
}

# Record this exec's process group and work directory in the host lock (held
# by this run): a takeover of the lock, should this run be interrupted, stops
# what it left running before anyone restores the host, and removes the work
# directory the killed exec could not.
parc_lock_join() {
  _pg=$$
  parc_pgid $$
  [ ! -d /var/lib/parc/lock ] || printf '%s %s\n' "$_pg" "${PARC_DIR:-}" >> /var/lib/parc/lock/pgids
  # shellcheck disable=SC2034 # read by the apply script, which records it in its journal
  PARC_PGID=$_pg
}

# SIGTERM, then SIGKILL, every process group PGID that still has processes,
# and wait (bounded) until all are gone. Sets _stopped to the groups that had
# processes and _how to the last signal sent; fails if some never go.
parc_stop_groups() { # PGID...
  _stopped=; _how=
  for _g; do
    case $_g in ''|*[!0-9]*) continue ;; esac
    if [ "$_g" -gt 1 ] && kill -0 -"$_g" 2>/dev/null; then _stopped="$_stopped $_g"; fi
  done
  [ -n "$_stopped" ] || return 0
  for _how in TERM KILL; do
    for _g in $_stopped; do kill -"$_how" -"$_g" 2>/dev/null; done
    _w=0
    while [ "$_w" -lt 10 ]; do
      _alive=
      for _g in $_stopped; do kill -0 -"$_g" 2>/dev/null && _alive=1; done
      [ -n "$_alive" ] || return 0
      sleep 1
      _w=$((_w + 1))
    done
  done
  return 1
}

parc_journal_undo() { # N STEP SH: run SH on restore, if step STEP was reached
  printf '%s\n' "$2" > "$PARC_JOURNAL/entries/$1.step" &&
    printf '%s\n' "$3" > "$PARC_JOURNAL/entries/$1.undo" && : > "$PARC_JOURNAL/entries/$1.done"
}

# The entry numbers of journal J, once each, sorted (-r: newest first). The
# names are numbers parc chose, with a suffix (entries/N.path) or, in
# journals written before, a directory each (entries/N/).
parc_entry_numbers() { # J [-r]
  # shellcheck disable=SC2012 # see above
  ls "$1/entries" 2>/dev/null | sed -n 's/^\([0-9][0-9]*\).*/\1/p' | sort -u -n ${2:+"$2"}
}

# Set _e to what entry N of journal J's file names start with: entries/N.
# (or entries/N/ in a journal written before).
parc_entry() { # J N
  _e="$1/entries/$2."
  if [ -d "$1/entries/$2" ]; then _e="$1/entries/$2/"; fi
}

# Whether entry E (as parc_entry sets it) is whole: its completion marker, a
# known type and what that type needs. Sets _t to the type, _p to the path
# and _data to where its copy is (see parc_entry_data).
parc_entry_ok() { # E
  _t='' _p='' _data=''
  [ -f "${1}done" ] || return 1
  [ ! -f "${1}undo" ] || return 0
  [ -f "${1}path" ] && [ -f "${1}type" ] || return 1
  read -r _t < "${1}type" || return 1
  _p=$(cat "${1}path")
  case $_t in
    absent) ;;
    attrs) [ -f "${1}attrs" ] ;;
    file) parc_entry_data "$1" && [ -f "${1}attrs" ] && [ -f "${1}sha256" ] && [ -f "$_data" ] ;;
    link) parc_entry_data "$1" && [ -f "${1}attrs" ] && [ -L "$_data" ] ;;
    dir) parc_entry_data "$1" && [ -f "${1}attrs" ] && [ -d "$_data" ] ;;
    *) return 1 ;;
  esac
}

# Set _data to where entry E keeps its copy of its path _p: its own `data`
# (directories, links saved on their own, and every copy journals written
# before kept), else the journal's saved.tar, unpacked once, whole, into the
# journal's private `saved` (no path in it lies below one of its links).
parc_entry_data() { # E
  _data="${1}data"
  if [ -e "$_data" ] || [ -L "$_data" ]; then return 0; fi
  _jj=${1%/entries/*}
  if [ -f "$_jj/saved.tar" ] && [ ! -d "$_jj/saved" ]; then
    rm -rf "$_jj/saved.part" && mkdir -m 700 "$_jj/saved.part" &&
      tar -x -f "$_jj/saved.tar" -C "$_jj/saved.part" &&
      mv "$_jj/saved.part" "$_jj/saved" || return 1
  fi
  _data="$_jj/saved/${_p#/}"
}

# Decide the host's fate as WHO, unless someone did already. Exactly one of
# the controller's confirmation, the dead-man watchdog and the controller's
# on_failure decision (keep, rollback, fallback) wins: `ln -s` creates the link
# with its content in one step, and fails when it exists. So "confirmed" and
# "rolled back by the watchdog" can never both happen.
parc_decide() { # JOURNAL_DIR WHO
  ln -s "$2" "$1/fate" 2>/dev/null
}

# Wait while the watchdog that won the journal restores it (bounded; a
# watchdog that died midway, e.g. in a reboot, is not waited for).
parc_watchdog_wait() { # JOURNAL_DIR
  _w=0
  while [ "$(cat "$1/state" 2>/dev/null)" != rolled_back ] && [ "$_w" -lt 600 ]; do
    read -r _wp < "$1/watchdog.pid" 2>/dev/null && kill -0 "$_wp" 2>/dev/null || return 0
    sleep 1
    _w=$((_w + 1))
  done
}

# Restore every entry, newest first, then check the result against the
# journal. Prints "@@r restore" then bad=N lines for entries that do not match.
# An entry that is not whole is never acted on (only an `absent` entry, whole,
# removes a path: parc created it); a journal without its completion marker
# belongs to an apply that changed nothing, and nothing is restored.
#
# WHO decides the fate first (see parc_decide). The watchdog restores only if
# it won. Anyone else restores also after a confirmation or a `keep` (an
# operator's later `parc rollback`), but never alongside the watchdog: when
# the watchdog won, it waits for it and checks what it did.
parc_restore() { # JOURNAL_DIR WHO
  _j=$1
  if parc_decide "$_j" "$2"; then
    if [ "$2" = watchdog ]; then
      echo watchdog > "$_j/restored_by"
      # A window shorter than the apply: stop the apply before restoring
      # under it (its steps would otherwise go on changing the host).
      if [ "$(cat "$_j/state")" = applying ] && read -r _ag < "$_j/apply.pgid"; then
        parc_stop_groups "$_ag" || echo "the apply (process group $_ag) would not stop" >&2
      fi
    fi
  else
    _f=$(readlink "$_j/fate")
    if [ "$2" = watchdog ]; then echo "the host's fate was decided already ($_f): the watchdog stands down"; return 0; fi
    if [ "$_f" = watchdog ]; then
      parc_watchdog_wait "$_j"
      if [ "$(cat "$_j/state")" = rolled_back ]; then parc_restore_check "$_j"; return 0; fi
    fi
  fi
  # Temp files of a run that died before renaming them all.
  if [ -f "$_j/unstage" ]; then sh "$_j/unstage" || echo "could not remove staged temp files" >&2; fi
  if [ ! -f "$_j/complete" ]; then
    echo incomplete > "$_j/state"
    parc_restore_check "$_j"
    return 0
  fi
  echo rolling_back > "$_j/state"
  for _n in $(parc_entry_numbers "$_j" -r); do
    parc_entry "$_j" "$_n"
    parc_entry_ok "$_e" || continue
    if [ -f "${_e}user" ]; then parc_restore_as "$_n" "$_e" || echo "entry $_n: restore as its user failed" >&2; continue; fi
    if [ ! -f "${_e}undo" ] && parc_link_above "$_p"; then
      echo "entry $_n not restored: $_jl, a directory above $_p, is now a symbolic link its owner could have made: restoring through it would act where it points" >&2
      continue
    fi
    if [ -f "${_e}undo" ]; then ! parc_reached "$_j" "$_e" || parc_undo "${_e}undo"; continue; fi
    case $_t in
      absent) rm -rf "$_p" ;;
      attrs) ;;
      *)
        _tmp="$(dirname "$_p")/.parc-restore.$$"
        rm -rf "$_tmp"
        mkdir -p "$(dirname "$_p")"
        cp -a "$_data" "$_tmp"
        if [ -d "$_p" ] && [ ! -L "$_p" ]; then rm -rf "$_p"; fi
        if [ -L "$_p" ]; then rm -f "$_p"; fi
        mv -f "$_tmp" "$_p"
        ;;
    esac
    # Never through a link: chmod follows one (a link's own mode means
    # nothing on Linux, and its 0777 would land on what it points to).
    if [ "$_t" != absent ]; then
      read -r _am _aog < "${_e}attrs"
      if [ ! -L "$_p" ]; then chmod "$_am" "$_p"; fi
      chown -h "$_aog" "$_p"
    fi
  done
  parc_sync
  if [ -f "$_j/post-restore" ]; then parc_undo "$_j/post-restore" sourced; fi
  echo rolled_back > "$_j/state"
  parc_restore_check "$_j"
}

# Whether the apply reached the step of undo entry E of journal J: unless
# its apply stopped at a failed step, and wrote in J's `reached` the last
# step that could have changed the host (lib.sh's parc_step_done), every
# step may have run. An entry written before steps were numbered has no
# `step`: it may have run too.
parc_reached() { # J E
  [ -f "$1/reached" ] && [ -f "${2}step" ] || return 0
  read -r _rr < "$1/reached" && read -r _rs < "${2}step" || return 0
  [ "$_rs" -le "$_rr" ]
}

# Run SH (an undo or the post-restore, as the profile wrote them) with what
# it prints kept beside it, in SH.out: it may show a secret SH was rendered
# with, or text a local user wrote, and the restore's stdout is its records.
# Its exit status goes to SH.status, which the restore check reads. The
# post-restore (`sourced`) is a line `( COMMAND ) || parc_pr=$?` a handler:
# every one runs, and its status is the last failure's.
parc_undo() { # SH [sourced]
  if [ -n "${2:-}" ]; then
    # shellcheck disable=SC2016 # expanded by that sh
    sh -c '. "$1"; exit "${parc_pr:-0}"' parc "$1"
  else
    sh "$1"
  fi < /dev/null > "$1.out" 2>&1
  echo "$?" > "$1.status"
}

# A failed parc_undo (SH.status not 0) as a problem of the restore, named
# KEY, for WHAT.
parc_undo_check() { # SH KEY WHAT
  [ -f "$1.status" ] || return 0
  read -r _us < "$1.status" || _us='?'
  [ "$_us" = 0 ] || parc_kv "$2" "$3 failed (exit $_us): what it printed is on the host, in $1.out"
}

# Restore entry N (E: parc_entry's; _t, _p and _data: parc_entry_ok's) of a
# path in a directory its user owns (E's `user`), as that user (parc_as):
# whatever the user swapped since, the restore acts only where the user may.
# Root gives back only an owner or group the user cannot (parc_chown_in).
parc_restore_as() { # N E
  read -r _ru < "${2}user" || return 1
  # The mode, then owner:group (names may hold spaces, never a colon).
  _am='' _aog=''
  [ ! -f "${2}attrs" ] || read -r _am _aog < "${2}attrs"
  # Nothing the user's processes print reaches the restore's records.
  case $_t in
    absent) parc_as "$_ru" rm -rf -- "$_p" < /dev/null > /dev/null; return ;;
    attrs) [ -L "$_p" ] || parc_as "$_ru" chmod -- "$_am" "$_p" < /dev/null > /dev/null ;;
    file) parc_as "$_ru" sh -c "$PARC_AS_PUT" parc "$_p" "$_am" '' < "$_data" > /dev/null ;;
    link) _rt=$(readlink -- "$_data") && parc_as "$_ru" ln -sfn -- "$_rt" "$_p" < /dev/null > /dev/null ;;
    *) echo "cannot restore a $_t as $_ru" >&2; return 1 ;;
  esac || return 1
  [ "$(stat -c '%U:%G' -- "$_p" 2>/dev/null)" != "$_aog" ] || return 0
  # The user's own file back in its group, as the user; anything else
  # given back by root (never a file given to the user by root).
  if [ "${_aog%:*}" = "$_ru" ]; then parc_as "$_ru" chgrp -h -- "${_aog##*:}" "$_p" < /dev/null > /dev/null
  else parc_chown_in "$_aog" "$_p"; fi
}

# Whether a directory above PATH is a symbolic link someone other than root
# owns (_jl: the lowest one): made since the apply, by a user who owns a
# directory on the way, to send the restore's rm, cp and mv elsewhere. A
# root's link (/lib on merged /usr) is the admin's. Shell tests, and a stat
# only for a link found.
parc_link_above() { # PATH
  _jl=${1%/*}
  while [ -n "$_jl" ]; do
    if [ -L "$_jl" ] && [ "$(stat -c %u -- "$_jl" 2>/dev/null)" != 0 ]; then return 0; fi
    _jl=${_jl%/*}
  done
  return 1
}

parc_restore_check() { # JOURNAL_DIR
  echo "@@r restore"
  if [ ! -f "$1/complete" ]; then
    echo "incomplete=the journal of this run was never completed: its apply stopped before its first change"
    echo "checked=done"
    return 0
  fi
  for _n in $(parc_entry_numbers "$1"); do
    parc_entry "$1" "$_n"
    if ! parc_entry_ok "$_e"; then
      _p=$(cat "${_e}path" 2>/dev/null)
      parc_kv "bad_$_n" "not restored: journal entry $_n is incomplete or unreadable, so parc did not act on it: ${_p:-its path is unknown} (check it by hand)"
      continue
    fi
    if [ -f "${_e}undo" ]; then parc_undo_check "${_e}undo" "bad_$_n" "the undo command of entry $_n"; continue; fi
    if parc_link_above "$_p"; then
      if [ -f "${_e}user" ]; then
        parc_kv "bad_$_n" "$_jl, a directory above $_p, is now a symbolic link someone other than root made: restored as the user who owns it, so only where that user may write (check $_p by hand)"
      else
        parc_kv "bad_$_n" "not restored: $_jl, a directory above $_p, is now a symbolic link someone other than root made (check $_p by hand)"
      fi
      continue
    fi
    case $_t in
      absent) if [ -e "$_p" ] || [ -L "$_p" ]; then parc_kv "bad_$_n" "still present: $_p"; fi; continue ;;
      file) [ "$(parc_sha "$_p" 2>/dev/null)" = "$(cat "${_e}sha256")" ] || parc_kv "bad_$_n" "content differs: $_p" ;;
      link) [ "$(readlink "$_p")" = "$(readlink "$_data")" ] || parc_kv "bad_$_n" "link target differs: $_p"
        if [ -f "${_e}target_attrs" ] && [ "$(stat -L -c "$PARC_ATTRS_FORMAT" "$_p" 2>/dev/null)" != "$(cat "${_e}target_attrs")" ]; then
          parc_kv "bad_$_n" "mode or owner of what the link points to changed: $_p"
        fi ;;
      *) [ -e "$_p" ] || parc_kv "bad_$_n" "missing: $_p" ;;
    esac
    # The path's own attributes (stat without -L: a link is not followed).
    [ "$(stat -c "$PARC_ATTRS_FORMAT" "$_p" 2>/dev/null)" = "$(cat "${_e}attrs")" ] || parc_kv "bad_$_n" "mode or owner differs: $_p"
  done
  parc_undo_check "$1/post-restore" bad_post "what the handlers run after a restore"
  echo "checked=done"
}

# Keep the newest KEEP journals (run ids sort by time; the shell's glob sorts
# them under LC_ALL=C, without an ls, sort and grep to start).
parc_journal_prune() { # KEEP
  _keep=$1
  set -- /var/lib/parc/journal/*
  [ -e "$1" ] || return 0
  _drop=$(($# - _keep))
  while [ "$_drop" -gt 0 ]; do
    rm -rf "$1"
    shift
    _drop=$((_drop - 1))
  done
}

# Dead-man switch: unless the controller decides the host's fate (a
# confirmation, or its on_failure) within SECONDS, restore the journal.
# Detached (own session, no terminal, no inherited pipes) so it outlives the
# SSH session that armed it. Under systemd, detaching is not enough: the
# process would stay in the session's cgroup (ssh.service's, or a logind
# session scope), which a stop of ssh.service or the end of the session may
# kill as a whole; a transient unit of its own survives both.
# shellcheck disable=SC2016 # the lines of watchdog.sh, expanded when it runs
parc_watchdog_arm() { # SECONDS
  printf '%s\n' 'J=$(cd "$(dirname "$0")" && pwd)' \
    'echo $$ > "$J/watchdog.pid"' \
    "sleep $1" \
    'sh "$J/restore.sh" watchdog > "$J/watchdog.log" 2>&1' \
    > "$PARC_JOURNAL/watchdog.sh"
  if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1 &&
    systemd-run --quiet --collect --unit="parc-watchdog-${PARC_JOURNAL##*/}" \
      sh "$PARC_JOURNAL/watchdog.sh" </dev/null >/dev/null 2>&1; then
    :
  elif command -v setsid >/dev/null 2>&1; then
    setsid sh "$PARC_JOURNAL/watchdog.sh" </dev/null >/dev/null 2>&1 &
  else
    nohup sh "$PARC_JOURNAL/watchdog.sh" </dev/null >/dev/null 2>&1 &
  fi
}

# Decide the fate as WHO (the controller's on_failure) and say who decided:
# "@@r fate" with fate=; when the watchdog had won, what it restored as well.
parc_journal_decide() { # JOURNAL_DIR WHO
  echo "@@r fate"
  if [ ! -d "$1" ]; then echo "fate="; return 0; fi
  parc_decide "$1" "$2"
  _f=$(readlink "$1/fate")
  parc_kv fate "$_f"
  if [ "$_f" = watchdog ]; then parc_watchdog_wait "$1"; parc_kv state "$(cat "$1/state")"; parc_restore_check "$1"; fi
}

# A reboot on purpose (engine::apply::reboot). Before it: the fate is claimed
# as `rebooting`, so a watchdog that fires while the host goes down stands
# down (parc_decide fails) instead of restoring a host that is only
# rebooting; if the watchdog decided first, the host is not rebooted
# (refused=). The host lock stays, as this run's, across the reboot (other
# operators see it stale), but without the pid and process groups recorded
# before it: after the reboot those numbers name other processes, which the
# takeover of the lock must not kill. Prints "@@r reboot" with boot=.
parc_reboot_claim() { # JOURNAL_DIR RUN_ID
  echo "@@r reboot"
  # Without it parc could not tell the new boot: nothing is claimed.
  _boot=$(parc_boot_id) && [ -n "$_boot" ] || return 0
  if [ -d "$1" ] && ! parc_decide "$1" rebooting; then parc_kv refused "$(readlink "$1/fate")"; return 0; fi
  if [ "$(cat /var/lib/parc/lock/run 2>/dev/null)" = "$2" ]; then
    rm -f /var/lib/parc/lock/pid && : > /var/lib/parc/lock/pgids
  fi
  parc_kv boot "$_boot"
}

# After it, once the boot differs from BOOT: the claim is withdrawn (the fate
# is undecided again, for the confirmation or on_failure to decide) and a new
# watchdog armed for SECONDS (0: none). Prints "@@r boot" with boot= and,
# once back, fate= (who decided meanwhile, empty if no one).
parc_reboot_back() { # JOURNAL_DIR BOOT SECONDS
  echo "@@r boot"
  _now=$(parc_boot_id)
  parc_kv boot "$_now"
  [ "$_now" != "$2" ] && [ -d "$1" ] || return 0
  if [ "$(readlink "$1/fate")" = rebooting ]; then rm -f "$1/fate"; fi
  _f=$(readlink "$1/fate")
  parc_kv fate "$_f"
  if [ -z "$_f" ] && [ "$3" -gt 0 ]; then PARC_JOURNAL=$1 parc_watchdog_arm "$3"; fi
}

# When PID 1 started: the system's boot time plus PID 1's start time (clock
# ticks after it). A container's PID 1 restarts without the machine's boot
# time changing, a machine's PID 1 starts at the same tick of every boot; the
# pair tells a new boot in both. (Not /proc/sys/kernel/random/boot_id:
# containers share the machine's.)
parc_boot_id() {
  _b=
  while read -r _k _v; do [ "$_k" != btime ] || _b=$_v; done < /proc/stat
  _s=$(cat /proc/1/stat) || return 1
  # Fields after PID 1's name (which may hold spaces): state is field 3.
  # shellcheck disable=SC2086 # split into fields on purpose
  set -- ${_s##*) }
  echo "$_b.${20}"
}
