#!/usr/bin/env bash
# A jailed keel-vmm (--jail-user, --jail-root: docs/security.md) of a UEFI VM without a
# variable store file (--firmware uefi, no --nvram: its variables live in memory) reads
# Debian's template, which is outside the jail: it opens it before it enters the jail and
# builds its flash inside, then waits paused for the control socket's quit; then the same
# with the template and the status file passed as descriptors (--fd vars, --fd status), as
# keeld passes them. Needs root.
# usage: jail-uefi.sh KEEL_VMM
set -uo pipefail
vmm=$1
vars=/usr/share/OVMF/OVMF_VARS_4M.fd
if [ ! -f "$vars" ]; then
	echo "SKIP: $vars is missing (scripts/setup.sh installs Debian's ovmf package)"
	exit 77
fi
if [ "$(id -u)" != 0 ] || [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "SKIP: the jail needs root and /dev/kvm"
	exit 77
fi
# The uid the worker becomes: from the end of keeld's default range, below run-guest.py's.
uid=3221291004
tmp=$(mktemp -d)
chmod 0751 "$tmp"
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

# run NAME [OPTION]...: keel-vmm with those options; sets answer, rc, vmm_rc.
run() {
	local name=$1
	shift
	"$vmm" --firmware uefi --memory 64M --no-rng --serial "file:$tmp/serial" --paused \
		--control "$tmp/ctl" --jail-user "$uid:$uid" --jail-root "$tmp" "$@" \
		2>"$tmp/stderr" &
	pid=$!
	answer=$(python3 - "$tmp/ctl" "$pid" <<'PY'
import os, socket, sys, time
for _ in range(300):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sys.argv[1])
        break
    except OSError:
        try:
            os.kill(int(sys.argv[2]), 0)
        except OSError:
            sys.exit("keel-vmm ended before its control socket answered")
        time.sleep(0.1)
else:
    sys.exit("no control socket")
f = s.makefile("rw")
for cmd in ('{"execute":"status"}', '{"execute":"quit"}'):
    f.write(cmd + "\n")
    f.flush()
    print(f.readline().strip())
PY
)
	rc=$?
	wait "$pid"
	vmm_rc=$?
	pid=
	echo "$name: control: $answer"
	echo "$name: keel-vmm's stderr:"
	sed 's/^/  | /' "$tmp/stderr"
}

failed=0
# The template and the status file by path (keel-vmm run by hand).
run "by path" --status-file "$tmp/status.json"
[ "$rc" = 0 ] && echo "$answer" | grep -q '"paused"' ||
	{ echo "FAIL: the jailed UEFI worker did not come up paused"; failed=1; }
[ "$vmm_rc" = 0 ] && grep -q '"reason":"quit"' "$tmp/status.json" ||
	{ echo "FAIL: keel-vmm exited $vmm_rc, status $(cat "$tmp/status.json" 2>/dev/null)"; failed=1; }

# Both passed as descriptors (as keeld does: --fd vars, --fd status). A template that is
# not one is refused, so the worker read the descriptor, not the path.
rm -f "$tmp/ctl"
head -c 4096 /dev/zero >"$tmp/bad.fd"
run "bad template passed" --fd vars=3 3<"$tmp/bad.fd"
[ "$vmm_rc" != 0 ] && grep -q "NVRAM file $vars" "$tmp/stderr" ||
	{ echo "FAIL: a bad template passed as --fd vars was not the one read"; failed=1; }
rm -f "$tmp/ctl"
run "passed" --fd vars=3 --fd status=4 3<"$vars" 4>"$tmp/status-fd.json"
[ "$rc" = 0 ] && echo "$answer" | grep -q '"paused"' ||
	{ echo "FAIL: the worker given --fd vars did not come up paused"; failed=1; }
[ "$vmm_rc" = 0 ] && grep -q '"reason":"quit"' "$tmp/status-fd.json" ||
	{ echo "FAIL: keel-vmm exited $vmm_rc, status $(cat "$tmp/status-fd.json")"; failed=1; }
[ "$failed" = 0 ] && echo "PASS"
exit "$failed"
