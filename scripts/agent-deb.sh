#!/usr/bin/env bash
# Build keel-agent_VERSION_amd64.deb from build/ (`make agent-deb`): the static keel-agent in
# /usr/sbin, its systemd unit, enabled on install. Nothing else: it depends on no package.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
agent="$build/src/agent/keel-agent"
[ -x "$agent" ] || { echo "agent-deb: $agent is not built; run make first" >&2; exit 1; }
if file -L "$agent" | grep -q 'dynamically linked'; then
	echo "agent-deb: $agent is dynamically linked (a sanitizer build?); build it with make" >&2
	exit 1
fi
# Reproducible: every timestamp in the package is the last commit's time (SOURCE_DATE_EPOCH,
# which dpkg-deb and xorriso honour), unless the caller sets it.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$top" log -1 --format=%ct 2>/dev/null || stat -c %Y "$top/meson.build")
fi
export SOURCE_DATE_EPOCH
version=$(sed -n "s/^ *version: '\([^']*\)'.*/\1/p" "$top/meson.build" | head -1)
root=$(mktemp -d)
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT
install -D -s -m 0755 "$agent" "$root/usr/sbin/keel-agent"
install -D -m 0644 "$top/contrib/systemd/keel-agent.service" "$root/lib/systemd/system/keel-agent.service"
install -d "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<CONTROL
Package: keel-agent
Version: $version
Architecture: amd64
Maintainer: keel developers <keel@localhost>
Section: admin
Priority: optional
Description: keel integration services for Linux guests
 keel-agent runs inside a virtual machine managed by keel and serves the host over
 virtio-vsock: heartbeat, clean shutdown, time sync, key-value exchange, exec, file copy
 and file system freeze for consistent checkpoints.
CONTROL
# The unit is enabled on the first install even without a running systemd (a package installed
# into an image being built in a chroot starts at the image's first boot); an upgrade keeps
# the administrator's enable or disable and restarts an enabled agent on its new binary;
# removal disables the unit while its file is still there. Starting and stopping need a
# running systemd. "First install" is told by a mark in the agent's state directory, not by
# postinst's old-version argument: the packages before it disabled the unit in their prerm
# on every upgrade, so an upgrade from one of them must enable it again. (tests/agent-deb-test.sh)
cat >"$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
[ "$1" = configure ] || exit 0
mark=/var/lib/keel-agent/.package-enabled
if [ ! -e "$mark" ] && command -v systemctl >/dev/null; then
	systemctl enable keel-agent.service || true
	mkdir -p "${mark%/*}" && : >"$mark"
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload
	if systemctl is-enabled --quiet keel-agent.service; then
		systemctl restart keel-agent.service || true
	fi
fi
POSTINST
cat >"$root/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
[ "$1" = remove ] || exit 0
if [ -d /run/systemd/system ]; then
	systemctl stop keel-agent.service || true
fi
if command -v systemctl >/dev/null; then
	systemctl disable keel-agent.service || true
fi
PRERM
cat >"$root/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
# Removed (its prerm disabled the unit): a new install enables it again.
case "$1" in
remove | purge) rm -f /var/lib/keel-agent/.package-enabled ;;
esac
POSTRM
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
out="$build/keel-agent_${version}_amd64.deb"
dpkg-deb --root-owner-group --build "$root" "$out" >/dev/null
echo "$out"
