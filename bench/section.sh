#!/bin/sh
# section.sh NAME REPORT — puts REPORT (markdown starting "## NAME") into
# bench/results.md in place of the old "## NAME" section, or appends it,
# keeping every other section.
set -eu
name=$1 report=$2
results=$(cd "$(dirname "$0")" && pwd)/results.md
[ -f "$results" ] || : >"$results"
# each section names the machine it was measured on, as its first line:
# sections are rerun one at a time, and not always on the same machine
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
flags=$(sed -n 's/^flags[[:space:]]*: //p' /proc/cpuinfo | head -1 | tr ' ' '\n' |
        grep -E '^(sse4_2|avx|avx2|fma|f16c|bmi2|avx512[a-z_]*|avx_vnni)$' | tr '\n' ' ')
machine="Machine: $(nproc) cores, $cpu; SIMD flags: ${flags% }; $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)."
{
    echo "# bitforge benchmarks"
    echo
    echo "Written by \`make bench\`; each section by the benchmark it names, on the machine its first line names."
    echo
    awk -v new="$report" -v head="## $name" -v machine="$machine" '
        function put(  line, n) {
            while ((getline line <new) > 0) { print line; if (++n == 1) { print ""; print machine } }
            done = 1
        }
        /^## / { started = 1; skip = ($0 == head); if (skip) put(); else { print; look = 1; next } }
        # a section kept from before sections named their machine says so
        look && NF { if ($0 !~ /^Machine: /) { print "Machine: not recorded."; print "" } look = 0 }
        started && !skip
        END { if (!done) put() }' "$results"
} >"$results.tmp"
mv "$results.tmp" "$results"
