// swift-tools-version:5.9
// The gridsync bindings as a Swift package. An iOS app adds this folder by path
// (Xcode: File > Add Package Dependencies… > Add Local…, or
// `.package(path: "…/bindings/swift")`) and imports `Gridsync`.
//
// GridsyncFFI.xcframework (the static Rust library for devices and the simulator, with
// the C header and module map) is built on a Mac into this folder; see README.md.
// Sources/Gridsync/gridsync_ffi.swift links to ios-demo/Generated/gridsync_ffi.swift,
// the one checked-in copy of the generated Swift, kept current by scripts/bindings.
import PackageDescription

let package = Package(
    name: "Gridsync",
    platforms: [.iOS(.v15)],
    products: [
        .library(name: "Gridsync", targets: ["Gridsync"]),
    ],
    targets: [
        .binaryTarget(name: "GridsyncFFI", path: "GridsyncFFI.xcframework"),
        .target(
            name: "Gridsync",
            dependencies: ["GridsyncFFI"],
            path: "Sources/Gridsync",
            linkerSettings: [
                // What Rust's std and the crates need from the system (the
                // native-static-libs line of the build).
                .linkedLibrary("iconv"),
                .linkedFramework("CoreFoundation"),
            ]
        ),
    ]
)
