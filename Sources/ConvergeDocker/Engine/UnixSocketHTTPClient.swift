import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A response read in full from a `UnixSocketHTTPClient`.
public struct UnixSocketHTTPResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    public init(status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The body as bytes.
    public var bodyBytes: [UInt8] { Array(body.readableBytesView) }

    /// The body decoded as UTF-8 (invalid sequences are repaired).
    public var bodyString: String { String(decoding: body.readableBytesView, as: UTF8.self) }
}

/// Why a request over the unix socket did not produce a response.
public enum UnixSocketHTTPTransportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Nothing exists at the socket path (`ENOENT`).
    case socketNotFound(path: String)
    /// The socket exists but this process may not open it (`EACCES`/`EPERM`).
    case permissionDenied(path: String)
    /// The socket exists but no one accepts on it (`ECONNREFUSED`), e.g. the daemon is restarting.
    case connectionRefused(path: String)
    /// Connecting took longer than the connect timeout.
    case connectTimeout(path: String, timeout: Duration)
    /// The whole request (connect, send, receive) took longer than its deadline.
    case deadlineExceeded(path: String, timeout: Duration)
    /// The peer closed or reset the connection before the response was complete.
    case connectionClosed(path: String, detail: String)
    /// The response body was larger than the client accepts.
    case responseTooLarge(path: String, limit: Int)
    /// The socket path cannot be used (for example it is too long for `sockaddr_un`).
    case invalidSocketPath(path: String, detail: String)
    /// Any other I/O failure.
    case io(path: String, detail: String)

    public var description: String {
        switch self {
        case .socketNotFound(let path):
            return "no socket at \(path) (is the daemon running, and is the path right?)"
        case .permissionDenied(let path):
            return "permission denied opening \(path) (run as a user allowed to use it, e.g. in the 'docker' group)"
        case .connectionRefused(let path):
            return "connection refused on \(path) (the daemon is not accepting connections; is it starting or stopped?)"
        case .connectTimeout(let path, let timeout):
            return "connecting to \(path) timed out after \(timeout)"
        case .deadlineExceeded(let path, let timeout):
            return "no complete response from \(path) within \(timeout)"
        case .connectionClosed(let path, let detail):
            return "connection to \(path) closed before the response was complete (\(detail))"
        case .responseTooLarge(let path, let limit):
            return "response from \(path) is larger than the \(limit)-byte limit"
        case .invalidSocketPath(let path, let detail):
            return "cannot use socket path \(path): \(detail)"
        case .io(let path, let detail):
            return "I/O error on \(path): \(detail)"
        }
    }

    /// Whether retrying the same request later may succeed.
    public var isTransient: Bool {
        switch self {
        case .connectionRefused, .connectTimeout, .deadlineExceeded, .connectionClosed, .io:
            return true
        case .socketNotFound, .permissionDenied, .responseTooLarge, .invalidSocketPath:
            return false
        }
    }
}

/// HTTP/1.1 over a unix domain socket, built on SwiftNIO.
///
/// Every request opens its own connection (cheap over a unix socket) and closes it once the
/// response has been read, so any number of requests may run concurrently. All I/O happens on
/// NIO event loops; callers only suspend, never block a thread of the cooperative pool.
///
/// Bodies framed by `Content-Length`, by chunked transfer-encoding, or by the connection's close
/// (as Docker does for raw streams such as `exec/start`) are all read to their end.
public struct UnixSocketHTTPClient: Sendable {
    public let socketPath: String
    public let connectTimeout: Duration
    public let maxResponseBodySize: Int
    /// Sent as the `Host` header; HTTP/1.1 requires one and its value is meaningless on a unix socket.
    public let hostHeader: String
    private let eventLoopGroup: any EventLoopGroup

    public init(
        socketPath: String,
        connectTimeout: Duration = .seconds(5),
        maxResponseBodySize: Int = 256 * 1024 * 1024,
        hostHeader: String = "localhost",
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.socketPath = socketPath
        self.connectTimeout = connectTimeout
        self.maxResponseBodySize = maxResponseBodySize
        self.hostHeader = hostHeader
        self.eventLoopGroup = eventLoopGroup
    }

