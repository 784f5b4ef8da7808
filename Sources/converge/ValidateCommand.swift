import ArgumentParser
import ConvergeCore
import ConvergeRuntime

/// `converge validate`: checks a manifest set and reports every problem at once.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a manifest set; report every problem with file:line:column.")

    @OptionGroup var source: ManifestSourceOptions

    func run() async throws {
        try await Terminal.run { runtime in
            let snapshot = try await source.load()
            let count = try runtime.load(snapshot).resources.count
            let files = snapshot.files.count
            Terminal.write(
                "\(snapshot.revision.repository): \(count) resource\(count == 1 ? "" : "s") in \(files) file\(files == 1 ? "" : "s"), all valid.\n"
            )
        }
    }
}
