import TollgateCore
import TollgateJSON
import TollgateRuntime
import TollgateStorage
import TollgateWire

/// `usage.summary`: usage and cost of a tenant, filtered and grouped.
enum UsageMethods {
    static func register(in router: inout Router) {
        router.tenantOperator(.usageSummary, scopes: OperatorScope.billingRead) { params, op in
            try await summary(params, tenant: op.tenant)
        }
        router.tenantOperator(.usageRerate, scopes: OperatorScope.billingWrite) { params, op in
            let plan = try params.string("plan", lengthMax: 160)
            guard let at = plan.lastIndex(of: "@"), let version = Int(plan[plan.index(after: at)...]), version >= 1,
                at > plan.startIndex
            else { throw TollgateError.validation(field: "plan", rule: "NAME@VERSION, as plans.list shows it") }
            guard let from = try params.optionalDate("from") else {
                throw WireError.invalidParams(field: "from", expected: "an RFC 3339 time")
            }
            guard let to = try params.optionalDate("to") else {
                throw WireError.invalidParams(field: "to", expected: "an RFC 3339 time")
            }
            let apply = try params.optionalBool("apply") ?? false
            return try await op.tenant.rerate(
                RerateRequest(
                    customerId: try params.string("customerId", lengthMax: op.request.idBytesMax), from: from, to: to,
                    planName: String(plan[..<at]), planVersion: version, apply: apply))
        }
    }

    /// `groupBy`: usage groups, each once.
    static func groups(_ params: Params) throws -> [UsageGroup] {
        var groups: [UsageGroup] = []
        for (index, name) in (try params.optionalStrings("groupBy", countMax: UsageGroup.allCases.count) ?? [])
            .enumerated()
        {
            guard let group = UsageGroup(rawValue: name) else {
                throw TollgateError.validation(
                    field: "groupBy[\(index)]",
                    rule: "one of \(UsageGroup.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard !groups.contains(group) else {
                throw TollgateError.validation(field: "groupBy[\(index)]", rule: "not repeated")
            }
            groups.append(group)
        }
        return groups
    }

    /// The filter `usage.summary` and `reports.margin` share: ids, and the charge times `from` (inclusive) and
    /// `to` (exclusive).
    static func filter(_ params: Params) throws -> UsageFilter {
        UsageFilter(
            customerId: try params.optionalString("customerId"), teamId: try params.optionalString("teamId"),
            agentId: try params.optionalString("agentId"), sessionId: try params.optionalString("sessionId"),
            from: try params.optionalDate("from"), to: try params.optionalDate("to"),
            productId: try params.optionalString("productId"))
    }

    static func summary(_ params: Params, tenant: TenantActor) async throws -> JSONValue {
        let groups = try groups(params)
        let rows = try await tenant.usage(filter: try filter(params), groupBy: groups)
        let currencies = Set(rows.map(\.currency))
        guard currencies.count <= 1 else {
            throw TollgateError.validation(
                field: "customerId", rule: "a filter that selects usage in a single currency")
        }
        var total = UsageRow(
            keys: [], currency: currencies.first ?? "", calls: 0, quantity: 0, inputTokens: 0,
            outputTokens: 0, cost: .zero, providerCost: .zero)
        var out: [JSONValue] = []
        for row in rows {
            var object = figures(row)
            for (group, key) in zip(groups, row.keys) { object[group.rawValue] = .string(key) }
            out.append(.object(object))
            total.calls += row.calls
            total.quantity += row.quantity
            total.inputTokens += row.inputTokens
            total.outputTokens += row.outputTokens
            total.retries += row.retries
            total.cost = try total.cost.adding(row.cost)
            total.providerCost = try total.providerCost.adding(row.providerCost)
        }
        return [
            "currency": currencies.first.map(JSONValue.string) ?? .null, "rows": .array(out),
            "total": .object(figures(total)),
        ]
    }

    static func figures(_ row: UsageRow) -> [String: JSONValue] {
        [
            "calls": .integer(row.calls), "quantity": .integer(row.quantity), "inputTokens": .integer(row.inputTokens),
            "outputTokens": .integer(row.outputTokens), "cost": .string(row.cost.decimalString),
            "providerCost": .string(row.providerCost.decimalString), "retries": .integer(row.retries),
        ]
    }
}
