import Foundation

/// How far an image pull has got, summed over its layers from the engine's progress stream.
public struct PullProgress: Sendable, Equatable {
    /// Bytes downloaded so far, over the layers whose size the engine has announced.
    public var downloadedBytes: Int64
    /// The size of those layers.
    public var totalBytes: Int64
    /// Layers fully downloaded or already on the host, out of the layers seen so far.
    public var layersDone: Int
    public var layers: Int

    /// `12.5 of 40.1 MB, 2 of 5 layers`.
    public var summary: String {
        func megabytes(_ bytes: Int64) -> String { String(format: "%.1f", Double(bytes) / 1_000_000) }
        return "\(megabytes(downloadedBytes)) of \(megabytes(totalBytes)) MB, \(layersDone) of \(layers) layers"
    }

    /// Reads the engine's stream of JSON lines (`{"status":"Downloading","id":…,
    /// "progressDetail":{"current":…,"total":…}}`), chunk by chunk, whatever the chunks' cuts.
    /// The stream reports a failed pull as a line with `error`, kept in `failure`.
    struct Reader {
        private struct Line: Decodable {
            struct Detail: Decodable {
                var current: Int64?
                var total: Int64?
            }
            var status: String?
            var id: String?
            var progressDetail: Detail?
            var error: String?
        }

        private var pending: [UInt8] = []
        private var layerBytes: [String: (current: Int64, total: Int64)] = [:]
        private var finishedLayers: Set<String> = []
        private var seenLayers: Set<String> = []
        private(set) var failure: String?

        /// The progress after each complete line of `bytes` that changed it.
        mutating func feed(_ bytes: some Sequence<UInt8>) throws -> [PullProgress] {
            pending.append(contentsOf: bytes)
            var updates: [PullProgress] = []
            while let end = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = pending[..<end]
                pending.removeSubrange(...end)
                guard !line.isEmpty, let decoded = try? JSONDecoder().decode(Line.self, from: Data(line)) else { continue }
                if let error = decoded.error {
                    failure = error
                    continue
                }
                guard let id = decoded.id, let status = decoded.status, !status.hasPrefix("Pulling from") else { continue }
                seenLayers.insert(id)
                switch status {
                case "Downloading":
                    if let detail = decoded.progressDetail, let total = detail.total, total > 0 {
                        layerBytes[id] = (detail.current ?? 0, total)
                    }
                case "Download complete", "Pull complete", "Already exists":
                    finishedLayers.insert(id)
                    if let bytes = layerBytes[id] { layerBytes[id] = (bytes.total, bytes.total) }
                default:
                    break
                }
                updates.append(current)
            }
            return updates
        }

        private var current: PullProgress {
            PullProgress(
                downloadedBytes: layerBytes.values.reduce(0) { $0 + $1.current },
                totalBytes: layerBytes.values.reduce(0) { $0 + $1.total },
                layersDone: finishedLayers.count, layers: seenLayers.count)
        }
    }
}
