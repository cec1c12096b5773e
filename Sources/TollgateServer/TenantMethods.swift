import TollgateCore
import TollgateRuntime
import TollgateWire

/// `tenants.create` (root) and `tenants.list`.
enum TenantMethods {
    static func register(in router: inout Router) {
        router.root("tenants.create") { params, context in
            let created = try await context.supervisor.createTenant(
                name: try params.string("name", lengthMax: HierarchyMethods.nameBytesMax))
            return [
                "tenantId": .string(created.tenant.id), "name": .string(created.tenant.name),
                "operatorToken": .string(created.operatorToken),
            ]
        }

        router.anyOperator("tenants.list") { _, context, principal in
            guard case .tenantOperator(let tenantId) = principal else {
                let tenants = try await context.supervisor.allTenants()
                return ["tenants": .array(tenants.map { ["tenantId": .string($0.id), "name": .string($0.name)] })]
            }
            return ["tenants": [["tenantId": .string(tenantId)]]]
        }
    }
}
