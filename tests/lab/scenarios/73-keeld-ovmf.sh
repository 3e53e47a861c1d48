# A Generation 2 VM through keeld and keel (issue 11), the way `make demo` makes one: a
# dynamic VHDX in a pool, `keel vm create --generation 2 --disk FILE.vhdx`, `keel vm start`,
# `keel console`. With an empty disk and nothing else to boot, OVMF falls through to its UEFI
# Shell on the console; keeld created the VM's variable store in its directory from Debian's
# OVMF_VARS_4M.fd and passed it to the jailed worker. Save and restore in the shell: the
# restored VM answers a command typed after the restore.
keeld_start
[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] || fail "the lab image has no OVMF_CODE_4M.fd"
keel disk create "$VM_DIR/g2.vhdx" --size 64M >/dev/null || fail "keel disk create failed"
keel vm create g2 --generation 2 --memory 256M --disk "$VM_DIR/g2.vhdx" ||
	fail "keel vm create --generation 2 failed"
keel vm show g2 >"$KD/show.out"
grep -q '^Generation: *2 (UEFI, OVMF)$' "$KD/show.out" || fail "show: $(cat "$KD/show.out")"
nvram=$(sed -n 's/^NVRAM file: *//p' "$KD/show.out")
[ -n "$nvram" ] || fail "show names no NVRAM file: $(cat "$KD/show.out")"
keel vm start g2 || fail "keel vm start failed: $(keel vm log g2 | tail -3)"
[ "$(vm_state g2)" = Running ] || fail "g2 is $(vm_state g2) after start"
[ -f "$nvram" ] || fail "no variable store at $nvram after the start"
[ "$(stat -c %s "$nvram")" = "$(stat -c %s /usr/share/OVMF/OVMF_VARS_4M.fd)" ] ||
	fail "the variable store is $(stat -c %s "$nvram") bytes"
keel_console_wait g2 'UEFI Interactive Shell' 300
echo "lab: keeld-ovmf: OVMF reached its shell on keel console"
i=0
until keel console g2 --read-only --timeout 2 2>/dev/null | tr -d '\r' | grep -q 'Shell> '; do
	i=$((i + 1))
	[ "$i" -le 30 ] || fail "no 'Shell> ' prompt within 60 s of the shell's banner"
	printf '\033' | keel console g2 --linger 1 >/dev/null 2>&1
done
keel vm save g2 || fail "keel vm save failed: $(keel vm log g2 | tail -3)"
[ "$(vm_state g2)" = Saved ] || fail "g2 is $(vm_state g2) after save"
keel vm start g2 || fail "start after save failed: $(keel vm log g2 | tail -3)"
keel vm show g2 | grep -q 'restored from its saved state' ||
	fail "not restored: $(keel vm show g2 | grep Status)"
# What the shell prints differs from what was typed (its echo of the input): a variable.
printf 'set kv keel42\recho %%kv%%-ok\r' | keel console g2 --linger 3 >/dev/null 2>&1
keel_console_wait g2 'keel42-ok' 60
echo "lab: keeld-ovmf: saved and restored in the shell, which answers"
keel vm turn-off g2 || fail "keel vm turn-off failed"
[ "$(vm_state g2)" = Off ] || fail "g2 is $(vm_state g2) after turn-off"
[ -f "$nvram" ] || fail "the variable store is gone after turn-off"
# OVMF wrote its boot options into the store: the jailed worker replaced the file (by rename
# in the directory keeld gave it), and the store is root's again now that the worker ended.
! cmp -s "$nvram" /usr/share/OVMF/OVMF_VARS_4M.fd ||
	fail "the variable store is still the template: the worker's writes did not reach it"
[ "$(stat -c %u "$nvram")" = 0 ] || fail "the store is uid $(stat -c %u "$nvram")'s after the worker ended"
echo "lab: keeld-ovmf: the store holds what OVMF wrote, and is root's again"
kill "$(cat "$KD/pid")"
