import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Faults for the crash and concurrency tests, from `CONVERGE_FAULT`:
/// `kill-after-step:N` kills the process with SIGKILL right after step N is journaled as
/// finished; `kill-before-journal:N` right after step N ran but before the journal says so
/// (a step cut off mid-flight); `delay-steps:MS` makes every step wait MS milliseconds before
/// it acts (a slow system). Unset in normal use.
enum FaultInjection {
    enum Point: String {
        case afterStep = "kill-after-step"
        case beforeJournal = "kill-before-journal"
        case delaySteps = "delay-steps"
    }

    private static let configured: (Point, Int)? = {
        guard let text = ProcessInfo.processInfo.environment["CONVERGE_FAULT"] else { return nil }
        let parts = text.split(separator: ":")
        guard parts.count == 2, let point = Point(rawValue: String(parts[0])), let index = Int(parts[1]) else { return nil }
        return (point, index)
    }()

    static func check(_ point: Point, step: Int) {
        guard let (configuredPoint, index) = configured, configuredPoint == point, index == step else { return }
        kill(getpid(), SIGKILL)
    }

    static func delayStep() async {
        guard let (point, milliseconds) = configured, point == .delaySteps else { return }
        try? await Task.sleep(for: .milliseconds(milliseconds))
    }
}
