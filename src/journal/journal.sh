# parc journal: target-side save and restore. Included in apply scripts and
# written beside each journal as restore.sh, so a host can be restored from its
# journal alone: by `parc rollback`, after a controller crash, or by the
# dead-man watchdog when the controller never confirms.
#
# Layout of a journal (directory mode 0700):
#   state               applying | applied | confirmed | rolled_back
#   entries/N/path      the path, byte for byte
#   entries/N/type      absent | file | link | dir | attrs
#   entries/N/data      a copy (cp -a) of what stood there (file, link, dir)
#   entries/N/attrs     "mode owner group" (every type but absent)
#   entries/N/sha256    content hash of a regular file
#   entries/N/undo      sh to run on restore (command resources' `undo:`)
#   post-restore        sh run after a restore (handlers that ran, so services
#                       reload the restored configuration)
#   unstage             sh removing the run's staged temp files (first thing a
#                       restore does)

parc_journal_save() { # N PATH [attrs]: record PATH as it is now
  _e="$PARC_JOURNAL/entries/$1"
  [ -d "$_e" ] || mkdir -p "$_e"
  printf '%s' "$2" > "$_e/path"
  if [ -L "$2" ] || [ -e "$2" ]; then
    stat -c '%a %U %G' "$2" > "$_e/attrs"
  fi
  if [ "$3" = attrs ] && [ -e "$2" ]; then
    echo attrs > "$_e/type"
  elif [ -L "$2" ]; then
    echo link > "$_e/type"; cp -a "$2" "$_e/data"
  elif [ -d "$2" ]; then
    echo dir > "$_e/type"; cp -a "$2" "$_e/data" && parc_sync_tree "$_e/data"
  elif [ -f "$2" ]; then
    echo file > "$_e/type"; cp -a "$2" "$_e/data"; parc_sha "$2" > "$_e/sha256"
  elif [ -e "$2" ]; then
    echo "cannot journal $2: not a file, directory or symlink" >&2; return 1
  else
    echo absent > "$_e/type"
  fi
}

parc_journal_undo() { # N SH: run SH on restore
  [ -d "$PARC_JOURNAL/entries/$1" ] || mkdir -p "$PARC_JOURNAL/entries/$1"
  printf '%s\n' "$2" > "$PARC_JOURNAL/entries/$1/undo"
}

# Restore every entry, newest first, then check the result against the
# journal. Prints "@@r restore" then bad=N lines for entries that do not match.
parc_restore() { # JOURNAL_DIR
  _j=$1
  echo rolling_back > "$_j/state"
  # Temp files of a run that died before renaming them all.
  if [ -f "$_j/unstage" ]; then sh "$_j/unstage" || echo "could not remove staged temp files" >&2; fi
  for _n in $(ls "$_j/entries" 2>/dev/null | sort -n -r); do
    _e="$_j/entries/$_n"
    if [ -f "$_e/undo" ]; then sh "$_e/undo" || echo "undo of entry $_n failed" >&2; continue; fi
    _p=$(cat "$_e/path")
    _t=$(cat "$_e/type")
    case $_t in
      absent) rm -rf "$_p" ;;
      attrs) ;;
      *)
        _tmp="$(dirname "$_p")/.parc-restore.$$"
        rm -rf "$_tmp"
        mkdir -p "$(dirname "$_p")"
        cp -a "$_e/data" "$_tmp"
        if [ -d "$_p" ] && [ ! -L "$_p" ]; then rm -rf "$_p"; fi
        if [ -L "$_p" ]; then rm -f "$_p"; fi
        mv -f "$_tmp" "$_p"
        ;;
    esac
    if [ -f "$_e/attrs" ] && [ "$_t" != absent ]; then
      set -- $(cat "$_e/attrs")
      chmod "$1" "$_p" 2>/dev/null
      chown -h "$2:$3" "$_p"
    fi
  done
  parc_sync
  if [ -f "$_j/post-restore" ]; then sh "$_j/post-restore" || echo "post-restore step failed" >&2; fi
  echo rolled_back > "$_j/state"
  parc_restore_check "$_j"
}

parc_restore_check() { # JOURNAL_DIR
  echo "@@r restore"
  for _n in $(ls "$1/entries" 2>/dev/null | sort -n); do
    _e="$1/entries/$_n"
    [ -f "$_e/path" ] || continue
    _p=$(cat "$_e/path")
    _t=$(cat "$_e/type")
    case $_t in
      absent) if [ -e "$_p" ] || [ -L "$_p" ]; then echo "bad_$_n=still present: $_p"; fi; continue ;;
      file) [ "$(parc_sha "$_p" 2>/dev/null)" = "$(cat "$_e/sha256")" ] || echo "bad_$_n=content differs: $_p" ;;
      link) [ "$(readlink "$_p")" = "$(readlink "$_e/data")" ] || echo "bad_$_n=link target differs: $_p" ;;
      *) [ -e "$_p" ] || echo "bad_$_n=missing: $_p" ;;
    esac
    [ "$(stat -c '%a %U %G' "$_p" 2>/dev/null)" = "$(cat "$_e/attrs")" ] || echo "bad_$_n=mode or owner differs: $_p"
  done
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

# Dead-man switch: unless the controller marks the journal `confirmed` within
# SECONDS, restore it. Detached (own session, no terminal, no inherited pipes)
# so it outlives the SSH session that armed it. Under systemd, detaching is not
# enough: the process would stay in the session's cgroup (ssh.service's, or a
# logind session scope), which a stop of ssh.service or the end of the session
# may kill as a whole; a transient unit of its own survives both.
parc_watchdog_arm() { # SECONDS
  printf '%s\n' "sleep $1" \
    'J=$(cd "$(dirname "$0")" && pwd)' \
    'case $(cat "$J/state") in applying|applied) echo watchdog > "$J/restored_by"; sh "$J/restore.sh" > "$J/watchdog.log" 2>&1 ;; esac' \
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
