// swift-tools-version:6.0
// Satchel: offline field-sales agent (satchel), its hub (satchel-hub) and the simulator (satchel-sim).
// Layers (lower never import higher), see docs/architecture.md:
//   System         CSQLite · CZlib · CSodium · CLibPQ (hub only)
//   Foundations    SystemCalls (the libc I/O shim, typed Errno, fault driver) · Store · Postgres (hub only) ·
//                  Deflate · Seal · Transport (ByteStream, deadlines) · Journal (framed log, FileSystem seam)
//   Capabilities   Field · Backup · Modem · Sync
//   Orchestration  Agent (device) · Hub (hub)
//   Interface      Console (the rep's full-screen terminal UI, on Agent and Field)
//   Executables    satchel · satchel-hub · satchel-sim (Simulator/)
import PackageDescription

/// One set of settings for every target, so the whole tree follows the same rules.
/// Release builds optimise for size: the agent's budget is 16 MB stripped on the handheld, and
/// nothing in it is CPU-bound enough to miss -O (docs/benchmarks.md measures both).
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // Imports say what a file uses: a member is visible only where its module is imported
    // (SE-0444), and an import is internal unless marked public, so the declared dependencies
    // in this file and the imports in the sources agree.
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    // Each function in its own section, so the linker can drop what nothing calls.
    .unsafeFlags(["-Osize", "-Xfrontend", "-function-sections"], .when(configuration: .release)),
]

/// Unused sections dropped, identical code folded (generic specialisations often compile to the
/// same machine code), and no dynamic symbol table of our own (the toolchain exports every
/// symbol of an executable: 370 KB of names nothing looks up). hardware/build-release.sh
/// applies the same to the dependencies.
let smallExecutable: [LinkerSetting] = [
    .unsafeFlags(["-Xlinker", "--gc-sections", "-Xlinker", "--icf=all", "-Xlinker", "--no-export-dynamic"],
                 .when(platforms: [.linux], configuration: .release)),
]

