# parc facts probe. Runs under any POSIX sh, including busybox ash with only
# busybox applets (which lack tr and getconf), so it leans on /proc, /sys and awk.
# Output is one "key=value" per line; every value is squeezed onto one line by
# awk, so nothing read from the host can forge or break a line.
# Parsed by src/facts/parse.rs: keep both sides in step.
#
# Every file is read by ONE awk, which prints all lines at its end in a fixed
# order (interfaces before their addresses): starting a process costs more than
# reading a /proc file, and this probe runs on every host of every apply.
export LC_ALL=C

echo parc-facts=1

# Single-value files, as "KEY<tab>FILE" lines, in output order; awk prints
# KEY=VALUE for each, VALUE empty when the file is missing or unreadable.
tab='	'
values=
files=
value() { values="$values$1$tab$2
"; files="$files $2"; }

if [ -r /proc/sys/kernel/hostname ]; then value hostname= /proc/sys/kernel/hostname
else h=$({ hostname || uname -n; } 2>/dev/null); fi
value kernel= /proc/sys/kernel/osrelease

# disk=NAME SECTORS(512 bytes) ROTATIONAL MODEL...  (the model may contain spaces, so it is last)
for d in /sys/block/*; do
    [ -e "$d" ] || continue
    name=${d##*/}
    case $name in loop* | ram* | zram*) continue ;; esac
    model=$d/device/model
    [ -r "$model" ] || model=$d/device/name
    value "disk=$name " "$d/size $d/queue/rotational $model"
done

# iface=NAME MAC; kernel interface names never contain whitespace.
for d in /sys/class/net/*; do
    [ -e "$d" ] || continue
    name=${d##*/}
    [ "$name" = lo ] && continue
    value "iface=$name " "$d/address"
done

# DMI is absent on most ARM boards; their device tree carries model and serial instead.
if [ -e /sys/class/dmi/id ]; then
    value dmi_vendor= /sys/class/dmi/id/sys_vendor
    value dmi_product= /sys/class/dmi/id/product_name
    value dmi_serial= /sys/class/dmi/id/product_serial
    value bios_vendor= /sys/class/dmi/id/bios_vendor
    value bios_version= /sys/class/dmi/id/bios_version
    value bios_date= /sys/class/dmi/id/bios_date
else
    value dmi_product= /sys/firmware/devicetree/base/model
    value dmi_serial= /sys/firmware/devicetree/base/serial-number
fi

# The installation's identity (systemd, dbus): what keeps an asset register
# entry the same machine across renames.
if [ -r /etc/machine-id ]; then value machine_id= /etc/machine-id
else value machine_id= /var/lib/dbus/machine-id; fi

# The machine type, from /proc when the kernel has it (one process less).
arch=
if [ -r /proc/sys/kernel/arch ]; then read -r arch < /proc/sys/kernel/arch; fi
[ -n "$arch" ] || arch=$(uname -m 2>/dev/null)

f=/etc/os-release
[ -r "$f" ] || f=/usr/lib/os-release

# The files awk reads: only readable ones (a missing one would stop it).
# Sysfs paths have no spaces: $files splits into them.
set --
# shellcheck disable=SC2086
for x in "$f" /proc/cpuinfo /proc/meminfo /proc/net/route /proc/net/if_inet6 /proc/uptime $files; do
    [ -r "$x" ] && [ ! -d "$x" ] && set -- "$@" "$x"
done

# IPv4 has no per-interface prefix in /proc, so it needs a tool, read on
# stdin. The tool is a plain command on the pipe's left, which the shell
# runs without a subshell around it: two processes in all.
if command -v ip >/dev/null 2>&1; then tool=ip; list='ip -o -f inet addr show'
elif command -v ifconfig >/dev/null 2>&1; then tool=ifconfig; list='ifconfig -a'
else tool=none; list=:; fi

