import Foundation
import Testing

/// VirtualMachines with `provision:`: cloned on the vCenter simulator, then provisioned by a
/// playbook over real ssh. The VM's declared address is a lab container's, so the playbook
/// reaches a real sshd while vSphere sees its VM.
@Suite struct ProvisioningTests {
    static func manifests(_ lab: AnsibleLab, vcenter: VCenterLab, vm: String, address: String, playbook: String) -> [String: String] {
        [
            "vcenter.yaml": vcenter.vcenterManifest(),
            "inventory.yaml": """
            apiVersion: converge.dev/v1alpha1
            kind: Inventory
            metadata: {name: lab}
            spec:
              ssh: {user: converge, privateKey: {file: \(lab.keyPath)}}
              environments:
                test:
                  groups:
                    new:
                      virtualMachines: {matchLabels: {role: provisioned}}
            """,
            "vm.yaml": """
            apiVersion: converge.dev/v1alpha1
            kind: VirtualMachine
            metadata: {name: \(vm), labels: {role: provisioned}}
            spec:
              template: tmpl-linux
              cluster: DC0_C0
              cpus: 1
              memoryMB: 1024
              network: {portGroup: VM Network, ipv4: \(address)/16}
              provision: {playbook: \(playbook)}
            """,
            "playbooks.yaml": """
            apiVersion: converge.dev/v1alpha1
            kind: Playbook
            metadata: {name: base}
            spec: {path: ansible/base.yml}
            ---
            apiVersion: converge.dev/v1alpha1
            kind: Playbook
            metadata: {name: broken}
            spec: {path: ansible/broken.yml}
            """,
            "ansible/base.yml": """
            - hosts: all
              gather_facts: false
              tasks:
                - become: true
                  copy: {dest: /etc/provisioned, content: "{{ inventory_hostname }}"}
            """,
            "ansible/broken.yml": """
            - hosts: all
              gather_facts: false
              tasks:
                - fail: {msg: "the base image is wrong"}
            """,
        ]
    }

    @Test func aVMIsClonedProvisionedAndMarkedActive_aFailedProvisioningLeavesNoVM() async throws {
        try await VCenterLab.with { vcenter in
            try await AnsibleLab.with(hosts: 2) { lab in
                let environment = [VCenterLab.passwordVariable: vcenter.password]
                try lab.write(Self.manifests(lab, vcenter: vcenter, vm: "cvt-prov", address: lab.addresses["h1"] ?? "", playbook: "base"))
                let result = try await lab.reconcile(environment: environment)
                #expect(result.exitCode == 0, "\(result.stdout)\n\(result.stderr)")
                #expect(try await VSphereTests.vms(in: vcenter)["cvt-prov"]?.powerState == "poweredOn")
                #expect(try await lab.file("/etc/provisioned", on: "h1") == "cvt-prov", "the playbook ran on the new VM's address")
                let inventory = try await run(
                    convergeBinary, ["inventory", "repo", "--instance", lab.lab.instance], in: lab.directory, environment: environment)
                let row = inventory.stdout.split(separator: "\n").first { $0.contains("cvt-prov") } ?? ""
                #expect(row.hasSuffix("active (base)"), "\(inventory.stdout)\n\(inventory.stderr)")

                // Another VM whose provisioning fails is destroyed, as any failed create is.
                var files = Self.manifests(
                    lab, vcenter: vcenter, vm: "cvt-prov-bad", address: lab.addresses["h2"] ?? "", playbook: "broken")
                files["vm.yaml"] =
                    (files["vm.yaml"] ?? "") + "\n---\n"
                    + (Self.manifests(lab, vcenter: vcenter, vm: "cvt-prov", address: lab.addresses["h1"] ?? "", playbook: "base")[
                        "vm.yaml"] ?? "")
                try lab.write(files)
                let failed = try await lab.reconcile(environment: environment)
                #expect(failed.exitCode == 1, "\(failed.stdout)\n\(failed.stderr)")
                #expect(failed.stderr.contains("provisioning VirtualMachine/cvt-prov-bad with playbook broken"), "\(failed.stderr)")
                let vms = try await VSphereTests.vms(in: vcenter)
                #expect(vms["cvt-prov-bad"] == nil, "the half-made VM was destroyed")
                #expect(vms["cvt-prov"] != nil, "the provisioned one stays")
            }
        }
    }
}