    /// Sends one request and reads its whole response.
    ///
    /// - Parameters:
    ///   - method: HTTP method.
    ///   - target: Path and query, e.g. `/v1.41/containers/json?all=true`, already percent-encoded.
    ///   - headers: Extra headers. `Host`, `Content-Length` and `Connection` are set by the client.
    ///   - body: Request body, if any.
    ///   - timeout: Deadline for the whole exchange: connect, send and receive.
    /// - Throws: `UnixSocketHTTPTransportError` when no complete response arrived;
    ///   `CancellationError` when the calling task was cancelled. HTTP error statuses are not
    ///   errors at this level.
    public func execute(
        method: HTTPMethod,
        target: String,
        headers: HTTPHeaders = [:],
        body: ByteBuffer? = nil,
        timeout: Duration
    ) async throws -> UnixSocketHTTPResponse {
        let start = ContinuousClock.now
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        let connectTimeout = TimeAmount(min(self.connectTimeout, timeout))

        var head = HTTPRequestHead(version: .http1_1, method: method, uri: target)
        head.headers = headers
        head.headers.replaceOrAdd(name: "Host", value: hostHeader)
        head.headers.replaceOrAdd(name: "Connection", value: "close")
        if let body {
            head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        } else if method != .GET && method != .HEAD {
            // Without this NIO would frame an empty POST/DELETE as chunked.
            head.headers.replaceOrAdd(name: "Content-Length", value: "0")
        }
        let requestHead = head

        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            try Task.checkCancellation()
            channel = try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(connectTimeout)
                .connect(unixDomainSocketPath: socketPath) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                            wrappingChannelSynchronously: channel
                        )
                    }
                }
        } catch let error as CancellationError {
            throw error
        } catch {
            throw mapConnectError(error)
        }

        // The deadline and task cancellation both work by closing the channel, which ends the
        // inbound stream and fails pending writes; the catch below then names the cause.
        let underlying = channel.channel
        let deadlineTask = underlying.eventLoop.scheduleTask(deadline: deadline) {
            underlying.close(promise: nil)
        }
        defer { deadlineTask.cancel() }

        let maxBody = maxResponseBodySize
        let path = socketPath
        do {
            return try await withTaskCancellationHandler {
                try await channel.executeThenClose { inbound, outbound in
                    // One batch, so the request is written and flushed in one event-loop turn.
                    // The engine may answer and close as soon as it has read enough (with
                    // `Connection: close` it always closes), so a failed write is not yet a
                    // failed request: the complete answer may already be waiting in `inbound`.
                    var parts: [HTTPClientRequestPart] = [.head(requestHead)]
                    if let body { parts.append(.body(.byteBuffer(body))) }
                    parts.append(.end(nil))
                    var writeError: (any Error)?
                    do {
                        try await outbound.write(contentsOf: parts)
                    } catch {
                        writeError = error
                    }

                    var responseHead: HTTPResponseHead?
                    var responseBody = ByteBuffer()
                    for try await part in inbound {
                        switch part {
                        case .head(let h):
                            // Skip interim 1xx responses (100 Continue); 101 is never requested.
                            if h.status.code >= 100 && h.status.code < 200 { continue }
                            responseHead = h
                        case .body(var chunk):
                            if responseBody.readableBytes + chunk.readableBytes > maxBody {
                                throw UnixSocketHTTPTransportError.responseTooLarge(path: path, limit: maxBody)
                            }
                            responseBody.writeBuffer(&chunk)
                        case .end:
                            guard let responseHead else {
                                throw UnixSocketHTTPTransportError.connectionClosed(
                                    path: path, detail: "response ended without a status line")
                            }
                            // A body delimited by the connection's close also "ends" when the
                            // deadline or a cancellation closed the channel: that is no answer.
                            if Self.isCloseDelimited(responseHead),
                                Task.isCancelled || NIODeadline.now() >= deadline
                            {
                                throw UnixSocketHTTPTransportError.connectionClosed(
                                    path: path, detail: "closed by the client")
                            }
                            return UnixSocketHTTPResponse(
                                status: responseHead.status, headers: responseHead.headers, body: responseBody)
                        }
                    }
                    // The stream ended without `.end`. NIO's decoder normally emits `.end` when a
                    // close-delimited body ends, so this is a connection lost mid-response.
                    if let writeError { throw writeError }
                    throw UnixSocketHTTPTransportError.connectionClosed(
                        path: path,
                        detail: responseHead == nil ? "no response received" : "body incomplete")
                }
            } onCancel: {
                underlying.close(promise: nil)
            }
        } catch let error as UnixSocketHTTPTransportError {
            if case .responseTooLarge = error { throw error }
            throw classifyFailure(error, deadline: deadline, start: start, timeout: timeout)
        } catch {
            throw classifyFailure(error, deadline: deadline, start: start, timeout: timeout)
        }
    }

    /// Whether the body of this response runs until the connection closes (no length, not chunked).
    static func isCloseDelimited(_ head: HTTPResponseHead) -> Bool {
        let code = head.status.code
        if code == 204 || code == 304 || (100..<200).contains(code) { return false }
        return !head.headers.contains(name: "content-length") && !head.headers.contains(name: "transfer-encoding")
    }

    private func classifyFailure(
        _ error: any Error, deadline: NIODeadline, start: ContinuousClock.Instant, timeout: Duration
    ) -> any Error {
        if Task.isCancelled { return CancellationError() }
        if NIODeadline.now() >= deadline {
            return UnixSocketHTTPTransportError.deadlineExceeded(path: socketPath, timeout: timeout)
        }
        if let error = error as? UnixSocketHTTPTransportError { return error }
        if let error = error as? IOError {
            return UnixSocketHTTPTransportError.connectionClosed(
                path: socketPath, detail: Self.describe(errno: error.errnoCode))
        }
        if let error = error as? ChannelError, error == .ioOnClosedChannel || error == .alreadyClosed
            || error == .eof
        {
            return UnixSocketHTTPTransportError.connectionClosed(path: socketPath, detail: "closed by peer: \(error)")
        }
        return UnixSocketHTTPTransportError.io(path: socketPath, detail: String(describing: error))
    }

    private func mapConnectError(_ error: any Error) -> UnixSocketHTTPTransportError {
        if let error = error as? IOError {
            switch error.errnoCode {
            case ENOENT, ENOTDIR: return .socketNotFound(path: socketPath)
            case EACCES, EPERM: return .permissionDenied(path: socketPath)
            case ECONNREFUSED: return .connectionRefused(path: socketPath)
            case ETIMEDOUT: return .connectTimeout(path: socketPath, timeout: connectTimeout)
            default: return .io(path: socketPath, detail: "connect: \(Self.describe(errno: error.errnoCode))")
            }
        }
        if let error = error as? ChannelError, case .connectTimeout = error {
            return .connectTimeout(path: socketPath, timeout: connectTimeout)
        }
        if let error = error as? SocketAddressError {
            return .invalidSocketPath(path: socketPath, detail: String(describing: error))
        }
        return .io(path: socketPath, detail: "connect: \(error)")
    }

    static func describe(errno code: CInt) -> String {
        guard let cString = strerror(code) else { return "errno \(code)" }
        return "\(String(cString: cString)) (errno \(code))"
    }
}
