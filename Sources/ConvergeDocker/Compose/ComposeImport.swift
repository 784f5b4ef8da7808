import ConvergeCore
import Foundation
import Yams

/// Translates a docker-compose file (versions 2.x and 3.x, as docker-compose 1.29 reads them)
/// into Converge manifests: a `DockerHost`, its networks, volumes and one `Container` per
/// service, named as docker-compose names them (`<project>_<service>_1`,
/// `<project>_<network>`, `<project>_<volume>`), each service reachable on its networks by its
/// service name as with compose. Every key it cannot translate is reported, with why.
public struct ComposeImport: Sendable {
    /// The manifests, as files: `00-host.yaml`, `10-networks.yaml`, `20-volumes.yaml`,
    /// `30-containers.yaml` (those that have documents).
    public var files: [(name: String, text: String)]
    /// What was not translated, one line each (`services.web.build: …`).
    public var untranslated: [String]

    /// Reads `text`, the compose file at `path` (its folder resolves relative bind mounts);
    /// `project` is the name docker-compose would use (the folder's name by default).
    public init(text: String, path: String, project: String? = nil) throws {
        guard let root = try Yams.load(yaml: text) as? [String: Any] else {
            throw ComposeImportError("\(path) is not a compose file: its top level is not a mapping")
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().standardizedFileURL.path
        let name = Self.projectName(project ?? URL(fileURLWithPath: folder).lastPathComponent)
        var translator = Translator(project: name, folder: folder)
        try translator.translate(root)
        files = translator.files()
        untranslated = translator.untranslated
    }

    /// docker-compose 1.29's project name: lower case, letters and digits only.
    static func projectName(_ text: String) -> String {
        String(text.lowercased().filter { $0.isASCII && ($0.isLetter || $0.isNumber) })
    }
}

public struct ComposeImportError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The translation's working state.
private struct Translator {
    let project: String
    let folder: String
    var networks: [[String: Any]] = []
    var volumes: [[String: Any]] = []
    var containers: [[String: Any]] = []
    var bindFolders: Set<String> = []
    var untranslated: [String] = []
    /// Each service's container name: its `container_name`, or compose's `<project>_<service>_1`.
    var containerNames: [String: String] = [:]

    init(project: String, folder: String) {
        self.project = project
        self.folder = folder
    }

    static let topLevel: Set<String> = ["version", "services", "networks", "volumes"]

    mutating func translate(_ root: [String: Any]) throws {
        for key in root.keys.sorted() where !Self.topLevel.contains(key) {
            untranslated.append("\(key): not translated (Converge has no \(key))")
        }
        let services = root["services"] as? [String: Any] ?? [:]
        guard !services.isEmpty else { throw ComposeImportError("the compose file has no services") }
        for (service, spec) in services {
            containerNames[service] = text((spec as? [String: Any])?["container_name"]) ?? "\(project)_\(service)_1"
        }
        let declaredNetworks = root["networks"] as? [String: Any] ?? [:]
        var usesDefault = false
        for service in services.keys.sorted() {
            let spec = services[service] as? [String: Any] ?? [:]
            if spec["networks"] == nil && spec["network_mode"] == nil { usesDefault = true }
            translateService(service, spec)
        }
        if usesDefault { networks.append(manifest("Network", "\(project)_default", spec: [:])) }
        for network in declaredNetworks.keys.sorted() {
            translateNetwork(network, declaredNetworks[network] as? [String: Any] ?? [:])
        }
        let declaredVolumes = root["volumes"] as? [String: Any] ?? [:]
        for volume in declaredVolumes.keys.sorted() {
            translateVolume(volume, declaredVolumes[volume] as? [String: Any] ?? [:])
        }
    }

