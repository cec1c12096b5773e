import Foundation
import TollgateCore
import TollgatePricing
import TollgateRuntime
import TollgateStorage
import TollgateWire

/// The operator methods: tenants, the hierarchy, credentials, plans, subscriptions, caps and usage.
enum OperatorMethods {
    static let nameBytesMax = 256

    static func register(in router: inout Router) {
        router.register("tenants.create") { params, context in
            guard context.connection.currentPrincipal == .root else {
                throw TollgateError.forbidden("only the root operator creates tenants")
            }
            let created = try await context.supervisor.createTenant(
                name: try params.string("name", lengthMax: nameBytesMax))
            return [
                "tenantId": .string(created.tenant.id), "name": .string(created.tenant.name),
                "operatorToken": .string(created.operatorToken),
            ]
        }

        router.register("tenants.list") { _, context in
            switch context.connection.currentPrincipal {
            case .root?:
                let tenants = try await context.supervisor.allTenants()
                return ["tenants": .array(tenants.map { ["tenantId": .string($0.id), "name": .string($0.name)] })]
            case .tenantOperator(let tenantId)?:
                return ["tenants": [["tenantId": .string(tenantId)]]]
            default:
                throw TollgateError.forbidden("operators only")
            }
        }

        router.register("customers.create") { params, context in
            let tenant = try await operatorTenant(params, context)
            return try await tenant.createCustomer(
                name: try params.string("name", lengthMax: nameBytesMax),
                externalId: try params.optionalString("externalId"),
                call: try MeterMethods.keyedCall(params, .customersCreate, context))
        }

        router.register("teams.create") { params, context in
            let tenant = try await operatorTenant(params, context)
            return try await tenant.createTeam(
                customerId: try params.string("customerId"),
                name: try params.string("name", lengthMax: nameBytesMax),
                call: try MeterMethods.keyedCall(params, .teamsCreate, context))
        }

        router.register("agents.create") { params, context in
            let tenant = try await operatorTenant(params, context)
            let created = try await tenant.createAgent(
                teamId: try params.string("teamId"),
                name: try params.string("name", lengthMax: nameBytesMax),
                agentType: try params.optionalString("agentType"))
            return [
                "agentId": .string(created.agent.id), "teamId": .string(created.agent.teamId),
                "clientId": .string(created.agent.clientId), "clientSecret": .string(created.clientSecret),
            ]
        }

        router.register("credentials.issue") { params, context in
            let tenant = try await operatorTenant(params, context)
            let limit = Int64(context.configuration.limits.credentialTTLSecondsMax)
            let issued = try await tenant.issueCredential(
                agentId: try params.string("agentId"),
                scopes: try params.optionalStrings("scopes") ?? [AgentScope.meterWrite],
                ttlSeconds: try params.int("ttlSeconds", range: 1...limit),
                spendLimit: try params.optionalMoney("spendLimit"))
            var result: [String: JSONValue] = [
                "credentialId": .string(issued.credential.id), "agentId": .string(issued.credential.agentId),
                "token": .string(issued.token), "expiresAt": .string(Timestamp.format(issued.credential.expiresAt)),
                "scopes": .array(issued.credential.scopes.map(JSONValue.string)),
            ]
            if let spendLimit = issued.credential.spendLimit {
                result["spendLimit"] = .string(spendLimit.decimalString)
            }
            return .object(result)
        }

        router.register("credentials.revoke") { params, context in
            let tenant = try await operatorTenant(params, context)
            return try await tenant.revokeCredential(
                try params.string("credentialId"), call: try MeterMethods.keyedCall(params, .credentialsRevoke, context)
            )
        }

        router.register("plans.put") { params, context in
            let tenant = try await operatorTenant(params, context)
            var document = params.object
            document["tenantId"] = nil
            document["idempotencyKey"] = nil
            return try await tenant.putPlan(
                .object(document), call: try MeterMethods.keyedCall(params, .plansPut, context))
        }

        router.register("plans.get") { params, context in
            let tenant = try await operatorTenant(params, context)
            let version = try params.optionalInt("version", range: 1...Int64(Int32.max)).map(Int.init)
            return describe(try await tenant.plan(id: try params.string("planId"), version: version))
        }

        router.register("plans.list") { params, context in
            let tenant = try await operatorTenant(params, context)
            return [
                "plans": .array(
                    await tenant.allPlans().map { plan in
                        [
                            "planId": .string(plan.id), "name": .string(plan.name),
                            "version": .integer(Int64(plan.version)),
                            "currency": .string(plan.currency),
                        ]
                    })
            ]
        }

        router.register("subscriptions.create") { params, context in
            let tenant = try await operatorTenant(params, context)
            return try await tenant.createSubscription(
                customerId: try params.string("customerId"), planId: try params.string("planId"),
                version: try params.optionalInt("version", range: 1...Int64(Int32.max)).map(Int.init),
                startsAt: try params.optionalDate("startsAt"),
                call: try MeterMethods.keyedCall(params, .subscriptionsCreate, context))
        }

        router.register("subscriptions.swap") { params, context in
            let tenant = try await operatorTenant(params, context)
            return try await tenant.swapPlan(
                subscriptionId: try params.string("subscriptionId"),
                planId: try params.optionalString("planId", lengthMax: 128),
                version: try params.optionalInt("version", range: 1...Int64(Int32.max)).map(Int.init),
                effectiveAt: try params.optionalDate("effectiveAt"),
                call: try MeterMethods.keyedCall(params, .subscriptionsSwap, context))
        }

        router.register("caps.set") { params, context in
            let tenant = try await operatorTenant(params, context)
            let scopeName = try params.string("scope")
            guard let scope = CapScope(rawValue: scopeName), CapScope.settable.contains(scope) else {
                throw TollgateError.validation(field: "scope", rule: "one of customer, team, agent, session")
            }
            let periodName = try params.string("period")
            guard let period = CapPeriod(rawValue: periodName) else {
                throw TollgateError.validation(field: "period", rule: "one of lifetime, month, day, session")
            }
            let warn = try params.optionalInt("warnAtPercent", range: 1...100).map(Int.init)
            return try await tenant.setCap(
                target: ScopeRef(scope, try params.string("scopeId")),
                limit: try params.money("limit"), period: period, warnAtPercent: warn,
                call: try MeterMethods.keyedCall(params, .capsSet, context))
        }

        router.register("usage.summary") { params, context in
            let tenant = try await operatorTenant(params, context)
            return try await UsageSummary.answer(params, tenant: tenant)
        }
    }

    /// The tenant an operator request acts in. A tenant operator acts in its own tenant (naming another is
    /// `FORBIDDEN`); the root operator must name one with `tenantId`; agents may not call operator methods.
    static func operatorTenant(_ params: Params, _ context: RequestContext) async throws -> TenantActor {
        let named = try params.optionalString("tenantId")
        switch context.connection.currentPrincipal {
        case .root?:
            guard let named else {
                throw WireError.invalidParams(field: "tenantId", expected: "a string (root must name the tenant)")
            }
            return try await context.supervisor.tenant(named)
        case .tenantOperator(let tenantId)?:
            if let named, named != tenantId { throw TollgateError.forbidden("operators act only in their own tenant") }
            return try await context.supervisor.tenant(tenantId)
        default:
            throw TollgateError.forbidden("operator methods need an operator token")
        }
    }

    static func describe(_ plan: Plan) -> JSONValue {
        [
            "planId": .string(plan.id), "name": .string(plan.name), "version": .integer(Int64(plan.version)),
            "currency": .string(plan.currency), "document": plan.document.json,
        ]
    }
}
