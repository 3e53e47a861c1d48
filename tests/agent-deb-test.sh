#!/usr/bin/env bash
# scripts/agent-deb.sh's package and scripts/agent-iso.sh's disk, on the host (no guest): the
# package holds the agent and its unit; its maintainer scripts, run with a systemctl that
# records its arguments, enable the unit on a first install whether or not systemd runs (an
# image built in a chroot gets a working agent at its first boot), start it only under a
# running systemd, keep an administrator's `disable` across an upgrade, and disable it on
# removal; the ISO has volume ID KEEL_AGENT and the package; both are reproducible.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() {
	echo "agent-deb-test: FAIL: $*"
	exit 1
}
# A static stand-in for the agent (agent-deb.sh refuses a dynamic one, as the sanitizer build's).
mkdir -p "$dir/build/src/agent" "$dir/bin"
printf 'int main(void) { return 0; }\n' >"$dir/a.c"
cc -static -o "$dir/build/src/agent/keel-agent" "$dir/a.c" || fail "cannot build a static program"
deb=$("$top/scripts/agent-deb.sh" "$dir/build") || fail "agent-deb.sh failed"
[ -s "$deb" ] || fail "agent-deb.sh printed '$deb', not a package"
files=$(dpkg-deb -c "$deb" | awk '{ print $6 }')
for f in ./usr/sbin/keel-agent ./lib/systemd/system/keel-agent.service; do
	echo "$files" | grep -qx "$f" || fail "the package lacks $f: $files"
done
dpkg-deb -e "$deb" "$dir/ctl" || fail "dpkg-deb -e"

# systemctl: records its arguments; `is-enabled` answers from $dir/enabled.
cat >"$dir/bin/systemctl" <<'SYSTEMCTL'
#!/bin/sh
echo "$*" >>"$LOG"
case "$*" in
*is-enabled*) [ -e "$ENABLED" ] ;;
*" enable "*|"enable "*) : >"$ENABLED" ;;
*" disable "*|"disable "*) rm -f "$ENABLED" ;;
esac
exit 0
SYSTEMCTL
chmod 0755 "$dir/bin/systemctl"
export LOG=$dir/log ENABLED=$dir/enabled
# run SCRIPT ARGS...: the package's maintainer script, the log it leaves
run() {
	: >"$LOG"
	PATH=$dir/bin:$PATH sh "$dir/ctl/$1" "${@:2}" || fail "$* exited $?"
	tr '\n' ';' <"$LOG"
}
booted=no
[ -d /run/systemd/system ] && booted=yes

# A first install: enabled, even without a running systemd (an image built in a chroot).
log=$(run postinst configure)
case "$log" in *"enable keel-agent.service"*) ;; *) fail "postinst configure (first install) did not enable the unit: '$log'" ;; esac
[ -e "$ENABLED" ] || fail "the unit is not enabled after the first install"
case "$booted:$log" in
yes:*"restart keel-agent.service"* | no:*) ;;
*) fail "postinst configure under systemd did not start the agent: '$log'" ;;
esac
case "$booted:$log" in
no:*start*) fail "postinst configure without a running systemd started the agent: '$log'" ;;
esac
# An upgrade after the administrator disabled it: still disabled, not started.
rm -f "$ENABLED"
log=$(run prerm upgrade 0.1.0)
case "$log" in *able*) fail "prerm upgrade changed the unit's enablement: '$log'" ;; esac
log=$(run postinst configure 0.1.0)
case "$log" in *"enable "* | *start*) fail "postinst upgrade overrode the administrator's disable: '$log'" ;; esac
# An upgrade of an enabled agent: still enabled, restarted (the new binary) under systemd.
: >"$ENABLED"
log=$(run postinst configure 0.1.0)
case "$booted:$log" in
yes:*"restart keel-agent.service"* | no:*) ;;
*) fail "postinst upgrade did not restart the enabled agent: '$log'" ;;
esac
# Removal: disabled (no symlink left to a unit that is gone), stopped under systemd.
log=$(run prerm remove)
case "$log" in *"disable keel-agent.service"*) ;; *) fail "prerm remove did not disable the unit: '$log'" ;; esac
[ ! -e "$ENABLED" ] || fail "the unit is still enabled after removal"

# The disk: ISO 9660, volume ID KEEL_AGENT, the package on it.
if command -v xorriso >/dev/null; then
	iso=$("$top/scripts/agent-iso.sh" "$dir/build" "$dir/a.iso") || fail "agent-iso.sh failed"
	[ "$iso" = "$dir/a.iso" ] || fail "agent-iso.sh printed '$iso'"
	vid=$(xorriso -indev "$iso" -pvd_info 2>/dev/null | sed -n 's/^Volume Id *: *//p')
	[ "$vid" = KEEL_AGENT ] || fail "the disk's volume ID is '$vid'"
	ls=$(xorriso -indev "$iso" -ls / 2>/dev/null)
	echo "$ls" | grep -q "'${deb##*/}'" || fail "the disk lacks ${deb##*/}: $ls"
else
	fail "xorriso is not installed (scripts/setup.sh installs it)"
fi
# Reproducible: the same inputs a second later give the same package and disk, byte for byte.
sum1=$(sha256sum <"$deb") && sum2=$(sha256sum <"$iso")
sleep 1
"$top/scripts/agent-iso.sh" "$dir/build" "$dir/a.iso" >/dev/null 2>&1 || fail "agent-iso.sh failed again"
[ "$(sha256sum <"$deb")" = "$sum1" ] || fail "a second build of the package differs from the first"
[ "$(sha256sum <"$iso")" = "$sum2" ] || fail "a second build of the disk differs from the first"
echo "agent-deb-test: ok"
