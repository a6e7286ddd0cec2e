# parc verification helpers, appended after resources/lib.sh. Every test prints
# one record: "@@r ID" first (pv_start), "end=yes" last (pv_end), so a record
# without its end tells the controller the script died inside that test.
# Fragments never exit and never read stdin; their variables start with pv_.

pv_start() { echo "@@r $1"; }
pv_end() { echo "end=yes"; }

# Emit at most MAX bytes of PATH as blob KEY, plus one byte more when PATH is
# longer so the controller knows it was cut. The bytes are copied first: /proc
# files report no size and change between two reads. Absent PATH: no blob.
pv_blob() {
  if [ -r "$2" ] && [ ! -d "$2" ]; then
    head -c "$(($3 + 1))" "$2" > "$PARC_DIR/pv_copy" 2>/dev/null
    parc_blob "$1" "$PARC_DIR/pv_copy"
    rm -f "$PARC_DIR/pv_copy"
  fi
}

pv_have() { command -v "$1" >/dev/null 2>&1; }
