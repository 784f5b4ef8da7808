import ConvergeCore
import Foundation

/// The manifest files of a run, kept in the journal so any process can resume the run with
/// exactly the desired state it started from, whatever the source holds by then.
enum ManifestArchive {
    private struct Entry: Codable {
        var path: String
        var base64: String
    }

    static func encode(_ files: [SourceFile]) throws -> String {
        let entries = files.map { Entry(path: $0.path, base64: Data($0.bytes).base64EncodedString()) }
        return String(decoding: try JSONEncoder().encode(entries), as: UTF8.self)
    }

    static func decode(_ text: String) throws -> [SourceFile] {
        try JSONDecoder().decode([Entry].self, from: Data(text.utf8)).map { entry in
            guard let data = Data(base64Encoded: entry.base64) else {
                throw WorkflowError.corruptJournal("manifest \(entry.path) is not valid base64")
            }
            return SourceFile(path: entry.path, bytes: [UInt8](data))
        }
    }
}
