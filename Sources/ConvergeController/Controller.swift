import ConvergeCore
import ConvergeRuntime
import ConvergeStore
import ConvergeWorkflow
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// `converge controller`: the reconcile of the CLI, forever, as services under one
/// swift-service-lifecycle group: the HTTP server, leader election, and the source loops.
///
/// SIGTERM (or SIGINT) shuts it down gracefully, in reverse order of start: the source loops
/// close the step gate, so the run in flight finishes its current steps and stops resumable;
/// then the leader lease is released, so another replica takes over at once; then the HTTP
/// server stops.
public final class Controller: Sendable {
    public struct Configuration: Sendable {
        public var sources: [SourceConfiguration]
        public var host: String
        public var port: Int
        public var tokens: APITokens
        /// The shared secret of the webhook receivers; nil turns them off.
        public var webhookSecret: WebhookSecret?
        public var leaderElection: LeaderElector.Timing
        public var workflow: WorkflowOptions
        public var parallelism: Int
        /// Each interval is stretched or shrunk by up to this fraction, so replicas of many
        /// controllers do not fetch in step.
        public var jitter: Double
        /// How often the snapshot retention pass runs on the leader.
        public var retentionEvery: Duration
        public var gitCache: String
        /// Where other replicas reach this one's API (`http://10.1.2.3:8080`), written into
        /// its leader identity; followers forward webhooks to the leader's. Nil: no forwarding.
        public var advertisedURL: String?
        /// The engine's fault hook, for crash tests; none in normal use.
        public var faults: FaultHook?
        /// Sends the steps of targets served by workers to their pools (`--workers`); none runs
        /// every step in the controller.
        public var dispatcher: (any StepDispatcher)?

        public init(
            sources: [SourceConfiguration], host: String = "0.0.0.0", port: Int = 8080, tokens: APITokens,
            webhookSecret: WebhookSecret? = nil, leaderElection: LeaderElector.Timing = .init(), workflow: WorkflowOptions,
            parallelism: Int = 8, jitter: Double = 0.1, retentionEvery: Duration = .seconds(3600), gitCache: String,
            faults: FaultHook? = nil
        ) {
            self.faults = faults
            self.sources = sources
            self.host = host
            self.port = port
            self.tokens = tokens
            self.webhookSecret = webhookSecret
            self.leaderElection = leaderElection
            self.workflow = workflow
            self.parallelism = parallelism
            self.jitter = jitter
            self.retentionEvery = retentionEvery
            self.gitCache = gitCache
        }
    }

    let configuration: Configuration
    let elector: LeaderElector
    let metrics: ControllerMetrics
    let store: any WorkflowStore
    let tokens: APITokens
    let webhookSecret: WebhookSecret?
    let deliveries = DeliveryLog()
    let logger: Logger
    private let shutdown: ShutdownFlag
    private let leadership: (stream: AsyncStream<Bool>, continuation: AsyncStream<Bool>.Continuation)
    /// Where sources come from besides `configuration.sources`: a cluster's `ConvergeSource`s.
    private let catalog: ConvergeSourceCatalog?
    private let runtime: Runtime
    private let gate: StepGate
    /// The sources by name, with the generation of the object each came from (catalog only).
    private let registry = Mutex<[String: (source: SourceController, generation: Int?)]>([:])
    private let stopCatalog = Mutex<(@Sendable () -> Void)?>(nil)

    /// The sources, by name.
    var sources: [SourceController] {
        registry.withLock { $0.values.map(\.source) }.sorted { $0.configuration.name < $1.configuration.name }
    }

    /// A controller of `configuration.sources`, and of the `ConvergeSource`s of `catalog`
    /// as they come and go.
    public init(
        configuration: Configuration, runtime: Runtime, store: any WorkflowStore, lock: any LeaderLock,
        catalog: ConvergeSourceCatalog? = nil,
        logger: Logger
    ) throws {
        let names = configuration.sources.map(\.name)
        if let repeated = names.first(where: { name in names.filter { $0 == name }.count > 1 }) {
            throw ControllerError("two sources are named '\(repeated)'", hint: "each source is an instance and needs a name of its own")
        }
        self.configuration = configuration
        self.store = store
        self.tokens = configuration.tokens
        self.webhookSecret = configuration.webhookSecret
        self.logger = logger
        let leadership = AsyncStream<Bool>.makeStream()
        self.leadership = leadership
        let elector = LeaderElector(
            lock: lock, identity: LeaderElector.identity(advertising: configuration.advertisedURL), timing: configuration.leaderElection,
            logger: logger, changed: { leadership.continuation.yield($0) })
        let shutdown = ShutdownFlag()
        let gate = StepGate {
            if shutdown.isSet { return "the controller is shutting down" }
            return elector.isLeader ? nil : "this replica is not the leader"
        }
        self.elector = elector
        self.shutdown = shutdown
        metrics = ControllerMetrics()
        self.catalog = catalog
        self.runtime = runtime
        self.gate = gate
        for source in configuration.sources {
            let controller = makeSource(source, statusChanged: nil)
            registry.withLock { $0[source.name] = (controller, nil) }
        }
    }

