import ArgumentParser
import ConvergeCore
import ConvergeRuntime
import ConvergeStore
import ConvergeWorkflow
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

    /// Runs a command's body with a runtime for `instance`: exit codes pass through; any
    /// other error is printed the same way for every command, on stderr, with what to do on
    /// the command line, and ends the process with exit code 1. The sessions the runtime's
    /// providers opened (vCenter) are closed either way.
    static func run(instance: String = ConvergeCommand.defaultInstance, _ body: (Runtime) async throws -> Void) async throws {
        let runtime = Runtime(plugins: ConvergeCommand.plugins, instance: instance, version: ConvergeCommand.version)
        do {
            try await runtime.run(body)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            log("Error: \(CLIHint.describe(error))")
            throw ExitCode(1)
        }
    }

    /// `rows` under `header`, in columns as wide as their widest cell, two spaces apart.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n") + "\n"
    }
}

/// What to do about a library's error on the command line: the libraries say what went
/// wrong; flags and commands are the CLI's to name.
enum CLIHint {
    static func describe(_ error: any Error) -> String {
        if let error = error as? RuntimeError, let hint = hint(for: error.code) {
            return "\(error.message) (\(hint))"
        }
        if let error = error as? ReconcileError, error.code == .notInPlan {
            return "\(error) (run converge reconcile for a new plan)"
        }
        if let error = error as? WorkflowError, let hint = hint(for: error) {
            return "\(error) (\(hint))"
        }
        if let error = error as? StoreError, error.code == .runNotFound {
            return "\(error) (list runs with converge runs)"
        }
        return "\(error)"
    }

    static func hint(for error: WorkflowError) -> String? {
        let run = error.run.map(String.init) ?? "ID"
        switch error.code {
        case .noSuchRun: return "converge runs lists the runs"
        case .awaitingApproval: return "converge approve \(run) --approver NAME, or converge reject \(run)"
        case .staleApproval: return "converge runs show \(run) shows the current plan"
        case .planChanged: return "run converge reconcile for a new plan"
        case .resourcesHeld: return "converge runs show \(run) shows what it does"
        case .leaseLost: return "raise --lease-ttl if this process is often that slow; converge runs resume \(run) continues it"
        case .leaseRenewalFailed: return "converge runs resume \(run) continues it"
        default: return nil
        }
    }

    static func hint(for code: RuntimeError.Code) -> String? {
        switch code {
        case .unsupportedStore: return "use postgres://user@host:port/database, or --state PATH for SQLite"
        case .missingSource: return "give a folder of YAML manifests, or --repo for a Git repository"
        case .unreadableSource: return "check the file's permissions"
        case .noSnapshotTargets: return "add a VCenter manifest for the vCenter whose snapshots to collect"
        case .noRuns: return "run converge reconcile first"
        default: return nil
        }
    }

}
