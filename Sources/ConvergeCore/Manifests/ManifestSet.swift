import Yams

/// A decoded and fully validated set of manifests: the desired state.
///
/// Built only through `ManifestSet.load`, which checks the whole set (syntax, types, unknown
/// fields, names, references, cycles, cross-field rules) and throws every problem at once,
/// so nothing is ever applied from a set that is partly wrong.
public struct ManifestSet: Sendable {
    public private(set) var resources: [Resource]
    /// The kinds the set was decoded with; a policy naming kinds checks them against it.
    public let registry: KindRegistry
    /// Where files beside the manifests are read from; nil for sources that have none.
    public let repository: RepositoryFiles?
    /// The folders kinds asked for (`RepositoryFileUser`), as read while the set loaded: a run
    /// journals them with its manifests.
    public private(set) var repositoryFolders: [String: [SourceFile]] = [:]
    private var indexByID: [ResourceID: Int]
    private var resourcesByKind: [String: [Resource]]
    private var kindNames: [String]

    init(resources: [Resource], registry: KindRegistry, repository: RepositoryFiles? = nil) {
        self.registry = registry
        self.repository = repository
        self.resources = resources.sorted { $0.id < $1.id }
        var index: [ResourceID: Int] = [:]
        for (position, resource) in self.resources.enumerated() where index[resource.id] == nil {
            index[resource.id] = position
        }
        self.indexByID = index
        self.resourcesByKind = Dictionary(grouping: self.resources, by: \.id.kind)
        self.kindNames = resourcesByKind.keys.sorted()
    }

    public subscript(id: ResourceID) -> Resource? {
        indexByID[id].map { resources[$0] }
    }

    public func resources(ofKind kind: String) -> [Resource] {
        resourcesByKind[kind] ?? []
    }

    /// The kinds (resource id kinds) the set holds, sorted.
    public var kinds: [String] { kindNames }

    /// The target a resource uses when its manifest names none: the only one of that kind.
    public func defaultTarget(kind: String) -> ResourceID? {
        let targets = resources(ofKind: kind)
        return targets.count == 1 ? targets[0].id : nil
    }

    /// Decodes and validates `files` with the kinds of `registry`, reading the folders its
    /// kinds need from `repository`; throws `ManifestValidationError` with every problem.
    /// Files inside such a folder (a playbook and its roles) are not manifests.
    public static func load(_ files: [SourceFile], registry: KindRegistry, repository: RepositoryFiles? = nil) throws -> ManifestSet {
        // Each file decodes on its own, so a file that turns out to be a playbook's (YAML, but
        // no manifest) can be set aside with its complaints.
        let decodedFiles = files.sorted(by: { $0.path < $1.path }).map { file in
            let fileCollector = DiagnosticCollector()
            return (
                file: file, resources: ManifestDecoder(registry: registry, collector: fileCollector).decode(file), collector: fileCollector
            )
        }
        let repositoryFolders = Set(
            decodedFiles.flatMap {
                $0.resources.compactMap { $0.spec as? any RepositoryFileUser }.flatMap { $0.repositoryFolders.map(\.folder) }
            }
            .compactMap { repository?.resolve($0) ?? RepositoryFiles.normalize($0) })
        let collector = DiagnosticCollector()
        var decoded: [Resource] = []
        for entry in decodedFiles {
            let prefix = repository?.manifestPathPrefix ?? ""
            if repositoryFolders.contains(where: { entry.file.path.hasPrefix(prefix + $0 + "/") }) { continue }
            decoded += entry.resources
            collector.absorb(entry.collector)
        }
        var set = ManifestSet(resources: decoded, registry: registry, repository: repository)
        set.readRepositoryFolders(collector: collector)
        set.validate(collector: collector)
        if !collector.diagnostics.isEmpty {
            throw ManifestValidationError(collector.diagnostics)
        }
        return set
    }

    /// The repository path of a path a manifest gives relative to the manifests' folder, or
    /// nil when it leaves the repository.
    public func repositoryPath(_ relative: String) -> String? {
        repository?.resolve(relative) ?? RepositoryFiles.normalize(relative)
    }

    /// Every file the set's resources need beside the manifests, by path.
    public var repositoryFiles: [SourceFile] {
        var seen = Set<String>()
        return repositoryFolders.keys.sorted().flatMap { repositoryFolders[$0] ?? [] }.filter { seen.insert($0.path).inserted }
    }

