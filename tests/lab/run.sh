#!/usr/bin/env bash
# The nested-lab suite: builds the lab (only what changed), boots it once, runs every
# tests/lab/scenarios/*.sh inside it in order, prints one line per scenario and a summary.
# Then checks `make demo` the same way a user would use it (tests/lab/demo-check.sh: a second,
# short lab boot). Exit status 0 only when everything passed. Console logs: build/lab/test.log
# and build/lab/demo.log.
#
# Environment: LAB_VMM=keel|qemu (the VMM the scenarios start; qemu = QEMU with KVM inside the
# lab, for checking the lab itself), LAB_ONLY=WORD[,WORD...] (only scenarios whose name contains a WORD),
# LAB_TIMEOUT=SECONDS (the whole lab session, default 2700, and each tier's lab-timeout more
# with the tiers of the host tier's tests), LAB_STALL=SECONDS (a silent lab is
# stopped and restarted, default 240), LAB_SCENARIO_TIMEOUT=SECONDS
# (each scenario, default 300), LAB_ARGS="key=value ..." (more words for the lab kernel's
# command line, read by scenarios: keel.stress_n=, keel.uefi_n=, ...), LAB_ACCEL (the outer
# QEMU's accelerator, default tcg), LAB_CRASH=fail|retry (a guest crash fails the
# scenario at once, the default, or is retried and counted), LAB_GUESTS_TIER=auto|on|off
# (95-guests-tier and 96-daemon-tier, the host tier's tests that start a guest: auto runs them
# only on a host whose kernel offers no KVM, where the host tier skipped them;
# tests/lab/guests_tier.py; on such a host under KEEL_TEST_NO_SKIP=1, off or LAB_VMM=qemu
# fails the run, LAB_ONLY does not). See docs/lab.md.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lab/lab.sh
. "$top/tests/lab/lab.sh"
# shellcheck source=tests/lab/ledger.sh
. "$top/tests/lab/ledger.sh"

vmm=${LAB_VMM:-keel}
only=${LAB_ONLY:-}
tmo=${LAB_TIMEOUT:-2700}
stmo=${LAB_SCENARIO_TIMEOUT:-300}
log=$LAB_OUT/test.log

case "$vmm" in keel | qemu) ;; *) lab_die "LAB_VMM must be keel or qemu, not '$vmm'" ;; esac
mkdir -p "$LAB_OUT"
lab_build || exit 1
if [ "$vmm" = keel ] && [ ! -x "$top/build/keel-vmm" ]; then
	echo "lab: FAIL lab: build/keel-vmm does not exist (run make first)"
	exit 1
