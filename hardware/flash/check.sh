#!/bin/sh
# CI check of flash.sh (.ci/run): flashes a temporary directory as the target with the built
# satchel, then checks the tree, the modes and the contents, reads the device configuration
# back with the real satchel, refuses a second flash that would overwrite it, and runs
# `systemd-analyze verify` on the installed unit (any warning it prints fails the check:
# verify itself exits 0 on unknown keys and unparsable values).
# Usage: hardware/flash/check.sh PATH-TO-BUILT-SATCHEL
set -eu
[ $# -eq 1 ] || { echo "usage: $0 PATH-TO-BUILT-SATCHEL" >&2; exit 64; }
satchel=$1
here=$(cd "$(dirname "$0")" && pwd)
hardware=$(dirname "$here")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target=$work/root
mkdir "$target"
failures=0
fail() { printf 'flash check: FAILED: %s\n' "$1" >&2; failures=$((failures + 1)); }

sh "$here/flash.sh" --target "$target" --board rugged-h1 --modem quectel-ec21 --card /media/card --satchel "$satchel" >"$work/flashed"
# The steps it names: with a card, card init comes before provision (provision escrows the key
# card init makes). (Every board profile has a card_mount, so every flash names card init.)
grep -q 'next, on the handheld: satchel init, satchel card init, satchel provision, satchel doctor$' "$work/flashed" \
    || fail "the next steps do not put card init before provision: $(cat "$work/flashed")"

mode() { stat -c %a "$1" 2>/dev/null || echo missing; }
expect_mode() { [ "$(mode "$target/$1")" = "$2" ] || fail "$1: mode $(mode "$target/$1"), expected $2"; }
expect_mode usr/bin/satchel 755
expect_mode etc/systemd/system/satchel-daemon.service 644
expect_mode usr/lib/sysusers.d/satchel.conf 644
expect_mode etc/udev/rules.d/99-satchel-modem.rules 644
expect_mode usr/share/satchel/hardware/boards/rugged-h1.board 644
expect_mode usr/share/satchel/hardware/modems/quectel-ec21.modem 644
expect_mode usr/share/satchel/hardware/modems/vendors.conf 644
expect_mode var/lib/satchel 700
expect_mode var/lib/satchel/device.conf 600
cmp -s "$satchel" "$target/usr/bin/satchel" || fail "usr/bin/satchel differs from $satchel"
cmp -s "$hardware/systemd/satchel-daemon.service" "$target/etc/systemd/system/satchel-daemon.service" || fail "the unit differs from hardware/systemd"
cmp -s "$hardware/udev/99-satchel-modem.rules" "$target/etc/udev/rules.d/99-satchel-modem.rules" || fail "the udev rules differ from hardware/udev"
[ "$(readlink "$target/etc/systemd/system/multi-user.target.wants/satchel-daemon.service")" = ../satchel-daemon.service ] || fail "the unit is not enabled for multi-user.target"
leftovers=$(find "$target" -name '*.flash-new' | wc -l)
[ "$leftovers" -eq 0 ] || fail "$leftovers temporary files left behind"

# The real satchel reads the configuration back, the profiles found where flash.sh put them.
shown=$(SATCHEL_HARDWARE="$target/usr/share/satchel/hardware" "$satchel" config show --home "$target/var/lib/satchel" --json) || fail "satchel config show refused the flashed device.conf"
for pair in '"board"' 'rugged-h1' '"modem_profile"' 'quectel-ec21' 'media'; do
    case "$shown" in *"$pair"*) ;; *) fail "device.conf read back lacks $pair: $shown" ;; esac
done
case "$shown" in *media*card*) ;; *) fail "device.conf read back lacks the card: $shown" ;; esac

# A second flash must not overwrite a configured handheld, and must say so.
before=$(cat "$target/var/lib/satchel/device.conf")
if sh "$here/flash.sh" --target "$target" --board usb-dongle --satchel "$satchel" 2>"$work/refusal"; then
    fail "a second flash over a configured handheld was not refused"
fi
grep -q 'already configured' "$work/refusal" || fail "the refusal does not say why: $(cat "$work/refusal")"
[ "$(cat "$target/var/lib/satchel/device.conf")" = "$before" ] || fail "the refused flash changed device.conf"
# Bad input: an unknown board is refused before anything is written.
empty=$work/empty
mkdir "$empty"
if sh "$here/flash.sh" --target "$empty" --board no-such-board --satchel "$satchel" 2>/dev/null; then fail "an unknown board was accepted"; fi
[ -z "$(ls -A "$empty")" ] || fail "a refused flash wrote into the target"

# systemd-analyze verify on the unit as installed. Its ExecStart names /usr/bin/satchel on the
# handheld; verify runs on this machine, so a copy points it at the flashed executable (verify
# checks that the command exists and is executable). Everything else is the installed file.
if ! command -v systemd-analyze >/dev/null 2>&1; then
    fail "systemd-analyze is not installed (Debian package systemd)"
else
    mkdir "$work/units"
    sed "s|^ExecStart=/usr/bin/satchel |ExecStart=$target/usr/bin/satchel |" "$target/etc/systemd/system/satchel-daemon.service" > "$work/units/satchel-daemon.service"
    grep -q "^ExecStart=$target/usr/bin/satchel " "$work/units/satchel-daemon.service" || fail "the unit's ExecStart is not /usr/bin/satchel"
    if ! systemd-analyze verify "$work/units/satchel-daemon.service" >"$work/verify" 2>&1; then
        fail "systemd-analyze verify: $(cat "$work/verify")"
    elif [ -s "$work/verify" ]; then
        fail "systemd-analyze verify warned: $(cat "$work/verify")"
    fi
    # The hardening as systemd scores it (offline: the unit file, not a running service).
    systemd-analyze security --offline=yes "$work/units/satchel-daemon.service" 2>/dev/null | tail -1 || true
fi

if [ "$failures" -gt 0 ]; then
    echo "flash check: $failures failure(s)" >&2
    exit 1
fi
echo "flash check: ok ($target flashed, modes and contents as expected, unit verified)"
