import Crypto
import Foundation
import TollgateCore

/// Bearer secrets: how they look, how they are made, and the only form in which they are stored (a hash).
///
/// Secrets carry 160 bits of randomness, so a plain SHA-256 is the right hash: there is nothing to brute-force
/// that a slow password hash would protect. The prefix tells an operator what leaked if one shows up in a log.
public enum Secrets {
    /// An agent credential (`credentials.issue`, `auth.token`).
    public static let agentTokenPrefix = "AGT-"
    /// A tenant operator token (`tenants.create`).
    public static let operatorTokenPrefix = "TGO-"
    /// The root operator token, when the server generates it.
    public static let rootTokenPrefix = "TGR-"
    /// An agent's client secret (`agents.create`).
    public static let clientSecretPrefix = "TGS-"

    public static func make(prefix: String) -> String { prefix + Identifiers.randomString(count: 32) }

    /// Whether two hashes (or any two strings) are equal, in a time that depends on their lengths only — never on
    /// where they first differ, which a caller timing many guesses could otherwise learn.
    public static func equal(_ lhs: String, _ rhs: String) -> Bool {
        let (left, right) = (Array(lhs.utf8), Array(rhs.utf8))
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }

    /// Lower-case hex SHA-256 of the secret's UTF-8 bytes.
    public static func hash(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
