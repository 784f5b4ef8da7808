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

    /// Prints every error the same way, on stderr, and maps it to exit code 1.
    static func fail(_ error: any Error) -> ExitCode {
        log("Error: \(error)")
        return ExitCode(1)
    }
}
