import TollgateCore
import TollgateJSON
import TollgatePricing
import TollgateRuntime
import TollgateWire

/// Discounts: `discounts.create`, `discounts.list`, `discounts.end` (operators).
enum DiscountMethods {
    static func register(in router: inout Router) {
        router.tenantOperator(.discountsCreate, scopes: OperatorScope.billingWrite) { params, op in
            let currency = try params.optionalString("currency", lengthMax: 8)
            if let currency, !Currency.isValidCode(currency) {
                throw TollgateError.validation(field: "currency", rule: "an ISO 4217 code of three upper-case letters")
            }
            let request = DiscountRequest(
                customerId: try params.string("customerId", lengthMax: op.request.idBytesMax),
                percentOff: try params.optionalMoney("percentOff"), amountOff: try params.optionalMoney("amountOff"),
                currency: currency, startsAt: try params.optionalDate("startsAt"),
                endsAt: try params.optionalDate("endsAt"),
                description: try params.optionalString("description", lengthMax: 500) ?? "")
            return try await op.tenant.createDiscount(
                request, call: try Keys.call(params, .discountsCreate, op.request))
        }

        router.tenantOperator(.discountsList, scopes: OperatorScope.billingRead) { params, op in
            try await op.tenant.discounts(
                customerId: try params.string("customerId", lengthMax: op.request.idBytesMax))
        }

        router.tenantOperator(.discountsEnd, scopes: OperatorScope.billingWrite) { params, op in
            try await op.tenant.endDiscount(
                try params.string("discountId", lengthMax: op.request.idBytesMax),
                endsAt: try params.optionalDate("endsAt"), call: try Keys.call(params, .discountsEnd, op.request))
        }
    }
}
