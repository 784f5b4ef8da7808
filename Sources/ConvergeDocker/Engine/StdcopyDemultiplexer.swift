/// Splits Docker's multiplexed stream (stdcopy) into its standard output and standard error.
///
/// Used by attach and exec without a TTY: each frame is an 8-byte header, `[stream, 0, 0, 0,
/// size as big-endian UInt32]`, followed by `size` bytes. Stream 0 is stdin (echoed), 1 stdout,
/// 2 stderr; the engine uses 3 for an error message of its own ("systemerr").
public struct StdcopyDemultiplexer: Sendable {
    public struct Output: Sendable, Hashable {
        public var stdout: [UInt8] = []
        public var stderr: [UInt8] = []
        /// Text the engine itself reported on stream 3.
        public var systemError: [UInt8] = []
    }

    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        case unknownStream(UInt8, offset: Int)
        case truncatedFrame(offset: Int, expected: Int, available: Int)

        public var description: String {
            switch self {
            case .unknownStream(let stream, let offset):
                return "unknown stream type \(stream) in multiplexed output at byte \(offset)"
            case .truncatedFrame(let offset, let expected, let available):
                return "multiplexed output truncated at byte \(offset): frame wants \(expected) bytes, \(available) left"
            }
        }
    }

    public private(set) var output = Output()
    private var pending: [UInt8] = []
    private var consumed = 0

    public init() {}

    /// Feeds bytes as they arrive; frames may be split anywhere.
    public mutating func feed(_ bytes: some Sequence<UInt8>) throws {
        pending.append(contentsOf: bytes)
        var index = 0
        while pending.count - index >= 8 {
            let stream = pending[index]
            let size =
                Int(pending[index + 4]) << 24 | Int(pending[index + 5]) << 16 | Int(pending[index + 6]) << 8
                | Int(pending[index + 7])
            guard pending.count - index - 8 >= size else { break }
            let payload = pending[(index + 8)..<(index + 8 + size)]
            switch stream {
            case 0, 1: output.stdout.append(contentsOf: payload)
            case 2: output.stderr.append(contentsOf: payload)
            case 3: output.systemError.append(contentsOf: payload)
            default: throw Failure.unknownStream(stream, offset: consumed + index)
            }
            index += 8 + size
        }
        pending.removeFirst(index)
        consumed += index
    }

    /// Checks that the stream ended on a frame boundary and returns what was read.
    public func finish() throws -> Output {
        if !pending.isEmpty {
            let expected: Int
            if pending.count >= 8 {
                expected = 8 + (Int(pending[4]) << 24 | Int(pending[5]) << 16 | Int(pending[6]) << 8 | Int(pending[7]))
            } else {
                expected = 8
            }
            throw Failure.truncatedFrame(offset: consumed, expected: expected, available: pending.count)
        }
        return output
    }

    /// Demultiplexes a complete stream.
    public static func demultiplex(_ bytes: some Sequence<UInt8>) throws -> Output {
        var demux = StdcopyDemultiplexer()
        try demux.feed(bytes)
        return try demux.finish()
    }
}
