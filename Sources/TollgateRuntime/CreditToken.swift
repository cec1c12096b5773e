import Crypto
import Foundation
import TollgateCore
import TollgateJSON

/// A credit token: a JWT (RFC 7519) signed with Ed25519 (`alg: EdDSA`) that carries what its holder may do and
/// spend — tenant, agent, scopes, spend limit, expiry and an id — so that an MCP server can check it offline
/// against `auth.keys`. The server itself enforces the limit on its own ledger: the token's id is a credential of
/// the tenant, capped at the limit, so the authoritative spend never leaves the server.
public struct CreditToken: Sendable, Equatable {
    public static let issuer = "tollgate"

    public var tenantId: String
    public var agentId: String
    /// The credential this token is (`jti`).
    public var credentialId: String
    public var scopes: [String]
    public var spendLimit: Money
    public var issuedAt: Date
    public var expiresAt: Date

    public init(
        tenantId: String, agentId: String, credentialId: String, scopes: [String], spendLimit: Money, issuedAt: Date,
        expiresAt: Date
    ) {
        self.tenantId = tenantId
        self.agentId = agentId
        self.credentialId = credentialId
        self.scopes = scopes
        self.spendLimit = spendLimit
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }

    /// Whether `token` has the shape of a JWT (three base64url parts), as opposed to an `AGT-` or `TGO-` token.
    public static func looksSigned(_ token: String) -> Bool {
        token.hasPrefix("eyJ") && token.split(separator: ".", omittingEmptySubsequences: false).count == 3
    }

    /// The claims; times are whole seconds (NumericDate).
    var claims: JSONValue {
        [
            "iss": .string(Self.issuer), "sub": .string(agentId), "tid": .string(tenantId),
            "jti": .string(credentialId), "scope": .string(scopes.joined(separator: " ")),
            "spend_limit": .string(spendLimit.decimalString),
            "iat": .integer(Int64(issuedAt.timeIntervalSince1970.rounded(.down))),
            "exp": .integer(Int64(expiresAt.timeIntervalSince1970.rounded(.down))),
        ]
    }

    /// The signed token, by `key`.
    public func signed(by key: SigningKeyRing.Key) throws -> String {
        let header: JSONValue = ["alg": "EdDSA", "typ": "JWT", "kid": .string(key.kid)]
        let input =
            Base64URL.encode(Data(JSONCodec.string(header).utf8)) + "."
            + Base64URL.encode(Data(JSONCodec.string(claims).utf8))
        let signature = try key.privateKey.signature(for: Data(input.utf8))
        return input + "." + Base64URL.encode(signature)
    }

    /// The token's claims when its signature is one of `keys`' and it has not expired at `now`; nil otherwise —
    /// whatever is wrong with it, so that a caller learns nothing from the answer.
    public static func verified(_ token: String, keys: [SigningKeyRing.Key], at now: Date) -> CreditToken? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, let headerBytes = Base64URL.decode(parts[0]),
            let header = try? JSONCodec.parse(Array(headerBytes)), header["alg"] == "EdDSA",
            let kid = header["kid"]?.stringValue, let key = keys.first(where: { $0.kid == kid }),
            let signature = Base64URL.decode(parts[2]),
            key.privateKey.publicKey.isValidSignature(signature, for: Data((parts[0] + "." + parts[1]).utf8)),
            let payloadBytes = Base64URL.decode(parts[1]), let claims = try? JSONCodec.parse(Array(payloadBytes)),
            claims["iss"]?.stringValue == issuer, let tenantId = claims["tid"]?.stringValue,
            let agentId = claims["sub"]?.stringValue, let credentialId = claims["jti"]?.stringValue,
            let scope = claims["scope"]?.stringValue, let limit = claims["spend_limit"]?.stringValue,
            let spendLimit = try? Money(decimal: limit), let issued = claims["iat"]?.int64Value,
            let expires = claims["exp"]?.int64Value, now.timeIntervalSince1970 < Double(expires)
        else { return nil }
        return CreditToken(
            tenantId: tenantId, agentId: agentId, credentialId: credentialId,
            scopes: scope.split(separator: " ").map(String.init), spendLimit: spendLimit,
            issuedAt: Date(timeIntervalSince1970: Double(issued)),
            expiresAt: Date(timeIntervalSince1970: Double(expires)))
    }
}
