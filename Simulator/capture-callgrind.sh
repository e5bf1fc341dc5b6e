#!/bin/sh
# Capture CPU per confirmed 10-line order, before and after a change, in one run (issue 13):
# the same seeded device and the same orders captured by two satchel executables under
# valgrind's callgrind, counting only the instructions inside DeviceAgent.capture (the
# transaction, the journal payload and the card append; not process start-up, argument
# parsing, opening the database or printing). The pattern is the mangled name of
# DeviceAgent.capture(_:in:notice:acknowledge:) in both builds: only one function may match,
# since entering a second matching one inside the first would toggle collection off.
# Also the card journal bytes each order added. Prints both figures per side and the ratios;
# exits 1 when any figure is missing (a count of 0 is a missing figure, never a pass).
#
# usage: Simulator/capture-callgrind.sh OLD_SATCHEL NEW_SATCHEL SATCHEL_SIM [ORDERS]
#   OLD_SATCHEL  satchel built from the commit before the change (e.g. a clone of main's HEAD
#                built with `swift build -c release --product satchel`)
#   NEW_SATCHEL  satchel built from this tree (release)
#   SATCHEL_SIM  satchel-sim, to seed the device (`satchel-sim seed`)
#   OLD_SATCHEL_SIM (environment, optional) the satchel-sim of OLD's commit, which seeds OLD's side:
#                a device database seeded by today's satchel-sim has a newer schema than an
#                older satchel opens. Each side then picks its customers and parts from its own
#                seeded database (the same seed, so the same rows where the seeder did not change).
set -eu
old=$1 new=$2 sim=$3 orders=${4:-5}
old_sim=${OLD_SATCHEL_SIM:-$sim}
for tool in valgrind sqlite3; do command -v $tool >/dev/null || { echo "capture-callgrind: $tool missing (apt-get install valgrind)" >&2; exit 1; }; done
work=$(mktemp -d /tmp/capture-callgrind.XXXXXX)
trap 'rm -rf "$work"' EXIT

seed() {  # side satchel-sim -> seeded home at $work/$side-seeded
    "$2" seed --home "$work/$1-seeded" --customers 200 --products 500 --seed 7 >/dev/null
}
pick() {  # side -> sets customers and lines from that side's seeded database
    db="$work/$1-seeded/satchel.db"
    customers=$(sqlite3 "$db" "SELECT id FROM customers WHERE overdue_minor = 0 ORDER BY id LIMIT $orders")
    parts=$(sqlite3 "$db" "SELECT part_number FROM products p WHERE channel != 'display' AND EXISTS (SELECT 1 FROM prices r WHERE r.part_number = p.part_number AND r.level = 'customer') ORDER BY part_number LIMIT 10")
    lines=""
    quantity=1
    for part in $parts; do lines="$lines --line $part:$quantity"; quantity=$((quantity + 2)); done
}
seed old "$old_sim"
seed new "$sim"
pick old; old_rows="$customers $lines"
pick new
same_rows=no; [ "$old_rows" = "$customers $lines" ] && same_rows=yes

measure() {  # side binary -> "instructions card_bytes"
    side=$1 binary=$2
    pick "$side"
    cp -r "$work/$side-seeded" "$work/$side"
    mkdir -p "$work/$side-card"
    export SATCHEL_HOME="$work/$side" SATCHEL_CARD="$work/$side-card" SATCHEL_SNAPSHOT_EVERY=1000000000
    echo "capture-callgrind passphrase 13" | "$binary" card init >/dev/null
    first=$(echo "$customers" | head -1)
    # shellcheck disable=SC2086
    "$binary" order new --customer "$first" $lines --confirm >/dev/null   # warm: first capture after card init
    before=$(du -sb "$work/$side-card" | cut -f1)
    total=0
    for customer in $customers; do
        # shellcheck disable=SC2086
        valgrind --tool=callgrind --callgrind-out-file="$work/$side.out" --collect-atstart=no \
            --toggle-collect='$s5Agent06DeviceA0C7capture_2in6notice_11acknowledge*' "$binary" order new --customer "$customer" $lines --confirm >/dev/null 2>"$work/$side.err" \
            || { echo "capture-callgrind: $side: satchel order new failed: $(tail -3 "$work/$side.err")" >&2; exit 1; }
        count=$(awk '/Collected :/ { print $NF }' "$work/$side.err")
        [ -n "$count" ] && [ "$count" -gt 0 ] || { echo "capture-callgrind: $side: no instructions counted inside DeviceAgent.capture" >&2; exit 1; }
        total=$((total + count))
    done
    after=$(du -sb "$work/$side-card" | cut -f1)
    echo "$((total / orders)) $(((after - before) / orders))"
}

old_figures=$(measure old "$old") || exit 1
new_figures=$(measure new "$new") || exit 1
set -- $old_figures $new_figures
[ "$1" -gt 0 ] && [ "$3" -gt 0 ] && [ "$2" -gt 0 ] && [ "$4" -gt 0 ] || { echo "capture-callgrind: a figure is missing" >&2; exit 1; }
echo "orders per side: $orders (10 lines, confirmed, card on); the same customers and parts on both sides: $same_rows"
echo "instructions per order: old $1, new $3, ratio $(awk "BEGIN { printf \"%.3f\", $3 / $1 }") (goal <= 0.7)"
echo "card bytes per order:   old $2, new $4, ratio $(awk "BEGIN { printf \"%.3f\", $4 / $2 }") (goal <= 1)"
