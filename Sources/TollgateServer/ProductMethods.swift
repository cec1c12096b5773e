import TollgateCore
import TollgateJSON
import TollgateRuntime
import TollgateWire

/// Products: `products.create`, `products.update`, `products.get`, `products.list` (operators).
enum ProductMethods {
    static func register(in router: inout Router) {
        router.tenantOperator(.productsCreate, scopes: OperatorScope.plansWrite) { params, op in
            let typeName = try params.string("type", lengthMax: 32)
            guard let kind = Product.Kind(rawValue: typeName) else {
                throw TollgateError.validation(
                    field: "type", rule: Product.Kind.allCases.map(\.rawValue).joined(separator: ", "))
            }
            return try await op.tenant.createProduct(
                name: try params.string("name", lengthMax: HierarchyMethods.nameBytesMax), kind: kind,
                tools: try tools(params) ?? [], closed: try params.optionalBool("closed") ?? false,
                call: try Keys.call(params, .productsCreate, op.request))
        }

        router.tenantOperator(.productsUpdate, scopes: OperatorScope.plansWrite) { params, op in
            try await op.tenant.updateProduct(
                try params.string("productId", lengthMax: op.request.idBytesMax), tools: try tools(params),
                closed: try params.optionalBool("closed"), call: try Keys.call(params, .productsUpdate, op.request))
        }

        router.tenantOperator(.productsGet, scopes: OperatorScope.plansWrite, OperatorScope.billingRead) { params, op in
            try await op.tenant.product(try params.string("productId", lengthMax: op.request.idBytesMax))
        }

        router.tenantOperator(.productsList, scopes: OperatorScope.plansWrite, OperatorScope.billingRead) { _, op in
            await op.tenant.products()
        }
    }

    /// `tools: [{name, description?, estimate?: {quantity?, inputTokens?, outputTokens?, reasoningTokens?,
    /// durationMs?}}]`, nil when absent.
    static func tools(_ params: Params) throws -> [Product.Tool]? {
        guard let value = params.object["tools"], value != .null else { return nil }
        guard let items = value.arrayValue else { throw WireError.invalidParams(field: "tools", expected: "an array") }
        guard items.count <= TenantActor.catalogToolsMax else {
            throw TollgateError.validation(field: "tools", rule: "at most \(TenantActor.catalogToolsMax) tools")
        }
        return try items.enumerated().map { index, item in
            guard item.objectValue != nil else {
                throw WireError.invalidParams(field: "tools[\(index)]", expected: "an object")
            }
            let tool = NestedParams(prefix: "tools[\(index)]", params: Params(item))
            guard let name = try tool.optionalString("name", lengthMax: MeterMethods.toolBytesMax), !name.isEmpty else {
                throw TollgateError.validation(field: "tools[\(index)].name", rule: "a tool name of 1 to 256 bytes")
            }
            var entry = Product.Tool(
                name: name, description: try tool.optionalString("description", lengthMax: 1_000) ?? "")
            if let estimate = try tool.nested("estimate") {
                let most = MeterMethods.countMax
                entry.estimate = Product.Estimate(
                    quantity: try estimate.optionalInt("quantity", range: 1...most) ?? 1,
                    inputTokens: try estimate.optionalInt("inputTokens", range: 0...most) ?? 0,
                    outputTokens: try estimate.optionalInt("outputTokens", range: 0...most) ?? 0,
                    reasoningTokens: try estimate.optionalInt("reasoningTokens", range: 0...most) ?? 0,
                    durationMs: try estimate.optionalInt("durationMs", range: 0...most) ?? 0)
            }
            return entry
        }
    }
}
