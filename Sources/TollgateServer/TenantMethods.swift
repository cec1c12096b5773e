import TollgateCore
import TollgateJSON
import TollgateRuntime
import TollgateWire

/// `tenants.create` (root) and `tenants.list`.
enum TenantMethods {
    static func register(in router: inout Router) {
        router.root(.tenantsCreate) { params, context in
            try await context.supervisor.createTenant(
                name: try params.string("name", lengthMax: HierarchyMethods.nameBytesMax))
        }

        router.anyOperator(.tenantsList) { _, context, principal in
            guard case .tenantOperator(let tenantId, _, _) = principal else {
                let tenants = try await context.supervisor.allTenants()
                return JSONValue.object([
                    "tenants": .array(tenants.map { ["tenantId": .string($0.id), "name": .string($0.name)] })
                ])
            }
            return JSONValue.object(["tenants": [["tenantId": .string(tenantId)]]])
        }
    }
}
