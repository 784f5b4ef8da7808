import Synchronization

/// The delivery ids seen lately, so that a replayed delivery (a forge's retry, or an attacker
/// resending a captured one) triggers nothing. Keeps the newest `capacity` ids.
final class DeliveryLog: Sendable {
    private let capacity: Int
    private let seen = Mutex<(ids: Set<String>, order: [String])>(([], []))

    init(capacity: Int = 4096) {
        self.capacity = capacity
    }

    /// True the first time `id` is given, false afterwards.
    func isFirst(_ id: String) -> Bool {
        seen.withLock { seen in
            guard seen.ids.insert(id).inserted else { return false }
            seen.order.append(id)
            if seen.order.count > capacity {
                seen.ids.remove(seen.order.removeFirst())
            }
            return true
        }
    }
}
