#!/usr/bin/env bash
# Regenerates hardware/startup-order.txt, the function order hardware/build-release.sh hands to
# lld (--symbol-ordering-file): the functions `satchel` and its SQLite hello-world baseline run on
# their everyday paths, placed together at the front of .text.
#
# Why: a process's resident text is not the code it runs but every 64 KiB window of the file it
# touches (the kernel maps the 16 pages around each page fault, "fault-around"). Laid out by the
# linker's default order, the ~500 KB `satchel status` runs is spread over ~90 windows: 5 MB of
# resident text for 0.5 MB of code. Ordered, it sits in a few windows. The one order file serves
# every executable of the image (each takes the names it has), and it is laid out so that each
# binary's set is contiguous: the hello-world's own functions, then those both run, then
# satchel's, then satchel's other commands. A function missing from the file (new code, a
# renamed one) is only placed after the ordered ones: a stale file costs memory, never behaviour.
#
#   hardware/build-release.sh && hardware/startup-order.sh      # needs valgrind (callgrind)
#
# Run it after changes to start-up or the everyday commands, then rebuild and rerun
# `satchel-sim bench capture` (docs/benchmarks.md, "capture").
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build-release/release}  # the unstripped binaries (symbol names) of build-release.sh
out=hardware/startup-order.txt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LC_ALL=C
unset SATCHEL_HOME SATCHEL_CARD SATCHEL_BATTERY SATCHEL_HARDWARE  # the defaults, as a rep runs them

home=$work/home
"$bin/satchel" init --home "$home" --device ORDER --rep R01 >/dev/null
database=$home/satchel.db

# The functions one run executes (callgrind's list, names left mangled), sorted.
profile() {
    local name=$1; shift
    valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/$name.out" "$@" >/dev/null 2>"$work/$name.err" || true
    grep -aoE '^c?fn=\([0-9]+\) .*' "$work/$name.out" | sed -E 's/^c?fn=\([0-9]+\) //' | sort -u >"$work/$name.fns"
    echo "startup-order: $name: $(wc -l <"$work/$name.fns") functions"
}
profile status "$bin/satchel" status --home "$home"
profile sqlite "$bin/bench-sqlite-hello" --database "$database" --read-only --sql "PRAGMA user_version" \
    --sql "SELECT count(*), ?1 FROM customers" --bind text:2026-01-01
profile status-json "$bin/satchel" status --json --home "$home"
profile help "$bin/satchel" --help
profile route "$bin/satchel" route --home "$home"
profile orders "$bin/satchel" order list --home "$home"
profile config "$bin/satchel" config show --home "$home"
profile hello-help "$bin/bench-hello" --help
profile hello "$bin/bench-hello"

# Only names the binaries define (callgrind also lists libc's and libsqlite3's).
nm --defined-only "$bin/satchel" "$bin/bench-sqlite-hello" "$bin/bench-hello" 2>/dev/null |
    awk 'NF == 3 && $2 ~ /^[tTwW]$/ { print $3 }' | sort -u >"$work/defined"
for f in "$work"/*.fns; do comm -12 "$f" "$work/defined" >"$f.own"; done

: >"$work/seen"
emit() {  # appends the names of $1 not yet emitted
    comm -23 "$1" "$work/seen" >>"$out.tmp"
    sort -u "$work/seen" "$1" -o "$work/seen"
}
: >"$out.tmp"
comm -23 "$work/sqlite.fns.own" "$work/status.fns.own" >"$work/sqlite-only"
comm -12 "$work/sqlite.fns.own" "$work/status.fns.own" >"$work/both"
emit "$work/sqlite-only"
emit "$work/both"
for name in status status-json help route orders config hello-help hello; do emit "$work/$name.fns.own"; done
mv "$out.tmp" "$out"
echo "startup-order: $(wc -l <"$out") functions in $out"
