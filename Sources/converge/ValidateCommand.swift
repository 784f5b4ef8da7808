import ArgumentParser
import ConvergeCore

/// `converge validate`: checks a manifest set and reports every problem at once.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a manifest set; report every problem with file:line:column.")

    @OptionGroup var source: ManifestSourceOptions

    func run() async throws {
        try await Terminal.run {
            let (files, revision) = try source.load()
            let set = try ManifestSet.load(files)
            let count = set.resources.count
            Terminal.write("\(revision.repository): \(count) resource\(count == 1 ? "" : "s") in \(files.count) file\(files.count == 1 ? "" : "s"), all valid.\n")
        }
    }
}
