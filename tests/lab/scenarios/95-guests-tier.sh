# The guests tier (docs/testing.md): the host tier's tests that start a guest (meson's suite
# guests, and vmm-seabios, vmm-jail-uefi, vmm-seccomp-probe-build), which a host whose kernel
# offers no KVM skips, run here on the lab's KVM with the ASan+UBSan build, each with meson's
# own command line (tests/lab/guests_tier.py, api.sh host_tier). run.sh attaches their
# read-only drive (serial guests-tier, lab.sh lab_guests_tier_build) only on such a host, and
# on any other leaves this scenario out (keel.skip): there the host tier ran them. Each test
# prints its output and a line "guests-lab: PASS|FAIL|SKIP NAME (S s)"; run.sh counts them
# (tier guests-lab) and keeps each one's output in build/lab/guests-lab/NAME.log. One attempt:
# a failed test fails the tier, and running all of them again would not tell more. The tier
# stops by itself after 840 s, below lab-timeout.
#   keel.time_scale=N   the tests' time limits times N (default 4)
# lab-timeout: 900
# lab-attempts: 1
host_tier guests 840
