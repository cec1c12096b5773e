import Logging
import TollgateCore
import TollgateRuntime
import TollgateWire

/// Everything a method handler may use.
struct RequestContext: Sendable {
    let connection: ConnectionState
    let supervisor: Supervisor
    let configuration: ServerConfiguration
    let serverInfo: ServerInfo
}

public struct ServerInfo: Sendable {
    public var version: String
    /// This node's address as clients should reach it.
    public var node: String
}

typealias MethodHandler = @Sendable (Params, RequestContext) async throws -> JSONValue

/// Maps method names to handlers and turns every outcome into exactly one response.
struct Router: Sendable {
    private var handlers: [String: MethodHandler] = [:]
    /// Methods that may be called before `auth.hello`.
    private var openMethods: Set<String> = []
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
        AuthMethods.register(in: &self)
        OperatorMethods.register(in: &self)
        MeterMethods.register(in: &self)
        SessionMethods.register(in: &self)
        AlertMethods.register(in: &self)
    }

    mutating func register(_ method: String, open: Bool = false, _ handler: @escaping MethodHandler) {
        precondition(handlers[method] == nil, "method \(method) registered twice")
        handlers[method] = handler
        if open { openMethods.insert(method) }
    }

    var methods: [String] { handlers.keys.sorted() }

    /// Runs one request. Never throws: failures become error responses, and internal detail goes to the log only.
    func respond(to request: RPCRequest, context: RequestContext) async -> JSONValue {
        let id = request.id ?? .null
        do {
            guard let handler = handlers[request.method] else { throw WireError.methodNotFound(request.method) }
            if !openMethods.contains(request.method), context.connection.currentPrincipal == nil {
                throw TollgateError.unauthenticated("call auth.hello first")
            }
            let result = try await handler(Params(request.params), context)
            return Envelope.success(id: id, result: result)
        } catch {
            let wire = WireError(translating: error)
            if wire.code == WireError.internalError.code {
                logger.error("request failed", metadata: ["method": "\(request.method)", "error": "\(error)"])
            }
            return Envelope.failure(id: id, error: wire)
        }
    }
}
