/// Object ids are strings with a kind prefix (`cus_…`, `agt_…`) followed by 24 random base-32 characters:
/// readable in logs, unguessable, and globally unique, so that an id never names objects in two tenants.
public enum IDKind: String, Sendable, CaseIterable {
    case tenant = "ten"
    case customer = "cus"
    case team = "team"
    case agent = "agt"
    case credential = "cred"
    case client = "cli"
    case plan = "plan"
    case subscription = "sub"
    case cap = "cap"
    case receipt = "rcp"
    case session = "ses"
}

public enum Identifiers {
    static let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")

    /// A fresh id of the given kind, drawn from the system's secure random generator.
    public static func make(_ kind: IDKind) -> String {
        "\(kind.rawValue)_" + randomString(count: 24)
    }

    public static func randomString(count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in alphabet[Int(generator.next(upperBound: UInt32(alphabet.count)))] })
    }

    /// True when `id` has the given kind's prefix: a cheap first check before any lookup.
    public static func hasKind(_ id: String, _ kind: IDKind) -> Bool {
        id.hasPrefix(kind.rawValue + "_")
    }
}

/// Caller-chosen idempotency keys: 1–128 printable ASCII characters (PROTOCOL.md, "Values").
public enum IdempotencyKey {
    public static let lengthMax = 128

    public static func isValid(_ key: String) -> Bool {
        let bytes = key.utf8
        return !bytes.isEmpty && bytes.count <= lengthMax && bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
    }
}
