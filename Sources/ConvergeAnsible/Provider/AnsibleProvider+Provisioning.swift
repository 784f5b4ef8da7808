import ConvergeCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

extension AnsibleProvider: MachineProvisioning {
    /// How long a new machine's ssh has to answer once its address shows: tools report the
    /// address a little before sshd listens.
    static let sshWait: Duration = .seconds(120)

    public nonisolated func reaches(_ machine: ResourceID, in set: ManifestSet) -> Bool {
        spec.includes(machine, in: set)
    }

    /// Runs `playbookName` on the new machine alone, as its inventory reaches it, once its ssh
    /// port answers; the result is the step's report.
    public func provision(_ machine: ResourceID, with playbookName: String, in set: ManifestSet, instance: String) async throws {
        guard let host = spec.hosts(in: set).first(where: { $0.name == machine.name }),
            let playbook = set[ResourceID(kind: PlaybookSpec.kind, name: playbookName)]?.spec(as: PlaybookSpec.self)
        else {
            throw AnsibleError(
                "\(target) cannot provision \(machine) with Playbook/\(playbookName): one of them is not in the manifest set", hint: nil)
        }
        try await Self.waitForSSH(host, timeout: Self.sshWait)
        let job = PlaybookJob(
            playbookName: playbookName, playbook: playbook, hosts: [host], variables: playbook.extraVars, checkMode: false, forks: 1,
            timeout: playbook.timeout, snapshots: false)
        let result = try await PlaybookRunner(inventory: spec, set: set).run(job, pinnedDigest: playbook.bundle(in: set).digest)
        StepReporter.current?.report(result.json)
        guard result.summary == .allOK else {
            throw AnsibleError("provisioning \(machine) with playbook \(playbookName): \(result.line)", hint: nil)
        }
    }

    /// Waits until the host's ssh port accepts a TCP connection.
    static func waitForSSH(_ host: InventorySpec.Host, timeout: Duration) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        let port = host.ssh.port ?? 22
        while !TCPProbe.accepts(host: host.address, port: port) {
            guard clock.now < deadline else {
                throw AnsibleError(
                    "\(host.name) (\(host.address):\(port)) did not accept ssh connections within \(timeout)",
                    hint: "check that sshd runs in the template and that this machine can reach the address")
            }
            try await Task.sleep(for: .milliseconds(500))
        }
    }
}

/// One TCP connection attempt with a short timeout, to see whether a port listens.
enum TCPProbe {
    static func accepts(host: String, port: Int, timeoutMilliseconds: Int32 = 1000) -> Bool {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &found) == 0, let first = found else { return false }
        defer { freeaddrinfo(found) }
        let descriptor = socket(
            first.pointee.ai_family, first.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue), first.pointee.ai_protocol)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        if connect(descriptor, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 { return true }
        guard errno == EINPROGRESS else { return false }
        var poll = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
        guard Glibc.poll(&poll, 1, timeoutMilliseconds) == 1 else { return false }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length)
        return error == 0
    }
}
