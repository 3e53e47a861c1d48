#!/usr/bin/env bash
# The lab's ledger: one line per boot of the lab host by tests/lab/run.sh, kept host-wide
# (KEEL_CACHE, default /var/cache/keel) so that every run on this machine adds to it: CI's, the
# developers', each clone's. Issue 14 measures the lab by it: how long the lab runs, with a given
# outer QEMU, without its own kernel crashing or stalling ("20 suite runs in a row, or the lab
# scenarios in a loop for the same total time, with no lab restart"). docs/lab.md.
#
#   tests/lab/ledger.sh [QEMU]   summary for the lab QEMU binary QEMU (default: every one)
#
# Sourced by run.sh for ledger_add. Each line, tab-separated:
#   start (epoch s)  seconds  outcome  full  scenarios  qemu  revision
# outcome: finished (the session finished its scenarios), crash (the lab host's kernel crashed or
# reset, or the lab's QEMU died), stall (silent for LAB_STALL s), bug (the session finished but
# the lab host's kernel reported a BUG, Oops, soft lockup or panic), other (timeout, a lab that
# did not boot, a run stopped from outside, ...); crash, stall and bug count as crashes;
# full: 1 when the session began the whole suite (no LAB_ONLY, not a resumed session);
# scenarios: how many scenarios the session ended (PASS, FAIL or SKIP lines).

ledger_file() { echo "${KEEL_LEDGER:-${KEEL_CACHE:-/var/cache/keel}/lab-ledger.tsv}"; }

# ledger_add START SECONDS OUTCOME FULL SCENARIOS QEMU REVISION: a failure to write is said,
# never fatal (the ledger is a measurement, not part of any test's verdict).
ledger_add() {
	local f
	f=$(ledger_file)
	mkdir -p "$(dirname "$f")" 2>/dev/null
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$f" 2>/dev/null ||
		echo "lab: note: could not add to the lab ledger $f" >&2
}

# ledger_summary [QEMU]: sessions, hours and lab host crashes, and the stretch since the last
# crash in hours and in whole-suite runs that finished.
ledger_summary() {
	local f
	f=$(ledger_file)
	[ -s "$f" ] || {
		echo "lab ledger: empty ($f)"
		return 0
	}
	awk -F'\t' -v want="${1:-}" '
		NF >= 6 && (want == "" || $6 == want) {
			n++; secs += $2
			if ($3 == "crash" || $3 == "stall" || $3 == "bug") { crashes++; since = 0; since_full = 0; since_n = 0; next }
			since += $2; since_n++
			if ($3 == "finished" && $4 == 1) { since_full++; full_secs += $2; fulls++ }
		}
		END {
			if (n == 0) { print "lab ledger: no session with that lab QEMU"; exit }
			printf "lab ledger: %d lab sessions, %.1f h, lab host crashes or stalls: %d;", n, secs / 3600, crashes + 0
			printf " since the last one: %d sessions, %.1f h, %d whole suites", since_n, since / 3600, since_full
			if (fulls > 0) printf " (a whole suite: %.0f min on average, so %.1f suites of lab time)", full_secs / fulls / 60, since / (full_secs / fulls)
			printf "\n"
		}' "$f"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	ledger_summary "${1:-}"
fi
