import Csqlite3
import Foundation

/// A failed SQLite call: its (extended) result code and SQLite's own message.
struct SQLiteError: Error, CustomStringConvertible {
    var code: Int32
    var message: String

    var description: String { "\(message) (SQLite code \(code))" }

    /// A foreign key pointed at a row that does not exist (here: a step or approval of an unknown run).
    var isForeignKeyViolation: Bool { code == 787 /* SQLITE_CONSTRAINT_FOREIGNKEY */ }
}

/// A value bound to a statement parameter.
enum SQLiteValue {
    case int(Int64)
    case text(String)
    case null

    static func text(_ value: String?) -> SQLiteValue { value.map(SQLiteValue.text) ?? .null }
    static func int(_ value: Int64?) -> SQLiteValue { value.map(SQLiteValue.int) ?? .null }
    static func date(_ value: Date?) -> SQLiteValue { int(value?.storeMilliseconds) }
}

/// `SQLITE_TRANSIENT`: SQLite copies bound text before the call returns, so Swift's temporary
/// C strings may go away right after.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// One SQLite connection with a cache of prepared statements.
///
/// Not thread-safe by itself (opened with `SQLITE_OPEN_NOMUTEX`): `SQLiteWorkflowStore` touches it
/// only from its serial queue, which is what makes the `@unchecked Sendable` sound.
final class SQLiteConnection: @unchecked Sendable {
    private var handle: OpaquePointer?
    let path: String
    /// Prepared statements by SQL text: the journal runs the same few statements thousands of times.
    private var statements: [String: OpaquePointer] = [:]
    /// The column indexes of each cached statement's result, by name.
    private var columnIndexes: [OpaquePointer: [String: Int32]] = [:]

    /// Opens (creating) the database at `path` and sets it up for several processes sharing it:
    /// WAL (readers never block the writer), `synchronous=NORMAL` (durable at checkpoints, no
    /// fsync per commit; a power loss can only drop the last commits, never corrupt), a busy
    /// timeout so a writer waits for another process's transaction instead of failing, and
    /// foreign keys on.
    init(path: String, busyTimeoutMilliseconds: Int32) throws {
        self.path = path
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "cannot open"
            sqlite3_close_v2(db)
            throw SQLiteError(code: rc, message: message)
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, busyTimeoutMilliseconds)
        do {
            // Switching to WAL needs a moment alone with the file; another process opening it at
            // the same time can make it report busy even with the timeout, so retry briefly.
            var attempts = 0
            while true {
                do {
                    _ = try query("PRAGMA journal_mode=WAL", cache: false) { try $0.string("journal_mode") }
                    break
                } catch let error as SQLiteError where error.code & 0xff == SQLITE_BUSY && attempts < 50 {
                    attempts += 1
                    usleep(100_000)
                }
            }
            try execute("PRAGMA synchronous=NORMAL")
            try execute("PRAGMA foreign_keys=ON")
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    var isOpen: Bool { handle != nil }

    func close() {
        for statement in statements.values { sqlite3_finalize(statement) }
        statements.removeAll()
        columnIndexes.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    private func open() throws -> OpaquePointer {
        guard let handle else { throw SQLiteError(code: SQLITE_MISUSE, message: "the store was shut down") }
        return handle
    }

    private func error(_ code: Int32) -> SQLiteError {
        let message = handle.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "unknown error"
        return SQLiteError(code: sqlite3_extended_errcode(handle) == 0 ? code : sqlite3_extended_errcode(handle), message: message)
    }

    /// Runs SQL without parameters or results (DDL, pragmas, BEGIN/COMMIT).
    func execute(_ sql: String) throws {
        let db = try open()
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? "error"
            sqlite3_free(message)
            throw SQLiteError(code: sqlite3_extended_errcode(db), message: text)
        }
    }

    private func prepare(_ sql: String, cache: Bool) throws -> OpaquePointer {
        if cache, let statement = statements[sql] { return statement }
        let db = try open()
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, cache ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0, &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw error(rc) }
        if cache { statements[sql] = statement }
        return statement
    }

