import TollgateCore
import TollgateJSON
import TollgatePricing
import TollgateRuntime
import TollgateWire

/// Plans and subscriptions: `plans.put`, `plans.get`, `plans.list`, `subscriptions.create`, `subscriptions.swap`.
enum PlanMethods {
    static func register(in router: inout Router) {
        router.tenantOperator(.plansPut) { params, op in
            var document = params.object
            document["tenantId"] = nil
            document["idempotencyKey"] = nil
            return try await op.tenant.putPlan(.object(document), call: try Keys.call(params, .plansPut, op.request))
        }

        router.tenantOperator(.plansGet) { params, op in
            let version = try params.optionalInt("version", range: 1...Int64(Int32.max)).map(Int.init)
            return PlanView(
                plan: try await op.tenant.plan(id: try params.string("planId"), version: version), withDocument: true)
        }

        router.tenantOperator(.plansList) { _, op in
            JSONValue.object([
                "plans": .array(await op.tenant.allPlans().map { PlanView(plan: $0, withDocument: false).json })
            ])
        }

        router.tenantOperator(.subscriptionsCreate) { params, op in
            try await op.tenant.createSubscription(
                customerId: try params.string("customerId"), planId: try params.string("planId"),
                version: try params.optionalInt("version", range: 1...Int64(Int32.max)).map(Int.init),
                startsAt: try params.optionalDate("startsAt"),
                call: try Keys.call(params, .subscriptionsCreate, op.request))
        }

        router.tenantOperator(.subscriptionsSwap) { params, op in
            try await op.tenant.swapPlan(
                subscriptionId: try params.string("subscriptionId"),
                planId: try params.optionalString("planId", lengthMax: op.request.idBytesMax),
                version: try params.optionalInt("version", range: 1...Int64(Int32.max)).map(Int.init),
                effectiveAt: try params.optionalDate("effectiveAt"),
                call: try Keys.call(params, .subscriptionsSwap, op.request))
        }
    }
}
