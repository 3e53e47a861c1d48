# Shared by the tests/disk scripts: sourced, with KEEL and DISKTOOL set by meson.
set -euo pipefail
KEEL=${KEEL:?}
DISKTOOL=${DISKTOOL:?}
for tool in qemu-img qemu-io; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP: $tool not installed (package qemu-utils, see scripts/setup.sh)"
		exit 77
	fi
done
T=$(mktemp -d "${TMPDIR:-/tmp}/keel-disk-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# same A B WHAT: byte-identical files
same() { if cmp -s "$1" "$2"; then pass "$3"; else fail "$3 ($1 and $2 differ)"; fi; }
# qcheck IMG: qemu-img check passes
qcheck() {
	if out=$(qemu-img check -f vhdx "$1" 2>&1); then pass "qemu-img check $(basename "$1")"
	else fail "qemu-img check $(basename "$1"): $out"; fi
}
kcheck() {
	if out=$("$KEEL" disk check "$1" 2>&1); then pass "keel disk check $(basename "$1")"
	else fail "keel disk check $(basename "$1"): $out"; fi
}
finish() {
	if [ "$fails" -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
	echo "all passed"
}
