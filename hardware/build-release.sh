#!/usr/bin/env bash
# Builds the release executables for a device image the way the size budget is measured
# (docs/benchmarks.md): static Swift stdlib, optimised for size, one section per function with
# unused ones dropped, identical code folded, stripped. Output: <out>/{satchel,satchel-hub,satchel-sim,bench-hello,bench-sqlite-hello}.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.build-release/image}"
scratch=.build-release
swift build -c release --static-swift-stdlib --scratch-path "$scratch" \
    -Xswiftc -Osize -Xswiftc -Xfrontend -Xswiftc -function-sections \
    -Xlinker --gc-sections -Xlinker --icf=all -Xlinker --no-export-dynamic
mkdir -p "$out"
for binary in satchel satchel-hub satchel-sim bench-hello bench-sqlite-hello; do
    cp "$scratch/release/$binary" "$out/$binary"
    strip "$out/$binary"
done
ls -l "$out"
