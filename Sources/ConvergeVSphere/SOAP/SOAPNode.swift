import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A reference to a vSphere managed object (`vm-42` of type `VirtualMachine`).
public struct ManagedObjectReference: Sendable, Hashable, Codable, CustomStringConvertible {
    public var type: String
    public var value: String

    public init(type: String, value: String) {
        self.type = type
        self.value = value
    }

    public var description: String { "\(type):\(value)" }
}

/// One element of a SOAP message. vim25 data lives in elements; attributes only carry an
/// element's type (`xsi:type` for polymorphic data, plain `type` on managed object references).
public struct SOAPNode: Sendable {
    public var name: String
    /// The `xsi:type` of polymorphic data (`VirtualDisk` inside a device list).
    public var xsiType: String?
    /// The `type` attribute a managed object reference carries.
    public var referenceType: String?
    public var text: String
    public var children: [SOAPNode]

    public init(name: String, xsiType: String? = nil, referenceType: String? = nil, text: String = "", children: [SOAPNode] = []) {
        self.name = name
        self.xsiType = xsiType
        self.referenceType = referenceType
        self.text = text
        self.children = children
    }

    public func child(_ name: String) -> SOAPNode? { children.first { $0.name == name } }

    public func children(_ name: String) -> [SOAPNode] { children.filter { $0.name == name } }

    /// Follows a dotted path of element names (`hardware.numCPU`).
    public func descendant(_ path: String) -> SOAPNode? {
        var node: SOAPNode? = self
        for part in path.split(separator: ".") { node = node?.child(String(part)) }
        return node
    }

    public var int: Int? { Int(text) }
    public var bool: Bool? { text == "true" ? true : text == "false" ? false : nil }

    /// This element read as a managed object reference.
    public var reference: ManagedObjectReference? {
        referenceType.map { ManagedObjectReference(type: $0, value: text) }
    }
}

/// Reads a SOAP document into `SOAPNode`s with namespace processing, so prefixes chosen by
/// the server (`soapenv:`, `XMLSchema-instance:`) do not matter.
enum SOAPParser {
    struct Malformed: Error, CustomStringConvertible {
        var detail: String
        var description: String { "malformed SOAP response: \(detail)" }
    }

    static func parse(_ data: Data) throws -> SOAPNode {
        let parser = XMLParser(data: data)
        parser.shouldProcessNamespaces = true
        let builder = Builder()
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else {
            throw Malformed(detail: parser.parserError.map { "\($0)" } ?? "empty document")
        }
        return root
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var stack: [SOAPNode] = []
        var root: SOAPNode?

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            var xsiType: String?
            var referenceType: String?
            for (key, value) in attributes {
                if key == "type" {
                    referenceType = value
                } else if key.hasSuffix(":type") {
                    // vim25 types lose the server's prefix (`vim25:VirtualDisk`); XML Schema
                    // types keep theirs, so writing a node back still means `xsd:string`.
                    let parts = value.split(separator: ":", maxSplits: 1)
                    xsiType = parts.count == 2 && !["xsd", "xs"].contains(parts[0]) ? String(parts[1]) : value
                }
            }
            stack.append(SOAPNode(name: elementName, xsiType: xsiType, referenceType: referenceType))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            guard !stack.isEmpty else { return }
            stack[stack.count - 1].text += string
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
            guard var node = stack.popLast() else { return }
            if !node.children.isEmpty { node.text = "" }
            if stack.isEmpty {
                root = node
            } else {
                stack[stack.count - 1].children.append(node)
            }
        }
    }
}
