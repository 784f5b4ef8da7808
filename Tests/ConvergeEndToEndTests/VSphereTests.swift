import ConvergeVSphere
import Foundation
import Testing

/// VirtualMachines on a vCenter (govmomi's simulator, over HTTPS), driven through the
/// `converge` binary as a user would, and checked from outside with a client of their own.
@Suite struct VSphereTests {
    /// One VM as a test looks at it.
    struct LiveVM {
        var ref: ManagedObjectReference
        var cpus: Int
        var memoryMB: Int
        var powerState: String
        var ip: String?
        var diskGB: [Int]
        var snapshots: [(name: String, ref: ManagedObjectReference)]
        var currentSnapshot: ManagedObjectReference?
    }

    static func vms(in lab: VCenterLab) async throws -> [String: LiveVM] {
        let client = try await lab.client()
        let root = await client.serviceContent.rootFolder
        let objects = try await client.retrieve(
            under: root,
            properties: [
                "VirtualMachine": [
                    "name", "config.hardware.numCPU", "config.hardware.memoryMB", "runtime.powerState", "guest.ipAddress",
                    "config.hardware.device", "snapshot",
                ]
            ])
        await client.logout()
        var found: [String: LiveVM] = [:]
        for object in objects {
            let disks = object["config.hardware.device"]?.children.filter { $0.xsiType == "VirtualDisk" } ?? []
            func flatten(_ nodes: [SOAPNode]) -> [(String, ManagedObjectReference)] {
                nodes.flatMap { node in
                    [(node.child("name")?.text ?? "", node.child("snapshot")!.reference!)] + flatten(node.children("childSnapshotList"))
                }
            }
            found[object["name"]?.text ?? ""] = LiveVM(
                ref: object.object, cpus: object["config.hardware.numCPU"]?.int ?? 0,
                memoryMB: object["config.hardware.memoryMB"]?.int ?? 0,
                powerState: object["runtime.powerState"]?.text ?? "", ip: object["guest.ipAddress"]?.text,
                diskGB: disks.map { ($0.child("capacityInKB")?.int ?? 0) >> 20 },
                snapshots: flatten(object["snapshot"]?.children("rootSnapshotList") ?? []).map { (name: $0.0, ref: $0.1) },
                currentSnapshot: object["snapshot"]?.child("currentSnapshot")?.reference)
        }
        return found
    }

    static let web = vmManifest(
        "cvt-web", cpus: 2, memoryMB: 2048,
        extra: """
              disks:
                - sizeGB: 20
              network:
                portGroup: VM Network
                ipv4: 10.0.0.15/24
                gateway: 10.0.0.1
              annotation: web frontend
            """)

    @Test func createsAVMFromATemplateAndReachesInSync() async throws {
        try await VCenterLab.with { lab in
            try lab.writeManifests([Self.web])
            let preview = try await lab.converge(["reconcile", "--dry-run"])
            #expect(preview.exitCode == 2, "\(preview.stderr)")
            #expect(preview.stdout.contains("VirtualMachine/cvt-web"))

            let applied = try await lab.converge(["reconcile"])
            #expect(applied.exitCode == 0, "\(applied.stdout)\n\(applied.stderr)")
            let vm = try #require(try await Self.vms(in: lab)["cvt-web"])
            #expect(vm.cpus == 2)
            #expect(vm.memoryMB == 2048)
            #expect(vm.diskGB == [20])
            #expect(vm.powerState == "poweredOn")
            #expect(vm.ip == "10.0.0.15")

            let again = try await lab.converge(["reconcile", "--dry-run"])
            #expect(again.exitCode == 0, "a second plan should be empty:\n\(again.stdout)\(again.stderr)")
        }
    }

