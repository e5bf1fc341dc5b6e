#!/usr/bin/env bash
# The linker hardware/build-release.sh links the device executables with (clang runs it in place of
# ld.lld, with ld.lld's arguments): ld.lld itself, given the Swift code without its DWARF unwind
# tables (.eh_frame): each compiled Swift source object (`*.swift.o`: ours and the argument
# parser's) stripped of them, and the Swift runtime's and Foundation's archives searched first in a
# copy whose Swift members are stripped of them (made once by `--prepare`, below).
#
# Why: the Swift compiler gives every function an unwind table entry, but nothing ever unwinds
# through Swift code with it. Swift errors are ordinary returns, not exceptions; nothing in the
# device executables throws a C++ exception (no Swift target uses C++ interop; SQLite, zlib and
# libsodium are C); nothing calls pthread_exit or pthread_cancel; and the Swift runtime's crash
# backtracer walks frame pointers on Linux (Runtime.Backtrace.capture uses FramePointerUnwinder for
# every algorithm; the compiler keeps the frame pointer in every function that calls another). A
# fatal error prints the same message and stops with the same signal either way (checked:
# `Fatal error: ...`, SIGILL). A debugger or `perf --call-graph=dwarf` unwinds Swift frames by frame
# pointer as well. The C and C++ parts of the runtime (its C++ members, libdispatch, libBlocksRuntime,
# libstdc++, libgcc, glibc) keep their tables untouched.
#
# The tables were 1,777,664 B of the stripped `satchel` (.eh_frame plus its .eh_frame_hdr index):
# 557,056 B from our objects and the argument parser's, 1,220,608 B from the toolchain's archives.
#
# Only the executables the size and memory goals of `bench capture` measure get this (satchel and
# its two hello-world baselines, built the same way); any other output is linked unchanged.
#
#   ld-without-swift-unwind-tables.sh --prepare STATIC_LIB_DIR OUT_DIR
#       writes OUT_DIR/lib<name>.a for the Swift archives the device executables link (a copy is
#       made again only when the toolchain's archive is newer); build-release.sh runs it.
#   ld-without-swift-unwind-tables.sh LD_ARGUMENTS...
#       the link; SATCHEL_REAL_LLD names the toolchain's ld.lld, SATCHEL_STDLIB_WITHOUT_UNWIND_TABLES
#       the OUT_DIR of --prepare.
set -euo pipefail

strip_unwind_tables() { objcopy --remove-section=.eh_frame --remove-section=.rela.eh_frame "$@"; }

if [[ "${1:-}" == "--prepare" ]]; then
    static="$2" out="$3"
    mkdir -p "$out"
    # The archives of Swift modules `satchel` links (static-stdlib-args.lnk and the autolink entries).
    for name in swiftCore swift_Concurrency swift_StringProcessing swift_RegexParser swiftSynchronization \
                swiftGlibc FoundationEssentials _FoundationCollections; do
        source="$static/lib$name.a" target="$out/lib$name.a"
        [[ -f "$source" ]] || { echo "ld-without-swift-unwind-tables.sh: no $source" >&2; exit 1; }
        [[ -f "$target" && "$target" -nt "$source" ]] && continue
        work="$(mktemp -d "${TMPDIR:-/tmp}/satchel-stdlib.XXXXXX")"
        # A member is Swift code if the Swift compiler wrote it: it has a .swift_modhash section.
        mapfile -t swift < <(readelf -SW "$source" | awk '/^File: /{file=$2} /\.swift_modhash/{print file}' | sort -u \
                             | sed 's/^.*(\(.*\))$/\1/')
        total="$(ar t "$source" | wc -l)"
        if [[ "${#swift[@]}" -eq 0 ]]; then
            echo "ld-without-swift-unwind-tables.sh: no Swift member in $source" >&2; exit 1
        elif [[ "${#swift[@]}" -eq "$total" ]]; then
            strip_unwind_tables "$source" "$work/lib.a"
        else
            # Mixed (the runtime's C++ beside its Swift module): replace the Swift members only.
            cp "$source" "$work/lib.a"
            for member in "${swift[@]}"; do
                if [[ "$(ar t "$source" | grep -cxF "$member")" -ne 1 ]]; then
                    echo "ld-without-swift-unwind-tables.sh: $source holds $member more than once" >&2; exit 1
                fi
                (cd "$work" && ar x "$source" "$member" && strip_unwind_tables "$member" && ar r lib.a "$member" && rm "$member")
            done
        fi
        mv "$work/lib.a" "$target"
        rm -rf "$work"
    done
    exit 0
fi

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

stdlib="${SATCHEL_STDLIB_WITHOUT_UNWIND_TABLES:?SATCHEL_STDLIB_WITHOUT_UNWIND_TABLES: the --prepare directory (hardware/build-release.sh sets it)}"
[[ -f "$stdlib/libswiftCore.a" ]] || { echo "ld-without-swift-unwind-tables.sh: no $stdlib/libswiftCore.a (run --prepare)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/satchel-ld.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# Searched before the toolchain's own directory, which the arguments name next.
arguments=("-L$stdlib")
count=0
for argument in "$@"; do
    if [[ "$argument" == *.swift.o && -f "$argument" ]]; then
        count=$((count + 1))
        copy="$work/$count-$(basename "$argument")"
        strip_unwind_tables "$argument" "$copy"
        arguments+=("$copy")
    else
        arguments+=("$argument")
    fi
done
"$lld" "${arguments[@]}"
