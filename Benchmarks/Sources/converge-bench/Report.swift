import Foundation

/// One measured figure: what was measured, over how many runs, and the target next to it.
/// Benchmarks never fail on a target: `withinTarget` is only shown.
struct Row: Codable, Sendable {
    enum Unit: String, Codable, Sendable {
        case seconds = "s"
        case mebibytes = "MiB"
        case ratio = "x"
        case count = "#"
        case percent = "%"
    }

    var benchmark: String
    var measure: String
    var runs: Int
    var median: Double
    var min: Double
    var unit: Unit
    /// Human-readable target, e.g. "< 1 s"; nil when the figure is informational.
    var target: String?
    /// The figure is compared with this bound (median ≤ bound) when there is one.
    var targetBound: Double?
    var note: String?

    var withinTarget: Bool? { targetBound.map { median <= $0 } }

    init(
        _ benchmark: String, _ measure: String, samples: [Double], unit: Unit = .seconds,
        target: String? = nil, bound: Double? = nil, note: String? = nil
    ) {
        self.benchmark = benchmark
        self.measure = measure
        self.runs = samples.count
        self.median = Stats.median(samples)
        self.min = samples.min() ?? .nan
        self.unit = unit
        self.target = target
        self.targetBound = bound
        self.note = note
    }

    private enum CodingKeys: String, CodingKey {
        case benchmark, measure, runs, median, min, unit, target, targetBound, withinTarget, note
    }

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        benchmark = try container.decode(String.self, forKey: .benchmark)
        measure = try container.decode(String.self, forKey: .measure)
        runs = try container.decode(Int.self, forKey: .runs)
        median = try container.decode(Double.self, forKey: .median)
        min = try container.decode(Double.self, forKey: .min)
        unit = try container.decode(Unit.self, forKey: .unit)
        target = try container.decodeIfPresent(String.self, forKey: .target)
        targetBound = try container.decodeIfPresent(Double.self, forKey: .targetBound)
        note = try container.decodeIfPresent(String.self, forKey: .note)
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(benchmark, forKey: .benchmark)
        try container.encode(measure, forKey: .measure)
        try container.encode(runs, forKey: .runs)
        try container.encode(median, forKey: .median)
        try container.encode(min, forKey: .min)
        try container.encode(unit, forKey: .unit)
        try container.encodeIfPresent(target, forKey: .target)
        try container.encodeIfPresent(targetBound, forKey: .targetBound)
        try container.encodeIfPresent(withinTarget, forKey: .withinTarget)
        try container.encodeIfPresent(note, forKey: .note)
    }
}

enum Stats {
    static func median(_ samples: [Double]) -> Double {
        guard !samples.isEmpty else { return .nan }
        let sorted = samples.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}

/// What a child prints on stdout: its rows, plus its own peak memory.
struct ChildReport: Codable, Sendable {
    var rows: [Row]

    /// A figure that could not be measured (no samples) is NaN; JSON has no NaN, so it is
    /// written as the string "nan" (and read back as NaN).
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }
}

enum Table {
    static func format(_ value: Double, _ unit: Row.Unit) -> String {
        guard value.isFinite else { return "-" }
        switch unit {
        case .seconds:
            // By magnitude: a difference (an overhead) may be negative.
            if abs(value) < 0.001 { return String(format: "%.1f µs", value * 1e6) }
            if abs(value) < 1 { return String(format: "%.1f ms", value * 1e3) }
            return String(format: "%.2f s", value)
        case .mebibytes: return String(format: "%.1f MiB", value)
        case .ratio: return String(format: "%.2f", value)
        case .count: return String(format: "%.0f", value)
        case .percent: return String(format: "%.2f %%", value)
        }
    }

    static func render(_ rows: [Row]) -> String {
        let header = ["benchmark", "measure", "runs", "median", "min", "target", "within"]
        var lines: [[String]] = [header]
        for row in rows {
            lines.append([
                row.benchmark, row.measure, String(row.runs),
                format(row.median, row.unit),
                row.runs > 1 ? format(row.min, row.unit) : "",
                row.target ?? "",
                row.withinTarget.map { $0 ? "yes" : "NO" } ?? "",
            ])
        }
        let widths = header.indices.map { column in lines.map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                // Numbers right-aligned, text left-aligned.
                let pad = String(repeating: " ", count: widths[index] - cell.count)
                return (2...4).contains(index) ? pad + cell : cell + pad
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        var output = [line(lines[0]), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
        output += lines.dropFirst().map(line)
        let notes = rows.filter { $0.note != nil }
        if !notes.isEmpty {
            output.append("")
            for row in notes { output.append("* \(row.benchmark) / \(row.measure): \(row.note!)") }
        }
        return output.joined(separator: "\n")
    }
}

/// Progress for the person waiting; on stderr so `--json` output stays clean.
func log(_ message: String) {
    FileHandle.standardError.write(Data("converge-bench: \(message)\n".utf8))
}
