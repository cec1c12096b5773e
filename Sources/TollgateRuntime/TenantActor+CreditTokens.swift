import Foundation
import TollgateCore
import TollgateStorage

/// Credit tokens (`credentials.issueCredit`): a credential whose token is a JWT signed by the server's key, so that
/// it can be checked offline; and the revocations an offline checker must know of (`auth.revocations`).
extension TenantActor {
    public func issueCreditToken(
        agentId: String, scopes: [String], ttlSeconds: Int64, spendLimit: Money, signer: SigningKeyRing.Key
    ) async throws(TollgateError) -> CreditTokenIssued {
        try checkNewCredential(agentId: agentId, scopes: scopes, ttlSeconds: ttlSeconds)
        guard spendLimit > .zero else { throw .validation(field: "spendLimit", rule: "more than 0") }
        let at = now
        // NumericDate is whole seconds: the credential expires when the token says it does.
        let expiresAt = Date(timeIntervalSince1970: (at.timeIntervalSince1970 + Double(ttlSeconds)).rounded(.down))
        let credential = Credential(
            id: Identifiers.make(.credential, at: at), tenantId: tenantId, agentId: agentId,
            scopes: Array(Set(scopes)).sorted(), expiresAt: expiresAt, revokedAt: nil, spendLimit: spendLimit)
        let token = CreditToken(
            tenantId: tenantId, agentId: agentId, credentialId: credential.id, scopes: credential.scopes,
            spendLimit: spendLimit, issuedAt: at, expiresAt: expiresAt)
        let signed: String
        do { signed = try token.signed(by: signer) } catch {
            services.logger.error("signing a credit token failed", metadata: ["error": "\(error)"])
            throw .unavailable("the credit token could not be signed")
        }
        let issued = try await store(credential, token: signed)
        return CreditTokenIssued(issued: issued, keyId: signer.kid)
    }

    /// The tenant's credentials revoked at or after `since` that have not expired yet: what an offline checker of
    /// credit tokens must refuse although their signature is good.
    public func revocations(since: Date?) -> Revocations {
        let at = now
        let revoked = directory.credentials(ofAgent: nil).filter { credential in
            guard let revokedAt = credential.revokedAt, revokedAt <= at, credential.expiresAt > at else { return false }
            return since.map { revokedAt >= $0 } ?? true
        }
        return Revocations(revoked: revoked.sorted { ($0.revokedAt!, $0.id) < ($1.revokedAt!, $1.id) }, asOf: at)
    }
}