    /// Reads each folder a resource needs once; a folder that is missing or unreadable is a
    /// diagnostic at the field that names it.
    private mutating func readRepositoryFolders(collector: DiagnosticCollector) {
        for resource in resources {
            guard let user = resource.spec as? any RepositoryFileUser else { continue }
            for need in user.repositoryFolders {
                guard let folder = repositoryPath(need.folder) else {
                    collector.report(
                        Diagnostic(
                            "\(need.field): '\(need.folder)' is outside the repository", at: need.location, resource: resource.id,
                            hint: "give a path relative to the manifests' folder that stays inside the repository"))
                    continue
                }
                if let base = repository?.base, base == folder || base.hasPrefix(folder + "/") {
                    collector.report(
                        Diagnostic(
                            "\(need.field): folder '\(need.folder)' holds the manifests themselves", at: need.location,
                            resource: resource.id,
                            hint: "keep the playbook and its roles in a folder of their own, beside or below the manifests"))
                    continue
                }
                guard repositoryFolders[folder] == nil else { continue }
                guard let repository else {
                    collector.report(
                        Diagnostic(
                            "\(need.field): '\(need.folder)' cannot be read: this source has no files beside its manifests",
                            at: need.location,
                            resource: resource.id, hint: "load the manifests from a folder or a Git repository"))
                    continue
                }
                do {
                    guard let files = try repository.files(under: folder) else {
                        collector.report(
                            Diagnostic(
                                "\(need.field): folder '\(need.folder)' does not exist in \(repository.origin)", at: need.location,
                                resource: resource.id,
                                hint: "give a folder relative to the repository root (names are case-sensitive), and commit it"))
                        continue
                    }
                    repositoryFolders[folder] = files
                } catch {
                    collector.report(
                        Diagnostic(
                            "\(need.field): cannot read '\(need.folder)' from \(repository.origin): \(error)", at: need.location,
                            resource: resource.id))
                }
            }
        }
    }

    private func validate(collector: DiagnosticCollector) {
        var firstSeen: [ResourceID: Resource] = [:]
        for resource in resources {
            if let first = firstSeen[resource.id] {
                collector.report(
                    Diagnostic(
                        "duplicate resource: \(resource.id) is also defined at \(first.location)",
                        at: resource.location, resource: resource.id,
                        hint: "names must be unique per kind; rename or remove one of them"))
            } else {
                firstSeen[resource.id] = resource
            }
        }
        for resource in resources {
            collector.currentResource = resource.id
            // A target that is written but could not be decoded has its own diagnostic.
            for reference in resource.references(in: self)
            where self[reference.target] == nil && !collector.undecodable.contains(reference.target) {
                let known = resources(ofKind: reference.target.kind).map(\.id.name)
                var hint =
                    closestName(to: reference.target.name, among: known).map { "did you mean '\($0)'?" }
                    ?? (known.isEmpty
                        ? "no \(reference.target.kind) is defined in this manifest set" : "defined: \(known.joined(separator: ", "))")
                if !collector.unreadableFiles.isEmpty {
                    hint += "; it may be in \(collector.unreadableFiles.joined(separator: ", ")), which could not be read"
                }
                collector.report(
                    "\(reference.field): refers to \(reference.target), which is not defined", at: reference.location, hint: hint)
            }
            resource.spec.validate(resource, in: self, collector: collector)
        }
        collector.currentResource = nil
        for (_, members) in resourcesByKind.sorted(by: { $0.key < $1.key }) {
            type(of: members[0].spec).validate(members, in: self, collector: collector)
        }
        // A resource naming itself is reported by its kind ("cannot depend on itself").
        for cycle in DependencyGraph(self).cycles() where cycle.count > 1 {
            let first = cycle[0]
            let path = (cycle + [first]).map(\.description).joined(separator: " → ")
            collector.report(
                Diagnostic(
                    "dependency cycle: \(path)", at: self[first]?.location, resource: first,
                    hint: "remove one of these references so the resources can be ordered"))
        }
    }
}

/// Turns one file into resources: splits YAML documents, checks the envelope
/// (`apiVersion`, `kind`, `metadata`) and hands `spec` to the kind.
struct ManifestDecoder {
    let registry: KindRegistry
    let collector: DiagnosticCollector

