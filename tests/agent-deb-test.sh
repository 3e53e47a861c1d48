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
	echo "agent-deb-test: FAIL: $*" >&2
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
# The scripts ask whether systemd runs by /run/systemd/system: here, $dir/run, so that both
# cases are tested on any host.
# The agent's state directory (the postinst's mark of a first install): $dir/state.
for f in postinst prerm; do
	grep -q '/run/systemd/system' "$dir/ctl/$f" || fail "$f does not check for a running systemd"
done
for f in postinst prerm postrm; do
	sed -i "s|/run/systemd/system|$dir/run|g; s|/var/lib/keel-agent|$dir/state|g" "$dir/ctl/$f"
done

# systemctl: records its arguments; `is-enabled` answers from $dir/enabled.
cat >"$dir/bin/systemctl" <<'SYSTEMCTL'
#!/bin/sh
echo "$*" >>"$LOG"
case " $* " in
*" is-enabled "*) [ -e "$ENABLED" ]; exit ;;
*" enable "*) : >"$ENABLED" ;;
*" disable "*) rm -f "$ENABLED" ;;
esac
exit 0
SYSTEMCTL
chmod 0755 "$dir/bin/systemctl"
export LOG=$dir/log ENABLED=$dir/enabled
# run SCRIPT ARGS...: the package's maintainer script, the systemctl calls it made
run() {
	: >"$LOG"
	PATH=$dir/bin:$PATH sh "$dir/ctl/$1" "${@:2}" || fail "$* exited $?"
	tr '\n' ';' <"$LOG"
}
# expect WHAT LOG PATTERN...: each PATTERN (a case pattern) must match LOG
expect() {
	local what=$1 log=$2 p
	shift 2
	for p in "$@"; do
		# shellcheck disable=SC2254 # p is a pattern
		case "$log" in $p) ;; *) fail "$what: systemctl calls '$log', none matching $p" ;; esac
	done
}
# refuse WHAT LOG PATTERN: PATTERN must not match LOG
refuse() {
	# shellcheck disable=SC2254
	case "$2" in $3) fail "$1: systemctl calls '$2' match $3" ;; esac
}

# In a chroot (an image being built: systemctl there, systemd not running): a first install
# enables the unit, starts nothing; removal disables it.
rm -f "$ENABLED"
log=$(run postinst configure) || exit 1
expect "first install, no systemd running" "$log" "*enable keel-agent.service*"
refuse "first install, no systemd running" "$log" "*start*"
[ -e "$ENABLED" ] || fail "the unit is not enabled after a first install in a chroot"
log=$(run prerm remove) || exit 1
expect "removal, no systemd running" "$log" "*disable keel-agent.service*"
refuse "removal, no systemd running" "$log" "*stop*"
run postrm remove >/dev/null
[ ! -e "$dir/state/.package-enabled" ] || fail "postrm remove left the mark of an installed package"

# Under a running systemd: the first install enables and starts it.
mkdir "$dir/run"
rm -f "$ENABLED"
log=$(run postinst configure) || exit 1
expect "first install" "$log" "*enable keel-agent.service*" "*daemon-reload*" "*restart keel-agent.service*"
# An upgrade of an enabled agent: prerm leaves it alone, postinst restarts it on the new binary.
log=$(run prerm upgrade 0.1.0) || exit 1
[ -z "$log" ] || fail "prerm upgrade called systemctl: '$log'"
log=$(run postinst configure 0.1.0) || exit 1
expect "upgrade, enabled" "$log" "*daemon-reload*" "*restart keel-agent.service*"
refuse "upgrade, enabled" "$log" "*enable keel-agent*"
# An upgrade after the administrator's `systemctl disable`: still disabled, not started.
rm -f "$ENABLED"
log=$(run postinst configure 0.1.0) || exit 1
refuse "upgrade, disabled" "$log" "*enable keel-agent*"
refuse "upgrade, disabled" "$log" "*start*"
# Removal: stopped and disabled (no symlink left to a unit file that is gone); installed
# again, it is enabled again.
: >"$ENABLED"
log=$(run prerm remove) || exit 1
expect "removal" "$log" "*stop keel-agent.service*" "*disable keel-agent.service*"
[ ! -e "$ENABLED" ] || fail "the unit is still enabled after removal"
run postrm remove >/dev/null
log=$(run postinst configure 0.1.0) || exit 1
expect "install after removal" "$log" "*enable keel-agent.service*" "*restart keel-agent.service*"
# An upgrade from a package before the mark, whose prerm disabled the unit on upgrade: enabled.
rm -rf "$dir/state" "$ENABLED"
log=$(run postinst configure 0.1.0) || exit 1
expect "upgrade from an older package" "$log" "*enable keel-agent.service*" "*restart keel-agent.service*"

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
