#!/usr/bin/env bash
# Host-side checks of lab.sh (no lab needed). lab_check_timeouts: a scenario's
# "# lab-timeout: S" line is accepted when S is a whole number of seconds and refused, with the
# file and the line named, otherwise (the lab's /init would silently use the default limit).
# lab_console_filter: every line of the console comes through, a NUL in it or not.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() {
	echo "lab-sh-test: FAIL: $*"
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
# A NUL on the lab's console (seen at its power-off) must not stop the lines after it.
got=$(printf "lab: PASS a\\r\\nx\\0y\\nqemu: warning: TCG doesn't support requested feature: z\\nlab: PASS b\\n" |
	LAB_QEMU=none LAB_TOP=$top bash -c '. "$1/tests/lab/lab.sh"; lab_console_filter' sh "$top" 2>&1 | tr '\0' '@')
want=$(printf 'lab: PASS a\nx@y\nlab: PASS b')
[ "$got" = "$want" ] || fail "lab_console_filter gave '$got'"
echo "lab-sh-test: ok"
