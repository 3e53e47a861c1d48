#!/usr/bin/env bash
# Integration services benchmark (issue 13): in one nested-lab session, a guest under keeld
# with keel-agent (virtio-vsock) and a network adapter on keeld's Default Switch, running an
# SSH server (Debian's dropbear); from the lab host, (a) the round trip of `true`:
# `keel vm exec NAME -- true` against `ssh root@GUEST true` (OpenSSH's client, a new
# connection each time, as a script would; and, for reference, through one multiplexed
# connection, ControlMaster), median of BENCH_EXEC_N (20) alternating runs; (b) a host to
# guest copy of BENCH_COPY_MIB (64) MiB of random bytes: `keel vm copy-file` against
# `ssh root@GUEST 'cat >FILE' <FILE`, BENCH_COPY_RUNS (2) alternating runs each, the sha256 in
# the guest checked after every copy. Prints each figure and the ratios against the goals
# (exec at most 0.5x SSH's round trip; copy at least SSH's throughput). BENCH_TIMEOUT: the
# lab session's limit (default 1200 s). Log: build/lab/bench-agent.log.
#
# The suite's images stay as they are: the benchmark builds its own variants of them.
#   guest  build/lab/guest.cpio with dropbear (package dropbear-bin and its libraries
#          libtomcrypt1 and libtommath1, fetched once with `apt-get download`), its host key,
#          root's authorized key and /etc/passwd appended as a second cpio archive (the kernel
#          unpacks one after the other); cached by content under /var/cache/keel/bench-agent.
#   lab    build/lab/lab.cpio with, appended the same way: that guest initramfs as
#          /lab/guest/bench-ssh.cpio, bench/agent/lab.sh as /lab/bench/agent.sh, this host's
#          OpenSSH client (/usr/bin/ssh and its libraries) with the client key, and the timer
#          (bench/agent/timer.c) as /bin/bench-agent-time; written to build/lab/bench-agent/.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lab/lab.sh
. "$top/tests/lab/lab.sh"

log=$LAB_OUT/bench-agent.log
for f in keel-vmm src/daemon/keeld src/cli/keel src/agent/keel-agent; do
	[ -x "$top/build/$f" ] || lab_die "build/$f does not exist; run make first"
done
command -v ssh >/dev/null || lab_die "no ssh (package openssh-client) on this host: the lab's SSH client is copied from it"
command -v ssh-keygen >/dev/null || lab_die "no ssh-keygen (package openssh-client) on this host"
lab_build || exit 1

cache=${BENCH_AGENT_CACHE:-/var/cache/keel/bench-agent}
mkdir -p "$cache/debs" || lab_die "cannot make $cache"
# dropbear and the libraries it needs that Debian's base system lacks (its libz, libcrypt and
# libc are the host's, the same Debian as the guest's libraries would be).
debs=(dropbear-bin libtomcrypt1 libtommath1)
for p in "${debs[@]}"; do
	ls "$cache/debs/${p}_"*.deb >/dev/null 2>&1 ||
		(cd "$cache/debs" && apt-get download "$p" 2>&1 | grep -v '^W: Download is performed unsandboxed') ||
		lab_die "cannot fetch the package $p (apt-get download $p)"
	ls "$cache/debs/${p}_"*.deb >/dev/null 2>&1 || lab_die "apt-get download $p left no .deb in $cache/debs"
done
# Keys made once and kept with the cache: the guest's host key (dropbear's format) and the lab
# host's client key (OpenSSH's), whose public half is root's authorized key in the guest.
if [ ! -e "$cache/keys/ready" ]; then
	rm -rf "$cache/keys" && mkdir -p "$cache/keys"
	ssh-keygen -q -t ed25519 -N '' -C keel-bench-agent -f "$cache/keys/id_ed25519" ||
		lab_die "ssh-keygen failed"
	touch "$cache/keys/ready"
fi

