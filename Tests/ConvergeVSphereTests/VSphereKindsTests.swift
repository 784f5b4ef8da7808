import ConvergeCore
import ConvergeVSphere
import Foundation
import ConvergeTestSupport
import Testing

let vCenterYAML = """
    apiVersion: converge.dev/v1alpha1
    kind: VCenter
    metadata: {name: lab}
    spec:
      url: https://vcenter.example.test
      datacenter: DC0
      credentials: {username: administrator@vsphere.local, passwordEnv: VCENTER_PASSWORD}
    """

/// One VCenter and a VM that sets only what is required.
let minimalVMYAML = vCenterYAML + """

    ---
    apiVersion: converge.dev/v1alpha1
    kind: VirtualMachine
    metadata: {name: web-01}
    spec:
      template: tmpl-linux
      cluster: DC0_C0
      cpus: 2
      memoryMB: 4096
    """

/// A VM with every field; `beforeChange` is substituted.
func fullVMYAML(beforeChange: Bool = true) -> String {
    """
    apiVersion: converge.dev/v1alpha1
    kind: VCenter
    metadata: {name: lab}
    spec:
      url: HTTPS://vcenter.example.test:8443/sdk
      datacenter: DC0
      credentials:
        usernameEnv: VCENTER_USER
        passwordFile: /run/secrets/vcenter-password
      tls: {insecureSkipVerify: true, caFile: /etc/converge/vcenter-ca.pem}
      snapshotRetention: 48h
    ---
    apiVersion: converge.dev/v1alpha1
    kind: VCenter
    metadata: {name: other}
    spec:
      url: http://vcsim.lab:8989/
      datacenter: DC1
      credentials: {username: user, passwordEnv: OTHER_PASSWORD}
    ---
    apiVersion: converge.dev/v1alpha1
    kind: VirtualMachine
    metadata: {name: web-01}
    spec:
      vcenter: lab
      template: tmpl-linux
      folder: /converge/web/
      resourcePool: DC0_C0/Resources/web
      datastore: LocalDS_0
      cpus: 4
      memoryMB: 8192
      disks: [{sizeGB: 20}, {sizeGB: 100}]
      network: {portGroup: VM Network, ipv4: 10.0.0.15/24, gateway: 10.0.0.1}
      powerState: poweredOff
      annotation: web frontend
      guestId: otherGuest64
      ipTimeout: 90s
      allowPowerCycle: true
      snapshots: {beforeChange: \(beforeChange)}
    """
}

let vmPlanner = Planner(observedKinds: [VirtualMachineSpec.kind])

func vmPlan(_ set: ManifestSet, observed: [ObservedResource]) throws -> Plan {
    try vmPlanner.plan(desired: set, observed: observed, source: testSource, instance: "test")
}

/// The live state of `set` with the VM's CPU count drifted, so the plan updates it in place.
func driftedCPUs(_ set: ManifestSet, facts: [String: String] = [:]) -> [ObservedResource] {
    inSyncObservation(of: set).map { object in
        var object = object
        object.fields["cpus"] = .int(1)
        object.facts = facts
        return object
    }
}

@Suite struct VCenterKindTests {
    @Test func decodesEveryField() throws {
        let set = try manifestSet(fullVMYAML())
        let lab = try #require(set[ResourceID(kind: VCenterSpec.kind, name: "lab")]?.spec(as: VCenterSpec.self))
        #expect(lab.url == "https://vcenter.example.test:8443/sdk")
        #expect(lab.datacenter == "DC0")
        #expect(lab.credentials == VCenterCredentials(username: .environment("VCENTER_USER"), password: .file("/run/secrets/vcenter-password")))
        #expect(lab.insecureSkipVerify)
        #expect(lab.caFile == "/etc/converge/vcenter-ca.pem")
        #expect(lab.snapshotRetention.hours == 48)
        let other = try #require(set[ResourceID(kind: VCenterSpec.kind, name: "other")]?.spec(as: VCenterSpec.self))
        #expect(other.url == "http://vcsim.lab:8989/sdk", "a bare / is no path: /sdk is used")
    }

    @Test func defaults() throws {
        let set = try manifestSet(vCenterYAML)
        let resource = try #require(set.resources.first)
        let spec = try #require(resource.spec(as: VCenterSpec.self))
        #expect(!resource.isLiveObject)
        #expect(spec.url == "https://vcenter.example.test/sdk")
        #expect(spec.credentials.username == .literal("administrator@vsphere.local"))
        #expect(spec.credentials.password == .environment("VCENTER_PASSWORD"))
        #expect(!spec.insecureSkipVerify)
        #expect(spec.caFile == nil)
        #expect(spec.snapshotRetention == .standard)
    }

