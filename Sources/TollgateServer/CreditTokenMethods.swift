import TollgateCore
import TollgateJSON
import TollgateRuntime
import TollgateWire

/// Credit tokens, verifiable offline: `credentials.issueCredit` signs one, `auth.keys` publishes the keys that
/// verify them (a JWKS, to anyone), `auth.revocations` the tenant's revoked ones, and `keys.rotate` (root) starts a
/// new signing key with an overlap in which both verify.
enum CreditTokenMethods {
    /// Longest overlap of a signing key rotation, in seconds (31 days), and the default (one day).
    static let keyOverlapSecondsMax: Int64 = 2_678_400
    static let keyOverlapSecondsDefault: Int64 = 86_400

    static func register(in router: inout Router) {
        router.tenantOperator(.credentialsIssueCredit, scopes: OperatorScope.agentsWrite) { params, op in
            guard let spendLimit = try params.optionalMoney("spendLimit") else {
                throw WireError.invalidParams(field: "spendLimit", expected: "a decimal amount")
            }
            let signer = try await op.request.supervisor.signingKeys().signer
            return try await op.tenant.issueCreditToken(
                agentId: try params.string("agentId"),
                scopes: try params.optionalStrings("scopes") ?? [AgentScope.meterWrite],
                ttlSeconds: try params.int(
                    "ttlSeconds", range: 1...Int64(op.request.configuration.runtime.credentialTTLSecondsMax)),
                spendLimit: spendLimit, signer: signer)
        }

        router.anyone(.authKeys) { _, context in
            try await context.supervisor.signingKeys().jwks(at: context.supervisor.services.clock.now())
        }

        router.tenantOperator(.authRevocations, scopes: OperatorScope.agentsWrite, OperatorScope.billingRead) {
            params, op in
            await op.tenant.revocations(since: try params.optionalDate("since"))
        }

        router.root(.keysRotate) { params, context in
            let overlap =
                try params.optionalInt("overlapSeconds", range: 0...keyOverlapSecondsMax) ?? keyOverlapSecondsDefault
            let ring = try await context.supervisor.rotateSigningKeys(overlapSeconds: overlap)
            let previous = ring.keys.count > 1 ? ring.keys[ring.keys.count - 2] : nil
            var answer: [String: JSONValue] = ["keyId": .string(ring.signer.kid)]
            if let previous, let retiresAt = previous.retiresAt {
                answer["previousKeyId"] = .string(previous.kid)
                answer["previousRetiresAt"] = .string(Timestamp.format(retiresAt))
            }
            return JSONValue.object(answer)
        }
    }
}
