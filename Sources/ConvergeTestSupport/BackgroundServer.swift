import Foundation

/// A server started for a test or a benchmark (the vCenter simulator, the paging proxy),
/// read until it prints its ready line; the `KEY=value` lines it printed before are kept.
public struct BackgroundServer: @unchecked Sendable {
    // @unchecked: `process` is only terminated and waited for.
    public let process: Process
    public let values: [String: String]

    /// Starts `executable` and waits, blocking the calling thread, for `readyLine`; nil when
    /// the process ended before printing it. Its standard error is discarded, or inherited.
    public static func start(_ executable: String, _ arguments: [String], readyLine: String, inheritStderr: Bool = false) throws
        -> BackgroundServer?
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = inheritStderr ? FileHandle.standardError : FileHandle.nullDevice
        try process.run()
        var text = ""
        while !text.contains(readyLine) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard text.contains(readyLine) else {
            process.terminate()
            return nil
        }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
        }
        return BackgroundServer(process: process, values: values)
    }

    /// `start`, read on a thread of its own: the pipe blocks, and cooperative threads must not.
    public static func start(_ executable: String, _ arguments: [String], readyLine: String, inheritStderr: Bool = false)
        async throws -> BackgroundServer?
    {
        try await onThreadOfItsOwn { try start(executable, arguments, readyLine: readyLine, inheritStderr: inheritStderr) }
    }

    public func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}
