import Foundation
import TollgateCore
import TollgateStorage

/// Operator credentials (`operators.issue | list | revoke | rotate`), the agent credentials' list and client
/// secret rotation, and when each credential was last used. Secrets are returned once and stored as hashes;
/// calls that return one take no idempotency key (there is nothing a retry could be answered with).
extension TenantActor {
    /// Longest life of an operator credential that has one, in seconds (ten years).
    public static let operatorTTLSecondsMax: Int64 = 315_360_000
    /// Longest overlap of a rotation, in seconds (30 days).
    public static let rotationOverlapSecondsMax: Int64 = 2_592_000
    /// A credential's last use is written at most this often, in seconds: it is a hint, not an audit log.
    static let lastUseResolution: TimeInterval = 60

    /// A new operator credential of this tenant, with `scopes` from `OperatorScope.every`, for `ttlSeconds`
    /// (nil: until revoked).
    public func issueOperator(name: String, scopes: [String], ttlSeconds: Int64?) async throws(TollgateError)
        -> OperatorIssued
    {
        let credential = try newOperator(name: name, scopes: scopes, ttlSeconds: ttlSeconds)
        return try await store(credential)
    }

    /// The operator credential the first one of a tenant is: every scope, no expiry.
    public static func firstOperator(tenantId: String, at date: Date) -> (OperatorCredential, token: String) {
        let token = Secrets.make(prefix: Secrets.operatorTokenPrefix)
        let credential = OperatorCredential(
            id: Identifiers.make(.operatorCredential, at: date), tenantId: tenantId, name: "initial",
            scopes: [OperatorScope.all], createdAt: date, expiresAt: nil, revokedAt: nil,
            tokenPrefix: Secrets.shownPrefix(token))
        return (credential, token)
    }

    public func operatorCredentials() -> OperatorList { OperatorList(credentials: directory.operatorCredentials) }

    /// Revokes an operator credential at once: its open connections are refused from their next request.
    public func revokeOperator(_ id: String, call: KeyedCall?) async throws(TollgateError) -> Answer<CredentialRevoked>
    {
        try await keyed(call) { () async throws(TollgateError) in
            guard directory.operatorCredential(id) != nil else { throw .notFound("no operator credential \(id)") }
            let at = now
            return try await revoke(
                .revokeOperatorCredential(tenantId: tenantId, credentialId: id, at: at), for: call,
                "revoking an operator credential"
            ) { $0.ended(id, at: at) }
        }
    }

    /// A new operator credential with the name, scopes and lifetime of `id`, which stops working after
    /// `overlapSeconds` (0: at once), so that whatever holds the old token can move to the new one.
    public func rotateOperator(_ id: String, overlapSeconds: Int64) async throws(TollgateError) -> OperatorIssued {
        guard let old = directory.operatorCredential(id) else { throw .notFound("no operator credential \(id)") }
        guard old.isUsable(at: now) else {
            throw .conflict("operator credential \(id) has ended: issue a new one (operators.issue)")
        }
        let ttl = old.expiresAt.map { Int64(max(1, $0.timeIntervalSince(old.createdAt).rounded(.up))) }
        var issued = try await store(try newOperator(name: old.name, scopes: old.scopes, ttlSeconds: ttl))
        let endsAt = now.addingTimeInterval(TimeInterval(try Self.overlap(overlapSeconds)))
        try await write(
            .revokeOperatorCredential(tenantId: tenantId, credentialId: id, at: endsAt),
            "ending a rotated operator credential")
        ended(id, at: endsAt)
        issued.replaced = (id, directory.operatorCredential(id)?.revokedAt ?? endsAt)
        return issued
    }

    /// An operator credential ends at `at`, in memory and for its alert subscriptions.
    private func ended(_ id: String, at: Date) {
        directory.revokeOperator(id, at: at)
        services.alerts.credentialEnds(tenantId: tenantId, credentialId: id, at: at)
    }

    /// The operator credential if it still works; `UNAUTHENTICATED` otherwise.
    public func usableOperator(_ id: String) throws(TollgateError) -> OperatorCredential {
        try directory.usableOperator(id, at: now)
    }

    /// The agents of the tenant, or of one of its teams.
    public func agentList(teamId: String?) throws(TollgateError) -> AgentList {
        if let teamId { _ = try directory.team(teamId) }
        return AgentList(agents: directory.agents(ofTeam: teamId))
    }

