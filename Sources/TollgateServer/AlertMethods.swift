import TollgateCore
import TollgateJSON
import TollgateRuntime
import TollgateWire

/// Alerts: `alerts.subscribe` (push `alert` notifications of some kinds on this connection) and `alerts.list`.
enum AlertMethods {
    static func register(in router: inout Router) {
        router.tenantOperator(.alertsSubscribe, scopes: OperatorScope.alertsRead) { params, op in
            let kinds = try params.optionalStrings("kinds") ?? AlertHub.kinds
            try validate(kinds)
            guard let send = op.request.connection.notify.withLock({ $0 }) else {
                throw TollgateError.unavailable("this connection is closing")
            }
            // A tenant operator's subscription ends with its credential (`AlertHub.credentialEnds`); root's does not.
            let credential = op.credential
            let id = op.request.supervisor.services.alerts.subscribe(
                tenantId: op.tenant.tenantId, kinds: Set(kinds), credentialId: credential?.id,
                endsAt: [credential?.expiresAt, credential?.revokedAt].compactMap { $0 }.min(), send: send)
            // Revoked between the look-up and the subscription? Then `credentialEnds` found nothing to end.
            if let credential, (try? await op.tenant.usableOperator(credential.id)) == nil {
                op.request.supervisor.services.alerts.unsubscribe(id)
                throw TollgateError.unauthenticated("credential expired or revoked")
            }
            op.request.connection.alertSubscriptions.withLock { $0.append(id) }
            return JSONValue.object(["subscribed": .array(kinds.sorted().map(JSONValue.string))])
        }

        router.tenantOperator(.alertsList, scopes: OperatorScope.alertsRead) { params, op in
            let kinds = try params.optionalStrings("kinds")
            try validate(kinds ?? [])
            let limit = Int(try params.optionalInt("limit", range: 1...1000) ?? 100)
            let alerts = try await op.tenant.listAlerts(kinds: kinds?.isEmpty == true ? nil : kinds, limit: limit)
            return JSONValue.object(["alerts": .array(alerts)])
        }
    }

    private static func validate(_ kinds: [String]) throws {
        for kind in kinds where !AlertHub.kinds.contains(kind) {
            throw TollgateError.validation(
                field: "kinds", rule: "each one of: \(AlertHub.kinds.joined(separator: ", "))")
        }
    }
}
