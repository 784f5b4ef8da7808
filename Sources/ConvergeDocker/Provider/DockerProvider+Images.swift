import ConvergeCore

/// Images pinned by digest: the plan asks where each container's tag points (`resolve`), the
/// step checks it still points there and pulls exactly that digest (`prepareImage`).
extension DockerProvider {
    public func resolve(desired: [Resource], in set: ManifestSet) async throws -> [ResourceID: [String: String]] {
        struct Lookup: Hashable, Comparable {
            var image: String
            var pull: ImagePullPolicy
            static func < (a: Self, b: Self) -> Bool { (a.image, a.pull.rawValue) < (b.image, b.pull.rawValue) }
        }
        let containers = desired.compactMap { resource in resource.spec(as: ContainerSpec.self).map { (resource, $0) } }
        let lookups = Set(containers.map { Lookup(image: $0.1.image, pull: $0.1.pull) }).sorted()
        // One lookup per distinct image, concurrently; every failure is reported, not the first.
        let registry = RegistryClient()
        let outcomes = try await concurrentMap(lookups, limit: concurrency) { lookup -> Result<String?, ImageLookupError> in
            guard let reference = ImageReference(lookup.image) else { return .success(nil) }
            do {
                return .success(try await currentDigest(of: reference, pull: lookup.pull, in: set, registry: registry))
            } catch let error as ImageLookupError {
                return .failure(error)
            }
        }
        await registry.shutdown()
        var digests: [Lookup: String] = [:]
        var failures: [(image: String, users: [Resource], error: ImageLookupError)] = []
        for (lookup, outcome) in zip(lookups, outcomes) {
            switch outcome {
            case .success(let digest?): digests[lookup] = digest
            case .success(nil): break
            case .failure(let error):
                failures.append(
                    (lookup.image, containers.filter { $0.1.image == lookup.image && $0.1.pull == lookup.pull }.map(\.0), error))
            }
        }
        guard failures.isEmpty else { throw DockerProviderError.unresolvableImages(host: host, failures) }
        var resolved: [ResourceID: [String: String]] = [:]
        for (resource, spec) in containers {
            guard let digest = digests[Lookup(image: spec.image, pull: spec.pull)], let reference = ImageReference(spec.image) else {
                continue
            }
            resolved[resource.id] = ["image": reference.pinned(to: digest)]
        }
        return resolved
    }

    /// The manifest digest `reference`'s tag points to now, by `pull` policy: the local image's
    /// (its `RepoDigests`) unless the policy is `always` or the host lacks the tag, the
    /// registry's otherwise. Nil when there is nothing to pin: the reference carries its
    /// digest already, or the image was built or loaded on the host and never came from a
    /// registry.
    func currentDigest(
        of reference: ImageReference, pull: ImagePullPolicy, in set: ManifestSet, registry: RegistryClient
    ) async throws(ImageLookupError) -> String? {
        guard reference.digest == nil else { return nil }
        do {
            if pull != .always, let local = try await inspectIfPresent(reference.tagged) {
                return reference.digest(among: local.repoDigests ?? [])
            }
        } catch {
            throw ImageLookupError(reason: "the engine could not inspect it: \(error)")
        }
        guard pull != .never else { throw ImageLookupError(reason: "it is not on the host, and its pull policy is never") }
        let credentials = RegistryCredentialsSpec.named(for: reference.registry, in: set)
        let auth: RegistryAuth?
        do {
            auth = try credentials.map { try $0.spec.load(as: $0.id) }
        } catch {
            throw ImageLookupError(reason: "\(error)")
        }
        do {
            return try await registry.digest(of: reference, auth: auth)
        } catch {
            throw ImageLookupError(registryError: error, reference: reference, credentials: credentials?.id)
        }
    }

    /// Makes sure the image the plan pinned for a container (`pinned`, nil when it pinned
    /// none) is the one its tag still points to and is on the host, pulling it by digest when
    /// it is not; returns the reference to create the container with.
    func prepareImage(for resource: Resource, spec: ContainerSpec, pinned: String?, in set: ManifestSet) async throws -> String {
        guard let reference = ImageReference(spec.image) else { return spec.image }
        guard let pinned, let planned = ImageReference(pinned)?.digest, reference.digest == nil else {
            // Written with its digest: pulled when missing. A local image the plan found needs
            // no second look: the create says so if it has gone since.
            if let digest = reference.digest, try await inspectIfPresent(spec.image) == nil {
                guard spec.pull != .never else {
                    throw DockerProviderError.missingImages(host: host, images: [spec.image], users: [resource.id])
                }
                try await pull(reference, digest: digest, for: resource, in: set)
            }
            return spec.image
        }
        let registry = RegistryClient()
        let current: String?
        do {
            current = try await currentDigest(of: reference, pull: spec.pull, in: set, registry: registry)
            await registry.shutdown()
        } catch {
            await registry.shutdown()
            throw DockerProviderError.imageMoved(
                resource.id, image: spec.image, planned: planned, detail: "its digest cannot be read now: \(error)")
        }
        guard current == planned else {
            throw DockerProviderError.imageMoved(
                resource.id, image: spec.image, planned: planned,
                detail: current.map { "it now points to \($0)" } ?? "it no longer has a digest")
        }
        if try await inspectIfPresent(pinned) == nil {
            try await pull(reference, digest: planned, for: resource, in: set)
        }
        return pinned
    }

    /// Pulls `reference`'s repository at `digest`, showing progress on the step, then gives the
    /// image its tag, as `docker pull` does, so the next plan finds it locally.
    private func pull(_ reference: ImageReference, digest: String, for resource: Resource, in set: ManifestSet) async throws {
        let credentials = RegistryCredentialsSpec.named(for: reference.registry, in: set)
        let auth = try credentials.map { try $0.spec.load(as: $0.id) }
        let reporter = StepReporter.current
        let name = reference.tagged
        try await engine.pullImage(reference.repository, reference: digest, auth: auth?.header) { progress in
            reporter?.progress("pulling \(name): \(progress.summary)")
        }
        if reference.tag != nil || reference.digest == nil {
            try await engine.tagImage("\(reference.repository)@\(digest)", repository: reference.repository, tag: reference.effectiveTag)
        }
    }
}

/// Why an image's digest could not be read, in words for the plan's error.
struct ImageLookupError: Error, CustomStringConvertible {
    var reason: String

    init(reason: String) { self.reason = reason }

    /// From the registry's answer: who refused, and what to do.
    init(registryError error: any Error, reference: ImageReference, credentials: ResourceID?) {
        switch (error as? RegistryError)?.status {
        case 401?, 403?:
            reason =
                credentials.map { "the registry refused the credentials of \($0) (\(error))" }
                ?? "the registry asks for credentials (\(error)): add a RegistryCredentials for \(reference.registry)"
        case 404?:
            reason = "the registry \(reference.registry) has no such repository or tag (\(error))"
        case .some:
            reason = "the registry \(reference.registry) refused: \(error)"
        case nil:
            reason = "the registry \(reference.registry) did not answer: \(error)"
        }
    }

    var description: String { reason }
}