    func decode(_ file: SourceFile) -> [Resource] {
        let fileStart = SourceLocation(file: file.path, line: 1, column: 1)
        guard let text = String(validating: file.bytes, as: UTF8.self), !file.bytes.contains(0) else {
            collector.report(
                "not a text file (invalid UTF-8 or binary content)", at: fileStart,
                hint: "manifest files must be UTF-8 YAML; move other files out of the manifest folder")
            return []
        }
        var resources: [Resource] = []
        do {
            // The basic resolver skips Yams's regex tag resolution of every key and scalar
            // (about a third of the load time of a large set): the readers interpret scalars
            // by their text themselves. UTF-8 is fixed, so no environment lookup per file.
            let parser = try Parser(yaml: text, resolver: .basic, encoding: .utf8)
            var documentCount = 0
            while let root = try parser.nextRoot() {
                documentCount += 1
                let node = ManifestNode(node: root, file: file.path, path: "", collector: collector)
                if case .scalar(let scalar) = root, scalar.string.isEmpty { continue }
                if let resource = decodeDocument(node) { resources.append(resource) }
            }
            if documentCount == 0 || (resources.isEmpty && !containsContent(text)) {
                collector.report(
                    "the file holds no manifest", at: fileStart,
                    hint: "add a document with apiVersion, kind, metadata and spec, or delete the file")
            }
        } catch let error as YamlError {
            report(error, file: file.path, text: text)
            collector.unreadableFiles.append(file.path)
        } catch {
            collector.report("cannot read YAML: \(error)", at: fileStart)
            collector.unreadableFiles.append(file.path)
        }
        return resources
    }

    private func containsContent(_ text: String) -> Bool {
        text.split(separator: "\n").contains { line in
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            return !trimmed.isEmpty && !trimmed.hasPrefix("#") && trimmed != "---" && trimmed != "..."
        }
    }

    private func report(_ error: YamlError, file: String, text: String) {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            // libyaml finds an unclosed quote or bracket only at the end of the file; the
            // context ("while scanning a quoted scalar") says where it was opened.
            var message = "invalid YAML: \(problem)"
            var at = mark
            var hint: String?
            if let context, problem.hasSuffix("end of stream") {
                message += " \(context.text)"
                at = context.mark
                hint = "a quote or bracket opened here is never closed"
            } else if let context, context.mark.line != at.line || context.mark.column != at.column {
                message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            let line = text.split(separator: "\n", omittingEmptySubsequences: false).dropFirst(at.line - 1).first
            if line?.unicodeScalars.dropFirst(at.column - 1).first == "\t" {
                hint = "indent with spaces; YAML does not allow tabs"
            }
            collector.report(message, at: SourceLocation(file: file, line: at.line, column: at.column), hint: hint)
        case .duplicatedKeysInMapping(let duplicates, let context):
            collector.report(
                "invalid YAML: duplicate key\(duplicates.count == 1 ? "" : "s") \(duplicates.joined(separator: ", ")) in one mapping",
                at: SourceLocation(file: file, line: context.mark.line, column: context.mark.column),
                hint: "each key may appear once; remove the repeated one")
        case .reader(let problem, _, _, _):
            collector.report("invalid YAML: \(problem)", at: SourceLocation(file: file, line: 1, column: 1))
        default:
            collector.report("invalid YAML: \(error)", at: SourceLocation(file: file, line: 1, column: 1))
        }
    }

