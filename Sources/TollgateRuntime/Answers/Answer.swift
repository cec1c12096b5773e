import TollgateJSON

/// The answer to a writing call: the value given now, or — a retry under the idempotency rule — the first
/// answer replayed as it was stored, with `replayed: true`. Its JSON is worked out once, when it is made: the
/// same bytes are stored under the call's key and sent.
public struct Answer<Value: JSONRepresentable>: JSONRepresentable {
    /// The value given now; nil for a replay.
    public let value: Value?
    public let json: JSONValue

    public var replayed: Bool { value == nil }

    init(_ value: Value) {
        self.value = value
        json = value.json
    }

    init(replay: JSONValue) {
        value = nil
        json = replay
    }

    /// A field of the JSON answer (for tests and callers that read one field).
    public subscript(key: String) -> JSONValue? { json[key] }
}
