import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A response whose body was read in full (or streamed to a consumer, then `body` is empty).
public struct HTTPTransportResponse: Sendable {
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

/// HTTP/1.1 to one target (a unix socket or an `http(s)` URL) over AsyncHTTPClient, the one
/// HTTP layer every provider uses: pooled kept-alive connections, a deadline per request,
/// a cap on response bodies, and failures as ``HTTPTransportError``s classified as
/// transient or permanent. HTTP error statuses are not errors at this level: the client
/// above knows what its protocol's error bodies say.
///
/// A transport made with ``init(url:name:tls:connectTimeout:maxResponseBodySize:)`` owns its
/// `HTTPClient` (its TLS settings are the target's own) and must be ended with
/// ``shutdown()``. One made with ``unixSocket(path:hostHeader:maxResponseBodySize:)`` uses a
/// process-wide client, see there.
public struct HTTPTransport: Sendable {
    /// The socket path or URL, as errors name it.
    public let endpoint: String
    public let maxResponseBodySize: Int
    /// What every request's URL starts with: `http+unix://<socket path, percent-encoded>` or
    /// `https://host:port`.
    let base: String
    let hostHeader: String?
    let isUnixSocket: Bool
    let connectTimeout: Duration
    let client: HTTPClient
    let ownsClient: Bool

    /// Trust settings of one target. Per target, never global.
    public struct TLS: Sendable, Hashable {
        /// Accept any certificate (a lab's self-signed one).
        public var insecureSkipVerify: Bool
        /// Extra PEM trust roots, e.g. the server's own CA.
        public var caFile: String?
        /// A PEM client certificate chain and its key, for servers that ask for one.
        public var certificateChainFile: String?
        public var privateKeyFile: String?
        /// The same three as PEM text, for configurations that embed them (a kubeconfig's
        /// `certificate-authority-data`); used when the file of the same role is not given.
        public var caPEM: String?
        public var certificateChainPEM: String?
        public var privateKeyPEM: String?
        /// Added to a TLS failure's message: how the reader can change the trust settings.
        public var hint: String?

        public init(
            insecureSkipVerify: Bool = false, caFile: String? = nil, certificateChainFile: String? = nil,
            privateKeyFile: String? = nil, caPEM: String? = nil, certificateChainPEM: String? = nil, privateKeyPEM: String? = nil,
            hint: String? = nil
        ) {
            self.insecureSkipVerify = insecureSkipVerify
            self.caFile = caFile
            self.certificateChainFile = certificateChainFile
            self.privateKeyFile = privateKeyFile
            self.caPEM = caPEM
            self.certificateChainPEM = certificateChainPEM
            self.privateKeyPEM = privateKeyPEM
            self.hint = hint
        }
    }

    /// HTTP over a unix domain socket (the Docker engine's).
    ///
    /// Every such transport shares one process-wide `HTTPClient`, which is never shut down,
    /// like `HTTPClient.shared`: a unix socket needs no per-target settings (no TLS), the
    /// client pools connections per socket path already, and idle connections close after a
    /// minute. Engines are made freely (one per DockerHost, one per probe run, in tests), so
    /// a client of their own would need a shutdown at every such place. `HTTPClient.shared`
    /// itself does not fit: it follows redirects, retries failed connects until the
    /// deadline (a missing socket must fail at once), and cuts a response silent for 90 s
    /// (a long `exec` is).
    public static func unixSocket(
        path: String, hostHeader: String = "localhost", maxResponseBodySize: Int = 256 * 1024 * 1024
    ) -> HTTPTransport {
        let encoded = path.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._~"))) ?? path
        return HTTPTransport(
            endpoint: path, maxResponseBodySize: maxResponseBodySize, base: "http+unix://\(encoded)", hostHeader: hostHeader,
            isUnixSocket: true, connectTimeout: unixSocketConnectTimeout, client: sharedUnixSocketClient, ownsClient: false)
    }

    static let unixSocketConnectTimeout: Duration = .seconds(5)

    /// The client of every unix-socket transport; see ``unixSocket(path:hostHeader:maxResponseBodySize:)``.
    static let sharedUnixSocketClient = HTTPClient(
        eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
        configuration: configuration(tls: nil, connectTimeout: unixSocketConnectTimeout))

