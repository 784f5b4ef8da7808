import Foundation

/// Keeps credentials out of anything a person or a log can see.
enum URLRedaction {
    /// `https://user:secret@host/x` → `https://host/x`; other strings are returned unchanged.
    static func redact(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url }
        let authorityStart = schemeEnd.upperBound
        let rest = url[authorityStart...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return url }
        return String(url[..<authorityStart]) + String(url[url.index(after: at)...])
    }

    /// Redacts every `scheme://user:secret@` occurrence inside a longer text (libgit2 messages
    /// sometimes quote the URL).
    static func redactURLs(in text: String) -> String {
        guard text.contains("://"), text.contains("@") else { return text }
        var result = ""
        var token = ""
        func flush() {
            if !token.isEmpty {
                result += token.contains("://") ? redact(token) : token
                token = ""
            }
        }
        for character in text {
            if character.isWhitespace || character == "'" || character == "\"" {
                flush()
                result.append(character)
            } else {
                token.append(character)
            }
        }
        flush()
        return result
    }

    /// Replaces every occurrence of `secret` in `text` (belt and braces: libgit2 should never
    /// echo a password, but a message must not leak one even if it did).
    static func scrub(_ text: String, secret: String?) -> String {
        guard let secret, !secret.isEmpty else { return text }
        return text.replacingOccurrences(of: secret, with: "***")
    }
}
