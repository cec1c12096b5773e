/// Who is on the other end of a connection, established by `auth.hello`.
public enum Principal: Sendable, Equatable {
    /// The root operator: creates tenants and may act in any tenant by naming it.
    case root
    /// An operator of one tenant: sees and changes only that tenant.
    case tenantOperator(tenantId: String)
    /// An agent holding a credential; its scopes come from the credential.
    case agent(tenantId: String, agentId: String, credentialId: String, scopes: [String])

    public var tenantId: String? {
        switch self {
        case .root: nil
        case .tenantOperator(let tenantId), .agent(let tenantId, _, _, _): tenantId
        }
    }
}
