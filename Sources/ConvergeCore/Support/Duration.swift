/// Durations as manifests write them (`30s`, `1m30s`, `500ms`, `2h`), the Go/Docker syntax
/// users already know. Stored as nanoseconds, which is what the Docker Engine API takes.
public enum DurationText {
    private static let units: [(suffix: String, nanoseconds: Int64)] = [
        ("h", 3_600_000_000_000), ("m", 60_000_000_000), ("s", 1_000_000_000),
        ("ms", 1_000_000), ("us", 1_000), ("ns", 1),
    ]

    /// Parses a duration; nil when the text is not one.
    public static func nanoseconds(_ text: String) -> Int64? {
        var rest = Substring(text)
        var total: Int64 = 0
        guard !rest.isEmpty else { return nil }
        if rest == "0" { return 0 }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, let number = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let suffix = rest.prefix { $0.isLetter }
            rest = rest.dropFirst(suffix.count)
            guard let unit = units.first(where: { $0.suffix == suffix }) else { return nil }
            let (product, overflow) = number.multipliedReportingOverflow(by: unit.nanoseconds)
            let (sum, sumOverflow) = total.addingReportingOverflow(product)
            guard !overflow, !sumOverflow else { return nil }
            total = sum
        }
        return total
    }

    /// The canonical text for a duration: largest units first, zero parts left out.
    public static func format(nanoseconds: Int64) -> String {
        guard nanoseconds > 0 else { return "0s" }
        var rest = nanoseconds
        var text = ""
        for unit in units where rest >= unit.nanoseconds {
            text += "\(rest / unit.nanoseconds)\(unit.suffix)"
            rest %= unit.nanoseconds
        }
        return text
    }
}

extension Duration {
    /// The duration in seconds with their fraction, for `Date` arithmetic and reports.
    public var timeInterval: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
