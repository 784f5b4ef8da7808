import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Tells whether the process named by a lease's owner is gone, so the leases it left need
/// not wait out their TTL before its run is resumed. An owner it cannot check (a process of
/// another host) is never declared gone: only the lease's expiry frees it.
public struct ProcessLiveness: Sendable {
    /// True when the process `owner` names (`host:pid`) is known not to exist any more.
    public var isGone: @Sendable (_ owner: String) -> Bool

    public init(isGone: @escaping @Sendable (_ owner: String) -> Bool) {
        self.isGone = isGone
    }

    /// Owners `host:pid` of this host, checked with `kill(pid, 0)`; this process is never gone.
    public static let thisHost = ProcessLiveness { owner in
        let parts = owner.split(separator: ":")
        guard parts.count == 2, parts[0] == ProcessInfo.processInfo.hostName, let pid = Int32(parts[1]),
            pid != getpid()
        else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }
}
