import ConvergeCore
import Foundation
import Testing

@Test func corpusDumpTemp() throws {
    var out: [String] = []
    for name in BrokenCorpus.caseNames {
        out.append("== \(name)")
        do { _ = try ManifestSet.load(try BrokenCorpus.sourceFiles(of: name)); out.append("   LOADED") }
        catch let error as ManifestValidationError { out += error.diagnostics.map { "   " + $0.description } }
    }
    try out.joined(separator: "\n").write(toFile: "/tmp/corpus-dump.txt", atomically: true, encoding: .utf8)
}
