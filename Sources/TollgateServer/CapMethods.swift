import TollgateCore
import TollgateJSON
import TollgateRuntime
import TollgateWire

/// Spend caps: `caps.set` and `caps.list`.
enum CapMethods {
    static func register(in router: inout Router) {
        router.tenantOperator(.capsSet, scopes: OperatorScope.capsWrite) { params, op in
            let scopeName = try params.string("scope")
            guard let scope = CapScope(rawValue: scopeName), CapScope.settable.contains(scope) else {
                throw TollgateError.validation(field: "scope", rule: "one of customer, team, agent, session")
            }
            let periodName = try params.string("period")
            guard let period = CapPeriod(rawValue: periodName) else {
                throw TollgateError.validation(field: "period", rule: "one of lifetime, month, day, session")
            }
            return try await op.tenant.setCap(
                target: ScopeRef(scope, try params.string("scopeId")),
                limit: try params.money("limit"), period: period,
                warnAtPercent: try params.optionalInt("warnAtPercent", range: 1...100).map(Int.init),
                call: try Keys.call(params, .capsSet, op.request))
        }

        router.tenantOperator(
            .capsList, scopes: OperatorScope.capsWrite, OperatorScope.billingRead, OperatorScope.alertsRead
        ) { _, op in
            JSONValue.object(["caps": .array(await op.tenant.listCaps().map(\.json))])
        }
    }
}
