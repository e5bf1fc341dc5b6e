#!/usr/bin/env bash
# Builds the release executables for a device image the way the size budget is measured
# (docs/benchmarks.md): static Swift stdlib, optimised for size, one section per function with
# unused ones dropped, identical code folded, stripped, linked by lld with the relative
# relocations packed (RELR: about 1 MB of a static Swift binary's .rela.dyn becomes 8 KB, on disk
# and in the pages the loader reads at start-up; needs glibc 2.36 or later on the device, and a
# binary run on an older one stops at once with "GLIBC_ABI_DT_RELR not found"), and the functions
# the everyday commands run placed together at the front of .text (hardware/startup-order.txt,
# made by hardware/startup-order.sh: resident text is every 64 KiB window a process touches, so
# 0.5 MB of code spread over the binary costs 5 MB; names the file lacks are placed after, without
# a warning, so a stale file costs memory, never behaviour). Output: <out>/{satchel,satchel-hub,satchel-sim,bench-hello,bench-sqlite-hello}.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.build-release/image}"
scratch=.build-release
# The order file is read by the link, but the build system does not track its content: a changed
# hardware/startup-order.txt would leave the executables linked by the old one. Removing them makes
# this build link them again (lld: seconds), so the image always has the order the file says.
for binary in satchel satchel-hub satchel-sim bench-hello bench-sqlite-hello; do rm -f "$scratch/release/$binary"; done
# The link runs hardware/ld-without-swift-unwind-tables.sh in place of ld.lld: the device executables
# get no DWARF unwind tables for Swift code, theirs or the runtime's, which nothing uses (1,777,664 B
# of satchel; the script says why that is safe). Clang looks for ld.lld in COMPILER_PATH first; an
# environment variable, not a flag, so the compile commands stay the same and an incremental build
# stays incremental. The runtime's archives without the tables are made once, in the scratch path.
linker_dir="$(mktemp -d "${TMPDIR:-/tmp}/satchel-linker.XXXXXX")"
trap 'rm -rf "$linker_dir"' EXIT
ln -s "$PWD/hardware/ld-without-swift-unwind-tables.sh" "$linker_dir/ld.lld"
toolchain="$(dirname "$(dirname "$(realpath "$(command -v swiftc)")")")"
export SATCHEL_REAL_LLD="$toolchain/bin/ld.lld"
export SATCHEL_STDLIB_WITHOUT_UNWIND_TABLES="$PWD/$scratch/stdlib-without-unwind-tables"
hardware/ld-without-swift-unwind-tables.sh --prepare "$toolchain/lib/swift_static/linux" "$SATCHEL_STDLIB_WITHOUT_UNWIND_TABLES"
COMPILER_PATH="$linker_dir${COMPILER_PATH:+:$COMPILER_PATH}" \
swift build -c release --static-swift-stdlib --scratch-path "$scratch" \
    -Xswiftc -Osize -Xswiftc -Xfrontend -Xswiftc -function-sections -Xswiftc -use-ld=lld \
    -Xlinker --gc-sections -Xlinker --icf=all -Xlinker --no-export-dynamic -Xlinker -z -Xlinker pack-relative-relocs \
    -Xlinker "--symbol-ordering-file=$PWD/hardware/startup-order.txt" -Xlinker --no-warn-symbol-ordering
mkdir -p "$out"
for binary in satchel satchel-hub satchel-sim bench-hello bench-sqlite-hello; do
    cp "$scratch/release/$binary" "$out/$binary"
    strip "$out/$binary"
done
ls -l "$out"