# shellcheck disable=SC2086
$list 2>/dev/null | PARC_VALUES=$values PARC_HOST=${h:-} PARC_ARCH=$arch awk -v osfile="$f" -v tool="$tool" '
function squeeze(s) { gsub(/[[:cntrl:]]/, " ", s); gsub(/^ +| +$/, "", s); return s }
BEGIN {
    host = ENVIRON["PARC_HOST"]; arch = ENVIRON["PARC_ARCH"]
    n = split(ENVIRON["PARC_VALUES"], lines, "\n")
    for (i = 1; i <= n; i++) {
        if (lines[i] == "") continue
        t = index(lines[i], "\t")
        key[++k] = substr(lines[i], 1, t - 1)
        file[k] = substr(lines[i], t + 1)
    }
}
(FILENAME == "-" || FILENAME == "") && tool == "ip" {
    nm = $2; sub(/@.*/, "", nm); sub(/:$/, "", nm)
    if (nm != "lo" && $3 == "inet") addr = addr "addr=" nm " " $4 "\n"
    next
}
# Both the net-tools ("inet 10.0.0.5  netmask ...") and the busybox/old
# ("inet addr:10.0.0.5  Mask:...") layouts; "eth0:1" aliases belong to eth0.
(FILENAME == "-" || FILENAME == "") && tool == "ifconfig" {
    if ($0 ~ /^[^ \t]/) { ifn = $1; sub(/:.*/, "", ifn) }
    if ($1 == "inet") {
        a = $2; sub(/^addr:/, "", a); m = ""
        for (i = 3; i <= NF; i++) {
            if ($i ~ /^Mask:/) { m = $i; sub(/^Mask:/, "", m) }
            else if ($i == "netmask") m = $(i + 1)
        }
        if (ifn != "lo") addr = addr "addr=" ifn " " a (m == "" ? "" : "/" m) "\n"
    }
    next
}
FILENAME == "-" || FILENAME == "" { next }
FILENAME == osfile {
    if ($0 ~ /^(ID|VERSION_ID|PRETTY_NAME|ID_LIKE)=/) {
        kk = $0; sub(/=.*/, "", kk); v = $0; sub(/^[^=]*=/, "", v); gsub(/[[:cntrl:]]/, " ", v)
        os = os "os_" tolower(kk) "=" v "\n"
    }
    next
}
FILENAME == "/proc/cpuinfo" {
    v = $0; sub(/^[^:]*:[ \t]*/, "", v); gsub(/[[:cntrl:]]/, " ", v)
    if ($0 ~ /^model name[ \t]*:/ && model == "") model = v
    if ($0 ~ /^Hardware[ \t]*:/ && hw == "") hw = v
    if ($0 ~ /^Processor[ \t]*:/ && proc == "") proc = v
    if ($0 ~ /^processor/) cpus++
    next
}
# Kernels before 3.14 lack MemAvailable; MemFree is the closest they offer.
FILENAME == "/proc/meminfo" {
    if ($1 == "MemTotal:") total = $2
    if ($1 == "MemAvailable:") avail = $2
    if ($1 == "MemFree:") free = $2
    next
}
FILENAME == "/proc/net/route" {
    if ($2 == "00000000" && $8 == "00000000" && route == "") route = $1
    next
}
# inet6=NAME HEX_ADDRESS HEX_PREFIX_LENGTH, straight from the kernel table.
FILENAME == "/proc/net/if_inet6" {
    if ($6 != "lo" && NF >= 6) inet6 = inet6 "inet6=" $6 " " $1 " " $3 "\n"
    next
}
FILENAME == "/proc/uptime" { if (up == "") up = $1; next }
{ val[FILENAME] = (FILENAME in val) ? val[FILENAME] " " $0 : $0 }
function one(f) { return squeeze(val[f]) }
END {
    for (i = 1; i <= k; i++) if (key[i] == "hostname=") print "hostname=" one(file[i])
    if (host != "") print "hostname=" squeeze(host)
    printf "%s", os
    for (i = 1; i <= k; i++) if (key[i] == "kernel=") print "kernel=" one(file[i])
    print "arch=" squeeze(arch)
    if (model == "") model = hw; if (model == "") model = proc
    print "cpu_model=" model
    if (cpus == 0) { "nproc 2>/dev/null" | getline cpus }
    print "cpu_count=" cpus
    if (avail == "") avail = free
    print "mem_total_kb=" total
    print "mem_available_kb=" avail
    for (i = 1; i <= k; i++) {
        if (key[i] !~ /^disk=/) continue
        split(file[i], parts, " ")
        size = one(parts[1]); rot = one(parts[2])
        print key[i] (size == "" ? 0 : size) " " (rot == "" ? 0 : rot) " " one(parts[3])
    }
    for (i = 1; i <= k; i++) if (key[i] ~ /^iface=/) print key[i] one(file[i])
    print "default_route=" route
    printf "%s%s", addr, inet6
    for (i = 1; i <= k; i++) if (key[i] ~ /^(dmi|bios)_/) print key[i] one(file[i])
    for (i = 1; i <= k; i++) if (key[i] == "machine_id=") print key[i] one(file[i])
    print "uptime=" up
}' "$@" -
st=$?

