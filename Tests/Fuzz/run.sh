#!/usr/bin/env bash
# Coverage-guided fuzzing of one decoder (or all): builds satchel-fuzz with libFuzzer in its own
# scratch path (.build-fuzz/<sanitizers>, so normal builds are untouched), then runs the target
# for a budget in seconds, starting from the committed corpus. Fails on a crash, a finding (an
# undocumented error type or a broken invariant traps), a timeout or an out-of-memory.
#
#   Tests/Fuzz/run.sh TARGET|all SECONDS [extra libFuzzer flags...]
#   SANITIZERS=fuzzer Tests/Fuzz/run.sh sync-batch 600     # without AddressSanitizer: ~2x the executions
#   RUNS=10000000 Tests/Fuzz/run.sh inflate 0               # stop after N executions instead of a time
#
# New inputs the fuzzer finds go to .build-fuzz/corpus/TARGET (not committed; the committed
# corpus in Tests/Fuzz/corpus stays small). A crashing input is written to
# .build-fuzz/crashes/TARGET/; turn it into a regression test by copying it into
# Tests/Fuzz/regressions/TARGET/ under a name that says what it found (Tests/Fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."

target=${1:?usage: Tests/Fuzz/run.sh TARGET|all SECONDS [libFuzzer flags...]}
seconds=${2:?usage: Tests/Fuzz/run.sh TARGET|all SECONDS [libFuzzer flags...]}
shift 2
sanitizers=${SANITIZERS:-fuzzer,address}
scratch=.build-fuzz/${sanitizers//,/-}

echo "fuzz: building satchel-fuzz with -sanitize=$sanitizers in $scratch"
# --sanitize fuzzer makes SwiftPM leave main to libFuzzer; the -Xswiftc flag (one -sanitize=
# list: a second -sanitize= would replace the first) is what instruments every module.
swift build --build-path "$scratch" -c release --sanitize fuzzer --product satchel-fuzz \
    -Xswiftc "-sanitize=$sanitizers" -Xswiftc -DSATCHEL_LIBFUZZER 2>&1 | grep -v "Cannot export local symbol" | tail -3
binary=$scratch/release/satchel-fuzz

if [ "$target" = all ]; then
    targets=$(ls Tests/Fuzz/corpus)  # every target has a committed corpus (Tests/FuzzTests checks it)
else
    targets=$target
fi

export SWIFT_BACKTRACE=enable=no  # libFuzzer and ASan report the crash; Swift's backtracer would fight ASan
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=64:detect_leaks=0}
failed=0
for name in $targets; do
    corpus=.build-fuzz/corpus/$name crashes=.build-fuzz/crashes/$name
    mkdir -p "$corpus" "$crashes"
    dictionary=()
    [ -f "Tests/Fuzz/dict/$name.dict" ] && dictionary=(-dict="Tests/Fuzz/dict/$name.dict")
    budget=(-max_total_time="$seconds")
    [ -n "${RUNS:-}" ] && budget=(-runs="$RUNS")
    inputs=("$corpus" "Tests/Fuzz/corpus/$name")
    [ -d "Tests/Fuzz/regressions/$name" ] && inputs+=("Tests/Fuzz/regressions/$name")
    # Inputs as large as the thing decoded gets: a snapshot pointer input carries a whole sealed
    # snapshot; a modem dialogue or a handshake message fits in 1 KiB, and longer inputs there
    # only slow each execution down.
    case $name in
        snapshot-pointers) max_len=16384 ;;
        at-channel|carrier-marker|sync-handshake|card-json) max_len=1024 ;;
        *) max_len=4096 ;;
    esac
    log=$scratch/$name.log  # per build: a CI run beside a long one must not write into its log
    budget_text="$seconds s"
    [ -n "${RUNS:-}" ] && budget_text="$RUNS executions"
    echo "fuzz: $name for $budget_text (log $log)"
    # 1 GiB RSS and 256 MiB per allocation are far above what any decoder may take; 10 s for
    # one input is a hang.
    if SATCHEL_FUZZ_TARGET=$name "$binary" "${budget[@]}" -max_len=$max_len -rss_limit_mb=1024 -malloc_limit_mb=256 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$crashes/" "${dictionary[@]}" "$@" \
        "${inputs[@]}" >"$log" 2>&1; then
        grep -aE "^#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb" "$log" | sed "s/^/fuzz: $name: /"
    else
        failed=1
        echo "fuzz: $name FAILED (crash inputs in $crashes):"
        grep -aE "ERROR|Fatal error|FINDING|SUMMARY|Test unit written|timeout|out-of-memory" "$log" | head -20
    fi
done
exit $failed