    private func decodeDocument(_ node: ManifestNode) -> Resource? {
        guard let document = node.mapping else { return nil }
        let apiVersion = document.required("apiVersion", hint: "Converge kinds use \(KindRegistry.apiVersion)")?.string
        let kindNode = document.required("kind")
        let kindName = kindNode?.string
        let metadataNode = document.required("metadata")?.mapping
        let name = metadataNode?.required("name")?.string
        if let kindName, let name { collector.currentResource = ResourceID(kind: kindName, name: name) }
        defer { collector.currentResource = nil }
        // Documents of other apiVersions (Kubernetes objects) go to the kind that takes them.
        if let apiVersion, let objects = registry.otherAPIVersions, !apiVersion.hasPrefix(KindRegistry.apiGroupPrefix),
            let kindName, let kindNode, registry.type(forKind: kindName) == nil
        {
            return decodeObject(
                document, metadataNode: metadataNode, name: name, apiVersion: apiVersion, kind: kindName, kindNode: kindNode, as: objects)
        }
        let labels = metadataNode?.optional("labels")?.stringMap ?? [:]
        let annotations = metadataNode?.optional("annotations")?.stringMap ?? [:]
        metadataNode?.finish()
        checkDependsOn(annotations, in: metadataNode)

        guard let kindName, let kindNode else {
            _ = document.optional("spec")  // unreadable without a kind, but not an unknown field
            document.finish()
            return nil
        }
        guard let kindType = registry.type(forKind: kindName) else {
            let hint =
                closestName(to: kindName, among: registry.kindNames).map { "did you mean '\($0)'?" }
                ?? "known kinds: \(registry.kindNames.joined(separator: ", "))"
            kindNode.report("unknown kind '\(kindName)'", hint: hint)
            _ = document.optional("spec")
            document.finish()
            return nil
        }
        if let name, let nameNode = metadataNode?.optional("name"), let hint = kindType.nameRule.check(name) {
            nameNode.report("invalid name '\(name)'", hint: hint)
        }
        if let apiVersion, apiVersion != KindRegistry.apiVersion, let versionNode = document.optional("apiVersion") {
            versionNode.report("\(kindName) is served by apiVersion \(KindRegistry.apiVersion), not '\(apiVersion)'")
        }
        let specReader = document.required("spec")?.mapping
        document.finish()
        let id = name.map { ResourceID(kind: kindType.kind, name: $0) }
        guard let specReader else {
            if let id { collector.undecodable.insert(id) }
            return nil
        }
        // The spec is checked even without a name, so its problems come in the same run.
        let metadata = Metadata(name: name ?? "", labels: labels, annotations: annotations)
        guard let spec = kindType.init(spec: specReader, metadata: metadata) else {
            if let id { collector.undecodable.insert(id) }
            return nil
        }
        specReader.finish()
        guard name != nil else { return nil }
        return Resource(apiVersion: apiVersion ?? KindRegistry.apiVersion, metadata: metadata, spec: spec, location: kindNode.location)
    }

    private func decodeObject(
        _ document: MappingReader, metadataNode: MappingReader?, name: String?, apiVersion: String, kind: String, kindNode: ManifestNode,
        as type: any APIObjectSpec.Type
    ) -> Resource? {
        let namespace = metadataNode?.optional("namespace")?.string
        let labels = metadataNode?.optional("labels")?.stringMap ?? [:]
        let annotations = metadataNode?.optional("annotations")?.stringMap ?? [:]
        metadataNode?.finish()
        checkDependsOn(annotations, in: metadataNode)
        let metadata = Metadata(name: name ?? "", namespace: namespace, labels: labels, annotations: annotations)
        let id = type.resourceID(apiVersion: apiVersion, kind: kind, metadata: metadata)
        if name != nil { collector.currentResource = id }
        guard let spec = type.init(document: document, apiVersion: apiVersion, kind: kind, metadata: metadata) else {
            if name != nil { collector.undecodable.insert(id) }
            return nil
        }
        document.finish()
        guard let name, let nameNode = metadataNode?.optional("name") else { return nil }
        if let hint = type.nameRule.check(name) { nameNode.report("invalid name '\(name)'", hint: hint) }
        return Resource(apiVersion: apiVersion, metadata: metadata, spec: spec, location: kindNode.location, id: id)
    }

    /// Reports entries of a `converge.dev/depends-on` annotation that are not `Kind/name`.
    private func checkDependsOn(_ annotations: [String: String], in metadata: MappingReader?) {
        guard let value = annotations[DependsOnAnnotation.key] else { return }
        for entry in DependsOnAnnotation.parse(value) where entry.id == nil {
            let location = metadata?.optional("annotations")?.mapping?.keyLocation(DependsOnAnnotation.key)
            collector.report(
                "metadata.annotations[\(DependsOnAnnotation.key)]: '\(entry.text)' is not a resource id",
                at: location ?? metadata?.location,
                hint: "list resources as Kind/name, separated by commas (e.g. Container/db, Namespace/shop)")
        }
    }
}
