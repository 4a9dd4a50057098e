#!/bin/sh
# readme-claims.sh REPORT README — puts REPORT's claims table into README
# between the lines "<!-- claims: ..." and "<!-- end of claims -->",
# replacing what was there (README is rewritten in place).
set -eu
report=$1 readme=$2
grep -q '^<!-- claims:' "$readme" && grep -q '^<!-- end of claims -->' "$readme" ||
    { echo "readme-claims.sh: $readme has no claims markers" >&2; exit 1; }
table=$(mktemp)
trap 'rm -f "$table" "$table.out"' EXIT
sed -n "/^## The seed documents' claims/,\$p" "$report" | grep '^|' >"$table"
[ -s "$table" ] || { echo "readme-claims.sh: $report has no claims table" >&2; exit 1; }
awk -v t="$table" '
    /^<!-- claims:/ { print; while ((getline l < t) > 0) print l; skip = 1; next }
    /^<!-- end of claims -->/ { skip = 0 }
    !skip' "$readme" >"$table.out"
cat "$table.out" >"$readme"
