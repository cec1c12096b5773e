import Crypto
import Foundation
import TollgateCore
import TollgateJSON

/// The server's Ed25519 signing keys for credit tokens (`credentials.issueCredit`): the newest signs, and every key
/// not retired yet verifies — so after a rotation (`keys.rotate`) tokens signed by the key before go on verifying
/// through the overlap, here and wherever `auth.keys` was fetched. A value: rotation and the JWKS are tested
/// without a server.
///
/// The private keys are kept in storage (the settings row `signingKeys`): whoever can read the database can sign
/// credit tokens, as whoever can write it could raise a spend limit anyway.
public struct SigningKeyRing: Sendable {
    public struct Key: Sendable {
        public var kid: String
        public var privateKey: Curve25519.Signing.PrivateKey
        public var createdAt: Date
        /// When it stops verifying; nil while it is the signer (and until a rotation retires it).
        public var retiresAt: Date?

        public var publicKeyBytes: Data { privateKey.publicKey.rawRepresentation }
    }

    /// The settings row the ring is kept in.
    public static let settingKey = "signingKeys"

    /// Newest last.
    public private(set) var keys: [Key]

    public init(keys: [Key]) { self.keys = keys }

    /// A ring with one fresh key.
    public static func fresh(at date: Date) -> SigningKeyRing {
        SigningKeyRing(keys: [Key(kid: Identifiers.make(.signingKey, at: date), privateKey: .init(), createdAt: date)])
    }

    public var signer: Key { keys[keys.count - 1] }

    /// The keys that verify at `now`: the signer and those within their overlap.
    public func verifying(at now: Date) -> [Key] { keys.filter { $0.retiresAt.map { now < $0 } ?? true } }

    /// A new signer from `now`; the one before verifies for `overlapSeconds` more. Keys retired for good are
    /// dropped.
    public mutating func rotate(at now: Date, overlapSeconds: Int64) {
        keys = verifying(at: now)
        keys[keys.count - 1].retiresAt = now.addingTimeInterval(TimeInterval(overlapSeconds))
        keys.append(Key(kid: Identifiers.make(.signingKey, at: now), privateKey: .init(), createdAt: now))
    }

    /// The public keys that verify at `now`, as a JSON Web Key Set (RFC 7517; OKP keys, RFC 8037).
    public func jwks(at now: Date) -> JSONValue {
        [
            "keys": .array(
                verifying(at: now).map { key in
                    [
                        "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": .string(key.kid),
                        "x": .string(Base64URL.encode(key.publicKeyBytes)),
                    ]
                })
        ]
    }

    // MARK: storage

    /// The ring as its settings row holds it.
    public var stored: String {
        JSONCodec.string(
            .array(
                keys.map { key in
                    var fields: [String: JSONValue] = [
                        "kid": .string(key.kid),
                        "privateKey": .string(Base64URL.encode(key.privateKey.rawRepresentation)),
                        "createdAt": .integer(Timestamp.millis(key.createdAt)),
                    ]
                    if let retiresAt = key.retiresAt { fields["retiresAt"] = .integer(Timestamp.millis(retiresAt)) }
                    return .object(fields)
                }))
    }

    /// The ring from its settings row; nil when the row is not one.
    public init?(stored text: String) {
        guard case .array(let items)? = try? JSONCodec.parse(text), !items.isEmpty else { return nil }
        var keys: [Key] = []
        for item in items {
            guard let kid = item["kid"]?.stringValue,
                let raw = item["privateKey"]?.stringValue.flatMap(Base64URL.decode),
                let privateKey = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw),
                let created = item["createdAt"]?.int64Value
            else { return nil }
            keys.append(
                Key(
                    kid: kid, privateKey: privateKey, createdAt: Timestamp.date(millis: created),
                    retiresAt: item["retiresAt"]?.int64Value.map(Timestamp.date(millis:))))
        }
        self.keys = keys
    }
}

/// Base64 with the URL alphabet and no padding (RFC 4648 §5), as JWTs and JWKs spell bytes.
public enum Base64URL {
    public static func encode(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func decode(_ text: String) -> Data? {
        guard text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            return nil
        }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}
