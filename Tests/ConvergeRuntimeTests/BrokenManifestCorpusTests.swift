import ConvergeCore
import ConvergeDocker
import Foundation
import Testing

/// The corpus of broken manifest sets in `Corpus/broken/`: each folder holds one set of
/// manifest files and an `expected.txt` with the diagnostics `ManifestSet.load` must report,
/// one per line, as `file:line:column: part of the message` (file relative to the folder).
/// Blank lines and lines starting with `#` are ignored.
///
/// The check is exact both ways: every expected line matches a distinct diagnostic (same
/// place, message containing the text) and no diagnostic is left over, so a missing error,
/// a wrong line or a spurious cascading error all fail the case.
enum BrokenCorpus {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .appendingPathComponent("Corpus/broken", isDirectory: true)

    /// Every case folder, sorted by name.
    static var caseNames: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: root.appendingPathComponent(name).path, isDirectory: &isDirectory)
                && isDirectory.boolValue
        }.sorted()
    }

    /// The manifest files of one case (`.yaml`/`.yml`, in subfolders too), paths relative to it.
    static func sourceFiles(of caseName: String) throws -> [SourceFile] {
        let folder = root.appendingPathComponent(caseName, isDirectory: true)
        let enumerator = FileManager.default.enumerator(atPath: folder.path)
        var files: [SourceFile] = []
        while let relative = enumerator?.nextObject() as? String {
            guard relative.hasSuffix(".yaml") || relative.hasSuffix(".yml") else { continue }
            let data = try Data(contentsOf: folder.appendingPathComponent(relative))
            files.append(SourceFile(path: relative, bytes: Array(data)))
        }
        return files.sorted { $0.path < $1.path }
    }

    struct Expectation: CustomStringConvertible {
        var file: String
        var line: Int
        var column: Int
        var message: String
        var text: String

        var description: String { text }

        func matches(_ diagnostic: Diagnostic) -> Bool {
            guard let location = diagnostic.location else { return false }
            return location.file == file && location.line == line && location.column == column
                && diagnostic.message.contains(message)
        }
    }

    enum CorpusError: Error, CustomStringConvertible {
        case badExpectation(String, line: Int, text: String)
        var description: String {
            switch self {
            case let .badExpectation(file, line, text):
                return "\(file):\(line): expected 'file:line:column: message', found '\(text)'"
            }
        }
    }

    static func expectations(of caseName: String) throws -> [Expectation] {
        let url = root.appendingPathComponent(caseName).appendingPathComponent("expected.txt")
        let text = try String(contentsOf: url, encoding: .utf8)
        var result: [Expectation] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false)
            guard parts.count == 4, let lineNumber = Int(parts[1]), let column = Int(parts[2]) else {
                throw CorpusError.badExpectation("\(caseName)/expected.txt", line: index + 1, text: line)
            }
            let message = parts[3].trimmingCharacters(in: .whitespaces)
            guard !parts[0].isEmpty, !message.isEmpty else {
                throw CorpusError.badExpectation("\(caseName)/expected.txt", line: index + 1, text: line)
            }
            result.append(Expectation(file: String(parts[0]), line: lineNumber, column: column, message: message, text: line))
        }
        return result
    }

    /// Pairs expectations with distinct diagnostics (a maximum bipartite matching, so the
    /// order of lines in `expected.txt` never matters). Returns, per expectation, the index
    /// of its diagnostic or nil.
    static func match(_ expected: [Expectation], _ actual: [Diagnostic]) -> [Int?] {
        var owner = [Int?](repeating: nil, count: actual.count)
        func assign(_ e: Int, _ seen: inout Set<Int>) -> Bool {
            for (d, diagnostic) in actual.enumerated() where expected[e].matches(diagnostic) && !seen.contains(d) {
                seen.insert(d)
                if owner[d] == nil || assign(owner[d]!, &seen) {
                    owner[d] = e
                    return true
                }
            }
            return false
        }
        for e in expected.indices {
            var seen: Set<Int> = []
            _ = assign(e, &seen)
        }
        var result = [Int?](repeating: nil, count: expected.count)
        for (d, e) in owner.enumerated() { if let e { result[e] = d } }
        return result
    }

    /// A diagnostic as an `expected.txt` line would write it, with its hint for context.
    static func render(_ diagnostic: Diagnostic) -> String {
        let place = diagnostic.location.map { "\($0.file):\($0.line):\($0.column)" } ?? "<no location>"
        var text = "\(place): \(diagnostic.message)"
        if let resource = diagnostic.resource { text += "   [\(resource)]" }
        if let hint = diagnostic.hint { text += "   (hint: \(hint))" }
        return text
    }
}

@Suite("Broken manifest corpus")
struct BrokenManifestCorpusTests {
    @Test("the corpus is there and every case says what it expects")
    func corpusIsPopulated() throws {
        let names = BrokenCorpus.caseNames
        #expect(names.count >= 30, "found \(names.count) cases in \(BrokenCorpus.root.path)")
        for name in names {
            #expect(try !BrokenCorpus.sourceFiles(of: name).isEmpty, "\(name) has no manifest file")
            #expect(try !BrokenCorpus.expectations(of: name).isEmpty, "\(name)/expected.txt lists no diagnostic")
        }
    }

    @Test("each broken set is rejected with exactly the expected diagnostics", arguments: BrokenCorpus.caseNames)
    func brokenSetIsRejected(_ caseName: String) throws {
        let files = try BrokenCorpus.sourceFiles(of: caseName)
        let expected = try BrokenCorpus.expectations(of: caseName)

        let error = #expect(throws: ManifestValidationError.self, "\(caseName): the set loaded without error") {
            _ = try ManifestSet.load(files, registry: .converge)
        }
        guard let actual = error?.diagnostics else { return }

        let matches = BrokenCorpus.match(expected, actual)
        let matched = Set(matches.compactMap { $0 })
        let missing = expected.indices.filter { matches[$0] == nil }.map { expected[$0] }
        let unexpected = actual.indices.filter { !matched.contains($0) }.map { actual[$0] }

        if !missing.isEmpty || !unexpected.isEmpty || actual.count != expected.count {
            var report = ["\(caseName): diagnostics differ from expected.txt"]
            report.append("  expected (\(expected.count)):")
            report += expected.map { "    \($0.text)" }
            report.append("  actual (\(actual.count)):")
            report += actual.map { "    \(BrokenCorpus.render($0))" }
            if !missing.isEmpty {
                report.append("  not reported:")
                report += missing.map { "    \($0.text)" }
            }
            if !unexpected.isEmpty {
                report.append("  not expected:")
                report += unexpected.map { "    \(BrokenCorpus.render($0))" }
            }
            Issue.record(Comment(rawValue: report.joined(separator: "\n")))
        }
    }
}
