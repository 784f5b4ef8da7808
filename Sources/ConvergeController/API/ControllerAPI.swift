import ConvergeCore
import ConvergeForge
import ConvergeHTTP
import ConvergeRuntime
import ConvergeStore
import ConvergeWorkflow
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1

/// The controller's one HTTP server: probes (`/healthz`, `/readyz`), `/metrics`, the JSON API
/// under `/api/v1` (bearer tokens) and the webhook receivers (signatures).
struct ControllerAPI: Sendable {
    /// The largest webhook body read; larger ones get 413 (GitHub caps payloads at 25 MB, but
    /// a push of manifests is far below this).
    static let webhookBodyLimit = 5 * 1024 * 1024

    let controller: Controller

    func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/readyz") { _, _ in try await readiness() }
        router.get("/metrics") { _, _ in await metrics() }
        router.post("/api/v1/webhooks/{forge}") { request, context in try await webhook(request, context: context) }
        let api = router.group("/api/v1")
        api.get("/sources") { request, _ in
            try await authenticated(request) { _ in Self.json(controller.sources.map(\.status)) }
        }
        api.get("/sources/{name}") { request, context in
            try await authenticated(request) { _ in Self.json(try source(context).status) }
        }
        api.get("/sources/{name}/plan") { request, context in
            try await authenticated(request) { _ in
                guard let plan = try source(context).currentPlan else {
                    return Self.problem(.notFound, "no plan yet: the source has not been reconciled by the leader")
                }
                return Self.json(plan)
            }
        }
        api.post("/sources/{name}/reconcile") { request, context in
            try await authenticated(request) { user in
                try source(context).enqueue(.requested("requested by \(user)"))
                return Self.json(["queued": true], status: .accepted)
            }
        }
        api.get("/runs") { request, _ in try await runs(request) }
        api.get("/runs/{id}") { request, context in try await run(request, context: context) }
        api.post("/runs/{id}/approve") { request, context in try await decide(request, context: context, approve: true) }
        api.post("/runs/{id}/reject") { request, context in try await decide(request, context: context, approve: false) }
        return router
    }

    // MARK: Probes and metrics

    private struct Readiness: Encodable {
        var ready: Bool
        var waiting: [String]
    }

    /// Ready once the store is migrated (before the server starts) and every source was fetched.
    private func readiness() async throws -> Response {
        let waiting = controller.sources.filter { !$0.hasFetched }.map { "source \($0.configuration.name): first fetch not done" }
        return Self.json(Readiness(ready: waiting.isEmpty, waiting: waiting), status: waiting.isEmpty ? .ok : .serviceUnavailable)
    }

    private func metrics() async -> Response {
        controller.metrics.leader(controller.elector.isLeader)
        if let waiting = try? await controller.store.runs(RunFilter(statuses: [.awaitingApproval], limit: 10_000)) {
            controller.metrics.pendingApprovals(waiting.count)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: controller.metrics.text())))
    }

    // MARK: Runs

    private func runs(_ request: Request) async throws -> Response {
        try await authenticated(request) { _ in
            let query = request.uri.queryParameters
            var filter = RunFilter(limit: query.get("limit", as: Int.self) ?? 50)
            filter.instance = query.get("source")
            if let status = query.get("status") {
                guard let parsed = RunStatus(rawValue: status) else {
                    return Self.problem(
                        .badRequest, "unknown status '\(status)'; one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                filter.statuses = [parsed]
            }
            return Self.json(try await controller.store.runs(filter).map(RunReport.summary))
        }
    }

    private func run(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await authenticated(request) { _ in
            let id = try context.parameters.require("id", as: Int64.self)
            guard let run = try await controller.store.run(id) else { return Self.problem(.notFound, "run \(id) does not exist") }
            return Self.json(try await RunReport.load(run, from: controller.store))
        }
    }

    private struct Decision: Decodable {
        var digest: String?
        var comment: String?
    }

    /// Approve or reject a waiting run as the token's user. An approval is checked here (the
    /// run waits, the digest is its plan's, the user is one of its policies' approvers) and
    /// then queued on the run's source, which applies it: 202.
    private func decide(_ request: Request, context: BasicRequestContext, approve: Bool) async throws -> Response {
        try await authenticated(request) { user in
            let id = try context.parameters.require("id", as: Int64.self)
            let body = try await request.body.collect(upTo: 64 * 1024)
            let decision =
                body.readableBytes == 0 ? Decision() : try JSONDecoder().decode(Decision.self, from: Data(buffer: body))
            do {
                guard let run = try await controller.store.run(id) else { throw WorkflowError.noSuchRun(id) }
                guard let source = controller.source(named: run.instance) else {
                    return Self.problem(
                        .conflict, "run \(id) belongs to instance '\(run.instance)', which this controller does not reconcile")
                }
                guard controller.elector.isLeader else {
                    return Self.problem(
                        .serviceUnavailable,
                        "this replica is not the leader (\(controller.elector.lastKnownHolder ?? "unknown") is); send it there")
                }
                if approve {
                    let request = SourceController.ApprovalRequest(
                        run: id, approver: user, comment: decision.comment ?? "", digest: decision.digest)
                    let waiting = try await source.checkApproval(request)
                    source.enqueue(.approve(request))
                    return Self.json(["run": "\(id)", "approvedBy": user, "planDigest": waiting.planDigest], status: .accepted)
                }
                let rejected = try await source.reject(run: id, approver: user, comment: decision.comment ?? "")
                return Self.json(RunReport.summary(rejected))
            } catch let error as WorkflowError {
                return Self.problem(Self.status(for: error), error.message)
            }
        }
    }

    private static func status(for error: WorkflowError) -> HTTPResponse.Status {
        switch error.code {
        case .noSuchRun: return .notFound
        case .notAnApprover: return .forbidden
        case .notAwaitingApproval, .staleApproval, .planChanged: return .conflict
        default: return .internalServerError
        }
    }

    // MARK: Webhooks

    private func webhook(_ request: Request, context: BasicRequestContext) async throws -> Response {
        guard let forge = WebhookForge(rawValue: context.parameters.get("forge") ?? "") else {
            return Self.problem(
                .notFound, "no webhook receiver here; use one of \(WebhookForge.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let secret = controller.webhookSecret else {
            return Self.problem(.notFound, "webhooks are off: the controller was started without a webhook secret")
        }
        let body = Array(buffer: try await request.body.collect(upTo: Self.webhookBodyLimit))
        let header = { (name: String) in HTTPField.Name(name).flatMap { request.headers[$0] } }
        guard forge.isAuthentic(body: body, header: header, secret: secret) else {
            controller.logger.warning("webhook \(forge.rawValue): missing or bad signature; ignored")
            return Self.problem(.unauthorized, "missing or bad webhook signature")
        }
        if let delivery = forge.deliveryID(header: header), !controller.deliveries.isFirst("\(forge.rawValue)/\(delivery)") {
            return Self.json(["ignored": "delivery \(delivery) was already received"])
        }
        let push: WebhookPush?
        do {
            push = try forge.push(body: body, header: header)
        } catch {
            return Self.problem(.badRequest, "\(error)")
        }
        let pullRequest = push == nil ? forge.pullRequestEvent(body: body, header: header) : nil
        guard push != nil || pullRequest != nil else { return Self.json(["ignored": "neither a push nor a pull-request event"]) }
        if !controller.elector.isLeader, request.headers[Self.forwardedHeader] == nil, let leader = controller.elector.leaderURL,
            let answer = await forward(request, body: body, forge: forge, to: leader)
        {
            return answer
        }
        if let pullRequest { return queue(pullRequest, from: forge) }
        guard let push else { return Self.json(["ignored": "neither a push nor a pull-request event"]) }
        let moved = controller.sources.filter { push.moves(repository: $0.configuration.repository, ref: $0.configuration.ref) }
        guard !moved.isEmpty else { return Self.json(["ignored": "no source watches \(push.ref) of that repository"]) }
        for source in moved { source.enqueue(.webhook) }
        controller.logger.info("webhook \(forge.rawValue): \(push.ref) moved; reconciling \(moved.map(\.configuration.name))")
        return Self.json(["triggered": moved.map(\.configuration.name)], status: .accepted)
    }

    /// Queues a pull-request event on the sources that take that repository's pull requests.
    private func queue(_ event: PullRequestEvent, from forge: WebhookForge) -> Response {
        let sources = controller.sources.filter { source in
            guard let configured = source.configuration.forge else { return false }
            return configured.kind.rawValue == forge.rawValue && configured.repository.lowercased() == event.repository.lowercased()
        }
        guard !sources.isEmpty else { return Self.json(["ignored": "no source takes the pull requests of \(event.repository)"]) }
        for source in sources { source.enqueue(.pullRequest(event)) }
        controller.logger.info(
            "webhook \(forge.rawValue): pull request \(event.number) of \(event.repository); \(sources.map(\.configuration.name))")
        return Self.json(
            ["pullRequest": "\(event.number)", "queued": sources.map(\.configuration.name).joined(separator: ",")], status: .accepted)
    }

    /// Marks a webhook a follower passed on, so it is never passed on again.
    static let forwardedHeader = HTTPField.Name("X-Converge-Forwarded")!

    /// Sends a verified delivery, as it came (body and signature headers), to the leader,
    /// which alone acts on it; its answer is returned. Nil when the leader cannot be reached:
    /// the caller then queues it here, and the leader's next poll finds the commit anyway.
    private func forward(_ request: Request, body: [UInt8], forge: WebhookForge, to leader: String) async -> Response? {
        var headers = HTTPHeaders()
        for field in request.headers where ![.contentLength, .transferEncoding, .connection].contains(field.name) {
            headers.add(name: field.name.rawName, value: field.value)
        }
        headers.add(name: Self.forwardedHeader.rawName, value: "1")
        do {
            let transport = try HTTPTransport(url: leader, name: "the leader at \(leader)")
            defer { Task { await transport.shutdown() } }
            let answer = try await transport.execute(
                .POST, "/api/v1/webhooks/\(forge.rawValue)", headers: headers, body: ByteBuffer(bytes: body), timeout: .seconds(10))
            controller.logger.info("webhook \(forge.rawValue): passed on to the leader at \(leader) (\(answer.status.code))")
            return Response(
                status: HTTPResponse.Status(code: Int(answer.status.code)), headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: answer.body))
        } catch {
            controller.logger.warning("webhook \(forge.rawValue): cannot pass it on to the leader at \(leader): \(error)")
            return nil
        }
    }

    // MARK: Helpers

    /// Runs `body` as the token's user, or answers 401.
    private func authenticated(_ request: Request, _ body: (String) async throws -> Response) async throws -> Response {
        guard let user = controller.tokens.user(authorization: request.headers[.authorization]) else {
            var response = Self.problem(.unauthorized, "a bearer token is required (Authorization: Bearer …)")
            response.headers[.wwwAuthenticate] = "Bearer realm=\"converge\""
            return response
        }
        return try await body(user)
    }

    private func source(_ context: BasicRequestContext) throws -> SourceController {
        let name = try context.parameters.require("name")
        guard let source = controller.source(named: name) else { throw HTTPError(.notFound, message: "no source named '\(name)'") }
        return source
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = (try? encoder.encode(value)) ?? Data("null".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data + Data("\n".utf8))))
    }

    static func problem(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(["error": message], status: status)
    }
}
