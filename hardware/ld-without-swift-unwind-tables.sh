#!/usr/bin/env bash
# The linker hardware/build-release.sh links the device executables with (clang runs it in place of
# ld.lld, with ld.lld's arguments): ld.lld itself, given each compiled Swift source object
# (`*.swift.o`: ours and the argument parser's) without its DWARF unwind table (.eh_frame).
#
# Why: the Swift compiler gives every function an unwind table entry, but nothing ever unwinds
# through Swift code with it. Swift errors are ordinary returns, not exceptions; nothing in the
# device executables throws a C++ exception (no Swift target uses C++ interop; SQLite, zlib and
# libsodium are C); nothing calls pthread_exit or pthread_cancel; and the Swift runtime's crash
# backtracer walks frame pointers on Linux (Runtime.Backtrace.capture uses FramePointerUnwinder for
# every algorithm, the compiler keeps the frame pointer in every function that calls another). The
# tables were 557,056 B of the stripped `satchel` (.eh_frame plus its .eh_frame_hdr index), a third
# of the toolchain's own, which stay (the runtime and Foundation are linked from archives). A
# debugger or `perf --call-graph=dwarf` then unwinds Swift frames by frame pointer as well.
#
# Only the executables the size and memory goals of `bench capture` measure get this (satchel and
# its two hello-world baselines, built the same way); any other output is linked unchanged.
set -euo pipefail
# build-release.sh names the toolchain's ld.lld (this script is found as ld.lld before it).
lld="${SATCHEL_REAL_LLD:?SATCHEL_REAL_LLD: the path of the real ld.lld (hardware/build-release.sh sets it)}"
if [[ ! -x "$lld" || "$(realpath "$lld")" == "$(realpath "$0")" ]]; then
    echo "ld-without-swift-unwind-tables.sh: SATCHEL_REAL_LLD=$lld is not the toolchain's ld.lld" >&2
    exit 1
fi

output=""
previous=""
for argument in "$@"; do
    [[ "$previous" == "-o" ]] && output="$argument"
    previous="$argument"
done
case "$(basename "$output")" in
    satchel|bench-hello|bench-sqlite-hello) ;;
    *) exec "$lld" "$@" ;;
esac

work="$(mktemp -d "${TMPDIR:-/tmp}/satchel-ld.XXXXXX")"
trap 'rm -rf "$work"' EXIT
arguments=()
count=0
for argument in "$@"; do
    if [[ "$argument" == *.swift.o && -f "$argument" ]]; then
        count=$((count + 1))
        copy="$work/$count-$(basename "$argument")"
        objcopy --remove-section=.eh_frame --remove-section=.rela.eh_frame "$argument" "$copy"
        arguments+=("$copy")
    else
        arguments+=("$argument")
    fi
done
"$lld" "${arguments[@]}"