    @Test func changesCPUAndMemoryBehindASnapshot() async throws {
        try await VCenterLab.with { lab in
            try lab.writeManifests([vmManifest("cvt-app")])
            #expect(try await lab.converge(["reconcile"]).exitCode == 0)

            try lab.writeManifests([vmManifest("cvt-app", cpus: 4, memoryMB: 4096)])
            let preview = try await lab.converge(["reconcile", "--dry-run"])
            #expect(preview.exitCode == 2)
            #expect(preview.stdout.contains("cpus"))
            #expect(preview.stdout.lowercased().contains("snapshot"), "the plan should say the update takes a snapshot:\n\(preview.stdout)")

            let applied = try await lab.converge(["reconcile"])
            #expect(applied.exitCode == 0, "\(applied.stdout)\n\(applied.stderr)")
            let vm = try #require(try await Self.vms(in: lab)["cvt-app"])
            #expect(vm.cpus == 4)
            #expect(vm.memoryMB == 4096)
            #expect(vm.powerState == "poweredOn")
            #expect(vm.snapshots.count == 1)
            #expect(vm.snapshots.first?.name.hasPrefix("Before executing update of VirtualMachine/cvt-app - ") == true, "\(vm.snapshots)")
        }
    }

    @Test func aFailingChangeRevertsToTheSnapshotAndRestoresTheVM() async throws {
        try await VCenterLab.with { lab in
            try lab.writeManifests([vmManifest("cvt-db", cpus: 2, memoryMB: 2048)])
            #expect(try await lab.converge(["reconcile"]).exitCode == 0)

            // vCenter rejects the unknown guest OS, after (in the simulator) applying the CPUs:
            // a change that fails halfway.
            try lab.writeManifests([vmManifest("cvt-db", cpus: 4, memoryMB: 4096, extra: "  guestId: cvt-no-such-guest")])
            let failed = try await lab.converge(["reconcile"])
            #expect(failed.exitCode == 1)
            #expect(failed.stderr.contains("rolled back"), "\(failed.stderr)")
            #expect(failed.stderr.contains("ReconfigVM_Task"), "the run should say which call failed:\n\(failed.stderr)")

            let vm = try #require(try await Self.vms(in: lab)["cvt-db"])
            #expect(vm.cpus == 2)
            #expect(vm.memoryMB == 2048)
            #expect(vm.powerState == "poweredOn")
            let guardSnapshot = try #require(vm.snapshots.first { $0.name.hasPrefix("Before executing ") })
            #expect(vm.currentSnapshot == guardSnapshot.ref, "the VM was reverted to the guard snapshot")
        }
    }

    @Test func aFailedCreateLeavesNoVMBehind() async throws {
        try await VCenterLab.with { lab in
            try lab.writeManifests([vmManifest("cvt-broken", extra: "  guestId: cvt-no-such-guest")])
            let failed = try await lab.converge(["reconcile"])
            #expect(failed.exitCode == 1)
            #expect(failed.stderr.contains("rolled back"), "\(failed.stderr)")
            #expect(try await Self.vms(in: lab)["cvt-broken"] == nil, "the half-made VM must be destroyed")
        }
    }

    @Test func pruneDestroysAVMRemovedFromTheManifests() async throws {
        try await VCenterLab.with { lab in
            try lab.writeManifests([vmManifest("cvt-keep"), vmManifest("cvt-drop")])
            #expect(try await lab.converge(["reconcile"]).exitCode == 0)
            #expect(try await Self.vms(in: lab)["cvt-drop"] != nil)

            try lab.writeManifests([vmManifest("cvt-keep")])
            let preview = try await lab.converge(["reconcile", "--dry-run"])
            #expect(preview.stdout.contains("VirtualMachine/cvt-drop"))
            let pruned = try await lab.converge(["reconcile"])
            #expect(pruned.exitCode == 0, "\(pruned.stderr)")
            let vms = try await Self.vms(in: lab)
            #expect(vms["cvt-drop"] == nil)
            #expect(vms["cvt-keep"] != nil)
            // VMs Converge does not own are never pruned.
            #expect(vms["DC0_C0_RP0_VM0"] != nil)
        }
    }

