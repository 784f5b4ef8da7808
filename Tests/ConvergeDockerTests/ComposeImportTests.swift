import ConvergeCore
import Foundation
import Testing

@testable import ConvergeDocker

@Suite struct ComposeImportTranslationTests {
    static let registry = KindRegistry.core.adding(ProviderPlugin.docker.kinds)

    static func load(_ imported: ComposeImport) throws -> ManifestSet {
        try ManifestSet.load(imported.files.map { SourceFile(path: $0.name, bytes: Array($0.text.utf8)) }, registry: registry)
    }

    @Test func whatCannotBeTranslatedIsReportedAndTheRestLoads() throws {
        let compose = """
            version: "2.4"
            services:
              app:
                image: example/app:1
                command: ./run --name "my app" --flag
                environment: [MODE=prod, HOME_DIR]
                ports: ["8080:80", "127.0.0.1:9090:90/udp", "7000-7005:7000-7005"]
                volumes: ["./data:/data", "cache:/cache:ro", "/anonymous"]
                extra_hosts: ["db:10.0.0.5"]
                stop_grace_period: 30s
                depends_on: [db]
              db: {image: example/db:2, container_name: shop-database}
            volumes:
              cache: {external: true}
            secrets: {}
            """
        let imported = try ComposeImport(text: compose, path: "/srv/shop/docker-compose.yml")
        #expect(
            imported.untranslated == [
                "secrets: not translated (Converge has no secrets)",
                "services.app.environment: HOME_DIR is read from docker-compose's shell: not translated; give it a value",
                "services.app.extra_hosts: not translated",
                "services.app.ports[2]: port ranges are not translated",
                "services.app.volumes[0]: a writable bind mount of ./data is not translated: Converge binds host folders read-only; use a Volume",
                "services.app.volumes[2]: an anonymous volume is not translated: name it",
                "volumes.cache.external: not translated: an external volume is not Converge's",
            ])
        let set = try Self.load(imported)
        let app = try #require(set[ResourceID(kind: "Container", name: "shop_app_1")]?.spec(as: ContainerSpec.self))
        #expect(app.command == ["./run", "--name", "my app", "--flag"])
        #expect(set[ResourceID(kind: "Container", name: "shop-database")] != nil, "container_name names the container")
        #expect(
            set.resources.first { $0.id == ResourceID(kind: "Container", name: "shop_app_1") }?.references(in: set)
                .contains { $0.target == ResourceID(kind: "Container", name: "shop-database") } == true, "and what depends on it")
        #expect(app.env == ["MODE": "prod"])
        #expect(app.ports.map(\.canonical).sorted() == ["0.0.0.0:8080->80/tcp", "127.0.0.1:9090->90/udp"])
        #expect(app.networks.map(\.network) == ["shop_default"] && app.networks.first?.aliases == ["app"])
        #expect(app.settings.stopTimeout == 30)
        #expect(set[ResourceID(kind: "Network", name: "shop_default")] != nil)
    }
}
