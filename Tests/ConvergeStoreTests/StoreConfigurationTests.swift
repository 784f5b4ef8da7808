import ConvergeStore
import ConvergeStorePostgres
import Foundation
import Testing

@Suite("Store configuration")
struct StoreConfigurationTests {
    @Test("a PostgreSQL URL gives host, port, user, password, database and TLS mode")
    func parsesURL() throws {
        let full = try PostgresStoreConfiguration(url: "postgresql://conv%40erge:p%3Ass@db.example:6543/journal?sslmode=require")
        #expect(full.host == "db.example")
        #expect(full.port == 6543)
        #expect(full.username == "conv@erge")
        #expect(full.password == "p:ss")
        #expect(full.database == "journal")
        #expect(full.tls == .require)

        let loopback = try PostgresStoreConfiguration(url: "postgres://postgres@127.0.0.1:55432/converge_test")
        #expect(loopback.password == nil)
        #expect(loopback.tls == .disable)
        #expect(try PostgresStoreConfiguration(url: "postgres://u@localhost").database == "u")
        #expect(try PostgresStoreConfiguration(url: "postgres://u@localhost").port == 5432)
        #expect(try PostgresStoreConfiguration(url: "postgres://u@db.example/x").tls == .prefer)
        #expect(try PostgresStoreConfiguration(url: "postgres://u@127.0.0.1/x?sslmode=verify-full").tls == .verifyFull)
    }

    @Test("the password never shows: not in redactedURL, not in errors")
    func redactsPassword() throws {
        let configuration = try PostgresStoreConfiguration(url: "postgres://converge:hunter2@db.example/converge")
        #expect(configuration.redactedURL == "postgres://converge:***@db.example:5432/converge")
        for bad in ["mysql://u:hunter2@h/d", "postgres://u:hunter2@h/d?sslmode=sometimes", "postgres://u:hunter2@h/d?foo=1"] {
            do {
                _ = try PostgresStoreConfiguration(url: bad)
                Issue.record("\(bad) was accepted")
            } catch {
                #expect(!"\(error)".contains("hunter2"), "\(error)")
                #expect("\(error)".contains("postgres://user"), "\(error)")
            }
        }
    }

    @Test("an unreachable PostgreSQL fails at once with a message naming it, without the password")
    func unreachable() async throws {
        do {
            try await PostgresWorkflowStore.withStore(url: "postgres://u:hunter2@127.0.0.1:1/nothing") { store in
                try await store.migrate()
            }
            Issue.record("migrate succeeded against nothing")
        } catch {
            #expect("\(error)".contains("127.0.0.1:1"), "\(error)")
            #expect("\(error)".contains("refused"), "\(error)")
            #expect(!"\(error)".contains("hunter2"), "\(error)")
        }
    }

    @Test("a database that does not exist fails at once with the server's reason")
    func missingDatabase() async throws {
        var configuration = try testPostgresConfiguration()
        configuration.database = "converge_no_such_database"
        do {
            _ = try await PostgresWorkflowStore.withStore(configuration: configuration) { store in
                try await store.runs(RunFilter())
            }
            Issue.record("listing runs succeeded in a database that does not exist")
        } catch {
            #expect("\(error)".contains("converge_no_such_database"), "\(error)")
            #expect("\(error)".contains("does not exist"), "\(error)")
        }
    }

    @Test("SQLite: an empty path, or one whose folder cannot be made, is a clear error")
    func sqlitePaths() throws {
        #expect(throws: StoreError.self) { try SQLiteWorkflowStore(path: "") }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("converge-file-\(UUID().uuidString)")
        try Data().write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        do {
            _ = try SQLiteWorkflowStore(path: file.appendingPathComponent("state.db").path)
            Issue.record("a store under a regular file was opened")
        } catch {
            #expect("\(error)".contains(file.path), "\(error)")
        }
    }
}
