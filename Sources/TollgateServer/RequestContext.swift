import TollgateCore
import TollgateRuntime
import TollgateWire

/// Everything a method handler may use about its connection and the server.
struct RequestContext: Sendable {
    let connection: ConnectionState
    let supervisor: Supervisor
    let configuration: ServerConfiguration
    let serverInfo: ServerInfo
    /// Failed authentications of every connection of the listener (`AuthThrottle`).
    let authThrottle: AuthThrottle

    /// Longest id or idempotency key a request may carry (`limits.idBytesMax`).
    var idBytesMax: Int { configuration.listener.idBytesMax }
}

public struct ServerInfo: Sendable {
    public var version: String
    /// This node's address as clients should reach it.
    public var node: String
}

/// An operator acting in one tenant: a tenant operator in its own, or root in the one it named (`tenantId`).
struct OperatorCaller: Sendable {
    let tenant: TenantActor
    /// The tenant operator's credential, as its tenant's actor has it this request; nil for root.
    let credential: OperatorCredential?
    let request: RequestContext
}

/// An agent, by the credential its connection authenticated with. The tenant actor checks that credential
/// again (revoked or expired since?) in the same turn as the work, so the check costs no extra hop.
struct AgentCaller: Sendable {
    let tenant: TenantActor
    let agentId: String
    let credentialId: String
    let request: RequestContext
}

/// An agent or an operator, for the methods both may call (an agent only on its own objects).
enum Caller: Sendable {
    case agent(AgentCaller)
    case tenantOperator(OperatorCaller)

    var tenant: TenantActor {
        switch self {
        case .agent(let agent): agent.tenant
        case .tenantOperator(let op): op.tenant
        }
    }

    var request: RequestContext {
        switch self {
        case .agent(let agent): agent.request
        case .tenantOperator(let op): op.request
        }
    }

    /// Who the tenant actor sees.
    var viewer: Viewer {
        switch self {
        case .agent(let agent): .agent(credentialId: agent.credentialId)
        case .tenantOperator: .tenantOperator
        }
    }
}
