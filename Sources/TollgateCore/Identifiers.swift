import Foundation
import Synchronization

/// Object ids are strings with a kind prefix (`cus_…`, `agt_…`) followed by 24 base-32 characters: 10 of
/// milliseconds since 1970 and 14 random ones (70 bits). They are readable in logs, globally unique (an id
/// never names objects in two tenants), and sort by creation time, so that inserting them appends to an
/// index instead of landing at random pages of it: what keeps the ledger's inserts cheap as tables grow.
public enum IDKind: String, Sendable, CaseIterable {
    case tenant = "ten"
    case customer = "cus"
    case team = "team"
    case agent = "agt"
    case credential = "cred"
    case operatorCredential = "opc"
    case client = "cli"
    case plan = "plan"
    case subscription = "sub"
    case cap = "cap"
    case receipt = "rcp"
    case session = "ses"
    case planSwap = "swp"
    case alert = "alr"
    case reservation = "rsv"
    /// The stored answer of a keyed call that wrote neither a charge nor a hold.
    case answer = "ans"
    case invoice = "inv"
    case creditGrant = "crg"
    case discount = "dsc"
    case product = "prd"
    case signingKey = "key"
}

public enum Identifiers {
    static let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789".utf8)

    /// A fresh id of the given kind: a time prefix, then bits from the system's secure random generator.
    public static func make(_ kind: IDKind, at date: Date = Date()) -> String {
        "\(kind.rawValue)_" + timePrefix(Timestamp.millis(date)) + randomString(count: 14)
    }

    /// Ten base-32 characters of `millis`, most significant first, in an alphabet whose order matches
    /// byte order, so ids compare as their times do.
    static func timePrefix(_ millis: Int64) -> String {
        var value = UInt64(max(0, millis))
        var characters = [UInt8](repeating: 0, count: 10)
        for index in stride(from: 9, through: 0, by: -1) {
            characters[index] = sortedAlphabet[Int(value & 31)]
            value >>= 5
        }
        return String(decoding: characters, as: UTF8.self)
    }

    /// The same 32 characters as `alphabet`, in byte order.
    static let sortedAlphabet = Array("23456789abcdefghijkmnpqrstuvwxyz".utf8)

    /// `count` characters of the 32-letter alphabet (5 bits each), drawn from the system's secure generator
    /// 60 bits at a time (`RandomBits`).
    public static func randomString(count: Int) -> String {
        String(unsafeUninitializedCapacity: count) { buffer in
            var bits: UInt64 = 0
            var available = 0
            for index in 0..<count {
                if available < 5 {
                    bits = RandomBits.next()
                    available = 60
                }
                buffer[index] = alphabet[Int(bits & 31)]
                bits >>= 5
                available -= 5
            }
            return count
        }
    }

    /// True when `id` has the given kind's prefix: a cheap first check before any lookup.
    public static func hasKind(_ id: String, _ kind: IDKind) -> Bool {
        id.hasPrefix(kind.rawValue + "_")
    }
}

/// Caller-chosen idempotency keys: printable ASCII characters, 1 to 128 of them by default (PROTOCOL.md,
/// "Values"; a server may allow more, `limits.idBytesMax`).
public enum IdempotencyKey {
    public static func isValid(_ key: String, lengthMax: Int = 128) -> Bool {
        let bytes = key.utf8
        return !bytes.isEmpty && bytes.count <= lengthMax && bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
    }
}

/// Bits from the operating system's secure generator, fetched 512 bytes at a time and each served once. Every id
/// and secret draws on them, and a `getrandom` call per draw cost more than the rest of making an id; what is
/// fetched is the same generator's output either way.
enum RandomBits {
    private struct Pool {
        var words = [UInt64](repeating: 0, count: 64)
        var next = 64

        mutating func take() -> UInt64 {
            if next == words.count {
                refill()
                next = 0
            }
            defer { next += 1 }
            return words[next]
        }

        /// One `getrandom` for the whole pool (glibc's and Darwin's `arc4random_buf` read the kernel's generator).
        private mutating func refill() {
            words.withUnsafeMutableBytes { buffer in arc4random_buf(buffer.baseAddress!, buffer.count) }
        }
    }

    private static let pool = Mutex(Pool())

    static func next() -> UInt64 { pool.withLock { $0.take() } }
}
