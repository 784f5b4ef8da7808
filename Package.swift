// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Converge",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "converge", targets: ["converge"]),
        .library(name: "ConvergeCore", targets: ["ConvergeCore"]),
        .library(name: "ConvergeGit", targets: ["ConvergeGit"]),
        .library(name: "ConvergeDocker", targets: ["ConvergeDocker"]),
        .library(name: "ConvergeStore", targets: ["ConvergeStore"]),
        .library(name: "ConvergeStorePostgres", targets: ["ConvergeStorePostgres"]),
        .library(name: "ConvergeWorkflow", targets: ["ConvergeWorkflow"]),
        .library(name: "ConvergeVSphere", targets: ["ConvergeVSphere"]),
        .library(name: "ConvergeKubernetes", targets: ["ConvergeKubernetes"]),
        .library(name: "ConvergeAnsible", targets: ["ConvergeAnsible"]),
        .library(name: "ConvergeRollouts", targets: ["ConvergeRollouts"]),
        .library(name: "ConvergeRuntime", targets: ["ConvergeRuntime"]),
        .library(name: "ConvergeWorkers", targets: ["ConvergeWorkers"]),
        .library(name: "ConvergeHTTP", targets: ["ConvergeHTTP"]),
        .library(name: "ConvergeForge", targets: ["ConvergeForge"]),
        .library(name: "ConvergeController", targets: ["ConvergeController"]),
        .library(name: "ConvergeTestSupport", targets: ["ConvergeTestSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The one HTTP client layer of the providers: unix sockets, TLS, pooling, streaming.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        // Already built for postgres-nio; the vSphere target's TLS settings.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.27.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.21.0"),
        // The controller: its HTTP server (API, webhooks, health, metrics), services with
        // graceful shutdown, Prometheus metrics, logs.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.20.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // Pure model: manifests, validation, diff, plan, renderers, the provider plug-in
        // contract. No I/O, and no provider's kinds.
        .target(
            name: "ConvergeCore",
            dependencies: [
                "Yams",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Debian's libgit2-dev, found through pkg-config.
        .systemLibrary(
            name: "Clibgit2",
            pkgConfig: "libgit2",
            providers: [.apt(["libgit2-dev"])]
        ),
        // Reads manifests from a commit's tree without a checkout.
        .target(name: "ConvergeGit", dependencies: ["ConvergeCore", "Clibgit2"]),
        // The providers' one HTTP layer on AsyncHTTPClient: a transport per target (unix socket
        // or URL with its own trust settings), deadlines, body caps, classified errors.
        .target(
            name: "ConvergeHTTP",
            dependencies: [
                "ConvergeCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Docker Engine API over its unix socket; the plug-in for DockerHost, Network, Container
        // and the network kinds on them (Router, FirewallPolicy with nftables/iptables, Probe).
        .target(
            name: "ConvergeDocker",
            dependencies: [
                "ConvergeCore",
                "ConvergeHTTP",
                "Yams",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // vCenter over the vim25 SOAP API; the plug-in for VCenter and VirtualMachine.
        .target(
            name: "ConvergeVSphere",
            dependencies: [
                "ConvergeCore",
                "ConvergeHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Kubernetes API servers over the shared HTTP layer; the plug-in for KubernetesCluster
        // and every object of another apiVersion (server-side apply, health gates, prune).
        .target(
            name: "ConvergeKubernetes",
            dependencies: [
                "ConvergeCore",
                "ConvergeHTTP",
                "Yams",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Ansible playbooks on inventories (Debian's ansible-playbook, jsonl callback), on commits
        // and on schedules, with vCenter snapshots before them; the plug-in for Inventory,
        // Playbook and PlaybookRun.
        .target(
            name: "ConvergeAnsible",
            dependencies: ["ConvergeCore", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // Blue-green rollouts behind HAProxy entry points (switched through the runtime API) and
        // pipelines of them in waves, on Docker hosts; the plug-in for Rollout and Pipeline.
        .target(
            name: "ConvergeRollouts",
            dependencies: [
                "ConvergeCore", "ConvergeDocker",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Debian's libsqlite3-dev, found through pkg-config.
        .systemLibrary(
            name: "Csqlite3",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // The run journal: the store protocol, its schema, and the embedded SQLite backend.
        .target(name: "ConvergeStore", dependencies: ["Csqlite3"]),
        // The same store on PostgreSQL, for processes and replicas sharing work.
        .target(
            name: "ConvergeStorePostgres",
            dependencies: [
                "ConvergeStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        // Durable runs: journal, retries, leases, approvals, rollback (saga), resume.
        .target(name: "ConvergeWorkflow", dependencies: ["ConvergeCore", "ConvergeStore"]),
        // Workers that run steps where their targets are: the signed jobs of the PostgreSQL
        // queue, the engine's dispatcher and `converge worker`'s claim loop.
        .target(
            name: "ConvergeWorkers",
            dependencies: ["ConvergeCore", "ConvergeStore", "ConvergeWorkflow", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // What the CLI and the controller share: plug-in registry, stores by location, manifest
        // sources, the reconcile tick, probes, reports, snapshot retention. Knows no provider.
        .target(
            name: "ConvergeRuntime",
            dependencies: ["ConvergeCore", "ConvergeGit", "ConvergeStore", "ConvergeStorePostgres", "ConvergeWorkflow"]
        ),
        // Pull requests on GitHub, Gitea/Forgejo and GitLab: the plan posted as a comment, the
        // `converge/plan` status, and the reviews and comments that approve a plan's digest.
        .target(
            name: "ConvergeForge",
            dependencies: [
                "ConvergeCore", "ConvergeHTTP", "ConvergeRuntime",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // `converge controller`: the reconcile loop as long-running services: source polling and
        // webhooks, drift, leader election (store lease or Kubernetes Lease), the HTTP API,
        // metrics. Knows no provider; the CLI hands it the plug-ins.
        .target(
            name: "ConvergeController",
            dependencies: [
                "ConvergeCore", "ConvergeGit", "ConvergeRuntime", "ConvergeStore", "ConvergeWorkflow", "ConvergeKubernetes", "ConvergeHTTP",
                "ConvergeForge",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The CLI: parses, calls the runtime, prints, picks the exit code. Lists the plug-ins.
        .executableTarget(
            name: "converge",
            dependencies: [
                "ConvergeCore", "ConvergeGit", "ConvergeRuntime", "ConvergeStore", "ConvergeWorkflow", "ConvergeDocker", "ConvergeVSphere",
                "ConvergeKubernetes", "ConvergeAnsible", "ConvergeRollouts", "ConvergeController", "ConvergeHTTP", "ConvergeForge", "ConvergeWorkers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // For tests and benchmarks: manifest fixtures, scripted provider and store, manual
        // clock, throwaway databases, process runner, background servers, the forge test server.
        .target(
            name: "ConvergeTestSupport",
            dependencies: [
                "ConvergeCore", "ConvergeStore", "ConvergeStorePostgres", "ConvergeWorkflow", "ConvergeHTTP", "Csqlite3",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "ConvergeCoreTests", dependencies: ["ConvergeCore"]),
        .testTarget(
            name: "ConvergeRuntimeTests",
            dependencies: ["ConvergeRuntime", "ConvergeDocker", "ConvergeVSphere", "ConvergeTestSupport"],
            exclude: ["Corpus"]),
        .testTarget(name: "ConvergeVSphereTests", dependencies: ["ConvergeVSphere", "ConvergeTestSupport"]),
        .testTarget(
            name: "ConvergeKubernetesTests",
            dependencies: ["ConvergeKubernetes", "ConvergeRuntime", "ConvergeDocker", "ConvergeStore", "ConvergeTestSupport"]),
        .testTarget(name: "ConvergeGitTests", dependencies: ["ConvergeGit"]),
        .testTarget(
            name: "ConvergeAnsibleTests",
            dependencies: ["ConvergeAnsible", "ConvergeCore", "ConvergeRuntime", "ConvergeVSphere", "ConvergeStore", "ConvergeTestSupport"]),
        .testTarget(name: "ConvergeRolloutsTests", dependencies: ["ConvergeRollouts", "ConvergeCore", "ConvergeDocker"]),
        .testTarget(name: "ConvergeForgeTests", dependencies: ["ConvergeForge", "ConvergeCore", "ConvergeTestSupport"]),
        .testTarget(name: "ConvergeStoreTests", dependencies: ["ConvergeStore", "ConvergeStorePostgres", "ConvergeTestSupport"]),
        .testTarget(
            name: "ConvergeWorkflowTests",
            dependencies: ["ConvergeWorkflow", "ConvergeStore", "ConvergeCore", "ConvergeDocker", "ConvergeTestSupport"]),
        .testTarget(
            name: "ConvergeDockerTests", dependencies: ["ConvergeCore", "ConvergeDocker", "ConvergeHTTP", "ConvergeTestSupport"],
            exclude: ["Fixtures"]),
        .testTarget(
            name: "ConvergeEndToEndTests",
            dependencies: [
                "ConvergeCore", "ConvergeDocker", "ConvergeHTTP", "ConvergeVSphere", "ConvergeForge", "ConvergeRollouts",
                "ConvergeRuntime", "ConvergeStore", "ConvergeStorePostgres", "ConvergeWorkers", "ConvergeWorkflow", "ConvergeTestSupport",
                "converge",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
    ]
)
