import Logging
import TollgateCore
import TollgateJSON
import TollgateRuntime
import TollgateWire

/// Who may call a method: declared with its route, checked by the router before the handler runs, which then
/// receives its caller typed. No handler looks its caller up. A list of scopes is a choice: a credential with
/// any one of them may call; an operator credential with `operator` may call every operator method, and root
/// every method but the agents' own. `docs/PROTOCOL.md` has the table (a test holds it to these routes).
enum Access: Sendable, Equatable {
    /// Anyone, before `auth.hello` too.
    case anyone
    /// The root operator only.
    case root
    /// Root or a tenant operator with any scope, without a tenant resolved (`tenants.list`).
    case anyOperator
    /// An operator acting in one tenant (root names it with `tenantId`), with one of `scopes`.
    case tenantOperator(scopes: [String])
    /// An agent whose credential carries one of `scopes`.
    case agent(scopes: [String])
    /// An agent whose credential carries one of `agent`, or an operator with one of `operator`.
    case agentOrOperator(agent: [String], operator: [String])
}

/// Maps method names to routes and turns every outcome into exactly one response. Handlers return typed
/// answers (`JSONRepresentable`); `respond` turns each into JSON, once.
struct Router: Sendable {
    typealias Handler = @Sendable (Params, RequestContext) async throws -> any JSONRepresentable

    struct Route: Sendable {
        var access: Access
        /// Runs before the connection's next frame is read, so requests pipelined behind it see its effect
        /// (`auth.hello` sets the principal they run as).
        var runsAlone: Bool
        var handler: Handler
    }

