import ConvergeCore

/// The guest customization that gives a new VM its declared address: a Linux prep with a
/// fixed host name and one fixed IPv4 on its first NIC (vCenter applies it at the next
/// power-on, through VMware Tools).
enum GuestCustomization {
    static func write(_ writer: inout SOAPWriter, hostName: String, address: IPv4Network, gateway: IPv4Address?) {
        let mask = IPv4Address(address.mask)
        writer.element("spec") { writer in
            writer.element("identity", type: "CustomizationLinuxPrep") { writer in
                writer.element("hostName", type: "CustomizationFixedName") { writer in
                    writer.leaf("name", sanitized(hostName))
                }
                writer.leaf("domain", "localdomain")
            }
            writer.element("globalIPSettings") { _ in }
            writer.element("nicSettingMap") { writer in
                writer.element("adapter") { writer in
                    writer.element("ip", type: "CustomizationFixedIp") { writer in
                        writer.leaf("ipAddress", address.address.description)
                    }
                    writer.leaf("subnetMask", mask.description)
                    writer.leaf("gateway", gateway?.description)
                }
            }
        }
    }

    /// Host names allow letters, digits and hyphens only.
    static func sanitized(_ name: String) -> String {
        let cleaned = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "-" }.prefix(63))
        return cleaned.isEmpty ? "vm" : cleaned
    }
}