let package = Package(
    name: "Satchel",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "satchel", targets: ["satchel"]),
        .executable(name: "satchel-hub", targets: ["satchel-hub"]),
        .executable(name: "satchel-sim", targets: ["satchel-sim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The hub's admin API and office web page only (never the device).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
    ],
    targets: [
        // System: the C libraries Debian ships, found through pkg-config.
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CSodium", path: "Sources/CSodium", pkgConfig: "libsodium",
                       providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CLibPQ", path: "Sources/CLibPQ", pkgConfig: "libpq",
                       providers: [.apt(["libpq-dev"])]),

        // Foundations: thin typed wrappers, nothing product-specific.
        // Store → Seal: the encrypted VFS (PageEncryption) seals each page with Seal's AEAD.
        .target(name: "Store", dependencies: ["CSQLite", "Seal"], swiftSettings: strict),
        .target(name: "Deflate", dependencies: ["CZlib"], swiftSettings: strict),
        .target(name: "Seal", dependencies: ["CSodium"], swiftSettings: strict),
        // Every libc I/O call of Transport, Journal, Modem and (through Journal) Backup, with EINTR
        // retried and a per-thread fault driver for tests.
        .target(name: "SystemCalls", swiftSettings: strict),
        .target(name: "Transport", dependencies: ["SystemCalls"], swiftSettings: strict),
        .target(name: "Journal", dependencies: ["SystemCalls"], swiftSettings: strict),
        // The hub's PostgreSQL client: libpq (Debian's), blocking like the hub's sessions. Hub only.
        .target(name: "Postgres", dependencies: ["CLibPQ"], swiftSettings: strict),

        // Capabilities.
        .target(name: "Modem", dependencies: ["Transport", "SystemCalls"], swiftSettings: strict),

        // Sync with the hub: the Noise channel, framing, message bodies and the working-set tables
        // (Store for their rows: the same SQL reads them on the hub and on the device).
        .target(name: "Sync", dependencies: ["Seal", "Transport", "Deflate", "Store", "Field"], swiftSettings: strict),
        // Power-loss safety: encrypted card journal, snapshots, restore.
        .target(name: "Backup", dependencies: ["Field", "Store", "Journal", "Seal"], swiftSettings: strict),
        // Orchestration on the device: capture ("saved"), card mirroring, snapshot triggers, battery, restore,
        // the device configuration, sync over TCP or the modem (Modem: the connect sequence).
        .target(name: "Agent", dependencies: ["Backup", "Field", "Store", "Journal", "Modem", "Seal", "Sync", "Transport", "SystemCalls"], swiftSettings: strict),
        // The rep's full-screen console (`satchel console`): its own termios/ANSI layer, pages, capture through Agent.
        .target(name: "Console", dependencies: ["Agent", "Backup", "Field", "Journal", "Sync"], swiftSettings: strict),
        // The field-sales domain on top of Store.
        .target(name: "Field", dependencies: ["Store", "SystemCalls"], swiftSettings: strict),

        // Executables.
        .executableTarget(
            name: "satchel",
            dependencies: ["Agent", "Backup", "Console", "Field", "Store", "Modem", "Sync", "Transport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict, linkerSettings: smallExecutable),
        // The hub: storage behind a protocol (SQLite embedded by default) and the sync server.
        .target(name: "Hub", dependencies: ["Field", "Store", "Postgres", "Seal", "Sync", "Transport"], swiftSettings: strict),
        // The back office's HTTP face: the JSON admin API and the server-rendered office web page.
        .target(name: "HubAdmin", dependencies: ["Hub", "Field", .product(name: "Hummingbird", package: "hummingbird")], swiftSettings: strict),
        .executableTarget(
            name: "satchel-hub",
            dependencies: ["Hub", "HubAdmin", "Field", "Sync", "Seal", "Transport", "Store", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict),

        // Simulator (may use Foundation: it runs on CI and benches, not on the handheld).
        .target(name: "SimulatorKit", dependencies: ["ModemSimulator", "Agent", "Field", "Store", "CSQLite", "Backup", "Hub", "Postgres", "Sync", "Seal", "Transport", "Deflate"],
                path: "Simulator/SimulatorKit", swiftSettings: strict),
        // A modem on a pty (SIMCom, Quectel, Huawei, generic dialects) and its shaped GPRS/EDGE link.
        // Written apart from the agent's Modem module on purpose: it checks the agent, not itself.
        .target(name: "ModemSimulator", dependencies: ["Transport"],
                path: "Simulator/ModemSimulator", swiftSettings: strict),
        .executableTarget(
            name: "satchel-sim",
            dependencies: ["SimulatorKit", "ModemSimulator", "Modem", "Transport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Simulator/satchel-sim", swiftSettings: strict),
        // The size and memory baseline the benchmark compares `satchel` against: a hello-world
        // built the same way (argument parser, static stdlib).
        .executableTarget(
            name: "bench-hello",
            dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Simulator/bench-hello", swiftSettings: strict, linkerSettings: smallExecutable),
        // The memory baseline of `satchel status`: the same hello-world, plus the system SQLite
        // opening the device database with Store's pragmas and running status's own statements.
        .executableTarget(
            name: "bench-sqlite-hello",
            dependencies: ["CSQLite", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Simulator/bench-sqlite-hello", swiftSettings: strict, linkerSettings: smallExecutable),

        // Coverage-guided fuzzing of every decoder of bytes from outside (Tests/Fuzz/README.md).
        // FuzzTargets: one harness per decoder; satchel-fuzz: in a normal build it replays corpus
        // files through them (and writes the seed corpus), built by Tests/Fuzz/run.sh with
        // `--sanitize fuzzer` in .build-fuzz it is a libFuzzer binary. Nothing else depends on them.
        .target(name: "FuzzTargets", dependencies: ["Modem", "Sync", "Deflate", "Backup", "Journal", "Seal", "Field", "Transport", "SatchelTesting"],
                path: "Tests/Fuzz/FuzzTargets", swiftSettings: strict),
        .executableTarget(name: "satchel-fuzz", dependencies: ["FuzzTargets", "Journal"], path: "Tests/Fuzz/satchel-fuzz", swiftSettings: strict),

        // Tests: one target per module, plus end-to-end tests that run the real executables.
        // SatchelTesting holds what they share: temporary homes, paths of the built executables.
        .target(name: "SatchelTesting", dependencies: ["Journal", "Field"], path: "Tests/SatchelTesting", swiftSettings: strict),
        .testTarget(name: "StoreTests", dependencies: ["Store", "Seal", "SatchelTesting"], swiftSettings: strict),
        .testTarget(name: "DeflateTests", dependencies: ["Deflate"], swiftSettings: strict),
        .testTarget(name: "SealTests", dependencies: ["Seal"], swiftSettings: strict),
        .testTarget(name: "TransportTests", dependencies: ["Transport", "SystemCalls"], swiftSettings: strict),
        .testTarget(name: "JournalTests", dependencies: ["Journal", "SystemCalls", "SatchelTesting"], swiftSettings: strict),
        .testTarget(name: "SyncTests", dependencies: ["Sync", "Seal", "Transport", "Field", "Store"], swiftSettings: strict),
        .testTarget(name: "HubTests", dependencies: ["Hub", "Postgres", "Sync", "Seal", "Transport", "SatchelTesting", "Agent", "Field", "Store"], swiftSettings: strict),
        .testTarget(name: "BackupTests", dependencies: ["Agent", "Backup", "Field", "Store", "Journal", "Seal", "SystemCalls", "SatchelTesting"], swiftSettings: strict),
        .testTarget(name: "ModemTests", dependencies: ["Modem", "ModemSimulator", "Transport", "SystemCalls", "SatchelTesting"], swiftSettings: strict),
        .testTarget(name: "ConsoleTests", dependencies: ["Console"], swiftSettings: strict),
        .testTarget(name: "FieldTests", dependencies: ["Field", "Store", "SatchelTesting"], swiftSettings: strict),
        .testTarget(name: "FuzzTests", dependencies: ["FuzzTargets"], swiftSettings: strict),
        .testTarget(name: "EndToEndTests", dependencies: ["SimulatorKit", "Field", "Store", "SatchelTesting", "Hub", "Seal", "ModemSimulator", "Sync", "Deflate", "Transport", "Postgres"], swiftSettings: strict),
    ]
)
