import Crypto
import Foundation
import TollgateCore
import TollgateStorage

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

    /// The first characters of a secret, kept to tell credentials apart in a list: its kind's prefix and 4 of its
    /// 32 random characters (20 of its 160 bits: the 140 left are still far beyond guessing).
    public static func shownPrefix(_ secret: String) -> String { String(secret.prefix(8)) }

    /// Whether `secret` is the agent's client secret, or the one before it still in its overlap at `now`.
    public static func accepts(_ secrets: ClientSecrets, _ secret: String, at now: Date) -> Bool {
        let hash = hash(secret)
        // Both compared always, so the time taken says nothing about which matched.
        let current = equal(secrets.hash, hash)
        let previous = secrets.previousHash.map { equal($0, hash) } ?? false
        return current || (previous && secrets.previousUntil.map { now < $0 } ?? false)
    }

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
