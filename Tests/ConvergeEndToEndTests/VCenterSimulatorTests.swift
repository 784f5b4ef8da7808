import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The vCenter simulator the vSphere provider will be tested against (issue 5) is built and
/// answers the vim25 SOAP API: service content, and a login that checks its credentials.
@Suite struct VCenterSimulatorTests {
    /// A running `vcsim-converge` on a loopback port, stopped by `stop()`.
    struct Simulator {
        let process: Process
        let url: URL

        static func start() async throws -> Simulator {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let path = ProcessInfo.processInfo.environment["CONVERGE_VCSIM"] ?? root.appendingPathComponent(".build-vcsim/vcsim-converge").path
            guard FileManager.default.isExecutableFile(atPath: path) else {
                Issue.record("the vCenter simulator is missing at \(path): run scripts/vcsim.sh (scripts/test.sh does)")
                throw MissingComponent(name: "vcsim")
            }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = ["-http", "-listen", "127.0.0.1:0"]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Read until the simulator says it is ready; it prints its URL before that.
            let url: URL? = await withCheckedContinuation { continuation in
                Thread {
                    var text = ""
                    while !text.contains("VCSIM_READY") {
                        let chunk = output.fileHandleForReading.availableData
                        if chunk.isEmpty { break }
                        text += String(decoding: chunk, as: UTF8.self)
                    }
                    let line = text.split(separator: "\n").first { $0.hasPrefix("VCSIM_URL=") }
                    continuation.resume(returning: line.flatMap { URL(string: String($0.dropFirst("VCSIM_URL=".count))) })
                }.start()
            }
            guard let url else {
                process.terminate()
                throw MissingComponent(name: "vcsim (it did not print its URL)")
            }
            return Simulator(process: process, url: url)
        }

        func stop() {
            process.terminate()
            process.waitUntilExit()
        }

        /// Posts one SOAP body and returns the HTTP status and the response text.
        func call(_ body: String, session: HTTPCookie? = nil) async throws -> (status: Int, text: String, cookie: HTTPCookie?) {
            var request = URLRequest(url: url)
            request.httpMethod = "POST"
            request.setValue("text/xml; charset=utf-8", forHTTPHeaderField: "Content-Type")
            if let session { request.setValue("\(session.name)=\(session.value)", forHTTPHeaderField: "Cookie") }
            request.httpBody = Data("""
                <soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:vim25"><soapenv:Body>\(body)</soapenv:Body></soapenv:Envelope>
                """.utf8)
            let (data, response) = try await URLSession.shared.data(for: request)
            let http = response as? HTTPURLResponse
            let cookies = HTTPCookie.cookies(withResponseHeaderFields: http?.allHeaderFields as? [String: String] ?? [:], for: url)
            return (http?.statusCode ?? 0, String(decoding: data, as: UTF8.self), cookies.first)
        }
    }

    @Test func answersServiceContentAndChecksCredentials() async throws {
        let simulator = try await Simulator.start()
        defer { simulator.stop() }

        let content = try await simulator.call(#"<RetrieveServiceContent><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>"#)
        #expect(content.status == 200)
        #expect(content.text.contains("SessionManager"))
        #expect(content.text.contains("propertyCollector"))

        let wrong = try await simulator.call(#"<Login><_this type="SessionManager">SessionManager</_this><userName>user</userName><password>wrong</password></Login>"#)
        #expect(wrong.status == 500)
        #expect(wrong.text.contains("InvalidLogin"))

        let login = try await simulator.call(#"<Login><_this type="SessionManager">SessionManager</_this><userName>user</userName><password>pass</password></Login>"#)
        #expect(login.status == 200, "\(login.text)")
        #expect(login.text.contains("LoginResponse"))
        #expect(login.cookie?.name == "vmware_soap_session")
    }
}