# The guest variant, cached by content: the suite's guest initramfs, the packages, the keys
# and this script.
key=$(cat "$LAB_OUT/guest.cpio" "$cache"/debs/*.deb "$cache/keys/id_ed25519.pub" "$0" | sha256sum | cut -c1-16)
gvar=$cache/guest-ssh-$key.cpio
if [ ! -e "$gvar" ]; then
	rm -f "$cache"/guest-ssh-*.cpio # an earlier variant's
	work=$LAB_OUT/bench-agent/guest
	rm -rf "$work" && mkdir -p "$work/x" "$work/root"
	for d in "$cache"/debs/*.deb; do dpkg-deb -x "$d" "$work/x" || lab_die "dpkg-deb -x $d failed"; done
	r=$work/root
	libdir=$(cd "$work/x/usr/lib/x86_64-linux-gnu" && pwd)
	install -D -m 0755 "$work/x/usr/sbin/dropbear" "$r/usr/sbin/dropbear"
	# Every library ldd finds (the packages' first), under /lib/x86_64-linux-gnu, which the
	# dynamic loader searches without an ld.so.cache; the loader itself where it is asked for.
	while read -r lib; do
		case "$lib" in
		*/ld-linux-x86-64.so.2) install -D -m 0755 "$(readlink -f "$lib")" "$r/lib64/ld-linux-x86-64.so.2" ;;
		*) install -D -m 0755 "$(readlink -f "$lib")" "$r/lib/x86_64-linux-gnu/${lib##*/}" ;;
		esac
	done < <(LD_LIBRARY_PATH=$libdir ldd "$r/usr/sbin/dropbear" |
		awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
	if LD_LIBRARY_PATH=$libdir ldd "$r/usr/sbin/dropbear" | grep -q 'not found'; then
		lab_die "dropbear's libraries are not all found: $(LD_LIBRARY_PATH=$libdir ldd "$r/usr/sbin/dropbear" | grep 'not found')"
	fi
	mkdir -p "$r/etc/dropbear" "$r/root/.ssh"
	LD_LIBRARY_PATH=$libdir "$work/x/usr/bin/dropbearkey" -t ed25519 -f "$r/etc/dropbear/dropbear_ed25519_host_key" \
		>/dev/null 2>&1 || lab_die "dropbearkey failed"
	install -m 0600 "$cache/keys/id_ed25519.pub" "$r/root/.ssh/authorized_keys"
	chmod 0700 "$r/root" "$r/root/.ssh"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
	printf 'root:x:0:\n' >"$r/etc/group"
	_lab_pack "$r" "$work/overlay.cpio"
	cat "$LAB_OUT/guest.cpio" "$work/overlay.cpio" >"$gvar.tmp" && mv "$gvar.tmp" "$gvar" ||
		lab_die "cannot write $gvar"
	rm -rf "$work"
	echo "bench/agent: built the guest with dropbear: $gvar ($(du -h "$gvar" | cut -f1))"
fi

# The lab variant: the suite's lab initramfs and an overlay of the benchmark's.
out=$LAB_OUT/bench-agent
lr=$out/lab-root
rm -rf "$lr" && mkdir -p "$lr/lab/guest" "$lr/lab/bench" "$lr/bin" "$lr/root/.ssh"
install -m 0644 "$gvar" "$lr/lab/guest/bench-ssh.cpio"
install -m 0644 "$top/bench/agent/lab.sh" "$lr/lab/bench/agent.sh"
_lab_copy_program "$(command -v ssh)" "$lr" /usr/bin/ssh
install -m 0600 "$cache/keys/id_ed25519" "$lr/root/.ssh/id_ed25519"
chmod 0700 "$lr/root" "$lr/root/.ssh"
cc -std=gnu11 -O2 -Wall -Wextra -Werror -static -o "$lr/bin/bench-agent-time" \
	"$top/bench/agent/timer.c" || lab_die "cannot build bench/agent/timer.c"
_lab_pack "$lr" "$out/overlay.cpio"
cat "$LAB_OUT/lab.cpio" "$out/overlay.cpio" >"$out/lab.cpio" || lab_die "cannot write $out/lab.cpio"
rm -rf "$lr" "$out/overlay.cpio"

echo "bench/agent: one lab session: keel vm exec and copy-file against SSH (dropbear in the guest); log: ${log#"$top"/}"
# lab_boot boots $LAB_OUT/lab.cpio: the benchmark's variant, with no firmware-boot images.
rm -f "$out/images.list"
LAB_OUT=$out lab_boot bench "${BENCH_TIMEOUT:-1200}" keel.bench=agent "keel.execn=${BENCH_EXEC_N:-20}" \
	"keel.copymib=${BENCH_COPY_MIB:-64}" "keel.copyruns=${BENCH_COPY_RUNS:-2}" </dev/null 2>&1 |
	lab_console_filter | tee "$log" | grep -a --line-buffered -E '^bench: '
grep -q '^bench: done' "$log" || {
	echo "bench/agent: FAIL: the benchmark did not complete; see ${log#"$top"/}"
	exit 1
}
awk '
/^bench: exec / { split($4, m, "="); ex[$3] = m[2] }
/^bench: copy / { split($4, m, "="); cp[$3] = m[2] }
END {
	if (ex["keel"] > 0 && ex["ssh"] > 0)
		printf "bench/agent: exec round trip keel %.1f ms, SSH %.1f ms: keel/SSH = %.2f (goal <= 0.50: %s)\n", \
			ex["keel"] / 1000, ex["ssh"] / 1000, ex["keel"] / ex["ssh"], (ex["keel"] / ex["ssh"] <= 0.5 ? "met" : "not met")
	if (ex["keel"] > 0 && ex["ssh-mux"] > 0)
		printf "bench/agent: exec round trip keel %.1f ms, SSH through one multiplexed connection %.1f ms: keel/SSH = %.2f\n", \
			ex["keel"] / 1000, ex["ssh-mux"] / 1000, ex["keel"] / ex["ssh-mux"]
	if (cp["keel"] > 0 && cp["ssh"] > 0)
		printf "bench/agent: copy host to guest keel %.2f MiB/s, SSH %.2f MiB/s: keel/SSH = %.2f (goal >= 1: %s)\n", \
			cp["keel"] / 100, cp["ssh"] / 100, cp["keel"] / cp["ssh"], (cp["keel"] >= cp["ssh"] ? "met" : "not met")
}' "$log"
