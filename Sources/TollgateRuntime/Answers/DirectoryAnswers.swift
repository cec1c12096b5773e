import Foundation
import TollgateCore
import TollgateJSON
import TollgatePricing
import TollgateStorage

/// The answers of the operator's writes and reads of the tenant's directory, each in its one JSON form.

public struct CustomerCreated: JSONRepresentable, Equatable {
    public var customer: Customer
    public var json: JSONValue {
        [
            "customerId": .string(customer.id), "tenantId": .string(customer.tenantId),
            "timeZone": .string(customer.timeZone), "taxRate": .string(customer.taxRate.decimalString),
            "name": .string(customer.name), "blockAtZeroCredit": .bool(customer.blockAtZeroCredit),
        ]
    }
}

public struct TeamCreated: JSONRepresentable, Equatable {
    public var team: Team
    public var json: JSONValue { ["teamId": .string(team.id), "customerId": .string(team.customerId)] }
}

/// An agent and its client secret, shown this once and never stored.
public struct AgentCreated: JSONRepresentable, Equatable {
    public var agent: Agent
    public var clientSecret: String
    public var json: JSONValue {
        [
            "agentId": .string(agent.id), "teamId": .string(agent.teamId), "clientId": .string(agent.clientId),
            "clientSecret": .string(clientSecret),
        ]
    }
}

/// A credential and its token, shown this once and never stored.
public struct CredentialIssued: JSONRepresentable, Equatable {
    public var credential: Credential
    public var token: String
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "credentialId": .string(credential.id), "agentId": .string(credential.agentId), "token": .string(token),
            "expiresAt": .string(Timestamp.format(credential.expiresAt)),
            "scopes": .array(credential.scopes.map(JSONValue.string)),
        ]
        if let spendLimit = credential.spendLimit { fields["spendLimit"] = .string(spendLimit.decimalString) }
        if let parentId = credential.parentId { fields["delegatedFrom"] = .string(parentId) }
        if let label = credential.label { fields["label"] = .string(label) }
        return .object(fields)
    }
}

public struct CredentialRevoked: JSONRepresentable, Equatable {
    public var json: JSONValue { ["revoked": true] }
}

/// A plan version as `plans.put` answers it.
public struct PlanVersion: JSONRepresentable, Equatable {
    public var planId: String
    public var name: String
    public var version: Int
    public var json: JSONValue {
        ["planId": .string(planId), "name": .string(name), "version": .integer(Int64(version))]
    }
}

/// A plan version with its document (`plans.get`), or without it (`plans.list`).
public struct PlanView: JSONRepresentable {
    public var plan: Plan
    public var withDocument: Bool

    public init(plan: Plan, withDocument: Bool) {
        self.plan = plan
        self.withDocument = withDocument
    }

    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "planId": .string(plan.id), "name": .string(plan.name), "version": .integer(Int64(plan.version)),
            "currency": .string(plan.currency),
        ]
        if withDocument { fields["document"] = plan.document.json }
        return .object(fields)
    }
}

public struct SubscriptionView: JSONRepresentable, Equatable {
    public var subscription: SubscriptionRecord
    public var calendar: BillingCalendar
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "subscriptionId": .string(subscription.id), "customerId": .string(subscription.customerId),
            "planId": .string(subscription.planId), "version": .integer(Int64(subscription.version)),
            "startsAt": .string(Timestamp.format(subscription.startsAt)), "period": calendar.json,
        ]
        if let productId = subscription.productId { fields["productId"] = .string(productId) }
        return .object(fields)
    }
}

extension BillingCalendar {
    /// `{cadence, anchorDay | anchorWeekday, timeZone}`, as `subscriptions.create` takes it (with the customer's
    /// time zone beside it).
    public var json: JSONValue {
        var fields: [String: JSONValue] = ["timeZone": .string(timeZoneName)]
        switch cadence {
        case .month(let day):
            fields["cadence"] = "month"
            fields["anchorDay"] = .integer(Int64(day))
        case .week(let weekday):
            fields["cadence"] = "week"
            fields["anchorWeekday"] = .string(Self.weekdays[weekday - 1])
        case .day:
            fields["cadence"] = "day"
        }
        return .object(fields)
    }
}

public struct PlanSwapView: JSONRepresentable, Equatable {
    public var swap: PlanSwapRecord
    public var json: JSONValue {
        [
            "subscriptionId": .string(swap.subscriptionId), "planId": .string(swap.planId),
            "version": .integer(Int64(swap.version)), "effectiveAt": .string(Timestamp.format(swap.effectiveAt)),
        ]
    }
}

/// A tenant and its first operator token, shown this once and never stored.
public struct TenantCreated: JSONRepresentable, Equatable {
    public var tenant: TenantRecord
    public var operatorToken: String
    /// The operator credential `operatorToken` is, the tenant's first.
    public var operatorCredentialId: String
    public var json: JSONValue {
        [
            "tenantId": .string(tenant.id), "name": .string(tenant.name), "operatorToken": .string(operatorToken),
            "operatorCredentialId": .string(operatorCredentialId),
        ]
    }
}
