import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs a program and waits for it with `wait4`, so each run reports its own wall time and
/// peak memory (`ru_maxrss`), which Foundation's `Process` does not give.
enum Subprocess {
    struct Result {
        var arguments: [String]
        var status: Int32
        var seconds: Double
        /// Peak resident set size of the child, in KiB (Linux `ru_maxrss` unit).
        var maxRSSKiB: Int
        var stdout: String
        var stderr: String

        var succeeded: Bool { status == 0 }

        /// For error messages: the command and the tail of what it printed.
        var summary: String {
            let tail = (stderr.isEmpty ? stdout : stderr).split(separator: "\n").suffix(12).joined(separator: "\n")
            return "`\(arguments.joined(separator: " "))` exited with \(status)\(tail.isEmpty ? "" : ":\n\(tail)")"
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    nonisolated(unsafe) private static var counter = 0

    /// The child being waited for, and whether an interrupt asked to start no more.
    private static let state = State()
    private final class State: @unchecked Sendable {
        let lock = NSLock()
        var running: pid_t = 0
        var interrupted = false
    }

    /// For a signal handler: stop the running child and refuse to start new ones (except
    /// those run with `evenIfInterrupted`, for cleaning up).
    static func interrupt() {
        state.lock.withLock {
            state.interrupted = true
            if state.running > 0 { kill(state.running, SIGTERM) }
        }
    }

    /// Runs `arguments` (the first one looked up in PATH) with stdout and stderr captured
    /// through temporary files, or inherited when `inheritStderr` is set.
    /// `stdinPath` feeds a file to standard input (default /dev/null).
    static func run(
        _ arguments: [String],
        environment overrides: [String: String] = [:],
        stdinPath: String = "/dev/null",
        inheritStderr: Bool = false,
        evenIfInterrupted: Bool = false
    ) throws -> Result {
        counter += 1
        let base = NSTemporaryDirectory() + "cvb-io-\(getpid())-\(counter)"
        let outPath = base + ".out"
        let errPath = base + ".err"
        defer {
            unlink(outPath)
            unlink(errPath)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if !inheritStderr {
            posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        }

        var environment = ProcessInfo.processInfo.environment
        for (key, value) in overrides { environment[key] = value }
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }

        var pid: pid_t = 0
        let started = Clock.now()
        let spawned = try state.lock.withLock {
            if state.interrupted && !evenIfInterrupted { throw Failure(description: "interrupted") }
            let code = posix_spawnp(&pid, arguments[0], &actions, nil, argv, envp)
            if code == 0 { state.running = pid }
            return code
        }
        guard spawned == 0 else {
            throw Failure(description: "cannot start `\(arguments[0])`: \(String(cString: strerror(spawned)))")
        }
        defer { state.lock.withLock { state.running = 0 } }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 {
            guard errno == EINTR else { throw Failure(description: "wait4 failed: \(String(cString: strerror(errno)))") }
        }
        let seconds = Clock.now() - started

        // Exited normally: the exit code; killed by a signal: 128 + signal, as shells say.
        let exitCode: Int32 = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return Result(
            arguments: arguments, status: exitCode, seconds: seconds, maxRSSKiB: usage.ru_maxrss,
            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: inheritStderr ? "" : ((try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""))
    }

    /// Runs and throws unless the exit code is 0.
    @discardableResult
    static func check(
        _ arguments: [String], environment: [String: String] = [:], stdinPath: String = "/dev/null", evenIfInterrupted: Bool = false
    ) throws -> Result {
        let result = try run(arguments, environment: environment, stdinPath: stdinPath, evenIfInterrupted: evenIfInterrupted)
        guard result.succeeded else { throw Failure(description: result.summary) }
        return result
    }

    /// The absolute path of this executable, to start a fresh child of itself.
    static var selfPath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

/// Monotonic time in seconds.
enum Clock {
    static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// Runs `body` and returns its result and how long it took.
    static func time<T>(_ body: () throws -> T) rethrows -> (T, Double) {
        let started = now()
        let value = try body()
        return (value, now() - started)
    }
}

/// Peak resident set size of this process so far, in MiB (`getrusage(RUSAGE_SELF).ru_maxrss`).
func peakRSSMiB() -> Double {
    var usage = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// Current resident set size in MiB (from /proc/self/statm), to tell the input's share of the peak.
func currentRSSMiB() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Double(fields[1]) else { return 0 }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
}

/// A fresh temporary folder named `<prefix>XXXXXX`, created with mkdtemp.
func makeTemporaryDirectory(prefix: String) throws -> String {
    var template = Array((NSTemporaryDirectory() + prefix + "XXXXXX").utf8CString)
    guard let made = mkdtemp(&template) else {
        throw Subprocess.Failure(description: "mkdtemp failed: \(String(cString: strerror(errno)))")
    }
    return String(cString: made)
}

/// Lower-case letters and digits, for unique names.
func randomSuffix(_ length: Int = 6) -> String {
    let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
    return String((0..<length).map { _ in alphabet.randomElement()! })
}
