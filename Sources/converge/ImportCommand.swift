import ArgumentParser
import ConvergeDocker
import Foundation

/// `converge import`: manifests written from another tool's description of the same system.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Write Converge manifests from another tool's files.",
        subcommands: [ComposeImportCommand.self])
}

/// `converge import compose FILE [--out DIR] [--project NAME]`.
struct ComposeImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compose",
        abstract: "Write manifests for the services, networks and volumes of a docker-compose file.",
        discussion: """
            Containers, networks and volumes get docker-compose's names (<project>_<service>_1, \
            <project>_<network>), and each service is reachable on its networks by its name. \
            Every key that could not be translated is listed on stderr; exit 0 all the same.
            """)

    @Argument(help: "The compose file (version 2.x or 3.x).")
    var file: String

    @Option(help: "The folder to write the manifests to (created; files in it are replaced).")
    var out: String = "manifests-compose"

    @Option(help: "The project name docker-compose would use (default: the compose file's folder).")
    var project: String?

    func run() async throws {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw ValidationError("cannot read \(file): \(error.localizedDescription)")
        }
        let imported = try ComposeImport(text: text, path: file, project: project)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        for (name, content) in imported.files {
            try content.write(toFile: "\(out)/\(name)", atomically: true, encoding: .utf8)
        }
        Terminal.write("wrote \(imported.files.map { "\(out)/\($0.name)" }.joined(separator: ", "))\n")
        if !imported.untranslated.isEmpty {
            FileHandle.standardError.write(
                Data(("not translated:\n" + imported.untranslated.map { "  \($0)" }.joined(separator: "\n") + "\n").utf8))
        }
    }
}