    func manifest(_ kind: String, _ name: String, labels: [String: String] = [:], spec: [String: Any]) -> [String: Any] {
        var metadata: [String: Any] = ["name": name]
        if !labels.isEmpty { metadata["labels"] = labels }
        return ["apiVersion": "converge.dev/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec]
    }

    mutating func note(_ path: String, _ why: String) { untranslated.append("\(path): \(why)") }

    // MARK: Networks and volumes

    mutating func translateNetwork(_ name: String, _ compose: [String: Any]) {
        var spec: [String: Any] = [:]
        let path = "networks.\(name)"
        for key in compose.keys.sorted() {
            switch key {
            case "driver": spec["driver"] = text(compose[key])
            case "internal": spec["internal"] = compose[key] as? Bool ?? false
            case "labels": break
            case "ipam":
                let ipam = compose[key] as? [String: Any] ?? [:]
                let configs = ipam["config"] as? [[String: Any]] ?? []
                if let first = configs.first {
                    if let subnet = text(first["subnet"]) { spec["subnet"] = subnet }
                    if let gateway = text(first["gateway"]) { spec["gateway"] = gateway }
                }
                if configs.count > 1 { note("\(path).ipam.config", "only the first subnet is translated") }
                for other in ipam.keys.sorted() where other != "config" { note("\(path).ipam.\(other)", "not translated") }
            case "external":
                note("\(path).external", "not translated: an external network is not Converge's; declare it as a Network to manage it")
            default: note("\(path).\(key)", "not translated")
            }
        }
        networks.append(manifest("Network", "\(project)_\(name)", labels: keyValues(compose["labels"]), spec: spec))
    }

    mutating func translateVolume(_ name: String, _ compose: [String: Any]) {
        var spec: [String: Any] = [:]
        let path = "volumes.\(name)"
        for key in compose.keys.sorted() {
            switch key {
            case "driver": spec["driver"] = text(compose[key])
            case "driver_opts": spec["driverOptions"] = stringMap(compose[key])
            case "labels": break
            case "external": note("\(path).external", "not translated: an external volume is not Converge's")
            default: note("\(path).\(key)", "not translated")
            }
        }
        volumes.append(manifest("Volume", "\(project)_\(name)", labels: keyValues(compose["labels"]), spec: spec))
    }

    // MARK: Services

    mutating func translateService(_ service: String, _ compose: [String: Any]) {
        let path = "services.\(service)"
        var spec: [String: Any] = [:]
        var resources: [String: Any] = [:]
        var mounts: [[String: Any]] = []
        var attachments: [[String: Any]] = []
        for key in compose.keys.sorted() {
            let value = compose[key]
            switch key {
            case "image": spec["image"] = text(value)
            case "container_name": break  // the manifest's name (`containerNames`)
            case "command": spec["command"] = words(value)
            case "entrypoint": spec["entrypoint"] = words(value)
            case "environment": spec["env"] = keyValues(value, path: "\(path).environment")
            case "labels": break
            case "ports": spec["ports"] = ports(value, path: "\(path).ports")
            case "networks":
                if let list = value as? [Any] {
                    attachments = list.compactMap(text).map { ["name": "\(project)_\($0)", "aliases": [service]] }
                } else if let map = value as? [String: Any] {
                    for network in map.keys.sorted() {
                        let options = map[network] as? [String: Any] ?? [:]
                        var attachment: [String: Any] = ["name": "\(project)_\(network)"]
                        if let address = text(options["ipv4_address"]) { attachment["ipv4"] = address }
                        attachment["aliases"] = [service] + (options["aliases"] as? [Any] ?? []).compactMap(text)
                        for option in options.keys.sorted() where !["ipv4_address", "aliases"].contains(option) {
                            note("\(path).networks.\(network).\(option)", "not translated")
                        }
                        attachments.append(attachment)
                    }
                }
            case "volumes": mounts += serviceVolumes(value, path: "\(path).volumes")
            case "tmpfs":
                mounts += (value as? [Any] ?? [value as Any]).compactMap(text).map {
                    ["tmpfs": $0.split(separator: ":").first.map(String.init) ?? $0]
                }
            case "depends_on":
                if let list = value as? [Any] {
                    spec["dependsOn"] = list.compactMap(text).map(containerName)
                } else if let map = value as? [String: Any] {
                    spec["dependsOn"] = map.keys.sorted().map { dependency -> Any in
                        let condition = (map[dependency] as? [String: Any]).flatMap { text($0["condition"]) }
                        let name = containerName(dependency)
                        switch condition {
                        case "service_healthy": return ["name": name, "condition": "healthy"]
                        case "service_completed_successfully":
                            note("\(path).depends_on.\(dependency).condition", "service_completed_successfully is translated as started")
                            return name
                        default: return name
                        }
                    }
                }
            case "healthcheck":
                if let check = healthcheck(value, path: "\(path).healthcheck") { spec["healthcheck"] = check }
            case "restart": spec["restartPolicy"] = text(value)
            case "cap_add": spec["capabilities", default: [String: Any]()] = capabilities(spec["capabilities"], "add", value)
            case "cap_drop": spec["capabilities", default: [String: Any]()] = capabilities(spec["capabilities"], "drop", value)
            case "sysctls": spec["sysctls"] = keyValues(value, path: "\(path).sysctls")
            case "user": spec["user"] = text(value)
            case "working_dir": spec["workingDir"] = text(value)
            case "read_only": spec["readOnlyRootFilesystem"] = value as? Bool ?? false
            case "security_opt": spec["securityOpt"] = (value as? [Any] ?? []).compactMap(text)
            case "logging":
                let logging = value as? [String: Any] ?? [:]
                if let driver = text(logging["driver"]) { spec["logging"] = ["driver": driver, "options": stringMap(logging["options"])] }
            case "stop_signal": spec["stopSignal"] = text(value)
            case "stop_grace_period": spec["stopTimeout"] = text(value)
            case "mem_limit": resources["memory"] = text(value)
            case "cpus": resources["cpus"] = text(value)
            case "pids_limit": resources["pidsLimit"] = value
            case "deploy":
                let limits = ((value as? [String: Any])?["resources"] as? [String: Any])?["limits"] as? [String: Any] ?? [:]
                if let memory = text(limits["memory"]) { resources["memory"] = memory }
                if let cpus = text(limits["cpus"]) { resources["cpus"] = cpus }
                if let pids = limits["pids"] { resources["pidsLimit"] = pids }
                for other in (value as? [String: Any] ?? [:]).keys.sorted() where other != "resources" {
                    note("\(path).deploy.\(other)", "not translated: docker-compose 1.29 ignores it outside swarm mode")
                }
            case "build": note("\(path).build", "not translated: build the image and name it in image")
            default: note("\(path).\(key)", "not translated")
            }
        }
        if compose["networks"] == nil { attachments = [["name": "\(project)_default", "aliases": [service]]] }
        spec["networks"] = attachments
        if !resources.isEmpty { spec["resources"] = resources }
        if !mounts.isEmpty { spec["mounts"] = mounts }
        containers.append(manifest("Container", containerName(service), labels: keyValues(compose["labels"]), spec: spec))
    }

    func containerName(_ service: String) -> String { containerNames[service] ?? "\(project)_\(service)_1" }

    /// `name:/path[:ro]` and `./folder:/path:ro` entries (and their long form).
    mutating func serviceVolumes(_ value: Any?, path: String) -> [[String: Any]] {
        var mounts: [[String: Any]] = []
        for (index, entry) in (value as? [Any] ?? []).enumerated() {
            var source: String?, target: String?, readOnly = false, type = "volume"
            if let short = text(entry) {
                let parts = short.split(separator: ":").map(String.init)
                if parts.count == 1 {
                    note("\(path)[\(index)]", "an anonymous volume is not translated: name it")
                    continue
                }
                source = parts[0]
                target = parts[1]
                readOnly = parts.count > 2 && parts[2].split(separator: ",").contains("ro")
                type = source!.hasPrefix("/") || source!.hasPrefix(".") || source!.hasPrefix("~") ? "bind" : "volume"
            } else if let long = entry as? [String: Any] {
                type = text(long["type"]) ?? "volume"
                source = text(long["source"])
                target = text(long["target"])
                readOnly = long["read_only"] as? Bool ?? false
            }
            guard let source, let target else { continue }
            if type == "bind" {
                let absolute =
                    source.hasPrefix("/") ? source : URL(fileURLWithPath: folder).appendingPathComponent(source).standardizedFileURL.path
                guard readOnly else {
                    note(
                        "\(path)[\(index)]",
                        "a writable bind mount of \(source) is not translated: Converge binds host folders read-only; use a Volume")
                    continue
                }
                bindFolders.insert(absolute)
                mounts.append(["bind": absolute, "target": target])
            } else {
                var mount: [String: Any] = ["volume": "\(project)_\(source)", "target": target]
                if readOnly { mount["readOnly"] = true }
                mounts.append(mount)
            }
        }
        return mounts
    }

    mutating func healthcheck(_ value: Any?, path: String) -> [String: Any]? {
        guard let compose = value as? [String: Any], compose["disable"] as? Bool != true else { return nil }
        var check: [String: Any] = [:]
        if let test = compose["test"] as? [Any] {
            check["test"] = test.compactMap(text)
        } else if let test = text(compose["test"]) {
            check["test"] = test
        }
        for (key, field) in [("interval", "interval"), ("timeout", "timeout"), ("start_period", "startPeriod")] {
            if let duration = text(compose[key]) { check[field] = duration }
        }
        if let retries = compose["retries"] { check["retries"] = retries }
        return check
    }

    func capabilities(_ current: Any?, _ key: String, _ value: Any?) -> [String: Any] {
        var capabilities = current as? [String: Any] ?? [:]
        capabilities[key] = (value as? [Any] ?? []).compactMap(text)
        return capabilities
    }

    mutating func ports(_ value: Any?, path: String) -> [[String: Any]] {
        var result: [[String: Any]] = []
        for (index, entry) in (value as? [Any] ?? []).enumerated() {
            if let long = entry as? [String: Any] {
                var port: [String: Any] = [:]
                port["containerPort"] = long["target"]
                if let published = long["published"] { port["hostPort"] = Int(text(published) ?? "") ?? published }
                if let ip = text(long["host_ip"]) { port["hostIP"] = ip }
                if let proto = text(long["protocol"]) { port["protocol"] = proto }
                result.append(port)
                continue
            }
            guard let short = text(entry) else { continue }
            let (mapping, proto) =
                short.contains("/") ? (String(short.split(separator: "/")[0]), String(short.split(separator: "/")[1])) : (short, "tcp")
            let parts = mapping.split(separator: ":").map(String.init)
            guard let container = parts.last.flatMap({ Int($0) }) else {
                note("\(path)[\(index)]", "port ranges are not translated")
                continue
            }
            var port: [String: Any] = ["containerPort": container]
            if parts.count >= 2, let host = Int(parts[parts.count - 2]) { port["hostPort"] = host }
            if parts.count == 3 { port["hostIP"] = parts[0] }
            if proto != "tcp" { port["protocol"] = proto }
            result.append(port)
        }
        return result
    }

    // MARK: Values

    func text(_ value: Any?) -> String? {
        switch value {
        case let text as String: return text
        case let number as Int: return String(number)
        case let number as Double: return number == number.rounded() ? String(Int(number)) : String(number)
        case let flag as Bool: return flag ? "true" : "false"
        default: return nil
        }
    }

    /// A command as a list: a string is split as a POSIX shell would (quotes, backslashes).
    func words(_ value: Any?) -> [String] {
        if let list = value as? [Any] { return list.compactMap(text) }
        guard let line = text(value) else { return [] }
        var words: [String] = [], current = "", quote: Character?, pending = false, escaped = false
        for character in line {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\", quote != "'" {
                escaped = true
            } else if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "'" || character == "\"" {
                quote = character
                pending = true
            } else if character == " " || character == "\t" {
                if pending || !current.isEmpty { words.append(current) }
                current = ""
                pending = false
            } else {
                current.append(character)
            }
        }
        if pending || !current.isEmpty { words.append(current) }
        return words
    }

