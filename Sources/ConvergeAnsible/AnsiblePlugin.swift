import ConvergeCore

extension ProviderPlugin {
    /// Ansible playbooks (`Playbook`, `PlaybookRun`, `ScheduledPlaybook`) on the hosts of an
    /// `Inventory`.
    public static let ansible = ProviderPlugin(
        name: "ansible",
        kinds: [InventorySpec.self, PlaybookSpec.self, PlaybookRunSpec.self, ScheduledPlaybookSpec.self],
        targetKind: InventorySpec.kind,
        makeProvider: { inventory, context in
            guard let spec = inventory.spec(as: InventorySpec.self) else {
                throw PluginError(target: inventory.id, expectedKind: InventorySpec.kind)
            }
            return AnsibleProvider(target: inventory.id, spec: spec, context: context)
        })
}
