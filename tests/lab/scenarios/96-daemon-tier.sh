# The daemon tier (docs/testing.md): keeld and keel end to end (tests/daemon/e2e.py), the
# cases that start a VM, which a host whose kernel offers no KVM skips, run here on the lab's
# KVM with the ASan+UBSan build, each with meson's own command line: those of DAEMON_TESTS in
# tests/lab/guests_tier.py (the storage and network data paths, then the lifecycle basics);
# every other such case is counted as skipped and named with the reason. As 95-guests-tier
# (api.sh host_tier, the same drive): only on a host without KVM, one attempt, lines
# "daemon-lab: PASS|FAIL|SKIP NAME (S s)", run.sh's counts (tier daemon-lab) and outputs in
# build/lab/daemon-lab/NAME.log. The tier stops by itself after 660 s, below lab-timeout.
#   keel.time_scale=N   the tests' time limits times N (default 4)
# lab-timeout: 720
# lab-attempts: 1
host_tier daemon 660
