import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What a program run by `ProcessRunner` did.
public struct ProcessResult: Sendable {
    public var arguments: [String]
    /// The exit code; for a process killed by a signal, the signal's number (as Foundation's
    /// `Process.terminationStatus`).
    public var exitCode: Int32
    /// The signal that killed the process; nil when it exited.
    public var signal: Int32?
    /// Wall time from start to exit.
    public var seconds: Double
    /// Peak resident set size of the process, in KiB (Linux `ru_maxrss` unit).
    public var maxRSSKiB: Int
    public var stdout: String
    /// Empty when standard error was inherited.
    public var stderr: String

    public var succeeded: Bool { exitCode == 0 && signal == nil }

    /// For error messages: the command and the tail of what it printed.
    public var summary: String {
        let tail = (stderr.isEmpty ? stdout : stderr).split(separator: "\n").suffix(12).joined(separator: "\n")
        let end = signal.map { "was killed by signal \($0)" } ?? "exited with \(exitCode)"
        return "`\(arguments.joined(separator: " "))` \(end)\(tail.isEmpty ? "" : ":\n\(tail)")"
    }
}

/// Runs programs and waits for them with `wait4`, so each run reports its exit code, output,
/// wall time and peak memory (which Foundation's `Process` does not give). Output goes
/// through temporary files, so a chatty program never blocks on a full pipe.
public enum ProcessRunner {
    /// A program could not be started or waited for, or failed where it had to succeed.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String

        public init(description: String) {
            self.description = description
        }
    }

    /// The children being waited for, and whether an interrupt asked to start no more.
    private static let state = State()
    private final class State: @unchecked Sendable {
        // @unchecked: every field is guarded by `lock`.
        let lock = NSLock()
        var running: Set<pid_t> = []
        var interrupted = false
        var counter = 0
    }

    /// For a signal handler: stops the running children and refuses to start new ones (except
    /// those run with `evenIfInterrupted`, for cleaning up).
    public static func interrupt() {
        state.lock.withLock {
            state.interrupted = true
            for pid in state.running { kill(pid, SIGTERM) }
        }
    }

    /// Runs `arguments` (the first one looked up in PATH) in `directory` with `environment`
    /// added to this process's, and waits for it. Standard output is captured; standard error
    /// too, unless `inheritStderr`. `stdinPath` feeds a file to standard input.
    public static func run(
        _ arguments: [String], environment overrides: [String: String] = [:], directory: String? = nil,
        stdinPath: String = "/dev/null", inheritStderr: Bool = false, evenIfInterrupted: Bool = false
    ) throws -> ProcessResult {
        let base = NSTemporaryDirectory() + "cvt-io-\(getpid())-\(state.lock.withLock { state.counter += 1; return state.counter })"
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
        if let directory {
            guard let addChdir = addChdir else {
                throw Failure(description: "cannot run a program in \(directory): this libc has no posix_spawn_file_actions_addchdir_np")
            }
            addChdir(&actions, directory)
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
        let started = monotonicSeconds()
        let spawned = try state.lock.withLock {
            if state.interrupted && !evenIfInterrupted { throw Failure(description: "interrupted") }
            let code = posix_spawnp(&pid, arguments[0], &actions, nil, argv, envp)
            if code == 0 { state.running.insert(pid) }
            return code
        }
        guard spawned == 0 else {
            throw Failure(description: "cannot start `\(arguments[0])`: \(String(cString: strerror(spawned)))")
        }
        defer { _ = state.lock.withLock { state.running.remove(pid) } }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 {
            guard errno == EINTR else { throw Failure(description: "wait4 failed: \(String(cString: strerror(errno)))") }
        }
        let seconds = monotonicSeconds() - started

        let signal: Int32? = (status & 0x7F) == 0 ? nil : status & 0x7F
        return ProcessResult(
            arguments: arguments, exitCode: signal ?? (status >> 8) & 0xFF, signal: signal, seconds: seconds, maxRSSKiB: usage.ru_maxrss,
            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: inheritStderr ? "" : ((try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""))
    }

    /// `run`, waited for on a thread of its own: cooperative threads never block, so tests
    /// running side by side (and a test running two programs at once) never starve each other.
    public static func run(
        _ arguments: [String], environment: [String: String] = [:], directory: String? = nil, stdinPath: String = "/dev/null",
        inheritStderr: Bool = false
    ) async throws -> ProcessResult {
        try await onThreadOfItsOwn {
            try run(arguments, environment: environment, directory: directory, stdinPath: stdinPath, inheritStderr: inheritStderr)
        }
    }

    /// Runs and throws unless the exit code is 0.
    @discardableResult
    public static func check(
        _ arguments: [String], environment: [String: String] = [:], directory: String? = nil, stdinPath: String = "/dev/null",
        evenIfInterrupted: Bool = false
    ) throws -> ProcessResult {
        let result = try run(
            arguments, environment: environment, directory: directory, stdinPath: stdinPath, evenIfInterrupted: evenIfInterrupted)
        guard result.succeeded else { throw Failure(description: result.summary) }
        return result
    }

    /// The absolute path of this executable, to start a fresh child of itself.
    public static var selfPath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// glibc's `posix_spawn_file_actions_addchdir_np` (2.29 and later), which Swift's Glibc
    /// module does not declare.
    private static let addChdir: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(
            symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32).self)
    }()

    private static func monotonicSeconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

/// Runs blocking work on a new thread and resumes when it is done.
func onThreadOfItsOwn<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}
