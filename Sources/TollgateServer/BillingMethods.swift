import TollgateCore
import TollgateJSON
import TollgateRuntime
import TollgateWire

/// Billing: `periods.list`, `periods.close`, `invoices.get`, `invoices.list`, `invoices.trace`, `invoices.void`,
/// `reports.revenue`, `reports.margin` (operators).
enum BillingMethods {
    static let pageMax: Int64 = 1_000

    static func register(in router: inout Router) {
        router.tenantOperator(.periodsList, scopes: OperatorScope.billingRead) { params, op in
            try await op.tenant.periods(
                subscriptionId: try params.string("subscriptionId", lengthMax: op.request.idBytesMax),
                limit: Int(try params.optionalInt("limit", range: 1...pageMax) ?? 24))
        }

        router.tenantOperator(.periodsClose, scopes: OperatorScope.billingWrite) { params, op in
            try await op.tenant.closePeriod(
                subscriptionId: try params.string("subscriptionId", lengthMax: op.request.idBytesMax),
                start: try params.optionalDate("periodStart"))
        }

        router.tenantOperator(.invoicesGet, scopes: OperatorScope.billingRead) { params, op in
            try await op.tenant.invoice(try params.string("invoiceId", lengthMax: op.request.idBytesMax))
        }

        router.tenantOperator(.invoicesList, scopes: OperatorScope.billingRead) { params, op in
            try await op.tenant.invoices(
                customerId: try params.optionalString("customerId", lengthMax: op.request.idBytesMax),
                subscriptionId: try params.optionalString("subscriptionId", lengthMax: op.request.idBytesMax),
                limit: Int(try params.optionalInt("limit", range: 1...pageMax) ?? 100))
        }

        router.tenantOperator(.invoicesVoid, scopes: OperatorScope.billingWrite) { params, op in
            try await op.tenant.voidInvoice(
                try params.string("invoiceId", lengthMax: op.request.idBytesMax),
                reason: try params.optionalString("reason", lengthMax: 500) ?? "")
        }

        router.tenantOperator(.reportsMargin, scopes: OperatorScope.billingRead) { params, op in
            var groups = try UsageMethods.groups(params)
            if groups.isEmpty { groups = [.customer] }
            let rows = try await op.tenant.usage(filter: try UsageMethods.filter(params), groupBy: groups)
            return try MarginReport(groups: groups, rows: rows)
        }

        router.tenantOperator(.reportsRevenue, scopes: OperatorScope.billingRead) { params, op in
            try await op.tenant.revenue(
                customerId: try params.optionalString("customerId", lengthMax: op.request.idBytesMax))
        }

        router.tenantOperator(.invoicesTrace, scopes: OperatorScope.billingRead) { params, op in
            try await op.tenant.trace(
                invoiceId: try params.string("invoiceId", lengthMax: op.request.idBytesMax),
                lineId: try params.string("lineId", lengthMax: 16),
                after: try params.optionalString("after", lengthMax: op.request.idBytesMax),
                limit: Int(try params.optionalInt("limit", range: 1...pageMax) ?? 100))
        }
    }
}
