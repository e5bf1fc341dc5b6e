#!/usr/bin/env bash
# The console's figures (docs/benchmarks.md): drives the real `satchel console` in tmux at 32x16
# through a visit on a 5,000-customer, 6,000-product working set (the customer found by typing
# name words, five order lines each found by typing, a payment), then reports what the console
# itself measured (SATCHEL_CONSOLE_STATS: each key from its bytes read to its frame written, the
# bytes sent against full redraws of the same frames) and the peak RSS of the console against
# `satchel status` (GNU time). Usage: Simulator/console-bench.sh [BIN_DIR] (default .build/debug).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(cd "${1:-.build/debug}" && pwd)"
sim="${SATCHEL_SIM:-.build/debug/satchel-sim}"
work="$(mktemp -d /tmp/console-bench.XXXXXX)"
trap 'tmux -S "$work/tmux" kill-server 2>/dev/null || true; rm -rf "$work"' EXIT
home="$work/device"
"$sim" seed --home "$home" --customers 5000 --products 6000 --seed 3 >/dev/null
customer_name="$(sqlite3 "$home/satchel.db" "SELECT name FROM customers WHERE overdue_minor = 0 ORDER BY id LIMIT 1 OFFSET 100")"
customer="$(sqlite3 "$home/satchel.db" "SELECT id FROM customers WHERE overdue_minor = 0 ORDER BY id LIMIT 1 OFFSET 100")"
currency="$(sqlite3 "$home/satchel.db" "SELECT currency FROM customers WHERE id = '$customer'")"
mapfile -t parts < <(sqlite3 "$home/satchel.db" "SELECT part_number FROM prices WHERE level = 'customer' AND currency = '$currency' ORDER BY part_number LIMIT 5 OFFSET 2000")

t() { tmux -S "$work/tmux" "$@"; }
wait_for() {
    local deadline=$((SECONDS + 20))
    until t capture-pane -p -t bench | grep -qF -- "$1"; do
        [ $SECONDS -lt $deadline ] || { echo "console-bench: no '$1' on screen:"; t capture-pane -p -t bench; exit 1; }
        sleep 0.05
    done
}
type_slowly() {  # one key at a time, each a keypress the console redraws for
    local text="$1" i
    for ((i = 0; i < ${#text}; i++)); do t send-keys -t bench -l "${text:i:1}"; sleep 0.02; done
}

t -f /dev/null new-session -d -s bench -x 32 -y 16 \
    "SATCHEL_CONSOLE_STATS=$work/stats.json /usr/bin/time -f %M -o $work/console.rss $bin/satchel console --home $home"
t set-option -t bench remain-on-exit on
wait_for Route
t send-keys -t bench 2; wait_for "Find customer"
type_slowly "$(echo "$customer_name" | awk '{print $NF, $1}')"
sleep 0.3
t capture-pane -p -t bench > "$work/search.txt"
# Open it by id (the name may be shared), then order.
for ((i = 0; i < 40; i++)); do t send-keys -t bench BSpace; done
type_slowly "$customer"; t send-keys -t bench Enter; wait_for Limit
t send-keys -t bench 1; wait_for "Level:"
n=0
for part in "${parts[@]}"; do
    n=$((n + 1))
    t send-keys -t bench 1; wait_for "Find:"
    type_slowly "$part"; wait_for "$part "
    t send-keys -t bench Enter; wait_for "Qty:"
    type_slowly "$((n + 1))"; t send-keys -t bench Enter; wait_for "Line $n added"
done
t send-keys -t bench Up Up Down; sleep 0.2
t send-keys -t bench Enter; wait_for "Save order?"
t send-keys -t bench Enter; wait_for SAVED
t send-keys -t bench 2; wait_for Amount
type_slowly "250*00"; t send-keys -t bench Enter; wait_for SAVED
t send-keys -t bench Escape Escape; wait_for Route
t send-keys -t bench 0; wait_for Menu
t send-keys -t bench 9; wait_for "Quit"; t send-keys -t bench Enter
for ((i = 0; i < 100; i++)); do [ -s "$work/console.rss" ] && break; sleep 0.1; done
/usr/bin/time -f %M -o "$work/status.rss" "$bin/satchel" status --home "$home" >/dev/null
echo "working set: $(sqlite3 "$home/satchel.db" "SELECT count(*) FROM customers") customers, $(sqlite3 "$home/satchel.db" "SELECT count(*) FROM products") products"
cp "$work/stats.json" /tmp/console-stats.json
python3 - "$work/stats.json" "$work/console.rss" "$work/status.rss" <<'PY'
import json, sys
stats = json.load(open(sys.argv[1]))
console, status = (int(open(p).read().split()[-1]) for p in sys.argv[2:4])
print(f"keys {stats['keys']}, key to frame written: p50 {stats['key_us_p50']/1000:.2f} ms, p99 {stats['key_us_p99']/1000:.2f} ms, max {stats['key_us_max']/1000:.2f} ms")
print(f"bytes sent {stats['bytes_sent']} vs full redraws {stats['full_redraw_bytes']}: {stats['bytes_sent']/stats['full_redraw_bytes']:.3f}x (whole visit, {stats['frames']} frames)")
# Order entry alone: the order page (its lines, its product search, its quantity) and the review.
entry = [f for f in stats['frames_detail'] if f[2].startswith(('Order', 'Save order'))]
print(f"order entry: {sum(f[0] for f in entry)} vs {sum(f[1] for f in entry)}: {sum(f[0] for f in entry)/sum(f[1] for f in entry):.3f}x ({len(entry)} frames)")
typing = [f for f in entry if f[2].startswith('Order search')]
print(f"  of which product search as typed: {sum(f[0] for f in typing)} vs {sum(f[1] for f in typing)} ({len(typing)} frames)")
print(f"peak RSS console {console} KiB, satchel status {status} KiB: {console/status:.2f}x")
PY
