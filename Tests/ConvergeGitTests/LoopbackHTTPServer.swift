import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A tiny HTTP server on 127.0.0.1 that plays a server a Git client must cope with, and
/// records the request heads it received, so tests can check what the client sent.
final class LoopbackHTTPServer: @unchecked Sendable {
    enum Behaviour {
        /// Answers every request with `401 Unauthorized` (Basic): what a client sends when
        /// asked for credentials.
        case unauthorized
        /// Reads each request and never answers, holding the connection open: a fetch hangs
        /// until `stop()`. After `giveUpAfter` seconds the server closes every connection by
        /// itself (and `gaveUp` turns true), so a test that waits on a hung caller fails
        /// instead of hanging.
        case silent(giveUpAfter: TimeInterval)
    }

    let port: UInt16
    private let behaviour: Behaviour
    private let listener: Int32
    private let lock = NSLock()
    private var received: [String] = []
    private var held: [Int32] = []
    private var stopped = false
    private var gaveUpHolding = false

    var requests: [String] {
        lock.withLock { received }
    }

    /// Whether a `.silent` server closed the connections it held because its time was up.
    var gaveUp: Bool {
        lock.withLock { gaveUpHolding }
    }

    init(_ behaviour: Behaviour) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw FixtureError("socket() failed: \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0, listen(descriptor, 16) == 0 else {
            close(descriptor)
            throw FixtureError("bind/listen failed: \(errno)")
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        listener = descriptor
        port = UInt16(bigEndian: address.sin_port)
        self.behaviour = behaviour
        Thread { [self] in serve() }.start()
        if case .silent(let giveUpAfter) = behaviour {
            Thread { [self] in
                Thread.sleep(forTimeInterval: giveUpAfter)
                closeHeld(givingUp: true)
            }.start()
        }
    }

    /// Closes the listener and every held connection; later calls do nothing.
    func stop() {
        let first = lock.withLock {
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        closeHeld(givingUp: false)
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    /// Waits until the server has received `count` requests; false when `timeout` passes first.
    func waitForRequests(_ count: Int, timeout: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while requests.count < count {
            guard ContinuousClock.now < deadline else { return false }
            try await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    private func closeHeld(givingUp: Bool) {
        let descriptors = lock.withLock {
            if givingUp && !stopped { gaveUpHolding = true }
            defer { held = [] }
            return held
        }
        for descriptor in descriptors {
            shutdown(descriptor, Int32(SHUT_RDWR))
            close(descriptor)
        }
    }

    private func serve() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if lock.withLock({ stopped }) { return }
                if errno == EINTR { continue }
                return
            }
            var head = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !head.containsHeaderEnd {
                let count = read(client, &buffer, buffer.count)
                if count <= 0 { break }
                head.append(contentsOf: buffer[0..<count])
            }
            let keep = lock.withLock {
                received.append(String(decoding: head, as: UTF8.self))
                guard case .silent = behaviour, !stopped, !gaveUpHolding else { return false }
                held.append(client)
                return true
            }
            if keep { continue }
            if case .unauthorized = behaviour {
                let response =
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"converge-tests\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                _ = response.withCString { write(client, $0, strlen($0)) }
            }
            close(client)
        }
    }
}

extension [UInt8] {
    fileprivate var containsHeaderEnd: Bool {
        guard count >= 4 else { return false }
        for index in 0...(count - 4)
        where self[index] == 13 && self[index + 1] == 10 && self[index + 2] == 13 && self[index + 3] == 10 {
            return true
        }
        return false
    }
}