    private func bind(_ values: [SQLiteValue], to statement: OpaquePointer) throws {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch value {
            case .int(let int): rc = sqlite3_bind_int64(statement, index, int)
            case .null: rc = sqlite3_bind_null(statement, index)
            case .text(let text):
                var text = text
                rc = text.withUTF8 { utf8 in
                    utf8.withMemoryRebound(to: CChar.self) { chars in
                        if let base = chars.baseAddress {
                            return sqlite3_bind_text(statement, index, base, Int32(chars.count), transient)
                        }
                        // A non-null pointer even for "", so SQLite stores '' and not NULL.
                        return sqlite3_bind_text(statement, index, "", 0, transient)
                    }
                }
            }
            guard rc == SQLITE_OK else { throw error(rc) }
        }
    }

    /// The indexes of `statement`'s result columns by name, read once per cached statement.
    private func columns(of statement: OpaquePointer, cache: Bool) -> [String: Int32] {
        if cache, let known = columnIndexes[statement] { return known }
        var indexes: [String: Int32] = [:]
        for index in 0..<sqlite3_column_count(statement) {
            if let name = sqlite3_column_name(statement, index) { indexes[String(cString: name)] = index }
        }
        if cache { columnIndexes[statement] = indexes }
        return indexes
    }

    /// Runs a statement and maps each result row. The statement is reset afterwards, so it holds
    /// no read snapshot (in WAL mode an unreset statement would pin one).
    func query<T>(_ sql: String, _ values: [SQLiteValue] = [], cache: Bool = true, _ map: (SQLiteRow) throws -> T) throws -> [T] {
        let statement = try prepare(sql, cache: cache)
        defer {
            if cache {
                sqlite3_reset(statement)
                sqlite3_clear_bindings(statement)
            } else {
                sqlite3_finalize(statement)
            }
        }
        try bind(values, to: statement)
        var rows: [T] = []
        var columns: [String: Int32]?
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc) }
            let names = columns ?? self.columns(of: statement, cache: cache)
            columns = names
            rows.append(try map(SQLiteRow(statement: statement, columns: names)))
        }
        return rows
    }

    /// Runs a statement and decodes each result row as a `Record`.
    func query<Record: StoreRowDecodable>(_ sql: String, _ values: [SQLiteValue] = [], as: Record.Type) throws -> [Record] {
        try query(sql, values) { try Record(row: $0) }
    }

    /// Runs a statement that returns no rows; returns how many rows it changed.
    @discardableResult
    func run(_ sql: String, _ values: [SQLiteValue] = []) throws -> Int {
        _ = try query(sql, values) { _ in () }
        return Int(sqlite3_changes(try open()))
    }

    var lastInsertRowID: Int64 { handle.map { sqlite3_last_insert_rowid($0) } ?? 0 }

    /// Runs `body` in a transaction. `BEGIN IMMEDIATE` takes the database's write lock up front
    /// (waiting up to the busy timeout), so a read-then-write such as taking leases is atomic
    /// across processes, and a deferred transaction can never fail to upgrade mid-way.
    func writeTransaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }
}

/// The current row of a statement being stepped, read by column name.
struct SQLiteRow: StoreRow {
    let statement: OpaquePointer
    /// Column indexes by name.
    let columns: [String: Int32]

    private func index(_ column: String) throws -> Int32 {
        guard let index = columns[column] else { throw StoreError.missingColumn(column) }
        return index
    }

    private func isNull(_ index: Int32) -> Bool { sqlite3_column_type(statement, index) == SQLITE_NULL }

    func int64(_ column: String) throws -> Int64 { sqlite3_column_int64(statement, try index(column)) }

    func optionalInt64(_ column: String) throws -> Int64? {
        let index = try index(column)
        return isNull(index) ? nil : sqlite3_column_int64(statement, index)
    }

    func string(_ column: String) throws -> String {
        let index = try index(column)
        guard let text = sqlite3_column_text(statement, index) else { return "" }
        let count = Int(sqlite3_column_bytes(statement, index))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }

    func optionalString(_ column: String) throws -> String? {
        isNull(try index(column)) ? nil : try string(column)
    }

    func bool(_ column: String) throws -> Bool { try int64(column) != 0 }
}