    @Test(arguments: ["90m", "1h30m", "tomorrow"])
    func retentionMustBeWholeHours(_ text: String) throws {
        let error = try #require(throws: ManifestValidationError.self) {
            try manifestSet(vCenterYAML + "\n  snapshotRetention: \(text)")
        }
        #expect(error.diagnostics.map(\.message) == [text == "tomorrow" ? "spec.snapshotRetention: '\(text)' is not a duration"
                                                                         : "spec.snapshotRetention: '\(text)' is not a whole number of hours"])
        #expect(error.diagnostics.first?.hint == "use whole hours from 1h to 99h, e.g. 24h")
    }

    @Test func urlMustBeHTTPAndCarryNoCredentials() throws {
        let bad = vCenterYAML.replacingOccurrences(of: "https://vcenter.example.test", with: "ftp://vcenter.example.test")
        let schemeError = try #require(throws: ManifestValidationError.self) { try manifestSet(bad) }
        #expect(schemeError.diagnostics.map(\.message) == ["spec.url: 'ftp://vcenter.example.test' is not an https:// URL"])
        let withUser = vCenterYAML.replacingOccurrences(of: "https://vcenter", with: "https://root:secret@vcenter")
        let userError = try #require(throws: ManifestValidationError.self) { try manifestSet(withUser) }
        #expect(userError.diagnostics.map(\.message) == ["spec.url: credentials in the URL are never read from Git"])
    }

    @Test func eachCredentialIsGivenOnce() throws {
        let both = vCenterYAML.replacingOccurrences(of: "passwordEnv: VCENTER_PASSWORD",
                                                    with: "passwordEnv: VCENTER_PASSWORD, passwordFile: /run/pw, usernameEnv: USER")
        let error = try #require(throws: ManifestValidationError.self) { try manifestSet(both) }
        #expect(error.diagnostics.map(\.message) == [
            "spec.credentials.passwordFile: cannot be combined with passwordEnv",
            "spec.credentials.usernameEnv: cannot be combined with username",
        ])
        let badName = vCenterYAML.replacingOccurrences(of: "VCENTER_PASSWORD", with: "VCENTER-PASSWORD")
        let nameError = try #require(throws: ManifestValidationError.self) { try manifestSet(badName) }
        #expect(nameError.diagnostics.map(\.message) == ["spec.credentials.passwordEnv: 'VCENTER-PASSWORD' is not an environment variable name"])
    }
}

