# A Generation 2 VM through keeld and keel (issue 11), the way `make demo` makes one: a
# dynamic VHDX in a pool, `keel vm create --generation 2 --disk FILE.vhdx`, `keel vm start`,
# `keel console`. With an empty disk and nothing else to boot, OVMF falls through to its UEFI
# Shell on the console; keeld created the VM's variable store in its directory from Debian's
# OVMF_VARS_4M.fd and passed it to the jailed worker. Save and restore in the shell: the
# restored VM answers a command typed after the restore. Then save and restore in OVMF's setup
# menu (its front page): the restored VM is still in it (Down moves its highlight). A backup
# of the running VM holds its variable store. The boot menu: OVMF's Timeout variable, read
# with the shell's dmpstore, is 0 by default, 3 with `--boot-menu on`, 0 again when off.
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
# keeld opened the worker's files and passed them (docs/security.md): descriptors for its
# description, status file, store directory and the store's template, no path of them. The
# template, not needed once the store exists, is closed before the first guest instruction
# with whatever set-up did not take (jail_prep_close): the worker holds no file of the host's.
pid=$(keel vm show g2 --json | sed -n 's/^ *"pid": \([0-9]*\).*/\1/p' | head -n 1)
[ -n "$pid" ] || fail "keel vm show names no worker pid for g2"
tr '\0' '\n' <"/proc/$pid/cmdline" >"$KD/argv"
for f in config status nvram vars; do
	grep -q "^--fd=$f=[0-9]*$" "$KD/argv" || fail "no --fd $f: $(tr '\n' ' ' <"$KD/argv")"
done
! grep -qE '^--(config|status-file|restore)(=|$)' "$KD/argv" ||
	fail "the worker was given a path: $(tr '\n' ' ' <"$KD/argv")"
[ "$(readlink "/proc/$pid/fd/$(sed -n 's/^--fd=status=//p' "$KD/argv")")" = \
	"${nvram%/nvram/*}/status.json" ] || fail "--fd status is not the VM's status file"
for f in "/proc/$pid/fd/"*; do
	[ "$(readlink "$f")" != /usr/share/OVMF/OVMF_VARS_4M.fd ] || fail "the worker holds the template"
done
echo "lab: keeld-ovmf: the worker got its files as descriptors (--fd config, status, nvram, vars)"
# shell_prompt VM: OVMF's UEFI Shell on VM's console, at its prompt (Esc skips startup.nsh).
shell_prompt() {
	local i=0
	keel_console_wait "$1" 'UEFI Interactive Shell' 300
	until keel console "$1" --read-only --timeout 2 2>/dev/null | tr -d '\r' | grep -q 'Shell> '; do
		i=$((i + 1))
		[ "$i" -le 30 ] || fail "no 'Shell> ' prompt within 60 s of the shell's banner"
		printf '\033' | keel console "$1" --linger 1 >/dev/null 2>&1
	done
}
shell_prompt g2
echo "lab: keeld-ovmf: OVMF reached its shell on keel console"
# shell_timeout VM BYTES: the shell's dump of UEFI's Timeout variable (the seconds BDS counts
# down before it boots, which OVMF sets from fw_cfg's boot menu key and etc/boot-menu-wait)
# must be BYTES ("00 00": no menu; "03 00": keel's 3 s menu).
shell_timeout() {
	local i=0
	printf 'dmpstore Timeout\r' | keel console "$1" --linger 3 >/dev/null 2>&1
	until keel console "$1" --read-only --timeout 2 2>/dev/null | tr -d '\r' >"$KD/dmp.out" &&
		grep -q "00000000: $2" "$KD/dmp.out"; do
		i=$((i + 1))
		[ "$i" -le 20 ] || {
			grep -A2 'Timeout' "$KD/dmp.out" | tail -n 6
			fail "UEFI's Timeout variable is not $2 (dmpstore Timeout in the shell)"
		}
		sleep 1
	done
	echo "lab: keeld-ovmf: UEFI's Timeout variable is $2 ($(keel vm show "$1" | grep -i 'boot menu'))"
}
keel vm show g2 | grep -q '^Boot menu: *off' || fail "a new VM's boot menu is not off: $(keel vm show g2)"
shell_timeout g2 '00 00'
keel vm save g2 || fail "keel vm save failed: $(keel vm log g2 | tail -3)"
[ "$(vm_state g2)" = Saved ] || fail "g2 is $(vm_state g2) after save"
keel vm start g2 || fail "start after save failed: $(keel vm log g2 | tail -3)"
keel vm show g2 | grep -q 'restored from its saved state' ||
	fail "not restored: $(keel vm show g2 | grep Status)"
# What the shell prints differs from what was typed (its echo of the input): a variable.
printf 'set kv keel42\recho %%kv%%-ok\r' | keel console g2 --linger 3 >/dev/null 2>&1
keel_console_wait g2 'keel42-ok' 60
echo "lab: keeld-ovmf: saved and restored in the shell, which answers"
# Saved and restored in the firmware's setup menu (issue 11): when the shell exits, OVMF's
# BDS shows its front page (UiApp: Select Language, Device Manager, Boot Manager, ...), drawn
# with cursor movements, the highlighted entry's help on the right ("This is the option one
# adjusts to change the language ..." for the first). Saved there and restored, the VM is
# still in that menu: the restored worker's console shows nothing new (a menu waits for a
# key), and the arrow key Down typed after the restore makes the menu draw Device Manager
# highlighted. A restore that lost the firmware's state (a reboot, a stuck VM) draws no
# menu: it prints OVMF's boot (BdsDxe), then the shell. The console's replay is read split
# at each escape sequence.
LANG_HELP='one adjusts to change' # the help is drawn in lines of 23 columns
capture() { # the replay of VM $1's console, one line per escape sequence, in $KD/menu.out
	keel console "$1" --read-only --timeout 2 2>/dev/null | tr '\033' '\n' >"$KD/menu.out"
}
last() { # the last line of $KD/menu.out holding the fixed string $1 (0: none)
	grep -nF "$1" "$KD/menu.out" | tail -n 1 | cut -d: -f1 | grep . || echo 0
}
printf 'exit\r' | keel console g2 --linger 2 >/dev/null 2>&1
i=0
until capture g2 && [ "$(last "$LANG_HELP")" -gt 0 ]; do
	i=$((i + 1))
	[ "$i" -le 60 ] || {
		tail -c 2000 "$KD/menu.out"
		fail "no front page (setup menu) within 3 min of the shell's exit"
	}
	# Should BDS instead say "No bootable option or device was found. ... Press any key
	# to enter the Boot Manager Menu.": a key.
	grep -qF 'Press any key to enter' "$KD/menu.out" &&
		printf ' ' | keel console g2 --linger 1 >/dev/null 2>&1
	sleep 1
