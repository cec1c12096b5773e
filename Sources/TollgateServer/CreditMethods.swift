import TollgateCore
import TollgateJSON
import TollgatePricing
import TollgateRuntime
import TollgateWire

/// Credit: `credits.grant`, `credits.balance` (operators). A customer is set to block at zero credit with
/// `customers.create` or `customers.update`.
enum CreditMethods {
    /// Priorities run from 0 (drawn first) to this.
    static let priorityMax: Int64 = 1_000_000

    static func register(in router: inout Router) {
        router.tenantOperator(.creditsGrant, scopes: OperatorScope.billingWrite) { params, op in
            let kindName = try params.string("kind", lengthMax: 32)
            guard let kind = CreditGrant.Kind(rawValue: kindName) else {
                throw TollgateError.validation(field: "kind", rule: "prepaid or promotional")
            }
            let currency = try params.optionalString("currency", lengthMax: 8)
            if let currency, !Currency.isValidCode(currency) {
                throw TollgateError.validation(field: "currency", rule: "an ISO 4217 code of three upper-case letters")
            }
            let request = CreditGrantRequest(
                customerId: try params.string("customerId", lengthMax: op.request.idBytesMax),
                amount: try params.money("amount"), currency: currency, kind: kind,
                priority: Int(try params.optionalInt("priority", range: 0...priorityMax) ?? 0),
                expiresAt: try params.optionalDate("expiresAt"),
                description: try params.optionalString("description", lengthMax: 500) ?? "")
            return try await op.tenant.grantCredit(request, call: try Keys.call(params, .creditsGrant, op.request))
        }

        router.tenantOperator(.creditsBalance, scopes: OperatorScope.billingRead) { params, op in
            try await op.tenant.creditBalance(
                customerId: try params.string("customerId", lengthMax: op.request.idBytesMax))
        }

        router.tenantOperator(.customersUpdate, scopes: OperatorScope.billingWrite) { params, op in
            try await op.tenant.updateCustomer(
                try params.string("customerId", lengthMax: op.request.idBytesMax),
                name: try params.optionalString("name", lengthMax: HierarchyMethods.nameBytesMax),
                taxRate: try params.optionalMoney("taxRate"),
                blockAtZeroCredit: try params.optionalBool("blockAtZeroCredit"),
                call: try Keys.call(params, .customersUpdate, op.request))
        }
    }
}
