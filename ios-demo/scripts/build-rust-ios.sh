#!/usr/bin/env bash
# Build libgridsync_ffi for iOS and wrap it for Xcode, on a Mac with Xcode and rustup:
#
#   ios-demo/scripts/build-rust-ios.sh [release|debug] [--bindings]
#
# - a static library for aarch64-apple-ios (devices) and aarch64-apple-ios-sim
#   (the simulator on Apple silicon), built with `cargo rustc --crate-type staticlib`
#   because bindings/Cargo.toml declares a cdylib and an rlib (what the Python and
#   Kotlin tests load) and an iOS app links a static library;
# - ios-demo/Frameworks/GridsyncFFI.xcframework holding both, with
#   Generated/gridsync_ffiFFI.h and the module map renamed module.modulemap, so that
#   `import gridsync_ffiFFI` in Generated/gridsync_ffi.swift resolves.
#
# --bindings first regenerates ios-demo/Generated from a host build (macOS names the
# library .dylib; scripts/bindings, which runs on Linux, expects .so). Generated/ is
# otherwise kept current by scripts/bindings and checked by scripts/test.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
profile="release"
regenerate=0
for arg in "$@"; do
    case "$arg" in
        release|debug) profile="$arg" ;;
        --bindings) regenerate=1 ;;
        *) echo "usage: $0 [release|debug] [--bindings]" >&2; exit 2 ;;
    esac
done
flag=""
[ "$profile" = release ] && flag="--release"

command -v xcodebuild >/dev/null || { echo "xcodebuild not found: run this on a Mac with Xcode" >&2; exit 1; }
cd "$repo"

if [ "$regenerate" = 1 ]; then
    cargo build -p gridsync-ffi --locked
    target/debug/uniffi-bindgen generate --library target/debug/libgridsync_ffi.dylib \
        --language swift --out-dir ios-demo/Generated
fi

# Match the app's deployment target so the linker does not warn about newer objects.
export IPHONEOS_DEPLOYMENT_TARGET=17.0
targets=(aarch64-apple-ios aarch64-apple-ios-sim)
rustup target add "${targets[@]}"
for target in "${targets[@]}"; do
    cargo rustc -p gridsync-ffi --lib --locked $flag --target "$target" --crate-type staticlib \
        -- --print native-static-libs
done

headers="$(mktemp -d)"
trap 'rm -rf "$headers"' EXIT
cp ios-demo/Generated/gridsync_ffiFFI.h "$headers/"
cp ios-demo/Generated/gridsync_ffiFFI.modulemap "$headers/module.modulemap"

out="$here/Frameworks/GridsyncFFI.xcframework"
rm -rf "$out"
mkdir -p "$here/Frameworks"
xcodebuild -create-xcframework \
    -library "target/aarch64-apple-ios/$profile/libgridsync_ffi.a" -headers "$headers" \
    -library "target/aarch64-apple-ios-sim/$profile/libgridsync_ffi.a" -headers "$headers" \
    -output "$out"
echo "built $out ($profile); now: cd ios-demo && xcodegen generate && open GridsyncDemo.xcodeproj"
