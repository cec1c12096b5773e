import Foundation
import TollgateCore
import TollgateJSON

/// An operator credential and its token (`operators.issue`, `operators.rotate`, `tenants.create`'s first): the
/// token is shown this once and never stored.
public struct OperatorIssued: JSONRepresentable {
    public var credential: OperatorCredential
    public var token: String
    /// For a rotation: the credential it replaces, and when that one stops working.
    public var replaced: (id: String, endsAt: Date)?

    public var json: JSONValue {
        guard case .object(var fields) = OperatorView(credential: credential).json else { return .null }
        fields["token"] = .string(token)
        if let replaced {
            fields["replaces"] = .string(replaced.id)
            fields["replacedEndsAt"] = .string(Timestamp.format(replaced.endsAt))
        }
        return .object(fields)
    }
}

/// An operator credential as `operators.list` shows it: never its token nor the token's hash.
public struct OperatorView: JSONRepresentable {
    public var credential: OperatorCredential
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "credentialId": .string(credential.id), "name": .string(credential.name),
            "scopes": .array(credential.scopes.map(JSONValue.string)),
            "createdAt": .string(Timestamp.format(credential.createdAt)),
        ]
        if let prefix = credential.tokenPrefix { fields["prefix"] = .string(prefix) }
        if let expiresAt = credential.expiresAt { fields["expiresAt"] = .string(Timestamp.format(expiresAt)) }
        if let revokedAt = credential.revokedAt { fields["revokedAt"] = .string(Timestamp.format(revokedAt)) }
        if let used = credential.lastUsedAt { fields["lastUsedAt"] = .string(Timestamp.format(used)) }
        return .object(fields)
    }
}

public struct OperatorList: JSONRepresentable {
    public var credentials: [OperatorCredential]
    public var json: JSONValue {
        ["operators": .array(credentials.map { OperatorView(credential: $0).json })]
    }
}

/// An agent credential as `credentials.list` shows it: never its token nor the token's hash.
public struct CredentialView: JSONRepresentable {
    public var credential: Credential
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "credentialId": .string(credential.id), "agentId": .string(credential.agentId),
            "scopes": .array(credential.scopes.map(JSONValue.string)),
            "expiresAt": .string(Timestamp.format(credential.expiresAt)),
        ]
        if let prefix = credential.tokenPrefix { fields["prefix"] = .string(prefix) }
        if let revokedAt = credential.revokedAt { fields["revokedAt"] = .string(Timestamp.format(revokedAt)) }
        if let used = credential.lastUsedAt { fields["lastUsedAt"] = .string(Timestamp.format(used)) }
        if let spendLimit = credential.spendLimit { fields["spendLimit"] = .string(spendLimit.decimalString) }
        if let parentId = credential.parentId { fields["delegatedFrom"] = .string(parentId) }
        if let label = credential.label { fields["label"] = .string(label) }
        return .object(fields)
    }
}

public struct CredentialList: JSONRepresentable {
    public var credentials: [Credential]
    public var json: JSONValue {
        ["credentials": .array(credentials.map { CredentialView(credential: $0).json })]
    }
}

/// Agents as `agents.list` shows them: never a client secret nor its hash.
public struct AgentList: JSONRepresentable {
    public var agents: [Agent]
    public var json: JSONValue {
        [
            "agents": .array(
                agents.map { agent in
                    var fields: [String: JSONValue] = [
                        "agentId": .string(agent.id), "teamId": .string(agent.teamId), "name": .string(agent.name),
                        "clientId": .string(agent.clientId),
                    ]
                    if let type = agent.agentType { fields["agentType"] = .string(type) }
                    return .object(fields)
                })
        ]
    }
}

/// A new client secret for an agent (`credentials.rotate`), shown this once.
public struct ClientSecretRotated: JSONRepresentable {
    public var agent: Agent
    public var clientSecret: String
    /// Until when the secret before it still works; nil when it stopped at once.
    public var previousValidUntil: Date?
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "agentId": .string(agent.id), "clientId": .string(agent.clientId), "clientSecret": .string(clientSecret),
        ]
        if let previousValidUntil { fields["previousValidUntil"] = .string(Timestamp.format(previousValidUntil)) }
        return .object(fields)
    }
}

/// A credit token as `credentials.issueCredit` answers it: the credential, its signed token (shown once) and the
/// key that signed it.
public struct CreditTokenIssued: JSONRepresentable {
    public var issued: CredentialIssued
    public var keyId: String
    public var json: JSONValue {
        guard case .object(var fields) = issued.json else { return .null }
        fields["keyId"] = .string(keyId)
        return .object(fields)
    }
}

/// `auth.revocations`: revoked credentials that have not expired, oldest revocation first.
public struct Revocations: JSONRepresentable {
    /// How often an offline checker should ask, in seconds: the longest a revoked credit token may still be taken
    /// by a checker that does.
    public static let pollSeconds: Int64 = 30
    public var revoked: [Credential]
    public var asOf: Date
    public var json: JSONValue {
        [
            "revocations": .array(
                revoked.map {
                    ["credentialId": .string($0.id), "revokedAt": .string(Timestamp.format($0.revokedAt!))]
                }),
            "asOf": .string(Timestamp.format(asOf)), "pollSeconds": .integer(Self.pollSeconds),
        ]
    }
}
