#!/usr/bin/env bash
# Host-side check of lab.sh's lab_check_timeouts (no lab needed): a scenario's
# "# lab-timeout: S" line is accepted when S is a whole number of seconds and refused, with the
# file and the line named, otherwise (the lab's /init would silently use the default limit).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() {
	echo "lab-timeout-test: FAIL: $*"
	exit 1
}
# check CONTENT ok|bad: lab_check_timeouts on a scenario made of CONTENT
check() {
	printf '%s\n' "# a scenario" "$1" 'echo "lab: hello"' >"$dir/s.sh"
	local msg rc
	msg=$(LAB_QEMU=none LAB_TOP=$top bash -c '. "$1/tests/lab/lab.sh"; lab_check_timeouts "$2"' sh "$top" "$dir/s.sh" 2>&1)
	rc=$?
	case "$2" in
	ok) [ "$rc" = 0 ] || fail "'$1' refused: $msg" ;;
	bad)
		[ "$rc" != 0 ] || fail "'$1' accepted"
		case "$msg" in *"$dir/s.sh: '$1': a scenario's limit is"*) ;; *) fail "'$1': the error is '$msg'" ;; esac
		;;
	esac
}
check '# lab-timeout: 600' ok
check '# lab-timeout:600' ok
check '# lab-timeout: 99999 ' ok
check '# nothing about limits' ok
for v in '600s' '10m' '-5' '0' '' 'abc' '060' '100000' '6 00'; do
	check "# lab-timeout: $v" bad
done
check '#lab-timeout: 600' bad
check '# lab-timeout 600' bad
# The suite's own scenarios pass.
LAB_QEMU=none LAB_TOP=$top bash -c '. "$1/tests/lab/lab.sh"; lab_check_timeouts "$1"/tests/lab/scenarios/*.sh' sh "$top" ||
	fail "a scenario of the suite has a bad '# lab-timeout:' line"
echo "lab-timeout-test: ok"