done
echo "lab: keeld-ovmf: OVMF's front page (setup menu) on keel console, Select Language highlighted"
sleep 5 # the menu drawn whole
keel vm save g2 || fail "keel vm save in the menu failed: $(keel vm log g2 | tail -3)"
[ "$(vm_state g2)" = Saved ] || fail "g2 is $(vm_state g2) after the save in the menu"
keel vm start g2 || fail "start after the save in the menu failed: $(keel vm log g2 | tail -3)"
keel vm show g2 | grep -q 'restored from its saved state' ||
	fail "not restored from the menu: $(keel vm show g2 | grep Status)"
sleep 5 # a VM that rebooted would be printing its boot by now
# The restored worker's console starts empty: anything on it now is the guest's, since the
# restore. A menu waiting for a key prints nothing.
capture g2
[ "$(last 'UEFI Interactive Shell')" = 0 ] && [ "$(last BdsDxe)" = 0 ] &&
	[ "$(last 'Device Manager')" = 0 ] || {
	tail -c 2000 "$KD/menu.out"
	fail "after the restore in the menu and before any key, the console shows output (a" \
		"new boot, or a menu drawn without a key)"
}
printf '\033[B' | keel console g2 --linger 3 >/dev/null 2>&1
i=0
until capture g2 && [ "$(last 'Device Manager')" -gt "$(last "$LANG_HELP")" ]; do
	i=$((i + 1))
	[ "$i" -le 20 ] || {
		tail -c 2000 "$KD/menu.out"
		fail "the restored VM's menu did not move its highlight to Device Manager after Down"
	}
	sleep 1
done
[ "$(last 'UEFI Interactive Shell')" = 0 ] ||
	fail "the restored VM started the UEFI Shell again: it rebooted instead of resuming the menu"
echo "lab: keeld-ovmf: saved and restored in the setup menu, which moves its highlight to" \
	"Device Manager on Down"
# A backup of the running VM holds its variable store as the backup's checkpoint left it:
# the store OVMF wrote (its boot options: no longer the template), byte for byte.
rm -rf /tmp/g2-backup
mkdir -p /tmp/g2-backup
keel vm backup g2 --to /tmp/g2-backup >"$KD/backup.out" 2>&1 ||
	fail "keel vm backup of the running VM failed: $(cat "$KD/backup.out")"
grep -q "UEFI variable store: /tmp/g2-backup/g2/nvram/OVMF_VARS.fd" "$KD/backup.out" ||
	fail "keel vm backup names no store: $(cat "$KD/backup.out")"
cmp -s /tmp/g2-backup/g2/nvram/OVMF_VARS.fd "$nvram" ||
	fail "the backup's store differs from the VM's"
! cmp -s /tmp/g2-backup/g2/nvram/OVMF_VARS.fd /usr/share/OVMF/OVMF_VARS_4M.fd ||
	fail "the backup's store is the template: OVMF's writes are not in it"
echo "lab: keeld-ovmf: a backup of the running VM holds its variable store"
keel vm turn-off g2 || fail "keel vm turn-off failed"
[ "$(vm_state g2)" = Off ] || fail "g2 is $(vm_state g2) after turn-off"
[ -f "$nvram" ] || fail "the variable store is gone after turn-off"
# OVMF wrote its boot options into the store: the jailed worker replaced the file (by rename
# in the directory keeld gave it), and the store is root's again now that the worker ended.
! cmp -s "$nvram" /usr/share/OVMF/OVMF_VARS_4M.fd ||
	fail "the variable store is still the template: the worker's writes did not reach it"
[ "$(stat -c %u "$nvram")" = 0 ] || fail "the store is uid $(stat -c %u "$nvram")'s after the worker ended"
echo "lab: keeld-ovmf: the store holds what OVMF wrote, and is root's again"
# The boot menu on (keel vm set --boot-menu on, the VM off): OVMF counts down 3 s before it
# boots (its Timeout variable 3); off again, no countdown (0): the store OVMF wrote while the
# menu was on does not keep it on.
keel vm set g2 --boot-menu on || fail "keel vm set --boot-menu on failed"
keel vm start g2 || fail "start with the boot menu on failed: $(keel vm log g2 | tail -3)"
shell_prompt g2
shell_timeout g2 '03 00'
keel vm turn-off g2 || fail "keel vm turn-off failed"
keel vm set g2 --boot-menu off || fail "keel vm set --boot-menu off failed"
keel vm start g2 || fail "start with the boot menu off again failed: $(keel vm log g2 | tail -3)"
shell_prompt g2
shell_timeout g2 '00 00'
keel vm turn-off g2 || fail "keel vm turn-off failed"
kill "$(cat "$KD/pid")"
