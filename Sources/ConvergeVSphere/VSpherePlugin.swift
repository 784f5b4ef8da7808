import ConvergeCore

extension ProviderPlugin {
    /// vCenters (`VCenter`) and their virtual machines, with snapshot guards and retention.
    public static let vSphere = ProviderPlugin(
        name: "vsphere",
        kinds: [VCenterSpec.self, VirtualMachineSpec.self],
        targetKind: VCenterSpec.kind,
        makeProvider: { vcenter, context in
            guard let spec = vcenter.spec(as: VCenterSpec.self) else {
                throw PluginError(target: vcenter.id, expectedKind: VCenterSpec.kind)
            }
            return VSphereProvider(target: vcenter.id, spec: spec, context: context)
        })
}
