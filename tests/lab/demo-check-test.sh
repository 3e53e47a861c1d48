#!/bin/sh
# Host-side check of tests/lab/demo-check.sh's cleanup (no lab needed): a demo that fails
# leaves nothing running. The fake demo starts a process of its own and ends before printing
# anything; the check must fail and end that process too (once it stopped only the demo's
# direct children, and the lab's QEMU outlived a failed check, holding the lab lock).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() {
	echo "demo-check-test: FAIL: $*"
	[ -s "$dir/child" ] && kill "$(cat "$dir/child")" 2>/dev/null
	exit 1
}
cat >"$dir/demo" <<EOT
#!/bin/sh
(sleep 300 & echo \$! >"$dir/child"; wait) &
while [ ! -s "$dir/child" ]; do sleep 0.1; done
exit 3
EOT
chmod +x "$dir/demo"
res=$("$top/tests/lab/demo-check.sh" "$dir/demo" "$dir/log")
rc=$?
[ "$rc" = 1 ] || fail "demo-check returned $rc for a demo that failed: $res"
case "$res" in
"lab: FAIL demo: the demo ended before printing"*) ;;
*) fail "demo-check said: $res" ;;
esac
[ -s "$dir/child" ] || fail "the fake demo did not start its process"
kill -0 "$(cat "$dir/child")" 2>/dev/null && fail "the demo's process $(cat "$dir/child") outlived the failed check"
echo "demo-check-test: ok"
