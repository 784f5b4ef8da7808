import ConvergeDocker
import Foundation
import Testing

/// Routers on the real engine: forwarding between networks, routes, FRR by delta.
@Suite struct RouterTests {
    func manifests(_ lab: Lab, frr: String) -> [String: String] {
        var files = lab.labManifests()
        files["router.yaml"] = """
            apiVersion: converge.dev/v1alpha1
            kind: Router
            metadata: {name: \(lab.prefix)-router}
            spec:
              interfaces:
                - {network: \(lab.prefix)-client-net, ipv4: \(lab.subnetA)254}
                - {network: \(lab.prefix)-server-net, ipv4: \(lab.subnetB)254}
              routes: [{to: 10.250.1.0/24, via: \(lab.subnetA)10}]
            \(frr)
            """
        return files
    }

    func vtyshRoutes(_ lab: Lab) async throws -> [String] {
        let config = try await lab.engine.exec(container: "\(lab.prefix)-router", command: ["vtysh", "-c", "show running-config"])
        return config.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("ip route") || $0.hasPrefix(" network") }
    }

    @Test func frrIsConfiguredByDeltaAndItsDriftIsRemoved() async throws {
        try await Lab.with { lab in
            let frr = """
                  frr:
                    staticRoutes: [{to: 10.251.0.0/16, via: \(lab.subnetB)10}]
                    ospf:
                      routerId: 10.0.0.1
                      networks: [{prefix: \(lab.subnetA)0/24, area: 0}]
                """
            try lab.write(manifests(lab, frr: frr), into: "set")
            let first = try await lab.reconcile("set")
            #expect(first.exitCode == 0, "\(first.stderr)")
            #expect(try await lab.reconcile("--dry-run", "set").exitCode == 0, "FRR's own routes are not mistaken for the router's")
            #expect(try await vtyshRoutes(lab) == ["ip route 10.251.0.0/16 \(lab.subnetB)10", " network \(lab.subnetA)0/24 area 0.0.0.0"])
            let kernel = try await lab.engine.exec(container: "\(lab.prefix)-router", command: ["ip", "route"])
            #expect(kernel.stdout.contains("10.251.0.0/16"), "zebra installed the static route")
            #expect(kernel.stdout.contains("10.250.1.0/24 via \(lab.subnetA)10"), "the router's own route is there too")

            // A route added by hand through vtysh, and a changed manifest.
            let added = try await lab.engine.exec(
                container: "\(lab.prefix)-router",
                command: ["vtysh", "-c", "configure terminal", "-c", "ip route 10.252.0.0/16 \(lab.subnetA)10"])
            #expect(added.exitCode == 0)
            try lab.write(manifests(lab, frr: frr.replacingOccurrences(of: "10.251.0.0/16", with: "10.253.0.0/16")), into: "set")
            let plan = try await lab.reconcile("--dry-run", "set")
            #expect(plan.stdout.contains("- frr.ip route 10.251.0.0/16"))
            #expect(plan.stdout.contains("- frr.ip route 10.252.0.0/16"))
            #expect(plan.stdout.contains("+ frr.ip route 10.253.0.0/16"))
            #expect(plan.stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "applied in place, not by recreating the router")
            #expect(try await lab.reconcile("set").exitCode == 0)
            #expect(try await vtyshRoutes(lab) == ["ip route 10.253.0.0/16 \(lab.subnetB)10", " network \(lab.subnetA)0/24 area 0.0.0.0"])
            #expect(try await lab.reconcile("--dry-run", "set").exitCode == 0)
        }
    }

    @Test func aContainerWhoseManifestDropsItsRoutesLosesThem() async throws {
        try await Lab.with { lab in
            var files = manifests(lab, frr: "")
            let routed = files["containers.yaml"]!.replacingOccurrences(
                of: "networks: [{name: \(lab.prefix)-client-net, ipv4: \(lab.subnetA)10}]",
                with:
                    "networks: [{name: \(lab.prefix)-client-net, ipv4: \(lab.subnetA)10}]\n  routes: [{to: \(lab.subnetB)0/24, via: \(lab.prefix)-router}]"
            )
            #expect(routed != files["containers.yaml"])
            let plain = files["containers.yaml"]!
            files["containers.yaml"] = routed
            try lab.write(files, into: "set")
            #expect(try await lab.reconcile("set").exitCode == 0)
            let client = "\(lab.prefix)-client"
            #expect(
                try await lab.engine.exec(container: client, command: ["ip", "route"]).stdout.contains(
                    "\(lab.subnetB)0/24 via \(lab.subnetA)254"))

            files["containers.yaml"] = plain
            try lab.write(files, into: "set")
            let plan = try await lab.reconcile("--dry-run", "set")
            #expect(plan.stdout.contains("~   Container/\(client)"), "\(plan.stdout)")
            #expect(plan.stdout.contains("routes"), "\(plan.stdout)")
            #expect(try await lab.reconcile("set").exitCode == 0)
            #expect(!(try await lab.engine.exec(container: client, command: ["ip", "route"]).stdout.contains("\(lab.subnetB)0/24")))
            #expect(try await lab.reconcile("--dry-run", "set").stdout.contains("No changes."))
        }
    }

    @Test func undoingAnInPlaceUpdateRestoresTheRoutesAndFRR() async throws {
        try await Lab.with { lab in
            let frr = """
                  frr:
                    staticRoutes: [{to: 10.251.0.0/16, via: \(lab.subnetB)10}]
                """
            try lab.write(manifests(lab, frr: frr), into: "set")
            #expect(try await lab.reconcile("set").exitCode == 0)

            // The router changes in place while, in the same run, a container waits for a
            // dependency that never gets healthy: its step fails once the router's is done.
            var files = manifests(lab, frr: frr.replacingOccurrences(of: "10.251.0.0/16", with: "10.253.0.0/16"))
            files["router.yaml"] = files["router.yaml"]!.replacingOccurrences(
                of: "routes: [{to: 10.250.1.0/24, via: \(lab.subnetA)10}]",
                with: "routes: [{to: 10.250.1.0/24, via: \(lab.subnetA)10}, {to: 10.250.2.0/24, via: \(lab.subnetA)10}]")
            files["failing.yaml"] = """
                apiVersion: converge.dev/v1alpha1
                kind: Container
                metadata: {name: \(lab.prefix)-sick}
                spec:
                  image: converge-lab/busybox:1
                  command: [sleep, "2147483647"]
                  healthcheck: {test: "false", interval: 500ms, retries: 1}
                ---
                apiVersion: converge.dev/v1alpha1
                kind: Container
                metadata: {name: \(lab.prefix)-waiting}
                spec:
                  image: converge-lab/busybox:1
                  command: [sleep, "2147483647"]
                  dependsOn: [{name: \(lab.prefix)-sick, condition: healthy, timeout: 20s}]
                """
            try lab.write(files, into: "set")
            let failed = try await lab.reconcile("set")
            #expect(failed.exitCode == 1, "\(failed.stdout)\n\(failed.stderr)")
            #expect(failed.stderr.contains("rolled back"), "\(failed.stderr)")
            #expect(
                failed.stderr.contains("updated Router/\(lab.prefix)-router"), "the router changed before the failure: \(failed.stderr)")
            let kernel = try await lab.engine.exec(container: "\(lab.prefix)-router", command: ["ip", "route"])
            #expect(kernel.stdout.contains("10.250.1.0/24") && !kernel.stdout.contains("10.250.2.0/24"), "\(kernel.stdout)")
            #expect(try await vtyshRoutes(lab) == ["ip route 10.251.0.0/16 \(lab.subnetB)10"])
        }
    }
}
