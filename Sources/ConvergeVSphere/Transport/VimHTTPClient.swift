import ConvergeCore
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// One HTTP response read in full.
struct VimHTTPResponse: Sendable {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders
    var body: ByteBuffer
}

/// Why a request to vCenter produced no response.
public enum VimTransportError: Error, Sendable, CustomStringConvertible {
    case connect(endpoint: String, detail: String)
    case tls(endpoint: String, detail: String)
    case timeout(endpoint: String, timeout: Duration)
    case connectionClosed(endpoint: String)
    /// An HTTP error without a SOAP answer (a 503 while vCenter's services restart).
    case unavailable(endpoint: String, status: Int)

    public var description: String {
        switch self {
        case .connect(let endpoint, let detail): return "cannot connect to \(endpoint): \(detail)"
        case .tls(let endpoint, let detail):
            return "TLS handshake with \(endpoint) failed: \(detail) (for a self-signed certificate set spec.tls.insecureSkipVerify: true or spec.tls.caFile on the VCenter)"
        case .timeout(let endpoint, let timeout): return "no answer from \(endpoint) within \(timeout)"
        case .connectionClosed(let endpoint): return "\(endpoint) closed the connection before answering"
        case .unavailable(let endpoint, let status): return "\(endpoint) answered HTTP \(status) without a SOAP response (is vCenter starting or overloaded?)"
        }
    }
}

/// How to reach one vCenter: host, port, and whether and how to speak TLS.
public struct VimEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var path: String
    public var useTLS: Bool
    /// Accept any certificate (a lab's self-signed one). Per target, never global.
    public var insecureSkipVerify: Bool
    /// An extra PEM trust root, e.g. the vCenter's own CA.
    public var caFile: String?

    public init(host: String, port: Int, path: String, useTLS: Bool, insecureSkipVerify: Bool = false, caFile: String? = nil) {
        self.host = host
        self.port = port
        self.path = path
        self.useTLS = useTLS
        self.insecureSkipVerify = insecureSkipVerify
        self.caFile = caFile
    }

    /// Parses `https://host[:port][/path]`; the path defaults to `/sdk`.
    public init?(url: String, insecureSkipVerify: Bool = false, caFile: String? = nil) {
        let scheme: String
        if url.hasPrefix("https://") { scheme = "https" } else if url.hasPrefix("http://") { scheme = "http" } else { return nil }
        let rest = url.dropFirst(scheme.count + 3)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        var host = String(authority)
        var port = scheme == "https" ? 443 : 80
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            guard let parsed = Int(authority[authority.index(after: colon)...]), (1...65535).contains(parsed) else { return nil }
            port = parsed
            host = String(authority[..<colon])
        }
        host = host.trimmingCharacters(in: ["[", "]"])
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port, path: path.isEmpty || path == "/" ? "/sdk" : String(path),
                  useTLS: scheme == "https", insecureSkipVerify: insecureSkipVerify, caFile: caFile)
    }

    public var description: String { "\(useTLS ? "https" : "http")://\(host):\(port)\(path)" }
}

/// HTTP/1.1 (over TLS for `https`) to one vCenter, with kept-alive connections reused
/// across requests: a TLS handshake costs more than most SOAP calls, and observing a
/// thousand VMs should not pay it per page.
///
/// Each connection carries one request at a time; concurrent callers get their own
/// connection, and idle ones are kept for the next caller.
actor VimHTTPClient {
    let endpoint: VimEndpoint
    private let sslContext: NIOSSLContext?
    private let group: any EventLoopGroup
    private var idle: [VimConnection] = []

    init(endpoint: VimEndpoint, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        self.endpoint = endpoint
        self.group = group
        if endpoint.useTLS {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if endpoint.insecureSkipVerify {
                configuration.certificateVerification = .none
            } else if let caFile = endpoint.caFile {
                configuration.additionalTrustRoots = [.file(caFile)]
            }
            do {
                sslContext = try NIOSSLContext(configuration: configuration)
            } catch {
                throw VimTransportError.tls(endpoint: endpoint.description, detail: "\(error)")
            }
        } else {
            sslContext = nil
        }
    }

    /// POSTs `body` to the endpoint's path and reads the whole answer. A kept-alive
    /// connection the server closed while idle fails the request before any answer; a
    /// `repeatable` request (one that changes nothing) is then sent once more on a new one.
    func post(_ body: ByteBuffer, headers: HTTPHeaders, timeout: Duration, repeatable: Bool) async throws -> VimHTTPResponse {
        let (connection, reused) = try await checkOut(timeout: timeout)
        do {
            return try await post(body, headers: headers, timeout: timeout, on: connection)
        } catch VimTransportError.connectionClosed where reused && repeatable {
            let (fresh, _) = try await checkOut(timeout: timeout, reuse: false)
            return try await post(body, headers: headers, timeout: timeout, on: fresh)
        }
    }

    private func post(_ body: ByteBuffer, headers: HTTPHeaders, timeout: Duration, on connection: VimConnection) async throws -> VimHTTPResponse {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: endpoint.path)
        head.headers = headers
        let host = endpoint.host.contains(":") ? "[\(endpoint.host)]" : endpoint.host
        head.headers.replaceOrAdd(name: "Host", value: endpoint.port == (endpoint.useTLS ? 443 : 80) ? host : "\(host):\(endpoint.port)")
        head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        do {
            let response = try await connection.send(head: head, body: body, timeout: timeout, endpoint: endpoint.description)
            if response.headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "close" }) {
                connection.close()
            } else {
                idle.append(connection)
            }
            return response
        } catch {
            connection.close()
            throw error
        }
    }

    /// Closes the idle connections (at logout).
    func shutdown() {
        for connection in idle { connection.close() }
        idle.removeAll()
    }

    private func checkOut(timeout: Duration, reuse: Bool = true) async throws -> (VimConnection, reused: Bool) {
        while reuse, let connection = idle.popLast() {
            if connection.isActive { return (connection, true) }
        }
        let connection = try await VimConnection.connect(
            to: endpoint, ssl: sslContext, group: group, timeout: min(timeout, .seconds(10)))
        return (connection, false)
    }
}