    @Test func retentionDeletesOnlyOldAutomaticSnapshots() async throws {
        try await VCenterLab.with { lab in
            try lab.writeManifests([vmManifest("cvt-kept")])
            #expect(try await lab.converge(["reconcile"]).exitCode == 0)
            let vm = try #require(try await Self.vms(in: lab)["cvt-kept"])

            let client = try await lab.client()
            var made: [String: ManagedObjectReference] = [:]
            for name in [
                "Before executing update of VirtualMachine/cvt-kept - old", "Before executing update of VirtualMachine/cvt-kept - recent",
                "manual before upgrade",
            ] {
                let result = try await client.runTask("CreateSnapshot_Task", on: vm.ref) { writer in
                    writer.leaf("name", name)
                    writer.leaf("memory", false)
                    writer.leaf("quiesce", false)
                }
                made[name] = try #require(result.result?.reference)
            }
            await client.logout()
            let now = Date()
            try await lab.setCreationTime(
                of: made["Before executing update of VirtualMachine/cvt-kept - old"]!, to: now.addingTimeInterval(-30 * 3600))
            try await lab.setCreationTime(
                of: made["Before executing update of VirtualMachine/cvt-kept - recent"]!, to: now.addingTimeInterval(-2 * 3600))
            try await lab.setCreationTime(of: made["manual before upgrade"]!, to: now.addingTimeInterval(-300 * 3600))

            let preview = try await lab.converge(["snapshots", "gc", "--dry-run", "--retention", "24h"])
            #expect(preview.exitCode == 0, "\(preview.stderr)")
            #expect(
                preview.stdout.contains("would delete cvt-kept: Before executing update of VirtualMachine/cvt-kept - old"),
                "\(preview.stdout)")
            #expect(try await Self.vms(in: lab)["cvt-kept"]?.snapshots.count == 3, "a dry run deletes nothing")

            let collected = try await lab.converge(["snapshots", "gc", "--retention", "24h"])
            #expect(collected.exitCode == 0, "\(collected.stderr)")
            let names = Set(try await Self.vms(in: lab)["cvt-kept"]?.snapshots.map(\.name) ?? [])
            #expect(names == ["Before executing update of VirtualMachine/cvt-kept - recent", "manual before upgrade"])
        }
    }

    @Test func wrongCredentialsFailClearlyBeforeAnyChange() async throws {
        try await VCenterLab.with { lab in
            try lab.writeManifests([vmManifest("cvt-never")])
            let denied = try await lab.converge(["reconcile"], password: "cvt-wrong-password")
            #expect(denied.exitCode == 1)
            #expect(denied.stderr.contains("InvalidLogin"), "\(denied.stderr)")
            #expect(denied.stderr.contains("spec.credentials"), "the error should say where to fix it:\n\(denied.stderr)")
            #expect(!denied.stderr.contains("cvt-wrong-password"), "a password never appears in output")
            #expect(try await Self.vms(in: lab)["cvt-never"] == nil)
        }
    }

    @Test func aMissingTemplateFailsClearlyBeforeAnyChange() async throws {
        try await VCenterLab.with { lab in
            let good = vmManifest("cvt-good")
            let bad = vmManifest("cvt-bad").replacingOccurrences(of: "template: tmpl-linux", with: "template: cvt-no-such-template")
            try lab.writeManifests([good, bad])
            let failed = try await lab.converge(["reconcile"])
            #expect(failed.exitCode == 1)
            #expect(failed.stderr.contains("template 'cvt-no-such-template' not found"), "\(failed.stderr)")
            #expect(failed.stderr.contains("tmpl-linux"), "the error should list the templates there are:\n\(failed.stderr)")
            let vms = try await Self.vms(in: lab)
            #expect(vms["cvt-good"] == nil, "nothing may change when any manifest names something missing")
        }
    }
}

