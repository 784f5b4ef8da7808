import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A program run in a process group of its own, so a timeout or a cancellation stops it and
/// everything it started (ansible-playbook forks a worker per host, each with its ssh): a
/// signal to the group reaches them all. Output goes to files, so a chatty program never
/// blocks on a full pipe.
struct ChildProcess: Sendable {
    struct Exit: Sendable {
        /// The exit code; nil when a signal ended the process.
        var code: Int32?
        var signal: Int32?
        /// True when the timeout ended it.
        var timedOut: Bool
    }

    /// A path, or a name looked up in PATH.
    var executable: String
    var arguments: [String]
    var environment: [String: String]
    var stdoutPath: String
    var stderrPath: String
    /// After SIGTERM to the group, how long it has to stop before SIGKILL.
    var gracePeriod: Duration = .seconds(5)

    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs the program to its end, or until `timeout` passes or the task is cancelled; then
    /// the group gets SIGTERM and, after the grace period, SIGKILL. Returns once the process
    /// is reaped.
    func run(timeout: Duration) async throws -> Exit {
        let pid = try spawn()
        let waiter = Waiter(pid: pid)
        let killer = Task {
            do {
                try await Task.sleep(for: timeout)
                waiter.timedOut()
                await stopGroup(pid, waiter: waiter)
            } catch {}
        }
        defer { killer.cancel() }
        return await withTaskCancellationHandler {
            await waiter.exit()
        } onCancel: {
            Task { await stopGroup(pid, waiter: waiter) }
        }
    }

    private func stopGroup(_ pid: pid_t, waiter: Waiter) async {
        guard !waiter.hasExited else { return }
        kill(-pid, SIGTERM)
        let clock = ContinuousClock()
        let deadline = clock.now + gracePeriod
        while clock.now < deadline, !waiter.hasExited {
            try? await Task.sleep(for: .milliseconds(100))
        }
        // The leader may be gone while workers it left behind still hold ssh sessions.
        kill(-pid, SIGKILL)
    }

    private func spawn() throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A group of its own (pgid = its pid), and default signal handling in the child.
        posix_spawnattr_setpgroup(&attributes, 0)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let status = posix_spawnp(&pid, executable, &actions, &attributes, argv, envp)
        guard status == 0 else {
            throw SpawnError(description: "cannot start \(executable): \(String(cString: strerror(status)))")
        }
        return pid
    }
}

/// Reaps one child on a thread of its own (a blocking `waitpid` must not hold one of the few
/// threads of Swift's cooperative pool) and hands its exit to whoever awaits it.
private final class Waiter: @unchecked Sendable {
    // @unchecked: every field is guarded by `lock`.
    private let lock = NSLock()
    private var result: ChildProcess.Exit?
    private var wasTimedOut = false
    private var continuations: [CheckedContinuation<ChildProcess.Exit, Never>] = []

    init(pid: pid_t) {
        let thread = Thread { [self] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
            let exited = status & 0x7f == 0
            let code: Int32? = exited ? (status >> 8) & 0xff : nil
            let signal: Int32? = exited ? nil : status & 0x7f
            let (exit, waiting) = lock.withLock { () -> (ChildProcess.Exit, [CheckedContinuation<ChildProcess.Exit, Never>]) in
                let exit = ChildProcess.Exit(code: code, signal: signal, timedOut: wasTimedOut)
                result = exit
                defer { continuations.removeAll() }
                return (exit, continuations)
            }
            for continuation in waiting { continuation.resume(returning: exit) }
        }
        thread.name = "converge-ansible-wait-\(pid)"
        thread.start()
    }

    var hasExited: Bool { lock.withLock { result != nil } }

    func timedOut() { lock.withLock { wasTimedOut = true } }

    func exit() async -> ChildProcess.Exit {
        await withCheckedContinuation { continuation in
            let done = lock.withLock { () -> ChildProcess.Exit? in
                if let result { return result }
                continuations.append(continuation)
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }
}