@Suite struct VirtualMachineKindTests {
    /// VM names follow vCenter's rules, not Docker's: spaces and capitals are fine, the
    /// characters vCenter escapes in inventory paths and names over 80 characters are not.
    @Test func namesFollowVCentersRules() throws {
        let spaced = try manifestSet(minimalVMYAML.replacingOccurrences(of: "{name: web-01}", with: "{name: 'Web Server (01)'}"))
        #expect(spaced.resources(ofKind: VirtualMachineSpec.kind).map(\.id.name) == ["Web Server (01)"])
        for bad in ["web/01", "100%", String(repeating: "v", count: 81)] {
            let error = try #require(throws: ManifestValidationError.self) {
                try manifestSet(minimalVMYAML.replacingOccurrences(of: "{name: web-01}", with: "{name: '\(bad)'}"))
            }
            #expect(error.diagnostics.map(\.message) == ["metadata.name: invalid name '\(bad)'"])
        }
    }

    @Test func decodesEveryField() throws {
        let set = try manifestSet(fullVMYAML())
        let resource = try #require(set[ResourceID(kind: VirtualMachineSpec.kind, name: "web-01")])
        let vm = try #require(resource.spec(as: VirtualMachineSpec.self))
        #expect(resource.isLiveObject)
        #expect(vm.target(in: set) == ResourceID(kind: VCenterSpec.kind, name: "lab"))
        #expect(vm.references(in: set).map(\.field) == ["spec.vcenter"])
        #expect(vm.template == "tmpl-linux")
        #expect(vm.folder == "converge/web")
        #expect(vm.placement == .resourcePool("DC0_C0/Resources/web"))
        #expect(vm.datastore == "LocalDS_0")
        #expect(vm.cpus == 4)
        #expect(vm.memoryMB == 8192)
        #expect(vm.disks == [20, 100])
        let network = try #require(vm.network)
        #expect(network.portGroup == "VM Network")
        #expect(network.ipv4?.address == IPv4Address("10.0.0.15"))
        #expect(network.ipv4?.prefixLength == 24)
        #expect(network.gateway == IPv4Address("10.0.0.1"))
        #expect(vm.powerState == "poweredOff")
        #expect(vm.annotation == "web frontend")
        #expect(vm.guestId == "otherGuest64")
        #expect(vm.ipTimeout == .seconds(90))
        #expect(vm.allowPowerCycle)
        #expect(vm.snapshotBeforeChange)
    }

    @Test func defaults() throws {
        let set = try manifestSet(minimalVMYAML)
        let vm = try #require(set.resources(ofKind: VirtualMachineSpec.kind).first?.spec(as: VirtualMachineSpec.self))
        #expect(vm.target(in: set) == ResourceID(kind: VCenterSpec.kind, name: "lab"), "the only VCenter")
        #expect(vm.folder == "")
        #expect(vm.placement == .cluster("DC0_C0"))
        #expect(vm.datastore == nil)
        #expect(vm.disks == [])
        #expect(vm.network == nil)
        #expect(vm.powerState == "poweredOn")
        #expect(vm.annotation == "")
        #expect(vm.guestId == nil)
        #expect(vm.ipTimeout == .seconds(300))
        #expect(!vm.allowPowerCycle)
        #expect(vm.snapshotBeforeChange)
    }

    @Test func desiredFieldsHaveTheDocumentedShape() throws {
        let full = try manifestSet(fullVMYAML())
        let resource = try #require(full[ResourceID(kind: VirtualMachineSpec.kind, name: "web-01")])
        let fields = resource.spec.desiredFields(metadata: resource.metadata)
        #expect(fields == FieldMap([
            "cpus": .int(4), "memoryMB": .int(8192), "disks": .list([.int(20), .int(100)]),
            "folder": .string("converge/web"), "placement": .string("pool:DC0_C0/Resources/web"),
            "datastore": .string("LocalDS_0"), "portGroup": .string("VM Network"), "ipv4": .string("10.0.0.15"),
            "powerState": .string("poweredOff"), "annotation": .string("web frontend"), "guestId": .string("otherGuest64"),
        ]))
        let minimal = try manifestSet(minimalVMYAML)
        let vm = try #require(minimal.resources(ofKind: VirtualMachineSpec.kind).first)
        #expect(vm.spec.desiredFields(metadata: vm.metadata) == FieldMap([
            "cpus": .int(2), "memoryMB": .int(4096), "folder": .string(""), "placement": .string("cluster:DC0_C0"),
            "powerState": .string("poweredOn"), "annotation": .string(""),
        ]))
    }

    @Test func everyFieldChangesInPlaceAMoveMigratesTheVM() {
        for field in ["folder", "placement", "datastore", "cpus", "memoryMB", "disks", "portGroup", "ipv4", "powerState", "annotation", "guestId"] {
            #expect(VirtualMachineSpec.changeMode(forField: field) == .inPlace)
        }
    }

    @Test func withoutAVCenterTheHintSaysWhatToAdd() throws {
        let vmOnly = minimalVMYAML.components(separatedBy: "---\n").last!
        let error = try #require(throws: ManifestValidationError.self) { try manifestSet(vmOnly) }
        #expect(error.diagnostics.map(\.message) == ["spec.vcenter: required field is missing"])
        #expect(error.diagnostics.first?.hint == "add a VCenter manifest (spec.url, spec.datacenter and spec.credentials)")
    }

    @Test func vmsOnDifferentVCentersMayShareAnAddress() throws {
        let yaml = fullVMYAML() + """

            ---
            apiVersion: converge.dev/v1alpha1
            kind: VirtualMachine
            metadata: {name: web-02}
            spec:
              vcenter: other
              template: tmpl-linux
              cluster: DC1_C0
              cpus: 1
              memoryMB: 1024
              network: {portGroup: VM Network, ipv4: 10.0.0.15/24}
            """
        #expect(throws: Never.self) { try manifestSet(yaml) }
    }
}

@Suite struct StepGuardTests {
    @Test func onlyAnUpdateIsGuardedBySnapshot() throws {
        let set = try manifestSet(minimalVMYAML)
        let created = try vmPlan(set, observed: [])
        #expect(created.steps.map(\.action) == [.create])
        #expect(created.steps.allSatisfy { $0.guard == nil })

        let updated = try vmPlan(set, observed: driftedCPUs(set))
        #expect(updated.steps.map(\.action) == [.update])
        #expect(updated.steps[0].guard == StepGuard(kind: .snapshot))
        #expect(updated.warnings.isEmpty)

        var moved = inSyncObservation(of: set)
        moved[0].fields["folder"] = .string("elsewhere")
        let migrated = try vmPlan(set, observed: moved)
        #expect(migrated.steps.map(\.action) == [.update], "a move migrates the VM; it never destroys it")
        #expect(migrated.steps[0].guard == StepGuard(kind: .snapshot))

        let pruned = try vmPlan(try manifestSet(vCenterYAML), observed: inSyncObservation(of: set))
        #expect(pruned.steps.map(\.action) == [.delete])
        #expect(pruned.steps.allSatisfy { $0.guard == nil })
    }

