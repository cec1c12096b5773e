/// One configuration key of a component: its name, where its value lives in the component's configuration,
/// and what it means (the note `Config/tollgate.json` carries). Keys are read from `limits.<name>` in the
/// configuration file and from `TOLLGATE_LIMITS_<NAME>` in the environment.
public struct Setting<Configuration>: Sendable {
    public let name: String
    public let path: any WritableKeyPath<Configuration, Int> & Sendable
    public let note: String

    public init(_ name: String, _ path: any WritableKeyPath<Configuration, Int> & Sendable, _ note: String) {
        self.name = name
        self.path = path
        self.note = note
    }
}

/// A component's configuration: its defaults (`init()`), the keys it reads, and the rules its own values keep.
/// Rules between components are checked by the server configuration that nests them.
public protocol ComponentConfiguration: Sendable, Equatable {
    /// The defaults, written once.
    init()
    /// Every key the component reads.
    static var settings: [Setting<Self>] { get }
    /// Checks each value; the first violation is thrown.
    func validate() throws(ConfigurationError)
}

/// A configuration value that breaks a rule: the key (as written in the file) and what it must be.
public enum ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalid(key: String, rule: String)

    public var description: String {
        switch self {
        case .invalid(let key, let rule): "configuration \(key) must be \(rule)"
        }
    }

    /// Throws `.invalid(key: "limits.<name>", rule)` unless `ok`.
    public static func check(_ ok: Bool, _ name: String, _ rule: String) throws(ConfigurationError) {
        if !ok { throw .invalid(key: "limits.\(name)", rule: rule) }
    }
}
