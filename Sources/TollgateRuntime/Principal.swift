/// Who is on the other end of a connection, established by `auth.hello`.
public enum Principal: Sendable, Equatable {
    /// The root operator: creates tenants and may act in any tenant by naming it.
    case root
    /// An operator of one tenant, by one of its operator credentials: sees and changes only that tenant, and only
    /// what its scopes (`OperatorScope`) allow.
    case tenantOperator(tenantId: String, credentialId: String, scopes: [String])
    /// An agent holding a credential; its scopes come from the credential.
    case agent(tenantId: String, agentId: String, credentialId: String, scopes: [String])

    public var tenantId: String? {
        switch self {
        case .root: nil
        case .tenantOperator(let tenantId, _, _), .agent(let tenantId, _, _, _): tenantId
        }
    }
}

/// Who asks the tenant about a session: an operator sees any of the tenant's sessions; an agent, by the
/// credential it called with (checked in the same actor turn), only its own — another's is NOT_FOUND.
public enum Viewer: Sendable, Equatable {
    case tenantOperator
    case agent(credentialId: String)
}
