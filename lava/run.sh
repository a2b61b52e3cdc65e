#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The steps of lava/iommufd-conformance.yaml: install the tool's dependencies,
# run one profile's suites on the running kernel (optionally one shard), print
# the KTAP and report each result to LAVA with lava-test-case (pass, fail,
# skip); outside LAVA, where lava-test-case is missing, the results are only
# printed. The run's own outcome is the test case iommufd-conformance-run.
#   lava/run.sh PROFILE [K/N]
set -u
profile=${1:-mock}
shard=${2:-}
cd "$(dirname "$(readlink -f "$0")")/.." || exit 1

report() { # NAME RESULT
	if command -v lava-test-case > /dev/null; then
		lava-test-case "$1" --result "$2"
	else
		echo "$1: $2"
	fi
}

if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' 2> /dev/null; then
	echo "iommufd-conformance needs Node.js >= 20.19 on the device (found: $(node --version 2> /dev/null || echo none))"
	report iommufd-conformance-run fail
	exit 0
fi
[ -d node_modules ] || npm ci || { report iommufd-conformance-run fail; exit 0; }

out=${IOMMUFD_CONFORMANCE_OUT:-$PWD/lava-results}
node bin/iommufd-conformance.js run --profile "$profile" ${shard:+--shard "$shard"} --out "$out"
rc=$?
if [ ! -s "$out/results.ktap" ]; then
	echo "iommufd-conformance wrote no results.ktap (exit $rc)"
	report iommufd-conformance-run fail
	exit 0
fi
cat "$out/results.ktap"
# KTAP result lines: "ok N NAME", "not ok N NAME", "ok N NAME # SKIP REASON".
while IFS= read -r line; do
	if [[ $line =~ ^(ok|not\ ok)\ [0-9]+\ ([^ ]+)( \#\ SKIP.*)?$ ]]; then
		name=${BASH_REMATCH[2]}
		if [ -n "${BASH_REMATCH[3]}" ]; then report "$name" skip
		elif [ "${BASH_REMATCH[1]}" = ok ]; then report "$name" pass
		else report "$name" fail
		fi
	fi
done < "$out/results.ktap"
if [ "$rc" -eq 0 ]; then report iommufd-conformance-run pass; else report iommufd-conformance-run fail; fi