    @Test func aVMThatCannotBeSnapshottedIsWarnedAbout() throws {
        let set = try manifestSet(minimalVMYAML)
        let result = try vmPlan(set, observed: driftedCPUs(set, facts: [VirtualMachineSpec.snapshotSupportedFact: "false"]))
        let warning = "vCenter reports that VM 'web-01' cannot take snapshots; this change runs without a snapshot guard"
        #expect(result.steps[0].guard == StepGuard(kind: .snapshot, warning: warning))
        #expect(result.warnings == [warning])
        let supported = try vmPlan(set, observed: driftedCPUs(set, facts: [VirtualMachineSpec.snapshotSupportedFact: "true"]))
        #expect(supported.warnings.isEmpty)
    }

    @Test func beforeChangeFalseTurnsTheGuardOff() throws {
        let set = try manifestSet(fullVMYAML(beforeChange: false))
        let result = try vmPlan(set, observed: driftedCPUs(set, facts: [VirtualMachineSpec.snapshotSupportedFact: "false"]))
        #expect(result.steps.map(\.action) == [.update])
        #expect(result.steps[0].guard == nil)
        #expect(result.warnings.isEmpty)
    }

    @Test func theGuardIsPartOfTheDigest() throws {
        let guarded = try vmPlan(try manifestSet(fullVMYAML()), observed: driftedCPUs(try manifestSet(fullVMYAML())))
        let unguarded = try vmPlan(try manifestSet(fullVMYAML(beforeChange: false)), observed: driftedCPUs(try manifestSet(fullVMYAML(beforeChange: false))))
        #expect(guarded.changes == unguarded.changes)
        #expect(guarded.digest != unguarded.digest, "an approval covers whether the change runs guarded")
    }

    @Test func jsonCarriesGuardsAndWarningsOnlyWhenThereAreSome() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let set = try manifestSet(minimalVMYAML)
        let plain = String(decoding: try encoder.encode(try vmPlan(set, observed: [])), as: UTF8.self)
        #expect(!plain.contains("\"guard\""))
        #expect(!plain.contains("\"warnings\""))

        let warned = try vmPlan(set, observed: driftedCPUs(set, facts: [VirtualMachineSpec.snapshotSupportedFact: "false"]))
        let data = try encoder.encode(warned)
        let json = String(decoding: data, as: UTF8.self)
        #expect(json.contains("\"guard\":{\"kind\":\"snapshot\",\"warning\":\"vCenter reports"))
        #expect(json.contains("\"warnings\":[\"vCenter reports"))
        #expect(try JSONDecoder().decode(Plan.self, from: data) == warned)
    }
}

@Suite struct StepGuardRenderingTests {
    @Test func textShowsTheGuardUnderItsChangeAndTheWarnings() throws {
        let set = try manifestSet(minimalVMYAML)
        let guarded = PlanRenderer.text(try vmPlan(set, observed: driftedCPUs(set)), color: false)
        #expect(guarded.contains("""
            ~   VirtualMachine/web-01
                  ~ cpus = 1 → 2
                  ↳ snapshot before change
            """))
        #expect(!guarded.contains("Warnings:"))

        let warned = PlanRenderer.text(try vmPlan(set, observed: driftedCPUs(set, facts: [VirtualMachineSpec.snapshotSupportedFact: "false"])), color: false)
        #expect(warned.contains("↳ no snapshot before change (see Warnings)"))
        #expect(warned.contains("""
            Warnings:
              - vCenter reports that VM 'web-01' cannot take snapshots; this change runs without a snapshot guard

            Plan: 0 to add, 1 to change, 0 to destroy.
            """))
    }

    @Test func markdownShowsTheGuardInTheTableAndTheWarnings() throws {
        let set = try manifestSet(minimalVMYAML)
        let markdown = PlanRenderer.markdown(try vmPlan(set, observed: driftedCPUs(set, facts: [VirtualMachineSpec.snapshotSupportedFact: "false"])))
        #expect(markdown.contains("| `~` | `VirtualMachine/web-01` | will be updated in place (no snapshot before change) |"))
        #expect(markdown.contains("> **Warning:** vCenter reports that VM 'web-01' cannot take snapshots; this change runs without a snapshot guard"))
        let guarded = PlanRenderer.markdown(try vmPlan(set, observed: driftedCPUs(set)))
        #expect(guarded.contains("| `~` | `VirtualMachine/web-01` | will be updated in place (snapshot before change) |"))
        #expect(!guarded.contains("Warning"))
    }
}