    /// HTTP or HTTPS to `url` (scheme, host and port; request targets are appended), with a
    /// client of its own for the target's trust settings. End it with ``shutdown()``.
    /// - Parameter name: How errors name the target; `url` by default.
    /// - Throws: ``HTTPTransportError`` when the URL or the trust settings cannot be used.
    public init(
        url: String, name: String? = nil, tls: TLS = TLS(), connectTimeout: Duration = .seconds(10),
        maxResponseBodySize: Int = 256 * 1024 * 1024
    ) throws {
        let name = name ?? url
        guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
            throw HTTPTransportError(.invalidAddress, endpoint: name, detail: "only http:// and https:// URLs are supported")
        }
        var configuration: TLSConfiguration?
        if url.hasPrefix("https://") {
            var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
            do {
                if tls.insecureSkipVerify {
                    tlsConfiguration.certificateVerification = .none
                } else if let caFile = tls.caFile {
                    tlsConfiguration.additionalTrustRoots = [.file(caFile)]
                } else if let caPEM = tls.caPEM {
                    tlsConfiguration.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))]
                }
                if let chain = tls.certificateChainFile {
                    tlsConfiguration.certificateChain = try NIOSSLCertificate.fromPEMFile(chain).map { .certificate($0) }
                } else if let chain = tls.certificateChainPEM {
                    tlsConfiguration.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(chain.utf8)).map { .certificate($0) }
                }
                if let key = tls.privateKeyFile {
                    tlsConfiguration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
                } else if let key = tls.privateKeyPEM {
                    tlsConfiguration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key.utf8), format: .pem))
                }
                // Loads the roots now, so a bad caFile is reported here rather than per request.
                _ = try NIOSSLContext(configuration: tlsConfiguration)
            } catch {
                throw HTTPTransportError(.tls, endpoint: name, detail: "\(error)", hint: tls.hint)
            }
            configuration = tlsConfiguration
        }
        self.init(
            endpoint: name, maxResponseBodySize: maxResponseBodySize, base: url, hostHeader: nil, isUnixSocket: false,
            connectTimeout: connectTimeout,
            client: HTTPClient(
                eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
                configuration: Self.configuration(tls: configuration, connectTimeout: connectTimeout)),
            ownsClient: true, tlsHint: tls.hint)
    }

    let tlsHint: String?

    private init(
        endpoint: String, maxResponseBodySize: Int, base: String, hostHeader: String?, isUnixSocket: Bool,
        connectTimeout: Duration, client: HTTPClient, ownsClient: Bool, tlsHint: String? = nil
    ) {
        self.endpoint = endpoint
        self.maxResponseBodySize = maxResponseBodySize
        self.base = base
        self.hostHeader = hostHeader
        self.isUnixSocket = isUnixSocket
        self.connectTimeout = connectTimeout
        self.client = client
        self.ownsClient = ownsClient
        self.tlsHint = tlsHint
    }

    /// No read timeout (each request's deadline bounds it), no redirects, no decompression,
    /// and a failed connect fails the request at once instead of being retried until its
    /// deadline: the clients above classify and retry.
    static func configuration(tls: TLSConfiguration?, connectTimeout: Duration) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow,
            timeout: .init(connect: TimeAmount(connectTimeout), read: nil), decompression: .disabled)
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.httpVersion = .http1Only
        return configuration
    }

    /// Closes the connections of a transport that owns its client; a unix-socket transport's
    /// shared client stays up.
    public func shutdown() async {
        guard ownsClient else { return }
        try? await client.shutdown()
    }

    /// Sends one request and reads its response.
    ///
    /// - Parameters:
    ///   - target: Path and query, already percent-encoded, e.g. `/v1.41/containers/json?all=true`.
    ///   - timeout: Deadline for the whole exchange, connect to last byte.
    ///   - consume: When given, the body of a 2xx answer is handed to it chunk by chunk as it
    ///     arrives (the returned body is then empty); other answers are read in full.
    /// - Throws: ``HTTPTransportError`` when no complete response arrived (a body past
    ///   ``maxResponseBodySize`` included, streamed or not); `CancellationError` when the
    ///   calling task was cancelled.
    public func execute(
        _ method: HTTPMethod, _ target: String, headers: HTTPHeaders = [:], body: ByteBuffer? = nil, timeout: Duration,
        consume: ((ByteBuffer) throws -> Void)? = nil
    ) async throws -> HTTPTransportResponse {
        var request = HTTPClientRequest(url: base + target)
        request.method = method
        request.headers = headers
        if let hostHeader { request.headers.replaceOrAdd(name: "Host", value: hostHeader) }
        if let body {
            request.body = .bytes(body)
        } else if method != .GET && method != .HEAD {
            request.headers.replaceOrAdd(name: "Content-Length", value: "0")
        }
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        let end = ContinuousClock.now + timeout
        do {
            try Task.checkCancellation()
            // AsyncHTTPClient's deadline ends with the response head; the body's is kept here.
            let response = try await client.execute(request, deadline: deadline)
            let (chunks, continuation) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
            let endpoint = self.endpoint
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        for try await chunk in response.body { continuation.yield(chunk) }
                        continuation.finish()
                    } catch {
                        continuation.finish(throwing: error)
                    }
                }
                group.addTask {
                    do { try await Task.sleep(until: end, clock: .continuous) } catch { return }
                    continuation.finish(throwing: HTTPTransportError(.deadlineExceeded, endpoint: endpoint, timeout: timeout))
                }
                var collected = ByteBuffer()
                var received = 0
                let streams = consume != nil && (200..<300).contains(response.status.code)
                for try await chunk in chunks {
                    received += chunk.readableBytes
                    if received > maxResponseBodySize {
                        throw HTTPTransportError(.responseTooLarge, endpoint: endpoint, limit: maxResponseBodySize)
                    }
                    if streams, let consume {
                        try consume(chunk)
                    } else {
                        var chunk = chunk
                        collected.writeBuffer(&chunk)
                    }
                }
                group.cancelAll()
                // A body cut short by the caller's cancellation ends like a complete one: it is not.
                try Task.checkCancellation()
                return HTTPTransportResponse(status: response.status, headers: response.headers, body: collected)
            }
        } catch {
            throw classify(error, deadline: deadline, timeout: timeout)
        }
    }

    /// Names a failure: cancellation stays `CancellationError`, a passed deadline is
    /// ``HTTPTransportError/Code/deadlineExceeded`` whatever broke first, and the rest maps
    /// from AsyncHTTPClient's and NIO's errors. A consumer's own errors pass through.
    func classify(_ error: any Error, deadline: NIODeadline, timeout: Duration) -> any Error {
        if Task.isCancelled || error is CancellationError { return CancellationError() }
        if let error = error as? HTTPTransportError {
            return error.code == .responseTooLarge || NIODeadline.now() < deadline
                ? error : HTTPTransportError(.deadlineExceeded, endpoint: endpoint, timeout: timeout)
        }
        if NIODeadline.now() >= deadline {
            return HTTPTransportError(.deadlineExceeded, endpoint: endpoint, timeout: timeout)
        }
        switch error {
        case let error as HTTPClientError:
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout:
                return HTTPTransportError(.deadlineExceeded, endpoint: endpoint, timeout: timeout)
            case .connectTimeout, .tlsHandshakeTimeout, .getConnectionFromPoolTimeout:
                return HTTPTransportError(.connectTimeout, endpoint: endpoint, timeout: connectTimeout)
            case .remoteConnectionClosed, .uncleanShutdown, .cancelled:
                return HTTPTransportError(.connectionClosed, endpoint: endpoint, detail: "closed by peer: \(error)")
            case .invalidURL, .emptyHost, .missingSocketPath, .emptyScheme:
                return HTTPTransportError(.invalidAddress, endpoint: endpoint, detail: "\(error)")
            default:
                return HTTPTransportError(.io, endpoint: endpoint, detail: "\(error)")
            }
        case let error as IOError:
            return classify(errno: error.errnoCode)
        case let error as NIOConnectionError:
            let errnos = (error.connectionErrors.map(\.error) + [error.dnsAAAAError, error.dnsAError].compactMap { $0 })
                .compactMap { ($0 as? IOError)?.errnoCode }
            if let first = errnos.first { return classify(errno: first) }
            return HTTPTransportError(.io, endpoint: endpoint, detail: "connect: \(error)")
        case let error as ChannelError:
            switch error {
            case .connectTimeout:
                return HTTPTransportError(.connectTimeout, endpoint: endpoint, timeout: connectTimeout)
            case .ioOnClosedChannel, .alreadyClosed, .eof, .outputClosed, .inputClosed:
                return HTTPTransportError(.connectionClosed, endpoint: endpoint, detail: "closed by peer: \(error)")
            default:
                return HTTPTransportError(.io, endpoint: endpoint, detail: "\(error)")
            }
        case is NIOSSLError, is BoringSSLError:
            // Only a refused handshake is a TLS problem; a TLS stream cut later is a closed connection.
            if let ssl = error as? NIOSSLError, case .uncleanShutdown = ssl {
                return HTTPTransportError(.connectionClosed, endpoint: endpoint, detail: "\(error)")
            }
            return HTTPTransportError(.tls, endpoint: endpoint, detail: "\(error)", hint: tlsHint)
        case let error as NIOSSLExtraError:
            return HTTPTransportError(.tls, endpoint: endpoint, detail: "\(error)", hint: tlsHint)
        case let error as SocketAddressError:
            return HTTPTransportError(.invalidAddress, endpoint: endpoint, detail: "\(error)")
        default:
            return HTTPTransportError(.io, endpoint: endpoint, detail: "\(error)")
        }
    }

    private func classify(errno code: CInt) -> HTTPTransportError {
        switch code {
        case ENOENT where isUnixSocket, ENOTDIR where isUnixSocket: return HTTPTransportError(.socketNotFound, endpoint: endpoint)
        case EACCES, EPERM: return HTTPTransportError(.permissionDenied, endpoint: endpoint)
        case ECONNREFUSED: return HTTPTransportError(.connectionRefused, endpoint: endpoint)
        case ETIMEDOUT: return HTTPTransportError(.connectTimeout, endpoint: endpoint, timeout: connectTimeout)
        case ECONNRESET, EPIPE: return HTTPTransportError(.connectionClosed, endpoint: endpoint, detail: Self.describe(errno: code))
        default: return HTTPTransportError(.io, endpoint: endpoint, detail: Self.describe(errno: code))
        }
    }

    static func describe(errno code: CInt) -> String {
        guard let cString = strerror(code) else { return "errno \(code)" }
        return "\(String(cString: cString)) (errno \(code))"
    }
}