    /// The agent credentials of the tenant, or of one of its agents.
    public func agentCredentials(agentId: String?) throws(TollgateError) -> CredentialList {
        if let agentId { _ = try directory.agent(agentId) }
        return CredentialList(credentials: directory.credentials(ofAgent: agentId))
    }

    /// A new client secret for `agentId`; the one before keeps working for `overlapSeconds` (0: stops at once).
    /// Tokens already exchanged with it are credentials of their own, and last until they expire or are revoked.
    public func rotateClientSecret(agentId: String, overlapSeconds: Int64) async throws(TollgateError)
        -> ClientSecretRotated
    {
        let agent = try directory.agent(agentId)
        let overlap = try Self.overlap(overlapSeconds)
        let secret = Secrets.make(prefix: Secrets.clientSecretPrefix)
        let until = overlap == 0 ? nil : now.addingTimeInterval(TimeInterval(overlap))
        let rotated = ClientSecretRotated(agent: agent, clientSecret: secret, previousValidUntil: until)
        try await write(
            .rotateClientSecret(
                tenantId: tenantId, agentId: agentId, secretHash: Secrets.hash(secret), previousUntil: until),
            "rotating a client secret")
        return rotated
    }

    /// Notes that a credential (agent or operator) authenticated a connection, when the last note is older than
    /// `lastUseResolution`. A storage failure here fails nothing: it is logged.
    public func noteUse(_ credentialId: String) async {
        let at = now
        let last =
            directory.credential(credentialId)?.lastUsedAt ?? directory.operatorCredential(credentialId)?.lastUsedAt
        if let last, at.timeIntervalSince(last) < Self.lastUseResolution { return }
        directory.noteUse(credentialId, at: at)
        do {
            try await write(
                .noteCredentialUse(tenantId: tenantId, credentialId: credentialId, at: at), "noting a credential's use")
        } catch {
            services.logger.warning(
                "could not note a credential's use",
                metadata: ["tenant": "\(tenantId)", "credential": "\(credentialId)"])
        }
    }

    private func newOperator(name: String, scopes: [String], ttlSeconds: Int64?) throws(TollgateError)
        -> OperatorCredential
    {
        // Its longest length is the wire's to check (`HierarchyMethods.nameBytesMax`), as for every name.
        guard !name.isEmpty else { throw .validation(field: "name", rule: "not empty") }
        guard !scopes.isEmpty else { throw .validation(field: "scopes", rule: "at least one scope") }
        for (index, scope) in scopes.enumerated() where !OperatorScope.every.contains(scope) {
            throw .validation(
                field: "scopes[\(index)]", rule: "one of \(OperatorScope.every.sorted().joined(separator: ", "))")
        }
        if let ttlSeconds, !(1...Self.operatorTTLSecondsMax).contains(ttlSeconds) {
            throw .validation(field: "ttlSeconds", rule: "from 1 to \(Self.operatorTTLSecondsMax)")
        }
        let at = now
        return OperatorCredential(
            id: Identifiers.make(.operatorCredential, at: at), tenantId: tenantId, name: name,
            scopes: Array(Set(scopes)).sorted(), createdAt: at,
            expiresAt: ttlSeconds.map { at.addingTimeInterval(TimeInterval($0)) }, revokedAt: nil, tokenPrefix: nil)
    }

    /// Stores `credential` with a fresh token.
    private func store(_ credential: OperatorCredential) async throws(TollgateError) -> OperatorIssued {
        let token = Secrets.make(prefix: Secrets.operatorTokenPrefix)
        var credential = credential
        credential.tokenPrefix = Secrets.shownPrefix(token)
        let issued = OperatorIssued(credential: credential, token: token)
        try await write(
            .insertOperatorCredential(credential, tokenHash: Secrets.hash(token)), "issuing an operator credential")
        directory.add(credential)
        return issued
    }

    /// Writes a change no call's key answers for.
    private func write(_ change: TenantWrite, _ what: String) async throws(TollgateError) {
        try await storage(what) { () async throws(StorageError) in _ = try await services.store.write(change) }
    }

    private static func overlap(_ seconds: Int64) throws(TollgateError) -> Int64 {
        guard (0...rotationOverlapSecondsMax).contains(seconds) else {
            throw .validation(field: "overlapSeconds", rule: "from 0 to \(rotationOverlapSecondsMax)")
        }
        return seconds
    }
}
