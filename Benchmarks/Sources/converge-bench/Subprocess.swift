import ConvergeCore
import ConvergeTestSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The benchmarks' name for the shared process runner.
typealias Subprocess = ProcessRunner

extension ProcessRunner {
    typealias Result = ProcessResult
}

extension ProcessResult {
    /// The exit code as shells report it: 128 + the signal for a process killed by one.
    var status: Int32 { signal.map { 128 + $0 } ?? exitCode }
}

extension BackgroundServer {
    /// Starts `arguments` (its standard error shown) and waits for `readyLine`; throws when
    /// the process ends first.
    static func start(_ arguments: [String], readyLine: String) throws -> BackgroundServer {
        guard let server = try start(arguments[0], Array(arguments.dropFirst()), readyLine: readyLine, inheritStderr: true) else {
            throw Subprocess.Failure(description: "\(arguments[0]) exited before printing \(readyLine)")
        }
        return server
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

/// The third octet of the first of `count` adjacent /24s in 10.`second`.0.0/16 that no Docker
/// network on the engine overlaps (a network a failed run left behind, another benchmark's).
func freeSubnets(count: Int, in second: Int) throws -> Int {
    let ids = try Subprocess.check(["docker", "network", "ls", "-q"]).stdout.split(separator: "\n").map(String.init)
    let used =
        ids.isEmpty
        ? []
        : try Subprocess.check(["docker", "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"] + ids)
            .stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { IPv4Network(String($0)) }
    for _ in 0..<64 {
        let first = count * Int.random(in: 0..<(256 / count))
        let candidates = (first..<first + count).compactMap { IPv4Network("10.\(second).\($0).0/24") }
        if !candidates.contains(where: { candidate in used.contains { $0.overlaps(candidate) } }) { return first }
    }
    throw Subprocess.Failure(description: "no \(count) free adjacent /24s in 10.\(second).0.0/16")
}