    private(set) var routes: [RPCMethod: Route] = [:]
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
        AuthMethods.register(in: &self)
        TenantMethods.register(in: &self)
        HierarchyMethods.register(in: &self)
        PlanMethods.register(in: &self)
        CapMethods.register(in: &self)
        UsageMethods.register(in: &self)
        MeterMethods.register(in: &self)
        SessionMethods.register(in: &self)
        AlertMethods.register(in: &self)
        EventMethods.register(in: &self)
        BillingMethods.register(in: &self)
        CreditMethods.register(in: &self)
        DiscountMethods.register(in: &self)
        ProductMethods.register(in: &self)
        CredentialMethods.register(in: &self)
        CreditTokenMethods.register(in: &self)
    }

    var methods: [String] { routes.keys.map(\.rawValue).sorted() }

    /// Whether `method` must run before the next frame of its connection is read.
    func runsAlone(_ method: String) -> Bool { RPCMethod(rawValue: method).flatMap { routes[$0]?.runsAlone } ?? false }

    private mutating func add(
        _ method: RPCMethod, _ access: Access, runsAlone: Bool = false, _ handler: @escaping Handler
    ) {
        precondition(routes[method] == nil, "method \(method) registered twice")
        routes[method] = Route(access: access, runsAlone: runsAlone, handler: handler)
    }

    /// A method anyone may call, before `auth.hello` too.
    mutating func anyone(
        _ method: RPCMethod, runsAlone: Bool = false,
        _ handler: @escaping @Sendable (Params, RequestContext) async throws -> any JSONRepresentable
    ) {
        add(method, .anyone, runsAlone: runsAlone, handler)
    }

    /// A method only the root operator may call.
    mutating func root(
        _ method: RPCMethod,
        _ handler: @escaping @Sendable (Params, RequestContext) async throws -> any JSONRepresentable
    ) {
        add(method, .root) { params, context in
            guard context.connection.currentPrincipal == .root else {
                throw TollgateError.forbidden("only the root operator may call \(method.rawValue)")
            }
            return try await handler(params, context)
        }
    }

    /// A method root and tenant operators (with any scope) may call, each seeing what is theirs.
    mutating func anyOperator(
        _ method: RPCMethod,
        _ handler: @escaping @Sendable (Params, RequestContext, Principal) async throws -> any JSONRepresentable
    ) {
        add(method, .anyOperator) { params, context in
            let principal = context.connection.currentPrincipal
            switch principal {
            case .root?: return try await handler(params, context, .root)
            case .tenantOperator(let tenantId, let credentialId, _)?:
                _ = try await context.supervisor.tenant(tenantId).usableOperator(credentialId)
                return try await handler(params, context, principal!)
            default: throw TollgateError.forbidden("operators only")
            }
        }
    }

    /// A method of an operator acting in one tenant, with one of `scopes`.
    mutating func tenantOperator(
        _ method: RPCMethod, scopes: String...,
        handler: @escaping @Sendable (Params, OperatorCaller) async throws -> any JSONRepresentable
    ) {
        add(method, .tenantOperator(scopes: scopes)) { params, context in
            try await handler(params, try await Self.operatorCaller(params, scopes: scopes, method: method, context))
        }
    }

    /// A method of an agent whose credential carries one of `scopes`.
    mutating func agent(
        _ method: RPCMethod, scopes: String...,
        handler: @escaping @Sendable (Params, AgentCaller) async throws -> any JSONRepresentable
    ) {
        add(method, .agent(scopes: scopes)) { params, context in
            try await handler(params, try await Self.agentCaller(scopes: scopes, method: method, context))
        }
    }

    /// A method agents (with one of `agent`, on their own objects) and operators (with one of `operator`) may
    /// call.
    mutating func agentOrOperator(
        _ method: RPCMethod, agent: [String], operator: [String],
        _ handler: @escaping @Sendable (Params, Caller) async throws -> any JSONRepresentable
    ) {
        add(method, .agentOrOperator(agent: agent, operator: `operator`)) { params, context in
            if case .agent? = context.connection.currentPrincipal {
                return try await handler(
                    params, .agent(try await Self.agentCaller(scopes: agent, method: method, context)))
            }
            return try await handler(
                params,
                .tenantOperator(try await Self.operatorCaller(params, scopes: `operator`, method: method, context)))
        }
    }

    /// The tenant an operator request acts in. A tenant operator acts in its own tenant (naming another is
    /// `FORBIDDEN`), by a credential that still works (checked in its tenant's actor, so a revocation stops the
    /// next request of a connection already open) and carries one of `scopes`; the root operator must name a
    /// tenant with `tenantId`; agents may not call operator methods.
    private static func operatorCaller(
        _ params: Params, scopes: [String], method: RPCMethod, _ context: RequestContext
    ) async throws -> OperatorCaller {
        let named = try params.optionalString("tenantId")
        switch context.connection.currentPrincipal {
        case .root?:
            guard let named else {
                throw WireError.invalidParams(field: "tenantId", expected: "a string (root must name the tenant)")
            }
            return OperatorCaller(
                tenant: try await context.supervisor.tenant(named), credential: nil, request: context)
        case .tenantOperator(let tenantId, let credentialId, _)?:
            if let named, named != tenantId { throw TollgateError.forbidden("operators act only in their own tenant") }
            let tenant = try await context.supervisor.tenant(tenantId)
            let credential = try await tenant.usableOperator(credentialId)
            guard credential.allows(anyOf: scopes) else {
                throw TollgateError.forbidden(
                    "\(method.rawValue) needs scope \(Self.spell(scopes + [OperatorScope.all]))")
            }
            return OperatorCaller(tenant: tenant, credential: credential, request: context)
        default:
            throw TollgateError.forbidden("operator methods need an operator token")
        }
    }

    private static func agentCaller(scopes: [String], method: RPCMethod, _ context: RequestContext) async throws
        -> AgentCaller
    {
        guard
            case .agent(let tenantId, let agentId, let credentialId, let held)? = context.connection.currentPrincipal
        else {
            throw TollgateError.forbidden("\(method.rawValue) needs an agent credential")
        }
        guard scopes.contains(where: held.contains) else {
            throw TollgateError.forbidden("\(method.rawValue) needs scope \(Self.spell(scopes))")
        }
        return AgentCaller(
            tenant: try await context.supervisor.tenant(tenantId), agentId: agentId, credentialId: credentialId,
            request: context)
    }

    /// "a", "a or b", "a, b or c".
    private static func spell(_ scopes: [String]) -> String {
        guard let last = scopes.last else { return "" }
        return scopes.count == 1 ? last : scopes.dropLast().joined(separator: ", ") + " or " + last
    }

    /// Runs one request. Never throws: failures become error responses, and internal detail goes to the log only.
    func respond(to request: RPCRequest, context: RequestContext) async -> JSONValue {
        let id = request.id ?? .null
        do {
            guard let method = RPCMethod(rawValue: request.method), let route = routes[method] else {
                throw WireError.methodNotFound(request.method)
            }
            if route.access != .anyone, context.connection.currentPrincipal == nil {
                throw TollgateError.unauthenticated("call auth.hello first")
            }
            // The one place a typed answer becomes JSON.
            let result = try await route.handler(Params(request.params), context).json
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
