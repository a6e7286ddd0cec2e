# parc verification helpers, appended after resources/lib.sh. Every test prints
# one record: "@@r ID" first (pv_start), "end=yes" last (pv_end), so a record
# without its end tells the controller the script died inside that test.
# Fragments never exit and never read stdin; their variables start with pv_.

pv_start() { echo "@@r $1"; }
pv_end() { echo "end=yes"; }

# Copy at most MAX + 1 bytes of PATH to FILE, a file captured for the
# controller (Script::capture): copied first because /proc files report no
# size and change between two reads. Absent PATH: no copy, no blob.
pv_copy() { # PATH FILE MAX
  if [ -r "$1" ] && [ ! -d "$1" ]; then head -c "$(($3 + 1))" "$1" > "$2" 2>/dev/null; fi
}

# The lines of PATH, a small file (a /proc/sys value), to FILE as pv_copy
# does, with shell builtins: a process a parameter was most of what a
# hardening profile's tests cost. The capture's bound still applies.
pv_copy_small() { # PATH FILE
  [ -r "$1" ] && [ ! -d "$1" ] || return 0
  : > "$2" || return 0
  while IFS= read -r pv_l || [ -n "$pv_l" ]; do printf '%s\n' "$pv_l" >> "$2"; done < "$1"
}

pv_have() { command -v "$1" >/dev/null 2>&1; }
# Run COMMAND under `timeout SECS` where the host has it, else as it is.
pv_limited() { # SECS COMMAND...
  if pv_have timeout; then timeout "$@"; else shift; "$@"; fi
}

# The first line of VALUE (a tool's output), as parc_kv prints it under KEY;
# nothing when it is empty.
pv_kv_line() { # KEY VALUE
  [ -z "$2" ] || parc_kv "$1" "${2%%"$PARC_NL"*}"
}

# found=yes and f3=, f4=, ... (the colon-separated fields from the third) of
# ENTRY, an account database line (parc_getent_next: through getent, so LDAP
# and SSSD accounts count, else /etc). Values go through parc_kv: a local
# user's comment field cannot add a field or a record.
pv_entry() { # ENTRY
  case $1 in ''|:*) return 0 ;; esac
  echo found=yes
  pv_i=0 pv_ifs=$IFS
  set -f; IFS=:
  # shellcheck disable=SC2086 # split on colons, globbing off
  set -- $1
  IFS=$pv_ifs; set +f
  for pv_f; do pv_i=$((pv_i + 1)); [ "$pv_i" -lt 3 ] || parc_kv "f$pv_i" "$pv_f"; done
}
