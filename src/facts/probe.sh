# parc facts probe. Runs under any POSIX sh, including busybox ash with only
# busybox applets (which lack tr and getconf), so it leans on /proc, /sys, sed and awk.
# Output is one "key=value" per line; every value is squeezed onto one line by
# `emit` or by awk, so nothing read from the host can forge or break a line.
# Parsed by src/facts/parse.rs: keep both sides in step.
export LC_ALL=C

# Print the prefix, then stdin joined into one line without control characters.
emit() {
    awk -v p="$1" '{ gsub(/[[:cntrl:]]/, " "); s = s (NR > 1 ? " " : "") $0 }
        END { gsub(/^ +| +$/, "", s); print p s }'
}

echo parc-facts=1

{ cat /proc/sys/kernel/hostname || hostname || uname -n; } 2>/dev/null | emit hostname=

f=/etc/os-release
[ -r "$f" ] || f=/usr/lib/os-release
awk '/^(ID|VERSION_ID|PRETTY_NAME|ID_LIKE)=/ {
    k = $0; sub(/=.*/, "", k); v = $0; sub(/^[^=]*=/, "", v); gsub(/[[:cntrl:]]/, " ", v)
    print "os_" tolower(k) "=" v }' "$f" 2>/dev/null

uname -r 2>/dev/null | emit kernel=
uname -m 2>/dev/null | emit arch=

awk '{ v = $0; sub(/^[^:]*:[ \t]*/, "", v); gsub(/[[:cntrl:]]/, " ", v) }
    /^model name[ \t]*:/ && m == "" { m = v }
    /^Hardware[ \t]*:/ && h == "" { h = v }
    /^Processor[ \t]*:/ && p == "" { p = v }
    END { if (m == "") m = h; if (m == "") m = p; print "cpu_model=" m }' /proc/cpuinfo 2>/dev/null
n=$(grep -c '^processor' /proc/cpuinfo 2>/dev/null)
[ "${n:-0}" -gt 0 ] 2>/dev/null || n=$(nproc 2>/dev/null)
echo "cpu_count=$n"

# Kernels before 3.14 lack MemAvailable; MemFree is the closest they offer.
awk '/^MemTotal:/ { t = $2 } /^MemAvailable:/ { a = $2 } /^MemFree:/ { f = $2 }
    END { if (a == "") a = f; print "mem_total_kb=" t; print "mem_available_kb=" a }' /proc/meminfo 2>/dev/null

# disk=NAME SECTORS(512 bytes) ROTATIONAL MODEL...  (the model may contain spaces, so it is last)
for d in /sys/block/*; do
    [ -e "$d" ] || continue
    name=${d##*/}
    case $name in loop* | ram* | zram*) continue ;; esac
    size=$(cat "$d/size" 2>/dev/null)
    rot=$(cat "$d/queue/rotational" 2>/dev/null)
    { cat "$d/device/model" || cat "$d/device/name"; } 2>/dev/null | emit "disk=$name ${size:-0} ${rot:-0} "
done

# iface=NAME MAC; kernel interface names never contain whitespace.
for d in /sys/class/net/*; do
    [ -e "$d" ] || continue
    name=${d##*/}
    [ "$name" = lo ] && continue
    cat "$d/address" 2>/dev/null | emit "iface=$name "
done
awk '$2 == "00000000" && $8 == "00000000" { print "default_route=" $1; exit }' /proc/net/route 2>/dev/null

# IPv4 has no per-interface prefix in /proc, so it needs a tool: addr=NAME ADDRESS[/PREFIX|/NETMASK]
if command -v ip >/dev/null 2>&1; then
    ip -o -f inet addr show 2>/dev/null | awk '{ n = $2; sub(/@.*/, "", n); sub(/:$/, "", n)
        if (n != "lo" && $3 == "inet") print "addr=" n " " $4 }'
elif command -v ifconfig >/dev/null 2>&1; then
    # Both the net-tools ("inet 10.0.0.5  netmask ...") and the busybox/old
    # ("inet addr:10.0.0.5  Mask:...") layouts; "eth0:1" aliases belong to eth0.
    ifconfig -a 2>/dev/null | awk '/^[^ \t]/ { n = $1; sub(/:.*/, "", n) }
        $1 == "inet" { a = $2; sub(/^addr:/, "", a); m = ""
            for (i = 3; i <= NF; i++) {
                if ($i ~ /^Mask:/) { m = $i; sub(/^Mask:/, "", m) }
                else if ($i == "netmask") m = $(i + 1)
            }
            if (n != "lo") print "addr=" n " " a (m == "" ? "" : "/" m) }'
fi
# inet6=NAME HEX_ADDRESS HEX_PREFIX_LENGTH, straight from the kernel's table.
awk '$6 != "lo" && NF >= 6 { print "inet6=" $6 " " $1 " " $3 }' /proc/net/if_inet6 2>/dev/null

# DMI is absent on most ARM boards; their device tree carries model and serial instead.
if [ -e /sys/class/dmi/id ]; then
    cat /sys/class/dmi/id/sys_vendor 2>/dev/null | emit dmi_vendor=
    cat /sys/class/dmi/id/product_name 2>/dev/null | emit dmi_product=
    cat /sys/class/dmi/id/product_serial 2>/dev/null | emit dmi_serial=
else
    cat /sys/firmware/devicetree/base/model 2>/dev/null | emit dmi_product=
    cat /sys/firmware/devicetree/base/serial-number 2>/dev/null | emit dmi_serial=
fi

awk '{ print "uptime=" $1; exit }' /proc/uptime 2>/dev/null
