import Crypto
import Foundation

/// The bearer tokens of the API, each mapped to the user name it authenticates (recorded on
/// approvals and checked against `ApprovalPolicy` approvers).
///
/// The file is Kubernetes' static token file format, `token,user[,uid,"group,…"]` per line
/// (`#` starts a comment), so a cluster Secret made for one serves the other. Only SHA-256
/// digests of the tokens are kept in memory.
public struct APITokens: Sendable {
    private let users: [Data: String]

    public init(_ tokens: [String: String]) {
        users = Dictionary(tokens.map { (Data(SHA256.hash(data: Array($0.key.utf8))), $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    public static func load(file path: String) throws -> APITokens {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ControllerError("cannot read the API token file \(path)", hint: "give a readable file of token,user lines")
        }
        var tokens: [String: String] = [:]
        for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty || text.hasPrefix("#") { continue }
            let fields = text.split(separator: ",", maxSplits: 2).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count >= 2, !fields[0].isEmpty, !fields[1].isEmpty else {
                throw ControllerError("\(path):\(number + 1): expected token,user", hint: "one token and its user name per line")
            }
            tokens[fields[0]] = fields[1]
        }
        return APITokens(tokens)
    }

    /// The user an `Authorization: Bearer …` header authenticates, nil for none or a bad one.
    func user(authorization: String?) -> String? {
        guard let authorization, authorization.lowercased().hasPrefix("bearer ") else { return nil }
        let token = authorization.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces)
        guard !token.isEmpty else { return nil }
        return users[Data(SHA256.hash(data: Array(token.utf8)))]
    }
}
