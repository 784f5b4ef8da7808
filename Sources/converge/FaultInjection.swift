import ConvergeCore
import ConvergeWorkflow
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Faults for the crash and concurrency tests, from `CONVERGE_FAULT`, as the engine's fault
/// hook: `kill-after-step:N` kills the process with SIGKILL right after step N is journaled as
/// finished; `kill-before-journal:N` right after step N ran but before the journal says so (a
/// step cut off mid-flight); `delay-steps:MS` makes every step wait MS milliseconds before it
/// acts (a slow system). Unset in normal use: no hook.
enum FaultInjection {
    static let hook: FaultHook? = {
        guard let text = ProcessInfo.processInfo.environment["CONVERGE_FAULT"] else { return nil }
        let parts = text.split(separator: ":")
        guard parts.count == 2, let number = Int(parts[1]) else { return nil }
        switch parts[0] {
        case "kill-after-step": return killing(at: .afterStep, step: number)
        case "kill-before-journal": return killing(at: .beforeJournal, step: number)
        case "delay-steps":
            return { point, _ in
                if point == .beforeStep { try? await Task.sleep(for: .milliseconds(number)) }
            }
        default: return nil
        }
    }()

    private static func killing(at killPoint: FaultPoint, step index: Int) -> FaultHook {
        { point, step in
            if point == killPoint, step.index == index { kill(getpid(), SIGKILL) }
        }
    }
}
