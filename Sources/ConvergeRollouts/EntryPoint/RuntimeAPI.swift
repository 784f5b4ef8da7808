import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// HAProxy's runtime API on its unix socket: one connection per batch of commands (`;`
/// separated), answered and closed by HAProxy (non-interactive mode).
struct RuntimeAPI: Sendable {
    /// The socket's path on the Docker host (a directory mounted into the entry point).
    var socketPath: String
    var timeout: Duration = .seconds(5)

    /// Sends `commands` in one batch and returns the answer; throws when HAProxy refuses one.
    @discardableResult
    func send(_ commands: [String]) throws -> String {
        let answer = try exchange(commands.joined(separator: "; ") + "\n")
        let refusals = answer.split(separator: "\n").filter { line in
            let lower = line.lowercased()
            return ["no such", "unknown", "require", "invalid", "error", "not found", "unable", "failed"].contains { lower.contains($0) }
        }
        guard refusals.isEmpty else {
            throw RolloutError("the entry point's HAProxy refused a command: \(refusals.joined(separator: "; "))", hint: nil)
        }
        return answer
    }

    /// The backend the map sends traffic to, or nil when the map has no entry.
    func activeSlot() throws -> EntryPointConfig.Slot? {
        let answer = try exchange("show map \(EntryPointConfig.mapPath)\n")
        for line in answer.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count >= 3, fields[fields.count - 2] == "active" {
                return EntryPointConfig.Slot(rawValue: String(fields[fields.count - 1]))
            }
        }
        return nil
    }

    private func exchange(_ request: String) throws -> String {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw failure("socket") }
        defer { close(descriptor) }
        var limit = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath.utf8)
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw RolloutError("the entry point's socket path is too long: \(socketPath)", hint: nil)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: path)
            buffer[path.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw failure("connect to") }
        var bytes = Array(request.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeMutableBytes { write(descriptor, $0.baseAddress! + written, $0.count - written) }
            guard count > 0 else { throw failure("write to") }
            written += count
        }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
            if count == 0 { break }
            guard count > 0 else { throw failure("read from") }
            answer += chunk[..<count]
        }
        return String(decoding: answer, as: UTF8.self)
    }

    private func failure(_ operation: String) -> RolloutError {
        RolloutError(
            "cannot \(operation) the entry point's runtime API at \(socketPath): \(String(cString: strerror(errno)))",
            hint: "the entry point container may be down; reconcile again to repair it")
    }
}
