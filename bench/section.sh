#!/bin/sh
# section.sh NAME REPORT — puts REPORT (markdown starting "## NAME") into
# bench/results.md in place of the old "## NAME" section, or appends it,
# keeping every other section.
set -eu
name=$1 report=$2
results=$(cd "$(dirname "$0")" && pwd)/results.md
[ -f "$results" ] || : >"$results"
# the header names the machine every section was measured on
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
flags=$(sed -n 's/^flags[[:space:]]*: //p' /proc/cpuinfo | head -1 | tr ' ' '\n' |
        grep -E '^(sse4_2|avx|avx2|fma|f16c|bmi2|avx512[a-z_]*|avx_vnni)$' | tr '\n' ' ')
{
    echo "# bitforge benchmarks"
    echo
    echo "Written by \`make bench\`; each section by the benchmark it names."
    echo "Machine: $(nproc) cores, $cpu; SIMD flags: ${flags% }; $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)."
    echo
    awk -v new="$report" -v head="## $name" '
        function put(  line) { while ((getline line <new) > 0) print line; done = 1 }
        /^## / { started = 1; skip = ($0 == head); if (skip) put() }
        started && !skip
        END { if (!done) put() }' "$results"
} >"$results.tmp"
mv "$results.tmp" "$results"
