import Foundation

extension GitSource {
    /// `load(_:)` for async callers: the same work on a thread of its own, awaited without
    /// holding a thread of Swift's cooperative pool.
    ///
    /// libgit2 blocks its calling thread for as long as a clone or fetch takes, and libgit2
    /// 1.5 sets no network timeout of its own, so a slow or silent server holds that thread
    /// for minutes. The cooperative pool has one thread per core (two on a small machine): a
    /// load there would stall every other task of the process (progress, the Docker and
    /// vCenter clients, the store). So the load runs on a new `Thread` and the caller is
    /// suspended on a continuation until it ends. One thread per load is cheap next to the
    /// network work, and loads happen once per command or poll.
    ///
    /// Cancelling the awaiting task does not interrupt libgit2: the call returns when the load
    /// has succeeded or failed by itself.
    ///
    /// - Throws: `GitSourceError` only.
    public static func loadOnDedicatedThread(_ request: GitSourceRequest) async throws -> GitSnapshot {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try load(request) })
            }
            thread.name = "converge-git-load"
            thread.start()
        }
    }
}
