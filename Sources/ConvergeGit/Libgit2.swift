import Clibgit2

/// Thin helpers over the libgit2 C API: one-time initialisation, error capture and ids.
///
/// Everything here is internal; the public surface is `GitSource`.
enum Libgit2 {
    /// `git_libgit2_init` must run before any other call. A global `let` is initialised
    /// lazily and exactly once by the Swift runtime (thread-safe), so this is the only
    /// "global state" of the module and it is immutable after the first use.
    private static let initialized: Int32 = git_libgit2_init()

    static func ensureInitialized() {
        _ = initialized
    }

    /// Forgets the last error of this thread, so a later message is never a stale one.
    static func clearError() {
        git_error_clear()
    }

    /// The message of the last libgit2 error on this thread, if any.
    static func lastErrorMessage() -> String? {
        guard let error = git_error_last(), let message = error.pointee.message else { return nil }
        let text = String(cString: message).trimmingTrailingWhitespace()
        return text.isEmpty ? nil : text
    }

    /// Runs a libgit2 call and turns a negative return code into a `GitSourceError`.
    ///
    /// `what` completes the sentence "could not …" and should name the repository.
    @discardableResult
    static func check(
        _ code: Int32,
        _ kind: GitSourceError.Kind = .libgit2,
        _ what: @autoclosure () -> String,
        hint: @autoclosure () -> String? = nil
    ) throws(GitSourceError) -> Int32 {
        guard code < 0 else { return code }
        throw GitSourceError.libgit2(kind, code: code, what: what(), hint: hint())
    }

    /// The 40-hex text of an object id.
    static func hex(_ oid: UnsafePointer<git_oid>) -> String {
        // GIT_OID_HEXSZ is 40 for SHA-1 (the only kind libgit2 1.5 knows); +1 for the NUL.
        var buffer = [CChar](repeating: 0, count: 41)
        return buffer.withUnsafeMutableBufferPointer { pointer in
            _ = git_oid_tostr(pointer.baseAddress, pointer.count, oid)
            return String(cString: pointer.baseAddress!)
        }
    }

    static func hex(_ oid: git_oid) -> String {
        var copy = oid
        return hex(&copy)
    }

    /// SHA-1 of arbitrary bytes via libgit2 (used to name cache folders; not a security use).
    static func sha1Hex(_ text: String) -> String {
        ensureInitialized()
        var oid = git_oid()
        let bytes = Array(text.utf8)
        let code = bytes.withUnsafeBytes { raw in
            git_odb_hash(&oid, raw.baseAddress, raw.count, GIT_OBJECT_BLOB)
        }
        if code < 0 {
            // Cannot really fail for in-memory data; fall back to a stable FNV-1a hash.
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
            return String(hash, radix: 16)
        }
        return hex(oid)
    }
}

extension String {
    func trimmingTrailingWhitespace() -> String {
        var scalars = Substring(self)
        while let last = scalars.last, last.isWhitespace {
            scalars = scalars.dropLast()
        }
        return String(scalars)
    }
}