/// The edges of VM changes: a VM that cannot take snapshots, a change that would need a power
/// cycle the manifest does not allow, and a create cut off by a crash.
@Suite struct VSphereEdgeTests {
    @Test func aVMWithoutSnapshotSupportIsChangedWithAWarning() async throws {
        try await VCenterLab.with(arguments: ["-no-snapshots"]) { lab in
            try lab.writeManifests([vmManifest("cvt-plain")])
            #expect(try await lab.converge(["reconcile"]).exitCode == 0)

            try lab.writeManifests([vmManifest("cvt-plain", cpus: 2)])
            let preview = try await lab.converge(["reconcile", "--dry-run"])
            #expect(preview.stdout.contains("cannot take snapshots"), "the plan should warn:\n\(preview.stdout)")
            let applied = try await lab.converge(["reconcile"])
            #expect(applied.exitCode == 0, "a missing snapshot capability is a warning, not a failure:\n\(applied.stderr)")
            #expect(
                applied.stderr.contains("warning: vCenter reports that VM 'cvt-plain' cannot take snapshots"),
                "the run should warn too:\n\(applied.stderr)")
            let vm = try #require(try await VSphereTests.vms(in: lab)["cvt-plain"])
            #expect(vm.cpus == 2)
            #expect(vm.snapshots.isEmpty)
        }
    }

    @Test func aChangeNeedingAPowerCycleIsRefusedUnlessAllowed() async throws {
        try await VCenterLab.with { lab in
            let strict = { (cpus: Int) in
                vmManifest("cvt-strict", cpus: cpus).replacingOccurrences(of: "allowPowerCycle: true", with: "allowPowerCycle: false")
            }
            try lab.writeManifests([strict(1)])
            #expect(try await lab.converge(["reconcile"]).exitCode == 0)

            try lab.writeManifests([strict(2)])
            let refused = try await lab.converge(["reconcile"])
            #expect(refused.exitCode == 1)
            #expect(refused.stderr.contains("allowPowerCycle: true"), "the error should say how to allow it:\n\(refused.stderr)")
            let vm = try #require(try await VSphereTests.vms(in: lab)["cvt-strict"])
            #expect(vm.cpus == 1)
            #expect(vm.powerState == "poweredOn", "a refused change must not have powered the VM off")
        }
    }

    @Test func aCloneCutOffBeforeItsOwnershipFieldIsAdoptedNotDuplicated() async throws {
        try await VCenterLab.with { lab in
            // What a create leaves when it dies right after CloneVM_Task: a VM carrying only
            // the marker its clone spec wrote, not yet the ownership field.
            let client = try await lab.client()
            let root = await client.serviceContent.rootFolder
            let objects = try await client.retrieve(
                under: root, properties: ["VirtualMachine": ["name"], "Folder": ["name"], "ResourcePool": ["name"]])
            let template = try #require(objects.first { $0["name"]?.text == "tmpl-linux" }?.object)
            let folder = try #require(objects.first { $0.object.type == "Folder" && $0["name"]?.text == "vm" }?.object)
            let pool = try #require(objects.first { $0.object.type == "ResourcePool" && $0["name"]?.text == "Resources" }?.object)
            try await client.runTask("CloneVM_Task", on: template) { writer in
                writer.reference("folder", folder)
                writer.leaf("name", "cvt-half")
                writer.element("spec") { writer in
                    writer.element("location") { $0.reference("pool", pool) }
                    writer.leaf("template", false)
                    writer.element("config") { writer in
                        writer.element("extraConfig", type: "OptionValue") { writer in
                            writer.leaf("key", "converge.managed-by")
                            writer.leaf("value", "converge", type: "xsd:string")
                        }
                    }
                    writer.leaf("powerOn", false)
                }
            }
            await client.logout()

            try lab.writeManifests([vmManifest("cvt-half", cpus: 2)])
            let finished = try await lab.converge(["reconcile"])
            #expect(finished.exitCode == 0, "\(finished.stdout)\n\(finished.stderr)")
            let vms = try await VSphereTests.vms(in: lab)
            #expect(vms.keys.filter { $0.hasPrefix("cvt-half") }.count == 1)
            #expect(vms["cvt-half"]?.cpus == 2)
            #expect(vms["cvt-half"]?.powerState == "poweredOn")
            #expect(try await lab.converge(["reconcile", "--dry-run"]).exitCode == 0)
        }
    }

    @Test func aCreateCutOffByACrashIsFinishedByTheNextRun() async throws {
        try await VCenterLab.with { lab in
            try lab.writeManifests([VSphereTests.web])
            // The process dies after the VM is made but before the step is journaled as done.
            let killed = try await run(
                convergeBinary,
                [
                    "reconcile", lab.directory.appendingPathComponent("manifests").path,
                    "--state", lab.directory.appendingPathComponent("state.db").path,
                ],
                environment: [VCenterLab.passwordVariable: lab.password, "CONVERGE_FAULT": "kill-before-journal:0"])
            #expect(killed.exitCode != 0)

            let resumed = try await lab.converge(["reconcile"])
            #expect(resumed.exitCode == 0, "\(resumed.stdout)\n\(resumed.stderr)")
            #expect(resumed.stderr.contains("resum"), "the interrupted run should be resumed:\n\(resumed.stderr)")
            let vms = try await VSphereTests.vms(in: lab)
            #expect(vms.keys.filter { $0.hasPrefix("cvt-web") }.count == 1, "exactly one VM, not a second clone: \(vms.keys.sorted())")
            #expect(vms["cvt-web"]?.ip == "10.0.0.15")
            #expect(try await lab.converge(["reconcile", "--dry-run"]).exitCode == 0)
        }
    }
}

