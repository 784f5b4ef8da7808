/// An IPv4 address, parsed strictly (four decimal octets, no leading zeros).
public struct IPv4Address: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), part.allSatisfy(\.isNumber),
                  part.count == 1 || part.first != "0", let octet = UInt32(part), octet <= 255 else { return nil }
            value = value << 8 | octet
        }
        self.value = value
    }

    public var description: String {
        [24, 16, 8, 0].map { String((value >> UInt32($0)) & 0xFF) }.joined(separator: ".")
    }

    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value < rhs.value }
}

/// An IPv4 network in CIDR notation (`192.168.100.0/24`); the address must be the network's
/// first address, as Docker and most tools require.
public struct IPv4Network: Sendable, Hashable, CustomStringConvertible {
    public var address: IPv4Address
    public var prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(String(parts[0])),
              parts[1].allSatisfy(\.isNumber), let length = Int(parts[1]), (0...32).contains(length) else { return nil }
        self.address = address
        self.prefixLength = length
    }

    public var mask: UInt32 { prefixLength == 0 ? 0 : UInt32.max << UInt32(32 - prefixLength) }
    /// True when host bits are set (`192.168.100.5/24`), which Docker rejects.
    public var hasHostBits: Bool { address.value & ~mask != 0 }
    public var networkAddress: IPv4Address { IPv4Address(address.value & mask) }
    public var broadcastAddress: IPv4Address { IPv4Address(address.value | ~mask) }

    public func contains(_ ip: IPv4Address) -> Bool { ip.value & mask == address.value & mask }

    /// True when `ip` can be given to a host: inside, and neither the network nor broadcast address.
    public func isUsableHost(_ ip: IPv4Address) -> Bool {
        guard contains(ip) else { return false }
        if prefixLength >= 31 { return true }
        return ip != networkAddress && ip != broadcastAddress
    }

    public func overlaps(_ other: IPv4Network) -> Bool {
        let shared = min(mask, other.mask)
        return address.value & shared == other.address.value & shared
    }

    public var description: String { "\(address)/\(prefixLength)" }
}
