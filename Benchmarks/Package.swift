// swift-tools-version: 6.1
// Benchmarks for Converge: a separate package so the main build never compiles them.
// Build and run from this folder: `swift build -c release && .build/release/converge-bench all`.
import Foundation
import PackageDescription

// A path dependency's identity is its folder's name (`main` in /work/main), which differs
// between clones; derive it rather than hard-code it.
let convergeFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let convergeIdentity = convergeFolder.lastPathComponent.lowercased()

let package = Package(
    name: "ConvergeBenchmarks",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "converge-bench", targets: ["converge-bench"]),
    ],
    dependencies: [
        .package(path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "converge-bench",
            dependencies: [
                .product(name: "ConvergeCore", package: convergeIdentity),
                .product(name: "ConvergeDocker", package: convergeIdentity),
                .product(name: "ConvergeGit", package: convergeIdentity),
                .product(name: "ConvergeStore", package: convergeIdentity),
                .product(name: "ConvergeStorePostgres", package: convergeIdentity),
                .product(name: "ConvergeWorkflow", package: convergeIdentity),
                .product(name: "ConvergeVSphere", package: convergeIdentity),
                .product(name: "ConvergeKubernetes", package: convergeIdentity),
                .product(name: "ConvergeRuntime", package: convergeIdentity),
                .product(name: "ConvergeTestSupport", package: convergeIdentity),
            ]
        ),
    ]
)
