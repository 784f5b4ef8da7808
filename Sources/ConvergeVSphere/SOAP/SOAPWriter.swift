/// Builds the body of a vim25 request. Element order matters to vCenter (it follows the
/// WSDL's sequence), so requests are written in order rather than from dictionaries.
public struct SOAPWriter: Sendable {
    private(set) var xml = ""

    public init() {}

    /// `<name xsi:type="type">…</name>`
    public mutating func element(_ name: String, type: String? = nil, _ content: (inout SOAPWriter) -> Void) {
        xml += "<\(name)"
        if let type { xml += " xsi:type=\"\(type)\"" }
        xml += ">"
        content(&self)
        xml += "</\(name)>"
    }

    /// A leaf with text; `nil` writes nothing (an unset optional field).
    public mutating func leaf(_ name: String, _ value: String?, type: String? = nil) {
        guard let value else { return }
        xml += "<\(name)"
        if let type { xml += " xsi:type=\"\(type)\"" }
        xml += ">\(Self.escape(value))</\(name)>"
    }

    public mutating func leaf(_ name: String, _ value: Int?) { leaf(name, value.map(String.init)) }

    public mutating func leaf(_ name: String, _ value: Bool?) { leaf(name, value.map { $0 ? "true" : "false" }) }

    public mutating func reference(_ name: String, _ reference: ManagedObjectReference?) {
        guard let reference else { return }
        xml += "<\(name) type=\"\(reference.type)\">\(Self.escape(reference.value))</\(name)>"
    }

    /// Appends what another writer wrote (a part built ahead, which may have thrown).
    public mutating func append(_ other: SOAPWriter) { xml += other.xml }

    /// Writes `node` back as it was read (a device edited in place keeps every field vCenter
    /// sent, which it requires), named `name`.
    public mutating func node(_ node: SOAPNode, as name: String? = nil) {
        let tag = name ?? node.name
        xml += "<\(tag)"
        if let type = node.xsiType { xml += " xsi:type=\"\(type)\"" }
        if let type = node.referenceType { xml += " type=\"\(type)\"" }
        xml += ">"
        if node.children.isEmpty {
            xml += Self.escape(node.text)
        } else {
            for child in node.children { self.node(child) }
        }
        xml += "</\(tag)>"
    }

    static func escape(_ text: String) -> String {
        guard text.contains(where: { $0 == "&" || $0 == "<" || $0 == ">" || $0 == "\"" }) else { return text }
        var escaped = ""
        escaped.reserveCapacity(text.count + 16)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// The full envelope around one method call.
    static func envelope(_ body: String) -> String {
        #"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>"#
            + body + "</soapenv:Body></soapenv:Envelope>"
    }
}
