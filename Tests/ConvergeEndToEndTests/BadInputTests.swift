import ConvergeDocker
import Foundation
import Testing

/// Every broken manifest set of the corpus, given to `converge reconcile`: exit 1, the
/// problems on stderr, and the engine exactly as it was.
@Suite struct BadInputTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ConvergeRuntimeTests/Corpus/broken")

    static var cases: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: corpus.path)) ?? []).sorted()
    }

    @Test func corpusIsPresent() {
        #expect(Self.cases.count >= 25)
    }

    @Test(arguments: cases)
    func brokenSetChangesNothing(caseName: String) async throws {
        try await Lab.with { lab in
            let before = try await engineObjects(lab.engine)
            let folder = Self.corpus.appendingPathComponent(caseName).path
            let result = try await lab.reconcile(folder)
            #expect(result.exitCode == 1, "\(result.stdout)")
            #expect(result.stderr.contains("nothing was changed"), "\(result.stderr)")
            let firstExpected = try String(contentsOfFile: folder + "/expected.txt", encoding: .utf8)
                .split(separator: "\n").first { !$0.hasPrefix("#") && !$0.isEmpty }
            if let location = firstExpected?.split(separator: " ").first {
                #expect(result.stderr.contains(location.dropLast()), "stderr names \(location)")
            }
            let after = try await engineObjects(lab.engine)
            #expect(after == before, "the engine changed for \(caseName)")
        }
    }

    /// Ids of containers and networks not made by other tests running alongside (their
    /// names start with `cv`; route helpers are named by the engine and carry a label).
    private func engineObjects(_ engine: DockerEngine) async throws -> Set<String> {
        let containers = try await engine.listContainers(all: true).filter {
            !($0.name ?? "").hasPrefix("cv") && $0.labels?["converge.dev/helper"] == nil
        }.map(\.id)
        let networks = try await engine.listNetworks().filter { !$0.name.hasPrefix("cv") }.map(\.id)
        return Set(containers + networks)
    }
}
