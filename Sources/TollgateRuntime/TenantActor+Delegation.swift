import Foundation
import TollgateCore
import TollgateStorage

/// Budget delegation (`credentials.delegate`): an agent's credential mints a child credential for a sub-agent,
/// never broader, longer-lived or richer than itself. The child charges as the same agent, so every cap of the
/// parent's path holds it; its own limit bounds it, and its spend counts against the parent's limit too
/// (`CapLedger.expanded`), so children together can never spend more than the parent has. Revoking the parent
/// revokes them.
extension TenantActor {
    public func delegateCredential(
        from parentId: String, scopes: [String], ttlSeconds: Int64, spendLimit: Money, label: String?
    ) async throws(TollgateError) -> CredentialIssued {
        let parent = try usableCredential(parentId)
        guard !scopes.isEmpty else { throw .validation(field: "scopes", rule: "at least one scope") }
        for (index, scope) in scopes.enumerated() where !parent.scopes.contains(scope) {
            throw .validation(
                field: "scopes[\(index)]",
                rule: "one of the delegating credential's (\(parent.scopes.joined(separator: ", ")))")
        }
        let lifeLeft = Int64(parent.expiresAt.timeIntervalSince(now).rounded(.down))
        guard (1...max(1, lifeLeft)).contains(ttlSeconds), lifeLeft >= 1 else {
            throw .validation(
                field: "ttlSeconds", rule: "from 1 to \(lifeLeft) (what the delegating credential has left)")
        }
        guard spendLimit > .zero else { throw .validation(field: "spendLimit", rule: "more than 0") }
        if let cap = Self.credentialCap(parent) {
            let target = ScopeRef(.credential, parent.id)
            let customerId = try directory.team(try directory.agent(parent.agentId).teamId).customerId
            let left = capLedger.remaining(cap, on: [target], during: directory.capWindows(customerId, at: now))
            guard spendLimit <= left else {
                throw .validation(
                    field: "spendLimit", rule: "at most \(left.decimalString) (what the delegating credential has left)"
                )
            }
        }
        if label?.isEmpty == true { throw .validation(field: "label", rule: "not empty") }
        return try await store(
            Credential(
                id: Identifiers.make(.credential), tenantId: tenantId, agentId: parent.agentId,
                scopes: Array(Set(scopes)).sorted(), expiresAt: now.addingTimeInterval(TimeInterval(ttlSeconds)),
                revokedAt: nil, spendLimit: spendLimit, parentId: parent.id, label: label))
    }
}
