import Foundation
import TollgateCore
import TollgateJSON
import TollgateStorage

/// Products: `products.create`, `products.update` (its catalog), `products.get`, `products.list`. A customer
/// subscribes per product (`subscriptions.create {productId}`); a call names its product, or means the customer's
/// only subscription (`TenantDirectory.pricing`).
extension TenantActor {
    /// Most tools a catalog lists.
    public static let catalogToolsMax = 1_000

    public func createProduct(
        name: String, kind: Product.Kind, tools: [Product.Tool], closed: Bool, call: KeyedCall?
    ) async throws(TollgateError) -> Answer<ProductView> {
        try await keyed(call) { () async throws(TollgateError) in
            if (try? directory.product(name)) != nil {
                throw .conflict("the tenant has a product named \(name) already")
            }
            try Self.check(tools, closed: closed)
            let product = Product(
                id: Identifiers.make(.product), tenantId: tenantId, name: name, kind: kind, tools: tools,
                closed: closed, createdAt: now)
            let answer = Answer(ProductView(product: product))
            let written = try await write(.insertProduct(product), answering: answer, for: call, "creating a product")
            if written == .written { directory.add(product) }
            return written.answer(answer)
        }
    }

    /// Replaces a product's catalog (and whether it is closed): calls from now on are checked against it.
    public func updateProduct(_ idOrName: String, tools: [Product.Tool]?, closed: Bool?, call: KeyedCall?)
        async throws(TollgateError) -> Answer<ProductView>
    {
        try await keyed(call) { () async throws(TollgateError) in
            var product = try directory.product(idOrName)
            if let tools { product.tools = tools }
            if let closed { product.closed = closed }
            try Self.check(product.tools, closed: product.closed)
            let answer = Answer(ProductView(product: product))
            let written = try await write(.updateProduct(product), answering: answer, for: call, "updating a product")
            if written == .written { directory.add(product) }
            return written.answer(answer)
        }
    }

    public func product(_ idOrName: String) throws(TollgateError) -> ProductView {
        ProductView(product: try directory.product(idOrName))
    }

    public func products() -> ProductList { ProductList(products: directory.allProducts) }

    static func check(_ tools: [Product.Tool], closed: Bool) throws(TollgateError) {
        guard tools.count <= catalogToolsMax else {
            throw .validation(field: "tools", rule: "at most \(catalogToolsMax) tools")
        }
        var seen: Set<String> = []
        for (index, tool) in tools.enumerated() where !seen.insert(tool.name).inserted {
            throw .validation(field: "tools[\(index)].name", rule: "a name the catalog does not list already")
        }
        if closed, tools.isEmpty {
            throw .validation(
                field: "tools", rule: "at least one tool in a closed catalog (it would refuse every call)")
        }
    }
}

public struct ProductView: JSONRepresentable, Equatable {
    public var product: Product
    public var json: JSONValue {
        [
            "productId": .string(product.id), "name": .string(product.name), "type": .string(product.kind.rawValue),
            "tools": ProductCatalog.json(product.tools), "closed": .bool(product.closed),
            "createdAt": .string(Timestamp.format(product.createdAt)),
        ]
    }
}

public struct ProductList: JSONRepresentable, Equatable {
    public var products: [Product]
    public var json: JSONValue { ["products": .array(products.map { ProductView(product: $0).json })] }
}
