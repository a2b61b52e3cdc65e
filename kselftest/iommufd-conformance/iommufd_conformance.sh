#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# kselftest entry for iommufd-conformance: run_kselftest.sh runs it as
# iommufd-conformance:iommufd_conformance.sh (see ../kselftest-list.txt), so a
# lab that already runs kselftests picks the suite up unchanged. It runs the
# suites on the running kernel (the lab's) and prints their KTAP, which the
# kselftest runner nests under this test's result line. Exit codes are
# kselftest's: 0 pass, 1 fail, 4 skip (KSFT_SKIP) when the kernel or the
# machine lacks what the suites need, with the reason.
#
# IOMMUFD_CONFORMANCE_DIR  the tool's checkout (default: two levels above this
#                          script, its place in the repository), `npm ci` done
# IOMMUFD_CONFORMANCE_ARGS `iommufd-conformance run`'s selection (default:
#                          --profile mock, the suites that need only
#                          CONFIG_IOMMUFD_TEST, as tools/testing/selftests/iommu/config sets it)
# IOMMUFD_CONFORMANCE_OUT  results folder (default: a new temporary folder)
ksft_skip=4

skip() {
	echo "# SKIP: $*"
	exit $ksft_skip
}

here=$(dirname "$(readlink -f "$0")")
dir=${IOMMUFD_CONFORMANCE_DIR:-$(readlink -f "$here/../..")}
args=${IOMMUFD_CONFORMANCE_ARGS:---profile mock}

[ -f "$dir/bin/iommufd-conformance.js" ] || skip "no iommufd-conformance checkout at $dir (set IOMMUFD_CONFORMANCE_DIR)"
command -v node > /dev/null || skip "node is not installed (Node.js >= 20.19)"
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' ||
	skip "node $(node --version) is too old (Node.js >= 20.19)"
[ -d "$dir/node_modules" ] || skip "dependencies not installed: run npm ci in $dir"
if [ -z "${IOMMUFD_CONFORMANCE_ARGS+set}" ]; then
	[ -c /dev/iommu ] || skip "no /dev/iommu: the kernel lacks CONFIG_IOMMUFD"
fi

out=${IOMMUFD_CONFORMANCE_OUT:-$(mktemp -d /tmp/iommufd-conformance.XXXXXX)}
# The suites' own console output goes to a file; their KTAP is this test's output.
# shellcheck disable=SC2086 # $args is a list of arguments
(cd "$dir" && node bin/iommufd-conformance.js run $args --out "$out") > "$out/console.txt" 2>&1
rc=$?
if [ ! -s "$out/results.ktap" ]; then
	echo "# iommufd-conformance wrote no results.ktap (exit $rc); its output:"
	sed -e 's/^/# /' "$out/console.txt"
	exit 1
fi
cat "$out/results.ktap"
echo "# results: $out"
[ "$rc" -eq 0 ] && exit 0
exit 1
