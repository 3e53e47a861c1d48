# The guests tier (docs/testing.md): the host tier's tests that start a guest (meson's suite
# guests, and vmm-seabios, vmm-jail-uefi, vmm-seccomp-probe-build), which a host whose kernel
# offers no KVM skips, run here on the lab's KVM with the ASan+UBSan build, each with meson's
# own command line (tests/lab/guests_tier.py). run.sh attaches their read-only drive (serial
# guests-tier, lab.sh lab_guests_tier_build) only on such a host, and on any other leaves this
# scenario out (keel.skip): there the host tier ran them. Each test prints its output and a
# line "guests-lab: PASS|FAIL|SKIP NAME (S s)"; run.sh counts them (tier guests-lab) and keeps
# each one's output in build/lab/guests-lab/NAME.log. One attempt: a failed test fails the
# tier, and running all of them again would not tell more. The tier stops by itself (at most
# 840 s: below lab-timeout, whose SIGKILL would skip this scenario's cleanup) and kills every
# process of its tests when each ends; should this shell die anyway, the tier gets SIGTERM and
# does the same (guests_tier.py run). At the end no keel-vmm may be left running.
#   keel.time_scale=N   the tests' time limits times N (default 4: the emulated CPU runs the
#                       guests and keel-vmm about that much slower than a host's own KVM)
# lab-timeout: 900
# lab-attempts: 1
scale=4
for w in $(cat /proc/cmdline); do
	case "$w" in keel.time_scale=*) scale=${w#*=} ;; esac
done
mnt=/mnt/guests-tier # LAB_GUESTS_TIER_MNT in lab.sh: the paths in tests.json begin with it
dev=
for b in /sys/block/vd*; do
	[ "$(cat "$b/serial" 2>/dev/null)" = guests-tier ] && dev=/dev/${b##*/}
done
[ -n "$dev" ] || fail "the lab has no guests-tier drive (run.sh attaches it on a host without KVM, or with LAB_GUESTS_TIER=on)"
vmms() { # the pids of the keel-vmm processes running
	for c in /proc/[0-9]*/comm; do
		[ "$(cat "$c" 2>/dev/null)" = keel-vmm ] && { c=${c%/comm}; echo "${c#/proc/}"; }
	done
}
before=$(vmms)
tmp=/mnt/guests-tmp loop=
trap 'umount "$tmp" 2>/dev/null; [ -z "$loop" ] || losetup -d "$loop"; rm -f /tmp/guests-tier.fs; umount "$mnt" 2>/dev/null' EXIT
mkdir -p "$mnt"
mount -t ext4 -o ro "$dev" "$mnt" || fail "cannot mount the guests-tier drive $dev"
# The tests' files (their TMPDIR) on an ext4 over a loop device: the disks of the cache=none
# cases need O_DIRECT, which the lab's RAM-backed /tmp refuses (as tmpfs does before Linux
# 6.6). Sparse: it takes the lab's RAM only as the tests write; and mounted with discard, so
# that what they delete goes back at once (the loop device punches the freed blocks out of
# the file). Online discard rather than fstrim between tests: it frees what a test deletes
# even while that test runs, and needs no hook in the tier; on the lab's tmpfs a discard is a
# cheap hole punch.
dd if=/dev/zero of=/tmp/guests-tier.fs bs=1M count=0 seek=2048 2>/dev/null || fail "cannot make /tmp/guests-tier.fs"
/sbin/mkfs.ext4 -q -F -t ext4 -b 4096 -m 0 /tmp/guests-tier.fs >/dev/null 2>&1 || fail "mkfs.ext4 /tmp/guests-tier.fs"
loop=$(losetup -f) && losetup "$loop" /tmp/guests-tier.fs || fail "losetup /tmp/guests-tier.fs"
mkdir -p "$tmp" && mount -t ext4 -o discard "$loop" "$tmp" && chmod 1777 "$tmp" || fail "cannot mount $loop on $tmp"
echo "lab: guests tier: $(grep -c '"name"' "$mnt/keel/tests.json") tests from $dev, time limits x$scale, TMPDIR $tmp"
PATH=$mnt/bin:$mnt/usr/bin:$PATH LD_LIBRARY_PATH=$mnt/lib/x86_64-linux-gnu:$mnt/usr/lib/x86_64-linux-gnu \
	PYTHONHOME=$mnt/usr KEEL_TEST_TIME_SCALE=$scale TMPDIR=$tmp \
	python3 "$mnt/keel/src/tests/lab/guests_tier.py" run "$mnt/keel/tests.json" 840
rc=$?
left=$(vmms | grep -vxF "${before:-none}" | xargs)
echo "lab: guests tier: TMPDIR holds $(df -k "$tmp" | awk 'NR == 2 { printf "%d", $3 / 1024 }') MiB, its file /tmp/guests-tier.fs $(du -k /tmp/guests-tier.fs | awk '{ printf "%d", $1 / 1024 }') MiB of the lab's RAM; keel-vmm left running: ${left:-none}"
if [ -n "$left" ]; then
	# shellcheck disable=SC2086 # one pid a word
	kill -9 $left 2>/dev/null
	fail "keel-vmm left running after the guests tier (pids $left)"
fi
[ "$rc" = 0 ] || fail "tests of the guests tier failed (their lines 'guests-lab: FAIL')"
