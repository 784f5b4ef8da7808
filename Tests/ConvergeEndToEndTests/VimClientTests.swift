import ConvergeHTTP
import ConvergeTestSupport
import ConvergeVSphere
import Foundation
import Testing

/// The vim25 client against the simulator: TLS, faults, and sessions that expire.
@Suite struct VimClientTests {
    @Test func aSelfSignedCertificateIsRefusedUnlessAllowedForTheTarget() async throws {
        try await VCenterLab.with { lab in
            let strict = try #require(VimEndpoint(url: lab.url))
            do {
                _ = try await VimClient.connect(to: strict, credentials: VimCredentials(username: lab.user, password: lab.password))
                Issue.record("a self-signed certificate was accepted without insecureSkipVerify")
            } catch let error as HTTPTransportError {
                guard error.code == .tls else { Issue.record("expected a TLS error, got \(error)"); return }
                #expect(error.description.contains("insecureSkipVerify"), "the error should say how to allow it: \(error)")
            } catch {
                Issue.record("expected a TLS error, got \(type(of: error)): \(error)")
            }
            let client = try await lab.client()
            #expect(await !client.serviceContent.apiVersion.isEmpty)
            await client.logout()
        }
    }

    @Test func aFaultSaysWhatFailedOnWhichObject() async throws {
        try await VCenterLab.with { lab in
            let client = try await lab.client()
            let missing = ManagedObjectReference(type: "VirtualMachine", value: "vm-cvt-missing")
            do {
                try await client.runTask("PowerOnVM_Task", on: missing, objectName: "cvt-missing")
                Issue.record("powering on a missing VM succeeded")
            } catch let fault as VimFault {
                #expect(fault.type == "ManagedObjectNotFound")
                #expect(fault.description.contains("PowerOnVM_Task on VirtualMachine 'cvt-missing'"), "\(fault)")
            }
            await client.logout()
        }
    }

    @Test func anExpiredSessionIsRenewedOnce() async throws {
        try await VCenterLab.with(arguments: ["-session-idle", "1s"]) { lab in
            let client = try await lab.client()
            let root = await client.serviceContent.rootFolder
            let before = try await client.retrieve(under: root, properties: ["VirtualMachine": ["name"]])
            try await Task.sleep(for: .seconds(2))
            // Both ways vCenter reports an expired session: a fault, and `missingSet` entries.
            let time = try await client.invoke("CurrentTime", on: ManagedObjectReference(type: "ServiceInstance", value: "ServiceInstance"))
            #expect(time.child("returnval") != nil)
            try await Task.sleep(for: .seconds(2))
            let after = try await client.retrieve(under: root, properties: ["VirtualMachine": ["name"]])
            #expect(Set(after.compactMap { $0["name"]?.text }) == Set(before.compactMap { $0["name"]?.text }))
            #expect(!after.isEmpty)
            await client.logout()
        }
    }

    @Test func theKeepAliveKeepsAnIdleSessionAndEndsWithIt() async throws {
        try await VCenterLab.with(arguments: ["-session-idle", "1s"]) { lab in
            let client = try await lab.client()
            let instance = ManagedObjectReference(type: "ServiceInstance", value: "ServiceInstance")
            // Structured: the keep-alive is a child beside the work it serves, and returns
            // when the client logs out.
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.keepAlive(every: .milliseconds(250)) }
                try await Task.sleep(for: .seconds(2.5))
                // Without renewal: this fails with NotAuthenticated if the session expired.
                let time = try await client.invoke("CurrentTime", on: instance, renewingSession: false)
                #expect(time.child("returnval") != nil)
                await client.logout()
                try await group.waitForAll()
            }
        }
    }
}

/// vCenter hands back about 100 objects per page and a token for the rest; the simulator
/// returns everything at once, so `scripts/vcsim/paging_proxy.py` pages its answers the way
/// vCenter does.
@Suite struct VimClientPagingTests {
    @Test func readsEveryPageOfALargeInventory() async throws {
        try await VCenterLab.with(arguments: ["-vm", "250", "-template", ""]) { lab in
            let proxy = try await PagingProxy.start(upstream: lab.url)
            defer { proxy.stop() }
            let endpoint = try #require(VimEndpoint(url: proxy.url))
            let client = try await VimClient.connect(to: endpoint, credentials: VimCredentials(username: lab.user, password: lab.password))
            let root = await client.serviceContent.rootFolder
            let before = await client.roundTrips
            let vms = try await client.retrieve(under: root, properties: ["VirtualMachine": ["name"]])
            let roundTrips = await client.roundTrips - before
            #expect(vms.count == 250)
            #expect(Set(vms.map(\.object)).count == 250, "no page may repeat or drop objects")
            // CreateContainerView, RetrievePropertiesEx, 2 × ContinueRetrievePropertiesEx, DestroyView.
            #expect(roundTrips == 5)
            await client.logout()
        }
    }
}

/// `scripts/vcsim/paging_proxy.py` in front of a simulator.
struct PagingProxy {
    let server: BackgroundServer
    let url: String

    static func start(upstream: String) async throws -> PagingProxy {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/vcsim/paging_proxy.py").path
        guard
            let server = try await BackgroundServer.start(
                "/usr/bin/env", ["python3", script, "--upstream", upstream, "--page-cap", "100"], readyLine: "PROXY_READY"),
            let url = server.values["PROXY_URL"]
        else {
            throw MissingComponent(name: "the paging proxy (python3 scripts/vcsim/paging_proxy.py)")
        }
        return PagingProxy(server: server, url: url)
    }

    func stop() { server.stop() }
}
