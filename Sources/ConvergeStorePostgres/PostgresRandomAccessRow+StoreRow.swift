import ConvergeStore
import PostgresNIO

/// PostgreSQL rows read by column name, so the records decode as they do from SQLite.
extension PostgresRandomAccessRow: StoreRow {
    private func decode<Value: PostgresDecodable>(_ column: String, as: Value.Type = Value.self) throws -> Value {
        guard contains(column) else { throw StoreError.missingColumn(column) }
        return try self[column].decode(Value.self)
    }

    package func int64(_ column: String) throws -> Int64 { try decode(column) }
    package func optionalInt64(_ column: String) throws -> Int64? { try decode(column) }
    package func string(_ column: String) throws -> String { try decode(column) }
    package func optionalString(_ column: String) throws -> String? { try decode(column) }
    package func bool(_ column: String) throws -> Bool { try decode(column) }
}

extension PostgresRowSequence {
    /// Every row, decoded as a `Record`.
    func records<Record: StoreRowDecodable>(as: Record.Type) async throws -> [Record] {
        var records: [Record] = []
        for try await row in self { records.append(try Record(row: row.makeRandomAccess())) }
        return records
    }
}
