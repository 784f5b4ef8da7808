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
        try await renewingSessionOnce {
            let view = try await self.invoke("CreateContainerView", on: self.serviceContent.viewManager, renewingSession: false) { writer in
                writer.reference("container", root)
                for type in properties.keys.sorted() { writer.leaf("type", type) }
                writer.leaf("recursive", true)
            }.child("returnval")?.reference
            guard let view else { throw SOAPParser.Malformed(detail: "CreateContainerView returned no view") }
            do {
                let objects = try await self.retrievePaged(properties: properties) { writer in
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
                _ = try? await self.invoke("DestroyView", on: view, renewingSession: false)
                return objects
            } catch {
                _ = try? await self.invoke("DestroyView", on: view, renewingSession: false)
                throw error
            }
        }
    }

    /// Reads `paths` of the given objects (all of one type) in one call.
    public func retrieve(_ objects: [ManagedObjectReference], properties paths: [String]) async throws -> [ObjectContent] {
        guard let type = objects.first?.type else { return [] }
        return try await renewingSessionOnce {
            try await self.retrievePaged(properties: [type: paths]) { writer in
                for object in objects {
                    writer.element("objectSet") { writer in
                        writer.reference("obj", object)
                        writer.leaf("skip", false)
                    }
                }
            }
        }
    }

    /// Runs a read; if the session expired during it, logs in again and runs it once more
    /// from the start (a view and a paging token do not survive their session).
    private func renewingSessionOnce<T: Sendable>(_ read: () async throws -> T) async throws -> T {
        let generation = currentGeneration
        do {
            return try await read()
        } catch let fault as VimFault where fault.type == "NotAuthenticated" {
            try await renewSession(after: generation)
            return try await read()
        }
    }

    /// `RetrievePropertiesEx`, then `ContinueRetrievePropertiesEx` while vCenter hands back a
    /// token.
    private func retrievePaged(properties: [String: [String]], objectSet: @escaping (inout SOAPWriter) -> Void) async throws -> [ObjectContent] {
        var objects: [ObjectContent] = []
        var page = try await invoke("RetrievePropertiesEx", on: serviceContent.propertyCollector, renewingSession: false) { writer in
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
        var checkedSession = false
        while let result = page {
            let contents = result.children("objects").map(Self.objectContent)
            // vCenter reports an expired session per object, inside `missingSet`, not as a
            // fault; a property this user may not read looks the same, so ask once.
            if !checkedSession, contents.contains(where: { $0.missing.values.contains { $0.type == "NotAuthenticated" } }) {
                checkedSession = true
                if try await !sessionIsActive() {
                    throw VimFault(type: "NotAuthenticated", message: "the session expired", method: "RetrievePropertiesEx")
                }
            }
            objects += contents
            guard let token = result.child("token")?.text, !token.isEmpty else { break }
            page = try await invoke("ContinueRetrievePropertiesEx", on: serviceContent.propertyCollector, renewingSession: false) { writer in
                writer.leaf("token", token)
            }.child("returnval")
        }
        return objects
    }

    /// Whether this session is still logged in: `SessionManager.currentSession` is readable
    /// without privileges and empty once the session is gone.
    private func sessionIsActive() async throws -> Bool {
        let manager = serviceContent.sessionManager
        let result = try await invoke("RetrievePropertiesEx", on: serviceContent.propertyCollector, renewingSession: false) { writer in
            writer.element("specSet") { writer in
                writer.element("propSet") { writer in
                    writer.leaf("type", manager.type)
                    writer.leaf("pathSet", "currentSession")
                }
                writer.element("objectSet") { writer in
                    writer.reference("obj", manager)
                }
            }
            writer.element("options") { _ in }
        }.child("returnval")
        return result?.children("objects").first.map(Self.objectContent)?["currentSession"] != nil
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
