/// The result of a finished vCenter task.
public struct TaskResult: Sendable {
    /// `info.result`, e.g. the new VM of a clone or the snapshot a `CreateSnapshot_Task` made.
    public var result: SOAPNode?
}

extension VimClient {
    /// Starts a `*_Task` method and waits for the task to end.
    @discardableResult
    public func runTask(_ method: String, on object: ManagedObjectReference, objectName: String? = nil, timeout: Duration = .seconds(600), body: (inout SOAPWriter) -> Void = { _ in }) async throws -> TaskResult {
        let response = try await invoke(method, on: object, objectName: objectName, body: body)
        guard let task = response.child("returnval")?.reference else {
            throw SOAPParser.Malformed(detail: "\(method) returned no task")
        }
        return try await wait(for: task, method: method, object: objectName.map { "\(object.type) '\($0)'" } ?? object.description, timeout: timeout)
    }

    /// Polls the task's `info` until it succeeds or fails: quickly at first (most vCenter
    /// tasks end within a second), then every second.
    public func wait(for task: ManagedObjectReference, method: String, object: String, timeout: Duration) async throws -> TaskResult {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var delay = Duration.milliseconds(20)
        while true {
            let info = try await retrieve([task], properties: ["info.state", "info.error", "info.result"]).first
            switch info?["info.state"]?.text {
            case "success":
                return TaskResult(result: info?["info.result"])
            case "error":
                if let error = info?["info.error"] {
                    throw VimFault.from(localized: error, method: method, object: object)
                }
                throw VimFault(type: "TaskFailed", message: "the task failed without saying why", method: method, object: object)
            default:
                guard clock.now < deadline else {
                    throw VimFault(type: "Timeout", message: "task \(task.value) still running after \(timeout)", method: method, object: object)
                }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(1))
            }
        }
    }
}
