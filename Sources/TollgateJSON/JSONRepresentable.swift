/// A value with one JSON form, written in one place (its `json`): the answers and alerts the server returns,
/// stored for replays and sent on the wire in this very form.
public protocol JSONRepresentable: Sendable {
    var json: JSONValue { get }
}

extension JSONValue: JSONRepresentable {
    public var json: JSONValue { self }
}
