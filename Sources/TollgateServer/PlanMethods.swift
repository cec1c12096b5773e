import TollgateCore
import TollgateJSON
import TollgatePricing
import TollgateRuntime
import TollgateWire

/// Plans and subscriptions: `plans.put`, `plans.get`, `plans.list`, `subscriptions.create`, `subscriptions.swap`.
enum PlanMethods {
    static func register(in router: inout Router) {
        router.tenantOperator(.plansPut, scopes: OperatorScope.plansWrite) { params, op in
            var document = params.object
            document["tenantId"] = nil
            document["idempotencyKey"] = nil
            return try await op.tenant.putPlan(.object(document), call: try Keys.call(params, .plansPut, op.request))
        }

        router.tenantOperator(.plansGet, scopes: OperatorScope.plansWrite, OperatorScope.billingRead) { params, op in
            let version = try params.optionalInt("version", range: 1...Int64(Int32.max)).map(Int.init)
            return PlanView(
                plan: try await op.tenant.plan(id: try params.string("planId"), version: version), withDocument: true)
        }

        router.tenantOperator(.plansList, scopes: OperatorScope.plansWrite, OperatorScope.billingRead) { _, op in
            JSONValue.object([
                "plans": .array(await op.tenant.allPlans().map { PlanView(plan: $0, withDocument: false).json })
            ])
        }

        router.tenantOperator(.subscriptionsCreate, scopes: OperatorScope.plansWrite) { params, op in
            try await op.tenant.createSubscription(
                customerId: try params.string("customerId"), planId: try params.string("planId"),
                version: try params.optionalInt("version", range: 1...Int64(Int32.max)).map(Int.init),
                startsAt: try params.optionalDate("startsAt"), period: try period(params),
                product: try params.optionalString("productId", lengthMax: op.request.idBytesMax),
                call: try Keys.call(params, .subscriptionsCreate, op.request))
        }

        router.tenantOperator(.subscriptionsSwap, scopes: OperatorScope.plansWrite) { params, op in
            try await op.tenant.swapPlan(
                subscriptionId: try params.string("subscriptionId"),
                planId: try params.optionalString("planId", lengthMax: op.request.idBytesMax),
                version: try params.optionalInt("version", range: 1...Int64(Int32.max)).map(Int.init),
                effectiveAt: try params.optionalDate("effectiveAt"),
                call: try Keys.call(params, .subscriptionsSwap, op.request))
        }
    }

    /// `period`: `{cadence: "month", anchorDay?}` (1 to 31, 1 by default), `{cadence: "week", anchorWeekday?}`
    /// (`monday` by default) or `{cadence: "day"}`; calendar months when absent.
    static func period(_ params: Params) throws -> BillingCalendar.Cadence {
        guard let period = try params.optionalObject("period") else { return .month(anchorDay: 1) }
        let allowed: Set<String> = ["cadence", "anchorDay", "anchorWeekday"]
        if let unknown = period.object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw TollgateError.validation(field: "period.\(unknown)", rule: "one of cadence, anchorDay, anchorWeekday")
        }
        let nested = try params.nested("period")!
        let cadence = try nested.optionalString("cadence", lengthMax: 16) ?? "month"
        func only(_ field: String, with cadence: String) throws {
            if period.has(field) {
                throw TollgateError.validation(field: "period.\(field)", rule: "only with cadence \(cadence)")
            }
        }
        switch cadence {
        case "month":
            try only("anchorWeekday", with: "week")
            return .month(anchorDay: Int(try nested.optionalInt("anchorDay", range: 1...31) ?? 1))
        case "week":
            try only("anchorDay", with: "month")
            let name = try nested.optionalString("anchorWeekday", lengthMax: 16) ?? "monday"
            guard let index = BillingCalendar.weekdays.firstIndex(of: name) else {
                throw TollgateError.validation(field: "period.anchorWeekday", rule: "monday, tuesday, … or sunday")
            }
            return .week(anchorWeekday: index + 1)
        case "day":
            try only("anchorDay", with: "month")
            try only("anchorWeekday", with: "week")
            return .day
        default:
            throw TollgateError.validation(field: "period.cadence", rule: "month, week or day")
        }
    }
}
