import ConvergeCore
import ConvergeStore
import ConvergeWorkflow
import Crypto
import Foundation

/// What a job asks a worker to run, signed by the process that queued it. The worker checks
/// the signature (Ed25519, by key id so keys can rotate), the validity window, that the nonce
/// was never used by another job, and re-hashes the run's plan and every file it acts from:
/// whoever can write to the store still cannot make a worker run something else.
public struct JobEnvelope: Codable, Sendable, Equatable {
    public var run: Int64
    public var step: Int
    public var kind: StepJobKind
    public var resource: String
    public var pool: String
    /// The run's plan digest: the step's spec and everything else the plan says.
    public var planDigest: String
    /// SHA-256 of each file the run acts from (manifests, playbooks), by path.
    public var files: [String: String]
    /// SHA-256 of the snapshot a compensation starts from.
    public var snapshotDigest: String?
    public var notBefore: Date
    public var expiresAt: Date
    public var nonce: String
    public var keyID: String

    /// How far a worker's clock may be from the signer's.
    public static let clockSkew: TimeInterval = 300

    /// The files a job of `kind` pins: an execution, every file the run acts from; a
    /// compensation, the manifests only (it undoes from its snapshot and runs no playbook), so
    /// a run whose execution was refused over a changed file still rolls back.
    static func pinnedFiles(_ kind: StepJobKind, of run: RunRecord) throws -> [SourceFile] {
        let files = try WorkflowEngine.files(of: run)
        return kind == .execute ? files.manifests + files.repositoryFiles : files.manifests
    }
}

/// An envelope with its signature, as the queue stores it (JSON).
public struct SignedEnvelope: Codable, Sendable, Equatable {
    /// The envelope's JSON, exactly as signed.
    public var payload: String
    /// Base64 Ed25519 signature of `payload`'s bytes.
    public var signature: String

    public init(payload: String, signature: String) {
        self.payload = payload
        self.signature = signature
    }

    public var json: String {
        String(decoding: (try? Self.encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .millisecondsSince1970
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return decoder
    }()
}

/// The controller's private key, which signs jobs. Its file holds one line:
/// `converge-ed25519-private <key id> <base64 of the 32-byte key>` (mode 0600).
public struct JobSigningKey: Sendable {
    /// The key's 32 bytes (Crypto's key types are not `Sendable`).
    private let raw: Data
    public var key: Curve25519.Signing.PrivateKey { try! Curve25519.Signing.PrivateKey(rawRepresentation: raw) }
    public var keyID: String { JobVerificationKeys.keyID(of: key.publicKey) }

    public init(key: Curve25519.Signing.PrivateKey) {
        raw = key.rawRepresentation
    }

    public init(file path: String) throws {
        let fields = try JobVerificationKeys.lines(of: path).first ?? []
        guard fields.count == 3, fields[0] == "converge-ed25519-private", let raw = Data(base64Encoded: fields[2]),
            (try? Curve25519.Signing.PrivateKey(rawRepresentation: raw)) != nil
        else {
            throw JobKeyError("\(path) is not a Converge signing key (converge keys generate makes one)")
        }
        self.raw = raw
    }

    /// The private key's file line, and the public key's (for workers).
    public var privateLine: String { "converge-ed25519-private \(keyID) \(key.rawRepresentation.base64EncodedString())" }
    public var publicLine: String { "converge-ed25519-public \(keyID) \(key.publicKey.rawRepresentation.base64EncodedString())" }

    /// Signs `envelope`, stamping it with this key's id.
    public func sign(_ envelope: JobEnvelope) throws -> SignedEnvelope {
        var envelope = envelope
        envelope.keyID = keyID
        let payload = try SignedEnvelope.encoder.encode(envelope)
        return SignedEnvelope(
            payload: String(decoding: payload, as: UTF8.self), signature: try key.signature(for: payload).base64EncodedString())
    }
}

/// The public keys a worker accepts jobs from, by key id. Their file holds one line per key:
/// `converge-ed25519-public <key id> <base64 of the 32-byte key>`; several keys let the signing
/// key rotate without stopping workers.
public struct JobVerificationKeys: Sendable {
    /// Each key's 32 bytes, by key id.
    private var keys: [String: Data]

    public init(_ keys: [Curve25519.Signing.PublicKey]) {
        self.keys = Dictionary(keys.map { (Self.keyID(of: $0), $0.rawRepresentation) }, uniquingKeysWith: { first, _ in first })
    }

    public init(files: [String]) throws {
        keys = [:]
        for path in files {
            for fields in try Self.lines(of: path) {
                guard fields.count == 3, fields[0] == "converge-ed25519-public", let raw = Data(base64Encoded: fields[2]),
                    let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw), Self.keyID(of: key) == fields[1]
                else {
                    throw JobKeyError("\(path) holds a line that is not a Converge public key (converge keys generate writes them)")
                }
                keys[fields[1]] = key.rawRepresentation
            }
        }
        if keys.isEmpty { throw JobKeyError("no public key in \(files.joined(separator: ", "))") }
    }

    /// The first 16 hex digits of the public key's SHA-256.
    static func keyID(of key: Curve25519.Signing.PublicKey) -> String {
        String(SHA256.hash(data: key.rawRepresentation).map { String(format: "%02x", $0) }.joined().prefix(16))
    }

    static func lines(of path: String) throws -> [[String]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw JobKeyError("cannot read \(path)") }
        return text.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }.filter { !$0.isEmpty && !$0[0].hasPrefix("#") }
    }

    /// The envelope of `signed`, once its signature is checked; throws why it is refused.
    public func open(_ signed: SignedEnvelope) throws(JobRefusal) -> JobEnvelope {
        let payload = Data(signed.payload.utf8)
        guard let envelope = try? SignedEnvelope.decoder.decode(JobEnvelope.self, from: payload) else {
            throw JobRefusal("the envelope cannot be read")
        }
        guard let raw = keys[envelope.keyID], let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else {
            throw JobRefusal("the envelope is signed with key \(envelope.keyID), which this worker does not trust")
        }
        guard let signature = Data(base64Encoded: signed.signature), key.isValidSignature(signature, for: payload) else {
            throw JobRefusal("the envelope's signature does not match its content (signed with key \(envelope.keyID))")
        }
        return envelope
    }
}

/// Why a worker refused a job; recorded on the step.
public struct JobRefusal: Error, CustomStringConvertible, Equatable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "refused by the worker: \(reason)" }
}

public struct JobKeyError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// SHA-256 in lower-case hex, as envelopes name digests.
func sha256Hex(_ bytes: some DataProtocol) -> String {
    "sha256:" + SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
}
