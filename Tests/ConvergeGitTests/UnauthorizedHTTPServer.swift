import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A tiny HTTP server on 127.0.0.1 that answers every request with `401 Unauthorized`
/// (Basic), and records the request heads it received, so tests can check what a client
/// sent when asked for credentials.
final class UnauthorizedHTTPServer: @unchecked Sendable {
    let port: UInt16
    private let listener: Int32
    private let lock = NSLock()
    private var received: [String] = []
    private var stopped = false

    var requests: [String] {
        lock.withLock { received }
    }

    init() throws {
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
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    func stop() {
        lock.withLock { stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
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
            lock.withLock { received.append(String(decoding: head, as: UTF8.self)) }
            let response =
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"converge-tests\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            _ = response.withCString { write(client, $0, strlen($0)) }
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
