import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

enum ColorMode: String, ExpressibleByArgument, CaseIterable {
    case auto, always, never
}

/// What the process writes to: decides colour and the live progress line.
enum Terminal {
    static var stdoutIsTTY: Bool { isatty(STDOUT_FILENO) == 1 }
    static var stderrIsTTY: Bool { isatty(STDERR_FILENO) == 1 }

    static func useColor(_ mode: ColorMode) -> Bool {
        switch mode {
        case .always: return true
        case .never: return false
        case .auto: return stdoutIsTTY && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        }
    }

    static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    static func log(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Runs a command's body: exit codes pass through; any other error is printed the same
    /// way for every command, on stderr, and ends the process with exit code 1.
    /// Sessions opened on the way (vCenter) are closed either way.
    static func run(_ body: () async throws -> Void) async throws {
        do {
            try await body()
            await EngineFactory.closeSessions()
        } catch let exit as ExitCode {
            await EngineFactory.closeSessions()
            throw exit
        } catch {
            await EngineFactory.closeSessions()
            log("Error: \(error)")
            throw ExitCode(1)
        }
    }
}