/// Changes vSphere makes in its own way: disks cannot grow while they have snapshots, and a
/// VM moves between folders without being rebuilt.
@Suite struct VSphereMigrationTests {
    @Test func aDiskGrowsUnguardedAndNotWhileSnapshotsExist() async throws {
        try await VCenterLab.with { lab in
            let disks = { (size: Int) in vmManifest("cvt-disk", extra: "  disks:\n    - sizeGB: \(size)") }
            try lab.writeManifests([disks(10)])
            #expect(try await lab.converge(["reconcile"]).exitCode == 0)

            try lab.writeManifests([disks(20)])
            let preview = try await lab.converge(["reconcile", "--dry-run"])
            #expect(preview.stdout.contains("cannot be guarded by a snapshot"), "\(preview.stdout)")
            let grown = try await lab.converge(["reconcile"])
            #expect(grown.exitCode == 0, "\(grown.stderr)")
            var vm = try #require(try await VSphereTests.vms(in: lab)["cvt-disk"])
            #expect(vm.diskGB == [20])
            #expect(vm.snapshots.isEmpty, "a snapshot would have stopped vSphere from growing the disk")

            let client = try await lab.client()
            try await client.runTask("CreateSnapshot_Task", on: vm.ref) { writer in
                writer.leaf("name", "cvt manual")
                writer.leaf("memory", false)
                writer.leaf("quiesce", false)
            }
            await client.logout()
            try lab.writeManifests([disks(30)])
            let refused = try await lab.converge(["reconcile"])
            #expect(refused.exitCode == 1)
            #expect(refused.stderr.contains("cannot extend a disk that has snapshots"), "\(refused.stderr)")
            vm = try #require(try await VSphereTests.vms(in: lab)["cvt-disk"])
            #expect(vm.diskGB == [20])
        }
    }

    @Test func aNICMovesToADistributedPortGroup() async throws {
        try await VCenterLab.with { lab in
            try lab.writeManifests([vmManifest("cvt-dvs", extra: "  network: {portGroup: VM Network}")])
            #expect(try await lab.converge(["reconcile"]).exitCode == 0)

            try lab.writeManifests([vmManifest("cvt-dvs", extra: "  network: {portGroup: DC0_DVPG0}")])
            let preview = try await lab.converge(["reconcile", "--dry-run"])
            #expect(preview.stdout.contains(#"portGroup = "VM Network" → "DC0_DVPG0""#), "\(preview.stdout)")
            let moved = try await lab.converge(["reconcile"])
            #expect(moved.exitCode == 0, "\(moved.stderr)")
            let again = try await lab.converge(["reconcile", "--dry-run"])
            #expect(again.exitCode == 0, "the NIC should now be on the distributed port group:\n\(again.stdout)")
        }
    }

    @Test func aNewFolderMovesTheVMInsteadOfRebuildingIt() async throws {
        try await VCenterLab.with { lab in
            try lab.writeManifests([vmManifest("cvt-mover")])
            #expect(try await lab.converge(["reconcile"]).exitCode == 0)
            let before = try #require(try await VSphereTests.vms(in: lab)["cvt-mover"])

            let client = try await lab.client()
            let root = await client.serviceContent.rootFolder
            let vmFolder = try #require(
                try await client.retrieve(under: root, properties: ["Folder": ["name"]]).first { $0["name"]?.text == "vm" }?.object)
            try await client.invoke("CreateFolder", on: vmFolder) { $0.leaf("name", "cvt-apps") }
            await client.logout()

            try lab.writeManifests([vmManifest("cvt-mover", extra: "  folder: cvt-apps")])
            let preview = try await lab.converge(["reconcile", "--dry-run"])
            #expect(preview.stdout.contains("updated in place"), "a move is an update:\n\(preview.stdout)")
            let moved = try await lab.converge(["reconcile"])
            #expect(moved.exitCode == 0, "\(moved.stderr)")
            let after = try #require(try await VSphereTests.vms(in: lab)["cvt-mover"])
            #expect(after.ref == before.ref, "the same VM, moved")
            #expect(try await lab.converge(["reconcile", "--dry-run"]).exitCode == 0)
        }
    }
}
