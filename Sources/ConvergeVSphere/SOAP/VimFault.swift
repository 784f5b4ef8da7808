/// A fault vCenter returned, as a person should read it: what failed, on which object, and
/// vCenter's own words.
public struct VimFault: Error, Sendable, CustomStringConvertible {
    /// The vim25 fault type (`InvalidLogin`, `NotAuthenticated`, `InvalidArgument`).
    public var type: String
    /// vCenter's message.
    public var message: String
    /// The method or task that failed (`Login`, `ReconfigVM_Task`).
    public var method: String
    /// The object it acted on, when there was one.
    public var object: String?

    public init(type: String, message: String, method: String, object: String? = nil) {
        self.type = type
        self.message = message
        self.method = method
        self.object = object
    }

    public var description: String {
        var text = "vCenter: \(method)"
        if let object { text += " on \(object)" }
        text += " failed: \(type)"
        if !message.isEmpty, message != type { text += ": \(message)" }
        if let hint { text += " (\(hint))" }
        return text
    }

    var hint: String? {
        switch type {
        case "InvalidLogin": return "check the VCenter's credentials (spec.credentials): the user name or password is wrong"
        case "NoPermission": return "the vCenter user lacks a privilege this operation needs"
        case "NotAuthenticated": return "the session expired and logging in again failed"
        default: return nil
        }
    }

    /// Transient faults worth retrying: vCenter busy or a task conflicting with another.
    public var isTransient: Bool {
        ["TaskInProgress", "ConcurrentAccess", "HostCommunication", "RequestCanceled", "SystemError"].contains(type)
    }

    /// Reads a `soapenv:Fault` element.
    static func from(fault: SOAPNode, method: String, object: String?) -> VimFault {
        let message = fault.child("faultstring")?.text ?? ""
        let detail = fault.child("detail")?.children.first
        let type = detail?.xsiType ?? detail.map { $0.name.hasSuffix("Fault") ? String($0.name.dropLast(5)) : $0.name } ?? "ServerFault"
        return VimFault(type: type, message: message, method: method, object: object)
    }

    /// Reads a `LocalizedMethodFault` (a task's `info.error`, a `missingSet` entry's `fault`).
    static func from(localized node: SOAPNode, method: String, object: String?) -> VimFault {
        let fault = node.child("fault")
        var type = fault?.xsiType ?? "MethodFault"
        var message = node.child("localizedMessage")?.text ?? ""
        // vcsim reports only a Go type name ("*types.InvalidArgument") as its message.
        if message.hasPrefix("*types.") {
            type = String(message.dropFirst("*types.".count))
            message = ""
        }
        if let property = fault?.child("invalidProperty")?.text { message += message.isEmpty ? "invalid property \(property)" : " (invalid property \(property))" }
        return VimFault(type: type, message: message, method: method, object: object)
    }
}
