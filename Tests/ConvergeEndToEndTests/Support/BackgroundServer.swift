import Foundation

/// A server a test starts (the vCenter simulator, the paging proxy), read until it prints
/// its ready line; the `KEY=value` lines it printed before that are kept.
struct BackgroundServer {
    let process: Process
    let values: [String: String]

    /// nil when the process ended before printing `readyLine`.
    static func start(_ executable: String, _ arguments: [String], readyLine: String) async throws -> BackgroundServer? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Read on a thread of its own: the pipe blocks, and cooperative threads must not.
        let text: String = await withCheckedContinuation { continuation in
            Thread {
                var text = ""
                while !text.contains(readyLine) {
                    let chunk = output.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    text += String(decoding: chunk, as: UTF8.self)
                }
                continuation.resume(returning: text)
            }.start()
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

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}