    func source(named name: String) -> SourceController? {
        registry.withLock { $0[name]?.source }
    }

    private func makeSource(_ source: SourceConfiguration, statusChanged: (@Sendable (SourceStatus) async -> Void)?) -> SourceController {
        SourceController(
            source, runtime: runtime, store: store, gate: gate, metrics: metrics, logger: logger, options: configuration.workflow,
            parallelism: configuration.parallelism, gitCache: configuration.gitCache, faults: configuration.faults,
            dispatcher: configuration.dispatcher, statusChanged: statusChanged)
    }

    /// Brings the sources in line with the catalog's entries: a source whose object went away
    /// or changed is stopped (after the reconcile in hand); a new or changed one is started
    /// with `start`.
    private func apply(_ entries: [ConvergeSourceCatalog.Entry], catalog: ConvergeSourceCatalog, start: (SourceController) -> Void) {
        let wanted = Dictionary(entries.map { ($0.configuration.name, $0) }, uniquingKeysWith: { first, _ in first })
        let started = registry.withLock { registry -> [SourceController] in
            for (name, current) in registry {
                guard let generation = current.generation else { continue }
                if let entry = wanted[name], entry.configuration == current.source.configuration, entry.generation == generation {
                    continue
                }
                current.source.stop()
                registry[name] = nil
            }
            var started: [SourceController] = []
            for entry in entries where registry[entry.configuration.name] == nil {
                let name = entry.configuration.name
                let source = makeSource(entry.configuration) { status in
                    await catalog.write(status, name: name, generation: entry.generation)
                }
                registry[name] = (source, entry.generation)
                started.append(source)
            }
            return started
        }
        for source in started {
            logger.info("reconciling ConvergeSource \(catalog.namespace)/\(source.configuration.name)")
            start(source)
        }
    }

    /// Runs until a shutdown signal (when `signals` is true) or cancellation. `listening` is
    /// told the port the server bound (useful with port 0).
    public func run(signals: Bool = true, listening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let application = Application(
            router: ControllerAPI(controller: self).router(),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port), serverName: "converge"),
            onServerRunning: { channel in await listening(channel.localAddress?.port ?? 0) },
            logger: logger)
        let loops = SourceLoops(controller: self)
        let services: [ServiceGroupConfiguration.ServiceConfiguration] = [application as any Service, elector, loops].map {
            .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services, gracefulShutdownSignals: signals ? [.sigterm, .sigint] : [], logger: logger))
        try await group.run()
    }

    /// The source loops as one service; on graceful shutdown they close the gate and finish.
    private struct SourceLoops: Service {
        let controller: Controller

        func run() async throws {
            await withGracefulShutdownHandler {
                await withTaskGroup(of: Void.self) { group in
                    let configuration = controller.configuration
                    for source in controller.sources {
                        group.addTask { await source.run(jitter: configuration.jitter, retentionEvery: configuration.retentionEvery) }
                    }
                    group.addTask {
                        // A new leader looks at every source at once: interrupted runs resume now.
                        for await leads in controller.leadership.stream where leads {
                            for source in controller.sources { source.enqueue(.requested("became the leader")) }
                        }
                    }
                    if let catalog = controller.catalog, !controller.shutdown.isSet {
                        let updates = catalog.updates()
                        controller.stopCatalog.withLock { $0 = updates.stop }
                        for await entries in updates.stream {
                            controller.apply(entries, catalog: catalog) { source in
                                group.addTask {
                                    await source.run(jitter: configuration.jitter, retentionEvery: configuration.retentionEvery)
                                }
                            }
                        }
                    }
                    // Each ends on shutdown: the loops when their queue is finished, after the
                    // reconcile in hand; never cancelled, which would cut a step off mid-flight.
                    await group.waitForAll()
                }
            } onGracefulShutdown: {
                controller.logger.info("shutting down: the steps in flight finish, then the leader lease is released")
                controller.shutdown.set()
                controller.stopCatalog.withLock { $0?() }
                for source in controller.sources { source.stop() }
                controller.leadership.continuation.finish()
            }
        }
    }
}

/// Set once, when the controller begins to shut down.
final class ShutdownFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
