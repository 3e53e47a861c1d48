#!/usr/bin/env bash
# Host-side checks of the lab ledger (tests/lab/ledger.sh; no lab needed): lines are added
# where KEEL_LEDGER says, a crash or stall resets the count "since the last one", only whole
# suites that finished count as suites, and another lab QEMU's sessions are kept apart.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() {
	echo "ledger-test: FAIL: $*"
	exit 1
}
export KEEL_LEDGER=$dir/sub/ledger.tsv
# shellcheck source=tests/lab/ledger.sh
. "$top/tests/lab/ledger.sh"
out=$(ledger_summary)
case "$out" in "lab ledger: empty"*) ;; *) fail "an empty ledger reads '$out'" ;; esac
# A: a whole suite, a crash during a whole suite and its resumed session, two whole suites,
# a short LAB_ONLY run and a stall long ago on another QEMU (B).
ledger_add 1000 1800 finished 1 29 /q/A r1
ledger_add 3000 600 crash 1 10 /q/A r1
ledger_add 3700 1200 finished 0 19 /q/A r1
ledger_add 5000 1500 finished 1 29 /q/A r2
ledger_add 7000 1500 finished 1 29 /q/A r2
ledger_add 9000 300 finished 0 2 /q/A r2
ledger_add 9500 100 stall 0 0 /q/B r2
[ "$(wc -l <"$KEEL_LEDGER")" = 7 ] || fail "7 sessions added, the ledger has $(wc -l <"$KEEL_LEDGER") lines"
[ "$(awk -F'\t' 'NF != 7' "$KEEL_LEDGER" | wc -l)" = 0 ] || fail "a line without 7 fields"
out=$(ledger_summary /q/A)
want="lab ledger: 6 lab sessions, 1.9 h, lab host crashes or stalls: 1; since the last one: 4 sessions, 1.2 h, 2 whole suites (a whole suite: 27 min on average, so 2.8 suites of lab time)"
[ "$out" = "$want" ] || fail "summary for A: '$out', not '$want'"
out=$(ledger_summary /q/B)
case "$out" in *"1 lab sessions"*"crashes or stalls: 1; since the last one: 0 sessions, 0.0 h, 0 whole suites") ;; *) fail "summary for B: '$out'" ;; esac
out=$(ledger_summary)
case "$out" in *"7 lab sessions"*"crashes or stalls: 2;"*) ;; *) fail "summary of all: '$out'" ;; esac
# A session that finished with a kernel BUG of the lab host's counts as a crash (C).
ledger_add 10000 1800 finished 1 29 /q/C r3
ledger_add 12000 1800 bug 1 29 /q/C r3
ledger_add 14000 1800 finished 1 29 /q/C r3
out=$(ledger_summary /q/C)
case "$out" in *"3 lab sessions"*"crashes or stalls: 1; since the last one: 1 sessions, 0.5 h, 1 whole suites"*) ;; *) fail "summary for C: '$out'" ;; esac
# The command form prints the same.
[ "$("$top/tests/lab/ledger.sh" /q/A)" = "$want" ] || fail "ledger.sh /q/A differs from ledger_summary"
# An unwritable ledger is said and not fatal.
KEEL_LEDGER=/proc/no/such/ledger ledger_add 1 1 finished 1 1 /q/A r 2>"$dir/err" || fail "ledger_add failed on an unwritable ledger"
grep -q "could not add to the lab ledger" "$dir/err" || fail "an unwritable ledger was not said"
echo "ledger-test: ok"
