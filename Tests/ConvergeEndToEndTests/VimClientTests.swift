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
            } catch let error as VimTransportError {
                guard case .tls = error else { Issue.record("expected a TLS error, got \(error)"); return }
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
}
