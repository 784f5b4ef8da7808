import ConvergeHTTP
import Foundation
import NIOCore
import NIOHTTP1

/// The parts of `ServiceContent` Converge uses.
public struct ServiceContent: Sendable {
    public var rootFolder: ManagedObjectReference
    public var propertyCollector: ManagedObjectReference
    public var viewManager: ManagedObjectReference
    public var sessionManager: ManagedObjectReference
    public var customFieldsManager: ManagedObjectReference?
    public var apiVersion: String
}

/// A vCenter user and password, read from the environment or a file at connect time and
/// kept only in memory.
public struct VimCredentials: Sendable {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }
}

/// A logged-in session with one vCenter over the vim25 SOAP API.
///
/// - Sessions expire when idle: a call that comes back `NotAuthenticated` logs in again once
///   and is repeated; ``keepAlive(every:clock:)``, run by a long-lived owner beside its work,
///   keeps the session warm.
/// - Requests go over an ``HTTPTransport`` of the client's own (pooled kept-alive
///   connections: a TLS handshake costs more than most SOAP calls), closed by ``logout()``.
/// - Every SOAP round trip is counted (`roundTrips`), which the benchmarks report.
public actor VimClient {
    public let endpoint: VimEndpoint
    public private(set) var serviceContent: ServiceContent
    public private(set) var roundTrips = 0
    private let http: HTTPTransport
    private let credentials: VimCredentials
    private var cookie: String?
    /// The login in progress, shared by every call that found the session expired.
    private var relogin: Task<Void, any Error>?
    private var loggedOut = false
    private var sessionGeneration = 0
    public var requestTimeout: Duration = .seconds(120)

    /// The vim25 version requests are written for; vCenter 6.7 and later accept it.
    static let soapAction = "urn:vim25/6.7"

    private init(endpoint: VimEndpoint, http: HTTPTransport, credentials: VimCredentials, serviceContent: ServiceContent) {
        self.endpoint = endpoint
        self.http = http
        self.credentials = credentials
        self.serviceContent = serviceContent
    }

    /// Connects, reads the service content, and logs in. The client must be ended with
    /// ``logout()``, which also closes its connections; a failed connect closes them itself.
    public static func connect(to endpoint: VimEndpoint, credentials: VimCredentials) async throws -> VimClient {
        let http = try endpoint.makeTransport()
        let client: VimClient
        do {
            let instance = ManagedObjectReference(type: "ServiceInstance", value: "ServiceInstance")
            let response = try await send(
                http: http, path: endpoint.path, method: "RetrieveServiceContent", this: instance, body: "", cookie: nil,
                timeout: .seconds(30)
            ).node
            guard let content = response.child("returnval"), let parsed = parseServiceContent(content) else {
                throw SOAPParser.Malformed(
                    detail: "RetrieveServiceContent answered without a service content; is \(endpoint) a vCenter SDK endpoint?")
            }
            client = VimClient(endpoint: endpoint, http: http, credentials: credentials, serviceContent: parsed)
            try await client.login()
        } catch {
            await http.shutdown()
            throw error
        }
        return client
    }

    /// Ends the session and closes the connections; a running ``keepAlive(every:clock:)`` returns.
    public func logout() async {
        if loggedOut { return }
        loggedOut = true
        if cookie != nil {
            _ = try? await invoke("Logout", on: serviceContent.sessionManager)
            cookie = nil
        }
        await http.shutdown()
    }

    /// Calls `CurrentTime` every `interval` so an idle long-lived session does not expire,
    /// until the calling task is cancelled or the client logs out. Structured: run it as a
    /// child of the work it serves (a task group beside that work, a service's `run()`).
    public func keepAlive(every interval: Duration, clock: any Clock<Duration> = ContinuousClock()) async {
        let instance = ManagedObjectReference(type: "ServiceInstance", value: "ServiceInstance")
        while !loggedOut {
            do { try await clock.sleep(for: interval) } catch { return }
            if loggedOut { return }
            _ = try? await invoke("CurrentTime", on: instance)
        }
    }

    /// Calls `method` on `object` with the parameters `body` writes after `_this`, and returns
    /// the response element (`<MethodResponse>`). Logs in again once if the session expired,
    /// unless `renewingSession` is off (a call whose arguments belong to the old session).
    @discardableResult
    public func invoke(_ method: String, on object: ManagedObjectReference, objectName: String? = nil, renewingSession: Bool = true, body: (inout SOAPWriter) -> Void = { _ in }) async throws -> SOAPNode {
        var writer = SOAPWriter()
        body(&writer)
        let parameters = writer.xml
        let generation = sessionGeneration
        do {
            return try await call(method, on: object, objectName: objectName, parameters: parameters)
        } catch let fault as VimFault where fault.type == "NotAuthenticated" && method != "Login" && renewingSession {
            try await renewSession(after: generation)
            return try await call(method, on: object, objectName: objectName, parameters: parameters)
        }
    }

    /// Logs in again unless another call already did since `generation`.
    func renewSession(after generation: Int) async throws {
        if generation != sessionGeneration { return }
        if let relogin { return try await relogin.value }
        // A task, not a child: the login is shared by every call that found the session
        // expired, so it must not end when the first of them is cancelled.
        let task = Task { try await self.login() }
        relogin = task
        defer { relogin = nil }
        try await task.value
    }

    var currentGeneration: Int { sessionGeneration }

    private func login() async throws {
        let credentials = self.credentials
        cookie = nil
        let result = try await Self.send(
            http: http, path: endpoint.path, method: "Login", this: serviceContent.sessionManager,
            body: {
                var writer = SOAPWriter()
                writer.leaf("userName", credentials.username)
                writer.leaf("password", credentials.password)
                return writer.xml
            }(), cookie: nil, timeout: requestTimeout)
        roundTrips += 1
        guard let cookie = result.cookie else {
            throw SOAPParser.Malformed(detail: "Login answered without a session cookie")
        }
        self.cookie = cookie
        sessionGeneration += 1
    }

    private func call(_ method: String, on object: ManagedObjectReference, objectName: String?, parameters: String) async throws -> SOAPNode {
        roundTrips += 1
        do {
            return try await Self.send(
                http: http, path: endpoint.path, method: method, this: object, body: parameters, cookie: cookie, timeout: requestTimeout
            ).node
        } catch var fault as VimFault {
            fault.object = objectName.map { "\(object.type) '\($0)'" } ?? (object.type == "ServiceInstance" ? nil : object.description)
            throw fault
        }
    }

    /// Methods that change nothing, which may be sent again when a kept-alive connection
    /// turns out to be closed.
    static let readOnlyMethods: Set<String> = [
        "RetrieveServiceContent", "RetrievePropertiesEx", "ContinueRetrievePropertiesEx", "CurrentTime", "CreateContainerView", "DestroyView",
    ]

    /// One SOAP round trip. A kept-alive connection the server closed while idle fails the
    /// request before any answer; a read-only method is then sent once more.
    private static func send(
        http: HTTPTransport, path: String, method: String, this: ManagedObjectReference, body: String, cookie: String?,
        timeout: Duration
    ) async throws -> (node: SOAPNode, cookie: String?) {
        var writer = SOAPWriter()
        writer.reference("_this", this)
        let request = SOAPWriter.envelope("<\(method) xmlns=\"urn:vim25\">" + writer.xml + body + "</\(method)>")
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/xml; charset=utf-8")
        headers.add(name: "SOAPAction", value: soapAction)
        if let cookie { headers.add(name: "Cookie", value: cookie) }
        let response: HTTPTransportResponse
        do {
            response = try await http.execute(.POST, path, headers: headers, body: ByteBuffer(string: request), timeout: timeout)
        } catch let error as HTTPTransportError where error.code == .connectionClosed && readOnlyMethods.contains(method) {
            response = try await http.execute(.POST, path, headers: headers, body: ByteBuffer(string: request), timeout: timeout)
        }
        let document = try? SOAPParser.parse(Data(response.body.readableBytesView))
        guard let soapBody = document?.child("Body") else {
            if response.status.code >= 500 || response.status.code == 429 {
                throw HTTPTransportError(
                    .unavailable, endpoint: http.endpoint, detail: "without a SOAP response (is vCenter starting or overloaded?)",
                    status: Int(response.status.code))
            }
            throw SOAPParser.Malformed(
                detail: "HTTP \(response.status.code) without a SOAP body; is \(http.endpoint) a vCenter SDK endpoint?")
        }
        if let fault = soapBody.child("Fault") {
            throw VimFault.from(fault: fault, method: method, object: nil)
        }
        guard let answer = soapBody.children.first else {
            throw SOAPParser.Malformed(detail: "\(method): empty SOAP body (HTTP \(response.status.code))")
        }
        let sessionCookie = response.headers["Set-Cookie"].first { $0.hasPrefix("vmware_soap_session=") }
            .map { String($0.prefix { $0 != ";" }) }
        return (answer, sessionCookie)
    }

    private static func parseServiceContent(_ node: SOAPNode) -> ServiceContent? {
        guard let root = node.child("rootFolder")?.reference,
              let collector = node.child("propertyCollector")?.reference,
              let views = node.child("viewManager")?.reference,
              let sessions = node.child("sessionManager")?.reference else { return nil }
        return ServiceContent(
            rootFolder: root, propertyCollector: collector, viewManager: views, sessionManager: sessions,
            customFieldsManager: node.child("customFieldsManager")?.reference,
            apiVersion: node.descendant("about.apiVersion")?.text ?? "")
    }
}