fi
# LAB_ONLY may list several words, comma-separated: a scenario runs when its name has any.
n=0
for w in ${only//,/ }; do
	n=$((n + $(ls "$top"/tests/lab/scenarios/*"$w"*.sh 2>/dev/null | wc -l)))
done
[ -n "$only" ] || n=$(ls "$top"/tests/lab/scenarios/*.sh 2>/dev/null | wc -l)
# The lab's tiers of the host tier's tests (95-guests-tier, 96-daemon-tier: guests_tier.py
# tiers) run where the host tier could not run their tests: on a host whose kernel offers no
# KVM (LAB_GUESTS_TIER=auto), and with keel-vmm. Elsewhere the lab leaves each out
# (keel.skip), neither run nor counted, and says why (guests_tier.py plan); on a host without
# KVM under KEEL_TEST_NO_SKIP=1 (CI) that fails the run, at its end, unless LAB_ONLY left it
# out (asked for: only said).
tiers='' tier_skip='' tier_left='' n_asked=$n
for t in $("$top/tests/lab/guests_tier.py" tiers); do
	why=$("$top/tests/lab/guests_tier.py" plan "$t" "$vmm" "$only")
	case $? in
	0) tiers="$tiers $t" ;;
	1) ;;
	3) tier_left="$tier_left$why"$'\n' ;;
	*) exit 1 ;;
	esac
	[ -z "$why" ] || echo "$why"
	case " $tiers " in *" $t "*) continue ;; esac
	# Not run, and not counted in n (as n counted it).
	tier_skip="$tier_skip${tier_skip:+,}$t-tier"
	sc=$(basename "$(ls "$top"/tests/lab/scenarios/*-"$t"-tier.sh)" .sh)
	[ -n "$only" ] || n=$((n - 1))
	for w in ${only//,/ }; do case "$sc" in *"$w"*) n=$((n - 1)) ;; esac; done
done
# The firmware-boot images (scripts/images/) that the chosen scenarios name in a line
# "# lab-images: NAME..." are built when missing and attached to the lab (lab.sh, lab_images).
imgs=$(for s in "$top"/tests/lab/scenarios/*.sh; do
	b=$(basename "$s" .sh) want=
	for w in ${only//,/ }; do case "$b" in *"$w"*) want=1 ;; esac; done
	[ -z "$only" ] || [ -n "$want" ] || continue
	sed -n 's/^# lab-images: *//p' "$s"
done | tr ' ' '\n' | sed '/^$/d' | sort -u | paste -sd, -)
lab_check_timeouts "$top"/tests/lab/scenarios/*.sh
LAB_IMAGES=${imgs:-none} lab_images || exit 1
if [ -n "$tiers" ]; then
	lab_guests_tier_build || exit 1
	# Each tier's scenario's own limit more for the session (LAB_TIMEOUT unset).
	for t in $tiers; do
		[ -n "${LAB_TIMEOUT:-}" ] ||
			tmo=$((tmo + $(sed -n 's/^# lab-timeout: *//p' "$top"/tests/lab/scenarios/*-"$t"-tier.sh)))
	done
fi
demo=0
case demo in *"$only"*) demo=1 ;; esac
[ "$n" -gt 0 ] || [ "$demo" = 1 ] || [ "$n_asked" = "$n" ] || lab_die "no scenario left to run: LAB_ONLY='$only' names only tiers of the host tier's tests, left out (above)"
[ "$n" -gt 0 ] || [ "$demo" = 1 ] || lab_die "no scenario in tests/lab/scenarios matches '$only'"
# The lab prints a heartbeat every 60 s (host/init). If its console stays silent for
# LAB_STALL seconds (default 240) the lab host's kernel is stuck: stop it, and the loop below
# treats that like a crash of the lab host (a restart at the same scenario).
_lab_watchdog() { # SESSION-LOG
	local last=-1 size idle=0 limit=${LAB_STALL:-240}
	while sleep 10; do
		size=$(stat -c %s "$1" 2>/dev/null || echo 0)
		if [ "$size" != "$last" ]; then
			last=$size idle=0
			continue
		fi
		idle=$((idle + 10))
		if [ "$idle" -ge "$limit" ] && [ -s "$LAB_OUT/qemu.pid" ]; then
			echo "lab: STALL the lab host printed nothing for ${idle}s; stopping it" >>"$1"
			kill "$(cat "$LAB_OUT/qemu.pid")" 2>/dev/null
			return
		fi
	done
}

pass=0 failed=0 skipped=0 crashes=0 retried=0 retried_names= start=$(date +%s)
if [ "$n" -gt 0 ]; then
	echo "lab: booting the nested lab (QEMU TCG, emulated AMD-V) to run $n scenarios with $vmm;" \
		"log: ${log#"$top"/}"
	# One lab boot runs every scenario. If the lab host's own kernel crashes (the nested
	# emulation has shown rare panics of its own: a stack guard page hit in a vCPU thread
	# under KVM_RUN; "corrupted stack end detected inside scheduler"), the lab boots again
	# and resumes at the scenario that was running, at most eight times, and says so: each
	# restart is in the log and the summary. They are the lab QEMU's (issue 14), not
	# keel's, and came three times in one run on 2026-12-06.
	: >"$log"
	from='' session=0
	while :; do
		session=$((session + 1))
		slog=$LAB_OUT/test.session$session.log
		rm -f "$LAB_OUT/qemu.pid"
		sstart=$(date +%s)
		_lab_watchdog "$slog" &
		dog=$!
		lab_boot test "$tmo" "keel.vmm=$vmm" ${only:+"keel.only=$only"} ${from:+"keel.from=$from"} ${tier_skip:+"keel.skip=$tier_skip"} \
			"keel.timeout=$stmo" ${LAB_CRASH:+"keel.crash=$LAB_CRASH"} ${LAB_ARGS:-} </dev/null 2>&1 |
			lab_console_filter | tee "$slog" | grep -a --line-buffered -E '^lab: (PASS|FAIL|SKIP|CRASH|RETRY|STALL|done:|/dev/kvm)|^[a-z]+-lab: (PASS|FAIL|SKIP|begin|done)' |
			grep -a --line-buffered -v "^[a-z]*-lab: SKIP .* not run in the lab: "
		qemu_rc=${PIPESTATUS[0]}
		kill "$dog" 2>/dev/null
		wait "$dog" 2>/dev/null
		cat "$slog" >>"$log"
		cur='' panic='' killed='' outcome=finished
		# The lab host's kernel reporting a bug of its own (a BUG, an Oops, a soft lockup, a
		# panic: its console lines, time-stamped and not a VM's "  | " ones) is counted with
		# the crashes in the ledger even when the session went on to finish.
		kbug=$(grep -a -m 1 -E '^\[ *[0-9]+\.[0-9]+\] .*(BUG: |Oops|soft lockup|Kernel panic)' "$slog" |
			sed 's/^\[[ 0-9.]*\] //')
		[ -z "$kbug" ] || outcome=bug
		if ! grep -q '^lab: done: ' "$slog"; then
			cur=$(grep -o '^lab: ---- scenario [^ ]*' "$slog" | tail -n 1 | awk '{ print $4 }')
			panic=$(grep -m 1 -E 'Kernel panic|BUG: |stack guard page|^lab: STALL' "$slog" | sed 's/^\[[ 0-9.]*\] //')
			# QEMU runs with -no-reboot: exiting 0 before "done" is the lab host resetting
			# itself (a triple fault of its kernel, which prints nothing), unless QEMU was
			# stopped from outside (it says so, and exits 0 on SIGTERM): no crash of the lab
			# host, nothing to restart, and not counted as one in the ledger.
			killed=$(grep -a -m 1 -o 'terminating on signal [0-9]*' "$slog")
			[ -n "$panic" ] || [ "$qemu_rc" != 0 ] || [ -z "$cur" ] || [ -n "$killed" ] ||
				panic="the lab host reset itself (QEMU exited 0 under -no-reboot)"
			# The lab's QEMU itself dying (an assertion's abort, 134, as the CR8 one of
			# issue 14; any signal but the timeout's and one from outside) is a crash of the
			# lab, whether or not a scenario was running.
			[ -n "$panic" ] || [ "$qemu_rc" -lt 128 ] || [ -n "$killed" ] ||
				panic="the lab's QEMU died (exit status $qemu_rc)"
			outcome=other
			if grep -q '^lab: STALL' "$slog"; then
				outcome=stall
			elif [ -n "$panic" ]; then
				outcome=crash
			fi
		fi
		ledger_add "$sstart" "$(($(date +%s) - sstart))" "$outcome" \
			"$([ -z "$only" ] && [ -z "$from" ] && echo 1 || echo 0)" \
			"$(grep -c -E '^lab: (PASS|FAIL|SKIP) ' "$slog")" "$LAB_QEMU" \
			"$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)"
		[ "$outcome" = finished ] && break
		if [ -n "$cur" ] && [ -n "$panic" ] && [ "$session" -lt 9 ]; then
			echo "lab: RESTART the lab host's kernel crashed or stalled during $cur ($panic); booting the lab again from $cur"
			echo "lab: RESTART after a lab host crash or stall during $cur: $panic" >>"$log"
			from=$cur
			continue
		fi
		if [ "$qemu_rc" = 124 ]; then
			why="the lab did not finish within ${tmo}s (LAB_TIMEOUT) and was killed"
		elif [ -n "$killed" ] && [ -z "$panic" ]; then
			why="the lab's QEMU was stopped from outside ($killed)"
		elif ! grep -q 'lab: init started' "$slog"; then
			why="the lab host did not reach its /init (QEMU exit status $qemu_rc)"
		elif [ -n "$panic" ]; then
			why="the lab host's kernel crashed during ${cur:-a scenario}: $panic"
		else
			why="the lab stopped before finishing its scenarios (QEMU exit status $qemu_rc)"
		fi
		echo "lab: FAIL lab: $why; see ${log#"$top"/}"
		failed=$((failed + 1))
		break
	done
	pass=$(grep -c '^lab: PASS ' "$log")
	skipped=$(grep -c '^lab: SKIP ' "$log")
	crashes=$(grep -c '^lab: CRASH ' "$log")
	failed=$((failed + $(grep -c '^lab: FAIL ' "$log")))
	retried=$(grep -c '^lab: PASS .* on attempt [0-9]' "$log")
	retried_names=$(sed -n 's/^lab: PASS \([^ ]*\) .* on attempt [0-9].*/\1/p' "$log" | tr '\n' ' ')
	restarts=$(grep -c '^lab: RESTART ' "$log")
fi
if [ "$demo" = 1 ]; then
	if "$top/tests/lab/demo-check.sh"; then
		pass=$((pass + 1))
	else
		failed=$((failed + 1))
	fi
fi
# CI must not pass by skipping (KEEL_TEST_NO_SKIP=1, set by .ci/run): a scenario that skipped
# did not check what it was meant to check, so there it counts as failed (in the summary too).
if [ "$skipped" -gt 0 ] && [ "${KEEL_TEST_NO_SKIP:-0}" = 1 ]; then
	echo "lab: FAIL KEEL_TEST_NO_SKIP=1 (CI) and these scenarios were skipped: $(sed -n 's/^lab: SKIP \([^:]*\):.*/\1/p' "$log" | tr '\n' ' ')"
	failed=$((failed + skipped))
	skipped=0
fi
secs=$(($(date +%s) - start))
echo "lab: $pass passed, $failed failed, $skipped skipped, passed on a retry: $retried${retried_names:+ (${retried_names% })}, guest crashes: $crashes, lab host restarts: ${restarts:-0}, vmm $vmm, ${secs}s"
[ "$n" -gt 0 ] && ledger_summary "$LAB_QEMU"
echo "tier lab      ran $((pass + failed)), passed $pass, skipped $skipped, failed $failed"
# Each tier's own counts, its tests' outputs in build/lab/TAG/ (guests-lab, daemon-lab), its
# failures'; the tests it did not run named with the reason.
tier_rc=0
for t in $tiers; do
	rm -rf "$LAB_OUT/$t-lab"
	"$top/tests/lab/guests_tier.py" report "$t" "$log" "$LAB_OUT/$t-lab" || tier_rc=1
done
if [ -n "$tier_left" ]; then
	printf '%s' "$tier_left"
	tier_rc=1
fi
[ "$failed" = 0 ] && [ "$pass" -gt 0 ] && [ "$tier_rc" = 0 ]
