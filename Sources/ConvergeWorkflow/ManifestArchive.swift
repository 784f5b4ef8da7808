import ConvergeCore
import Foundation

/// The manifest files of a run, and the files beside them its kinds read (a playbook's), kept
/// in the journal so any process can resume the run with exactly the desired state it started
/// from, whatever the source holds by then.
enum ManifestArchive {
    private struct Entry: Codable {
        var path: String
        var base64: String
        /// True for a file read beside the manifests; absent for a manifest (and in archives
        /// written before such files existed).
        var repositoryFile: Bool?
    }

    static func encode(_ manifests: [SourceFile], repositoryFiles: [SourceFile] = []) throws -> String {
        let entries =
            manifests.map { Entry(path: $0.path, base64: Data($0.bytes).base64EncodedString()) }
            + repositoryFiles.map { Entry(path: $0.path, base64: Data($0.bytes).base64EncodedString(), repositoryFile: true) }
        return String(decoding: try JSONEncoder().encode(entries), as: UTF8.self)
    }

    static func decode(_ text: String) throws -> (manifests: [SourceFile], repositoryFiles: [SourceFile]) {
        var manifests: [SourceFile] = []
        var repositoryFiles: [SourceFile] = []
        for entry in try JSONDecoder().decode([Entry].self, from: Data(text.utf8)) {
            guard let data = Data(base64Encoded: entry.base64) else {
                throw WorkflowError.corruptJournal("manifest \(entry.path) is not valid base64")
            }
            let file = SourceFile(path: entry.path, bytes: [UInt8](data))
            if entry.repositoryFile == true { repositoryFiles.append(file) } else { manifests.append(file) }
        }
        return (manifests, repositoryFiles)
    }
}
