/// One object's properties as the PropertyCollector returned them.
public struct ObjectContent: Sendable {
    public var object: ManagedObjectReference
    /// Property path → value element (`config.hardware.numCPU` → `<val>2</val>`). Unset
    /// properties are absent (vCenter leaves them out).
    public var properties: [String: SOAPNode]
    /// Properties that could not be read, with vCenter's reason.
    public var missing: [String: VimFault]

    public subscript(_ path: String) -> SOAPNode? { properties[path] }
}

extension VimClient {
    /// The page size asked of vCenter, which caps it near 100 objects anyway.
    public static let pageSize = 100

    /// Reads `paths` of every object of the given types under `root` (recursively), through
    /// a ContainerView: one call per page of about 100 objects, plus creating and destroying
    /// the view. This is the bulk read that keeps observing a thousand VMs to a dozen round
    /// trips instead of one per VM.
    public func retrieve(under root: ManagedObjectReference, properties: [String: [String]]) async throws -> [ObjectContent] {
        let view = try await invoke("CreateContainerView", on: serviceContent.viewManager) { writer in
            writer.reference("container", root)
            for type in properties.keys.sorted() { writer.leaf("type", type) }
            writer.leaf("recursive", true)
        }.child("returnval")?.reference
        guard let view else { throw SOAPParser.Malformed(detail: "CreateContainerView returned no view") }
        do {
            let objects = try await retrievePaged(properties: properties) { writer in
                writer.element("objectSet") { writer in
                    writer.reference("obj", view)
                    writer.leaf("skip", true)
                    writer.element("selectSet", type: "TraversalSpec") { writer in
                        writer.leaf("name", "view")
                        writer.leaf("type", "ContainerView")
                        writer.leaf("path", "view")
                        writer.leaf("skip", false)
                    }
                }
            }
            _ = try? await invoke("DestroyView", on: view)
            return objects
        } catch {
            _ = try? await invoke("DestroyView", on: view)
            throw error
        }
    }

    /// Reads `paths` of the given objects (all of one type) in one call.
    public func retrieve(_ objects: [ManagedObjectReference], properties paths: [String]) async throws -> [ObjectContent] {
        guard let type = objects.first?.type else { return [] }
        return try await retrievePaged(properties: [type: paths]) { writer in
            for object in objects {
                writer.element("objectSet") { writer in
                    writer.reference("obj", object)
                    writer.leaf("skip", false)
                }
            }
        }
    }

    /// `RetrievePropertiesEx`, then `ContinueRetrievePropertiesEx` while vCenter hands back a
    /// token. A session that expired between pages is renewed and the read starts over
    /// (a token does not survive its session).
    private func retrievePaged(properties: [String: [String]], objectSet: @escaping (inout SOAPWriter) -> Void) async throws -> [ObjectContent] {
        for attempt in 0..<2 {
            let generation = currentGeneration
            var objects: [ObjectContent] = []
            var page = try await invoke("RetrievePropertiesEx", on: serviceContent.propertyCollector) { writer in
                writer.element("specSet") { writer in
                    for type in properties.keys.sorted() {
                        writer.element("propSet") { writer in
                            writer.leaf("type", type)
                            writer.leaf("all", false)
                            for path in properties[type]! { writer.leaf("pathSet", path) }
                        }
                    }
                    objectSet(&writer)
                }
                writer.element("options") { $0.leaf("maxObjects", Self.pageSize) }
            }.child("returnval")
            var expired = false
            while let result = page {
                let contents = result.children("objects").map(Self.objectContent)
                if contents.contains(where: { $0.missing.values.contains { $0.type == "NotAuthenticated" } }) {
                    expired = true
                    break
                }
                objects += contents
                guard let token = result.child("token")?.text, !token.isEmpty else { break }
                page = try await invoke("ContinueRetrievePropertiesEx", on: serviceContent.propertyCollector) { writer in
                    writer.leaf("token", token)
                }.child("returnval")
            }
            if !expired { return objects }
            // vCenter reports an expired session per object, inside `missingSet`, not as a fault.
            guard attempt == 0 else { break }
            try await renewSession(after: generation)
        }
        throw VimFault(type: "NotAuthenticated", message: "the session expired and logging in again did not help", method: "RetrievePropertiesEx")
    }

    static func objectContent(_ node: SOAPNode) -> ObjectContent {
        var content = ObjectContent(object: node.child("obj")?.reference ?? ManagedObjectReference(type: "", value: ""), properties: [:], missing: [:])
        for property in node.children {
            switch property.name {
            case "propSet":
                if let name = property.child("name")?.text, let value = property.child("val") { content.properties[name] = value }
            case "missingSet":
                if let path = property.child("path")?.text, let fault = property.child("fault") {
                    content.missing[path] = VimFault.from(localized: fault, method: "RetrievePropertiesEx", object: content.object.description)
                }
            default:
                continue
            }
        }
        return content
    }
}