# Installed packages, only when parc asks (`parc facts --format glpi` starts the
# probe with parc_packages="MAX_ENTRIES MAX_BYTES MAX_FIELD"; the probe of every
# apply does not pay for it). One query lists them all, one awk frames them:
# "packages=dpkg|rpm|apk", then one "pkg=" line per package, fields separated
# by tabs, each field cut to MAX_FIELD bytes and with "%" and control
# characters (tab and newline included) as %XX, so a package database cannot
# forge a field, a line or another key. Entries past MAX_ENTRIES or MAX_BYTES,
# and lines that do not have the fields asked for, are counted in
# "packages_left_out=N" rather than printed.
# A query that fails ends with the line "<SOH>parc-query-failed", and the awk
# prints "packages_unreadable=1": an empty list would say nothing is installed.
# busybox has an `rpm` applet that cannot list: rpm counts only with its database.
# The probe may run inside the host lock's own shell (engine/lock.rs): it
# never exits, it ends with its status.
parc_probe_packages() {
if command -v dpkg-query >/dev/null 2>&1; then from=dpkg
elif command -v rpm >/dev/null 2>&1 && { [ -d /var/lib/rpm ] || [ -d /usr/lib/sysimage/rpm ]; }; then from=rpm
elif [ -r /lib/apk/db/installed ]; then from=apk
else return 0; fi
echo "packages=$from"
src=-
[ "$from" = apk ] && src=/lib/apk/db/installed
# pkg=NAME VERSION ARCH SIZE CATEGORY INSTALLED(epoch) PUBLISHER; SIZE in the
# database's unit (KiB for dpkg, bytes for rpm and apk).
{
    case $from in
        dpkg) dpkg-query -W -f '${Status}\t${Package}\t${Version}\t${Architecture}\t${Installed-Size}\t${Section}\n' ;;
        rpm) rpm -qa --queryformat '%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\t%{SIZE}\t%{GROUP}\t%{INSTALLTIME}\t%{VENDOR}\n' ;;
    esac 2>/dev/null || printf '\001parc-query-failed\n'
} | PARC_PACKAGES=$parc_packages awk -v from="$from" '
BEGIN {
    FS = "\t"
    split(ENVIRON["PARC_PACKAGES"], lim, " ")
    for (i = 1; i < 32; i++) ord[sprintf("%c", i)] = i
    ord["%"] = 37; ord[sprintf("%c", 127)] = 127
}
function enc(s,   o, i, c) {
    if (length(s) > lim[3] + 0) s = substr(s, 1, lim[3])
    if (s !~ /[%[:cntrl:]]/) return s
    o = ""
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        o = o ((c ~ /[%[:cntrl:]]/) ? sprintf("%%%02X", ord[c]) : c)
    }
    return o
}
function emit(name, version, arch, size, category, installed, publisher,   line) {
    if (name == "") { left++; return }
    line = "pkg=" enc(name) "\t" enc(version) "\t" enc(arch) "\t" enc(size) "\t" \
        enc(category) "\t" enc(installed) "\t" enc(publisher)
    if (count >= lim[1] + 0 || bytes + length(line) + 1 > lim[2] + 0) { left++; return }
    count++; bytes += length(line) + 1
    print line
}
$0 == sprintf("%c", 1) "parc-query-failed" { failed = 1; next }
from == "dpkg" {
    if (NF != 6) left++
    else if ($1 ~ / installed$/) emit($2, $3, $4, $5, $6, "", "")
    next
}
from == "rpm" {
    if (NF != 7) left++
    else emit($1, $2, $3, $4, $5, $6, ($7 == "(none)") ? "" : $7)
    next
}
# /lib/apk/db/installed: one "X:value" line per field, a blank line between packages.
function apk() {
    if (p != "" || v != "") emit(p, v, a, sz, "", "", "")
    p = v = a = sz = ""
}
from == "apk" && $0 == "" { apk(); next }
from == "apk" {
    val = substr($0, 3)
    if ($0 ~ /^P:/) p = val; else if ($0 ~ /^V:/) v = val
    else if ($0 ~ /^A:/) a = val; else if ($0 ~ /^I:/) sz = val
}
END {
    if (from == "apk") apk()
    print "packages_left_out=" left + 0
    if (failed) print "packages_unreadable=1"
}
' "$src"
}
parc_probe_end() { return "$1"; }
[ -z "${parc_packages:-}" ] || parc_probe_packages
parc_probe_end $st