    /// `{A: 1}` or `[A=1]` as a text map. A list entry without `=` is a label without a value
    /// (`labels`), or, under `path`, a variable compose takes from its shell: reported, since
    /// Converge's value cannot depend on the shell that applies it.
    mutating func keyValues(_ value: Any?, path: String? = nil) -> [String: String] {
        guard let list = value as? [Any] else { return stringMap(value) }
        var map: [String: String] = [:]
        for entry in list.compactMap(text) {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2 {
                map[String(parts[0])] = String(parts[1])
            } else if let path {
                note(path, "\(entry) is read from docker-compose's shell: not translated; give it a value")
            } else {
                map[entry] = ""
            }
        }
        return map
    }

    func stringMap(_ value: Any?) -> [String: String] {
        var map: [String: String] = [:]
        for (key, item) in value as? [String: Any] ?? [:] { map[key] = text(item) ?? "" }
        return map
    }

    // MARK: Output

    func files() -> [(name: String, text: String)] {
        var host: [String: Any] = [:]
        if !bindFolders.isEmpty { host["allowedBindPaths"] = bindFolders.sorted() }
        var files = [("00-host.yaml", document([manifest("DockerHost", "local", spec: host)]))]
        if !networks.isEmpty { files.append(("10-networks.yaml", document(networks))) }
        if !volumes.isEmpty { files.append(("20-volumes.yaml", document(volumes))) }
        files.append(("30-containers.yaml", document(containers)))
        return files
    }

    func document(_ manifests: [[String: Any]]) -> String {
        manifests.map { (try? Yams.dump(object: $0, sortKeys: true)) ?? "" }.joined(separator: "---\n")
    }
}
