import ConvergeCore
import Foundation

extension VSphereProvider: SnapshotRetaining {
    public nonisolated var snapshotRetention: RetentionHours { spec.snapshotRetention }

    /// Deletes the automatic snapshots (named with `SnapshotNaming.automaticPrefix`) older than
    /// `retention` on the VMs `instance` owns, and on those it snapshotted before a playbook
    /// (recorded in the store). Any other snapshot, and every snapshot of a VM
    /// Converge does not own, is left alone, whatever its name or age. An error on one VM is
    /// recorded and the others are still handled.
    public func collectSnapshots(instance: String, retention: RetentionHours, now: Date, dryRun: Bool) async throws -> SnapshotCollection {
        let inventory = try await inventory(refresh: true)
        let client = try await client()
        let cutoff = now.addingTimeInterval(-Double(retention.duration.components.seconds))
        var collection = SnapshotCollection()
        let fieldKey = try await ownershipFieldKey(create: false)
        let snapshotted = Set(try await context.records()?.records(prefix: snapshottedRecordPrefix).map { String($0.key.dropFirst(snapshottedRecordPrefix.count)) } ?? [])
        for vm in inventory.vms.sorted(by: { $0.name < $1.name }) where fieldKey.map({ vm.customValues[$0] == instance }) == true || snapshotted.contains(vm.name) {
            for snapshot in vm.snapshots {
                guard let created = XSDDateTime.parse(snapshot.createTime) else {
                    collection.errors.append("VM '\(vm.name)': snapshot '\(snapshot.name)' has an unreadable creation time '\(snapshot.createTime)'; left alone")
                    continue
                }
                let entry = SnapshotCollection.Entry(object: vm.name, snapshot: snapshot.name, created: created)
                guard snapshot.name.hasPrefix(SnapshotNaming.automaticPrefix) else {
                    collection.manual.append(entry)
                    continue
                }
                guard created < cutoff else {
                    collection.recent.append(entry)
                    continue
                }
                if !dryRun {
                    do {
                        try await client.runTask("RemoveSnapshot_Task", on: snapshot.ref, objectName: snapshot.name) { writer in
                            writer.leaf("removeChildren", false)
                            writer.leaf("consolidate", true)
                        }
                    } catch {
                        collection.errors.append("VM '\(vm.name)': deleting snapshot '\(snapshot.name)' failed: \(error)")
                        continue
                    }
                }
                collection.expired.append(entry)
            }
        }
        return collection
    }
}

/// `xsd:dateTime` as vCenter writes it: `2026-11-22T10:59:01.123456Z` or with an offset.
enum XSDDateTime {
    static func parse(_ text: String) -> Date? {
        let characters = Array(text.utf8)
        guard characters.count >= 19 else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            Int(String(decoding: characters[range], as: UTF8.self))
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19) else { return nil }
        var index = 19
        var fraction = 0.0
        if index < characters.count, characters[index] == UInt8(ascii: ".") {
            let start = index
            index += 1
            while index < characters.count, (48...57).contains(characters[index]) { index += 1 }
            fraction = Double(String(decoding: characters[start..<index], as: UTF8.self)) ?? 0
        }
        var offset = 0
        if index < characters.count, characters[index] == UInt8(ascii: "+") || characters[index] == UInt8(ascii: "-") {
            guard characters.count >= index + 6, let hours = number(index + 1..<index + 3), let minutes = number(index + 4..<index + 6) else { return nil }
            offset = (hours * 3600 + minutes * 60) * (characters[index] == UInt8(ascii: "-") ? -1 : 1)
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard let date = calendar.date(from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)) else { return nil }
        return date.addingTimeInterval(fraction - Double(offset))
    }
}