/// One kept-alive connection and the handler that collects its responses.
final class VimConnection: Sendable {
    private let channel: any Channel
    private let collector: NIOLoopBound<ResponseCollector>

    private init(channel: any Channel, collector: NIOLoopBound<ResponseCollector>) {
        self.channel = channel
        self.collector = collector
    }

    var isActive: Bool { channel.isActive }

    func close() { channel.close(promise: nil) }

    static func connect(to endpoint: VimEndpoint, ssl: NIOSSLContext?, group: any EventLoopGroup, timeout: Duration) async throws -> VimConnection {
        // Kept from the initializer: a refused TLS handshake can tear the pipeline down before
        // connect returns, and then the handler could no longer be looked up to report why.
        let installed = Mutex<NIOLoopBound<ResponseCollector>?>(nil)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(TimeAmount(timeout))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let ssl {
                            // SNI carries names only; an IP literal is sent without it.
                            let isAddress = endpoint.host.contains(":") || IPv4Address(endpoint.host) != nil
                            let handler = try NIOSSLClientHandler(context: ssl, serverHostname: isAddress ? nil : endpoint.host)
                            try channel.pipeline.syncOperations.addHandler(handler)
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        let collector = ResponseCollector(endpoint: endpoint.description)
                        try channel.pipeline.syncOperations.addHandler(collector)
                        installed.withLock { $0 = NIOLoopBound(collector, eventLoop: channel.eventLoop) }
                    }
                }
                .connect(host: endpoint.host, port: endpoint.port).get()
        } catch {
            throw VimTransportError.connect(endpoint: endpoint.description, detail: "\(error)")
        }
        guard let collector = installed.withLock({ $0 }) else {
            throw VimTransportError.connectionClosed(endpoint: endpoint.description)
        }
        return VimConnection(channel: channel, collector: collector)
    }

    func send(head: HTTPRequestHead, body: ByteBuffer, timeout: Duration, endpoint: String) async throws -> VimHTTPResponse {
        let promise = channel.eventLoop.makePromise(of: VimHTTPResponse.self)
        let channel = self.channel
        let collector = self.collector
        channel.eventLoop.execute {
            collector.value.expect(promise)
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        }
        let deadline = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            // An answer that arrived just before the deadline keeps its connection.
            guard collector.value.isWaiting else { return }
            promise.fail(VimTransportError.timeout(endpoint: endpoint, timeout: timeout))
            channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            channel.close(promise: nil)
        }
    }
}

/// Collects one response at a time and completes the waiting request's promise; a closed
/// connection or a TLS error fails it.
final class ResponseCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private var pending: EventLoopPromise<VimHTTPResponse>?
    private let endpoint: String
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()
    /// Set when the connection failed while nothing was waiting (a TLS handshake refused
    /// right after connecting), so the next request learns why instead of hanging.
    private var failure: (any Error)?

    init(endpoint: String) {
        self.endpoint = endpoint
    }

    var isWaiting: Bool { pending != nil }

    func expect(_ promise: EventLoopPromise<VimHTTPResponse>) {
        if let failure {
            promise.fail(failure)
            return
        }
        pending = promise
        head = nil
        body.clear()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let received):
            if received.status.code >= 100 && received.status.code < 200 { return }
            head = received
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let head, let promise = pending else { return }
            pending = nil
            promise.succeed(VimHTTPResponse(status: head.status, headers: head.headers, body: body))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(VimTransportError.connectionClosed(endpoint: endpoint))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Only a refused handshake is a TLS problem; an unclean shutdown or a reset later is
        // a closed connection, which may be retried.
        let failure: any Error
        if let error = error as? NIOSSLError, case .handshakeFailed = error {
            failure = VimTransportError.tls(endpoint: endpoint, detail: "\(error)")
        } else if error is BoringSSLError {
            failure = VimTransportError.tls(endpoint: endpoint, detail: "\(error)")
        } else {
            failure = VimTransportError.connectionClosed(endpoint: endpoint)
        }
        fail(failure)
        context.close(promise: nil)
    }

    private func fail(_ error: any Error) {
        if failure == nil { failure = error }
        pending?.fail(failure!)
        pending = nil
    }
}
