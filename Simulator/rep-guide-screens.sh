#!/usr/bin/env bash
# The console's screens in docs/rep-guide.md, captured from the real `satchel console` in tmux
# at 32x16 (capture-pane: the text as the terminal shows it, no escape sequences; any control
# character left is stripped). Drives one visit on a seeded device with an app password and a
# local SQLite hub: unlock (after a wrong password), route, customer card, order entry, the
# order's review, payment, display request, complaint, quote, equipment check, day summary,
# sync, status. Rewrites the part of docs/rep-guide.md between its SCREENS markers, so the guide
# shows what the console draws today: rerun after changing a page.
# Usage: Simulator/rep-guide-screens.sh [BIN_DIR] (default .build/debug).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(cd "${1:-.build/debug}" && pwd)"
work="$(mktemp -d /tmp/rep-guide.XXXXXX)"
run="/dev/shm/rep-guide-$$"
hub_pid=""
cleanup() {
    tmux -S "$work/tmux" kill-server 2>/dev/null || true
    [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null || true
    rm -rf "$work" "$run"
}
trap cleanup EXIT
home="$work/device"
export SATCHEL_HOME="$home" SATCHEL_RUNTIME_DIR="$run"
password="Zolw-2026-kp"
"$bin/satchel-sim" seed --home "$home" --customers 60 --products 300 --seed 5 >/dev/null
db="$home/satchel.db"
customer="$(sqlite3 "$db" "SELECT customer_id FROM equipment ORDER BY id LIMIT 1")"
currency="$(sqlite3 "$db" "SELECT currency FROM customers WHERE id = '$customer'")"
mapfile -t parts < <(sqlite3 "$db" "SELECT part_number FROM prices WHERE level = 'customer' AND currency = '$currency' ORDER BY part_number LIMIT 2 OFFSET 40")

# A hub on SQLite for the sync screen.
hubdb="$work/hub.db"
key="$("$bin/satchel" keys --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["public_key"])')"
echo "hasło-sync" | "$bin/satchel-hub" rep add --db "$hubdb" --rep R01 --name "Paweł Wróblewski" >/dev/null
"$bin/satchel-hub" device add --db "$hubdb" --device SIM1 --rep R01 --key "$key" >/dev/null
hubkey="$("$bin/satchel-hub" key --db "$hubdb")"
"$bin/satchel-hub" serve --db "$hubdb" --listen 127.0.0.1:0 > "$work/hub.out" 2>&1 &
hub_pid=$!
for ((i = 0; i < 200; i++)); do grep -q ':' "$work/hub.out" 2>/dev/null && break; sleep 0.05; done
address="$(head -1 "$work/hub.out" | awk '{print $NF}')"
"$bin/satchel" provision --hub "$address" --hub-key "$hubkey" >/dev/null
printf '%s\n%s\n' "$password" "$password" | "$bin/satchel" password set >/dev/null
"$bin/satchel" lock >/dev/null

t() { tmux -S "$work/tmux" "$@"; }
wait_for() {
    local deadline=$((SECONDS + ${2:-30}))
    until t capture-pane -p -t guide | grep -qF -- "$1"; do
        [ $SECONDS -lt $deadline ] || { echo "rep-guide-screens: no '$1' on screen:" >&2; t capture-pane -p -t guide >&2; exit 1; }
        sleep 0.05
    done
}
keys() { t send-keys -t guide "$@"; }
type_text() { t send-keys -t guide -l "$1"; }
shots=()
shot() {  # shot NAME: the screen as text, controls stripped, trailing blanks trimmed
    sleep 0.3
    t capture-pane -p -t guide | sed 's/[[:cntrl:]]//g; s/[[:space:]]*$//' > "$work/$1.txt"
    shots+=("$1")
}
add_line() {  # add_line PART QUANTITY NUMBER
    keys 1; wait_for "Find:"
    type_text "$1"; wait_for "$1 "
    keys Enter; wait_for "Qty:"
    type_text "$2"; keys Enter; wait_for "Line $3 added"
}

t -f /dev/null new-session -d -s guide -x 32 -y 16 "env SATCHEL_HOME=$home SATCHEL_RUNTIME_DIR=$run $bin/satchel console"
t set-option -t guide remain-on-exit on
wait_for "App password:"
type_text "guess"; keys Enter; wait_for "wrong app password"; shot unlock
type_text "$password"; keys Enter; wait_for Route; shot route
keys 2; wait_for "Find customer"
type_text "$customer"; keys Enter; wait_for Limit; shot card
keys 1; wait_for "Level:"
add_line "${parts[0]}" 3 1
keys 1; wait_for "Find:"
prefix="${parts[1]:0:${#parts[1]}-1}"
type_text "$prefix"; wait_for "Find: ${prefix}_"; sleep 0.5; shot order
type_text "${parts[1]: -1}"; wait_for "${parts[1]} "
keys Enter; wait_for "Qty:"; type_text 2; keys Enter; wait_for "Line 2 added"
keys Enter; wait_for "Save order?"; shot review
keys Enter; wait_for SAVED
keys 2; wait_for Amount
type_text "150*25"; keys Down Down; type_text "KP/77"; shot payment
keys Enter; wait_for SAVED
keys 4; wait_for "Display request"
keys Down; type_text 120; keys Down; type_text 200; keys Enter; wait_for Reserved; shot display
keys Escape; wait_for Limit
keys 0; wait_for "7 Equipment check"; keys 5; wait_for "What is wrong"
keys Right Down; type_text "${parts[0]}"; keys Down; type_text "3 кутии с пукнати плочки"; shot complaint
keys Enter; wait_for SAVED
keys 6; wait_for "Discount 0.00%"
add_line "${parts[1]}" 40 1
keys 3; wait_for "Discount %:"; type_text "12*5"; keys Enter; wait_for "NEEDS APPROVAL"; shot quote
keys Enter; wait_for "WAITS FOR APPROVAL"
keys Escape; wait_for Limit
keys 7; wait_for "not checked here yet"; keys Enter; wait_for "Done < inspection >"
keys Down; type_text "Czysty, 4°C"; shot equipment
keys Escape; wait_for "Leave without saving"; keys Enter; wait_for Equipment
keys Escape; wait_for Limit
keys Escape; wait_for "Find customer"; keys Escape; wait_for Route
keys 0; wait_for "9 Quit"; keys 5; wait_for "Cash collected"; shot summary
keys Escape; wait_for "9 Quit"; keys 6; wait_for "Link < network >"
type_text "hasło-sync"; keys Enter; wait_for "SYNCED" 120; shot sync
keys Escape; wait_for "9 Quit"; keys 4; wait_for "Battery"; shot status
keys Escape; wait_for "9 Quit"; keys 9; wait_for "Quit the console?"; keys Enter

caption() {
    case "$1" in
        unlock) echo "**Unlock**, after a wrong password: the tries left and the wait the next wrong one costs (it doubles)." ;;
        route) echo "**Route**: today's stops." ;;
        card) echo "**Customer card**: payment discipline (its colour on the screen), overdue, limit and what is left." ;;
        order) echo "**Order entry**: the lines, the total and, while a product is searched, the matches with their free stock." ;;
        review) echo "**The order as it will be saved**, with the credit rule's verdict." ;;
        payment) echo "**Payment**: amount typed with \`*\` for the point, the method, the receipt number." ;;
        display) echo "**Display request** saved: the type, the dimensions and the materials reserved." ;;
        complaint) echo "**Complaint**: the kind, the part, what is wrong." ;;
        quote) echo "**Quote** with its approval state: over the rep's discount, the reason before saving." ;;
        equipment) echo "**Equipment check**: what was done and a note (saved on a technician's handheld; a rep's says why not)." ;;
        summary) echo "**Day summary**: orders, cash collected by currency, visits, unsent." ;;
        sync) echo "**Sync**: mode, link, the bytes, and the result." ;;
        status) echo "**Status**: unsent changes, last sync, card, battery, signal." ;;
    esac
}
block="$work/block.md"
{
    echo "<!-- SCREENS: generated by Simulator/rep-guide-screens.sh; do not edit by hand -->"
    echo "Captured $(date -u +%Y-%m-%d) from \`satchel console\` at 32x16 (\`tmux capture-pane\`, control characters stripped)."
    for name in "${shots[@]}"; do
        echo
        caption "$name"
        echo
        echo '```text'
        cat "$work/$name.txt"
        echo '```'
    done
    echo "<!-- END SCREENS -->"
} > "$block"
python3 - docs/rep-guide.md "$block" <<'PY'
import sys
path, block = sys.argv[1], open(sys.argv[2]).read().rstrip("\n")
text = open(path).read()
start = text.index("<!-- SCREENS:")
end = text.index("<!-- END SCREENS -->") + len("<!-- END SCREENS -->")
open(path, "w").write(text[:start] + block + text[end:])
PY
echo "rep-guide-screens: ${#shots[@]} screens into docs/rep-guide.md"
