#!/bin/sh
# Prepares a handheld's root file system (or an SD card mounted as one) for Satchel: the
# satchel executable, the systemd unit for `satchel daemon` (enabled), the user it runs as,
# the udev rules for the modem, the board and modem profiles, and an initial device
# configuration. The target is a directory; nothing outside it is touched.
#
# Usage: hardware/flash/flash.sh --target DIR --board NAME [--image DIR | --satchel FILE]
#                                [--modem PROFILE] [--card DIR] [--replace]
#
#   --target DIR      the handheld's root file system, mounted (or any directory, for a test)
#   --board NAME      board profile from hardware/boards (rugged-h1, usb-dongle, ...)
#   --image DIR       a release image directory (hardware/build-release.sh's output) holding satchel
#   --satchel FILE    the satchel executable to install, instead of --image
#   --modem PROFILE   modem profile from hardware/modems, when the board's is not the one fitted
#   --card DIR        the card's mount point on the handheld, when not the board's
#   --replace         overwrite an existing device configuration (default: refuse, keep it)
#
# What it writes (under DIR):
#   usr/bin/satchel                                    0755
#   usr/share/satchel/hardware/{boards,modems}/...     0644 (the profiles satchel looks up)
#   etc/systemd/system/satchel-daemon.service          0644, enabled for multi-user.target
#   usr/lib/sysusers.d/satchel.conf                    0644 (user satchel, in group dialout)
#   etc/udev/rules.d/99-satchel-modem.rules            0644
#   var/lib/satchel/                                   0700
#   var/lib/satchel/device.conf                        0600 (board, modem profile, card)
# Then: boot the handheld, `satchel init`, `satchel card init` (where the handheld has a card: --card
# or the board's card_mount), `satchel provision`, `satchel doctor`. The card first: provision
# escrows the backup key at the hub and seals the identity onto the card, both made by card init.
# (docs/technician-guide.md, "Flashing a handheld").
set -eu

usage() {
    sed -n '/^# Usage:/,/^#   --replace/p' "$0" | sed 's/^# \{0,1\}//' >&2
}
fail() {
    printf 'flash: %s\n' "$1" >&2
    exit "${2:-1}"
}

here=$(cd "$(dirname "$0")" && pwd)
hardware=$(dirname "$here")
target= board= image= satchel= modem= card= replace=no
while [ $# -gt 0 ]; do
    case "$1" in
        --target|--board|--image|--satchel|--modem|--card)
            [ $# -ge 2 ] || { usage; fail "$1 needs a value" 64; }
            case "$1" in
                --target) target=$2 ;; --board) board=$2 ;; --image) image=$2 ;;
                --satchel) satchel=$2 ;; --modem) modem=$2 ;; --card) card=$2 ;;
            esac
            shift 2 ;;
        --replace) replace=yes; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage; fail "unknown argument '$1'" 64 ;;
    esac
done

[ -n "$target" ] || { usage; fail "--target DIR is required (the handheld's root file system)" 64; }
[ -n "$board" ] || { usage; fail "--board NAME is required; boards: $(cd "$hardware/boards" && ls *.board | sed 's/\.board$//' | tr '\n' ' ')" 64; }
[ -d "$target" ] || fail "target $target is not a directory: mount the handheld's root file system there first" 66
[ "$(cd "$target" && pwd)" != / ] || fail "target is / : flash.sh prepares another root file system, never the running one" 64
[ -f "$hardware/boards/$board.board" ] || fail "no board profile $hardware/boards/$board.board; boards: $(cd "$hardware/boards" && ls *.board | sed 's/\.board$//' | tr '\n' ' ')" 65
if [ -n "$modem" ] && [ ! -f "$hardware/modems/$modem.modem" ]; then
    fail "no modem profile $hardware/modems/$modem.modem; modems: $(cd "$hardware/modems" && ls *.modem | sed 's/\.modem$//' | tr '\n' ' ')" 65
fi
case "$card" in ''|/*) ;; *) fail "--card $card: expected an absolute path on the handheld (e.g. /media/card)" 65 ;; esac
if [ -n "$image" ] && [ -n "$satchel" ]; then fail "give --image or --satchel, not both" 64; fi
if [ -n "$image" ]; then satchel=$image/satchel; fi
[ -n "$satchel" ] || { usage; fail "--image DIR or --satchel FILE is required (hardware/build-release.sh builds the image)" 64; }
[ -f "$satchel" ] && [ -x "$satchel" ] || fail "$satchel is not an executable file" 66

data="$target/var/lib/satchel"
if [ -e "$data/device.conf" ] && [ "$replace" != yes ]; then
    fail "$data/device.conf exists: this handheld is already configured; it is kept as it is (--replace overwrites it)" 73
fi

# install MODE SOURCE DESTINATION: copy through a temporary file and rename, so an interrupted
# flash never leaves a half-written executable or unit under its real name.
put() {
    mkdir -p "$(dirname "$3")"
    cp "$2" "$3.flash-new"
    chmod "$1" "$3.flash-new"
    mv -f "$3.flash-new" "$3"
}

put 0755 "$satchel" "$target/usr/bin/satchel"

profiles="$target/usr/share/satchel/hardware"
for file in "$hardware"/boards/*.board; do put 0644 "$file" "$profiles/boards/$(basename "$file")"; done
for file in "$hardware"/modems/*.modem "$hardware"/modems/vendors.conf; do put 0644 "$file" "$profiles/modems/$(basename "$file")"; done

put 0644 "$hardware/systemd/satchel-daemon.service" "$target/etc/systemd/system/satchel-daemon.service"
mkdir -p "$target/etc/systemd/system/multi-user.target.wants"
ln -sfn ../satchel-daemon.service "$target/etc/systemd/system/multi-user.target.wants/satchel-daemon.service"
put 0644 "$hardware/systemd/satchel.sysusers" "$target/usr/lib/sysusers.d/satchel.conf"
put 0644 "$hardware/udev/99-satchel-modem.rules" "$target/etc/udev/rules.d/99-satchel-modem.rules"

# The device configuration (the format of Sources/Agent/DeviceConfiguration.swift; `satchel
# config show` on the handheld reads it back). The card comes from the board unless given.
mkdir -p "$data"
chmod 0700 "$data"
config="$data/device.conf.flash-new"
umask 077
{
    printf '# Satchel device configuration (written by hardware/flash/flash.sh; satchel config set changes it).\n'
    if [ -n "$card" ]; then printf 'card = %s\ncard_must_be_mounted = yes\n' "$card"; fi
    printf 'board = %s\n' "$board"
    if [ -n "$modem" ]; then printf 'modem_profile = %s\n' "$modem"; fi
} > "$config"
chmod 0600 "$config"
mv -f "$config" "$data/device.conf"

printf 'flash: %s prepared for board %s%s\n' "$target" "$board" "${modem:+, modem $modem}"
# The steps on the handheld, in order: the card (when there is one) before provision, which
# escrows the key card init makes and seals the identity onto the card.
has_card=$card
[ -n "$has_card" ] || has_card=$(sed -n 's/^card_mount *= *//p' "$hardware/boards/$board.board" | head -n 1)
if [ -n "$has_card" ]; then
    printf 'flash: next, on the handheld: satchel init, satchel card init, satchel provision, satchel doctor\n'
else
    printf 'flash: next, on the handheld: satchel init, satchel provision, satchel doctor\n'
fi
