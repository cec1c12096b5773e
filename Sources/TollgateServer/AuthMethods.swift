import TollgateCore
import TollgateJSON
import TollgateRuntime
import TollgateWire

/// `auth.hello` and `auth.token`.
enum AuthMethods {
    /// Agent tokens from `auth.token` live at most this long unless asked for less, in seconds.
    static let exchangedTokenTTLSecondsDefault: Int64 = 3600

    static func register(in router: inout Router) {
        router.anyone(.authHello, runsAlone: true) { params, context in
            let token = try params.string("token", lengthMax: 512)
            let principal = try await throttled(context) { try await context.supervisor.authenticate(token) }
            context.connection.principal.withLock { $0 = principal }
            let limits = context.configuration.listener
            let answer: JSONValue = [
                "principal": describe(principal),
                "server": [
                    "name": "tollgate", "version": .string(context.serverInfo.version),
                    "node": .string(context.serverInfo.node),
                ],
                "limits": [
                    "frameBytesMax": .integer(Int64(limits.frameBytesMax)),
                    "inFlightMax": .integer(Int64(limits.inFlightMax)),
                    "batchMax": .integer(Int64(limits.batchMax)),
                ],
            ]
            return answer
        }

        router.anyone(.authToken) { params, context in
            let clientId = try params.string("clientId")
            let secret = try params.string("clientSecret", lengthMax: 512)
            let ttl = try params.optionalInt(
                "ttlSeconds", range: 1...Int64(context.configuration.runtime.credentialTTLSecondsMax))
            let scopes = try params.optionalStrings("scopes")
            let issued = try await throttled(context) {
                try await context.supervisor.exchange(
                    clientId: clientId, clientSecret: secret, scopes: scopes,
                    ttlSeconds: ttl ?? exchangedTokenTTLSecondsDefault)
            }
            let answer: JSONValue = [
                "token": .string(issued.token), "credentialId": .string(issued.credential.id),
                "expiresAt": .string(Timestamp.format(issued.credential.expiresAt)),
                "scopes": .array(issued.credential.scopes.map(JSONValue.string)),
            ]
            return answer
        }
    }

    /// Runs one authentication unless this connection, or its source address, failed too often lately
    /// (`AuthThrottle`); a failure (`UNAUTHENTICATED`) counts against both.
    static func throttled<T>(_ context: RequestContext, _ attempt: () async throws -> T) async throws -> T {
        let connection = context.connection
        let now = Timestamp.millis(context.supervisor.services.clock.now())
        if let wait = context.authThrottle.retryAfterMs(
            connection: connection.defaultSessionId, address: connection.remoteAddress, now: now)
        {
            throw TollgateError.rateLimited(retryAfterMs: wait)
        }
        do { return try await attempt() } catch TollgateError.unauthenticated(let detail) {
            context.authThrottle.failed(
                connection: connection.defaultSessionId, address: connection.remoteAddress,
                now: Timestamp.millis(context.supervisor.services.clock.now()))
            throw TollgateError.unauthenticated(detail)
        }
    }

    static func describe(_ principal: Principal) -> JSONValue {
        switch principal {
        case .root:
            return ["kind": "operator", "scopes": ["root"]]
        case .tenantOperator(let tenantId, let credentialId, let scopes):
            return [
                "kind": "operator", "tenantId": .string(tenantId), "credentialId": .string(credentialId),
                "scopes": .array(scopes.map(JSONValue.string)),
            ]
        case .agent(let tenantId, let agentId, let credentialId, let scopes):
            return [
                "kind": "agent", "tenantId": .string(tenantId), "agentId": .string(agentId),
                "credentialId": .string(credentialId), "scopes": .array(scopes.map(JSONValue.string)),
            ]
        }
    }
}
