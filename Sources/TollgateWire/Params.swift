import Foundation
import TollgateCore
import TollgateJSON

/// Typed access to a request's `params` object. A missing field or a wrong JSON type is `-32602` naming the
/// field; a value of the right type that breaks a rule (negative, too long) is `VALIDATION_FAILED`.
public struct Params: Sendable {
    public let object: [String: JSONValue]

    public init(_ value: JSONValue) { object = value.objectValue ?? [:] }

    public func has(_ field: String) -> Bool {
        if let value = object[field], value != .null { return true }
        return false
    }

    public func string(_ field: String, lengthMax: Int = 256) throws -> String {
        guard let value = try optionalString(field, lengthMax: lengthMax) else {
            throw WireError.invalidParams(field: field, expected: "a string")
        }
        return value
    }

    public func optionalString(_ field: String, lengthMax: Int = 256) throws -> String? {
        switch object[field] {
        case nil, .null?: return nil
        case .string(let text)?:
            guard !text.isEmpty, text.utf8.count <= lengthMax else {
                throw TollgateError.validation(field: field, rule: "1 to \(lengthMax) bytes")
            }
            return text
        default: throw WireError.invalidParams(field: field, expected: "a string")
        }
    }

    public func optionalBool(_ field: String) throws -> Bool? {
        switch object[field] {
        case nil, .null?: return nil
        case .bool(let value)?: return value
        default: throw WireError.invalidParams(field: field, expected: "true or false")
        }
    }

    public func optionalInt(_ field: String, range: ClosedRange<Int64>) throws -> Int64? {
        switch object[field] {
        case nil, .null?: return nil
        case .integer(let number)?:
            guard range.contains(number) else {
                throw TollgateError.validation(
                    field: field, rule: "an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return number
        default: throw WireError.invalidParams(field: field, expected: "an integer")
        }
    }

    public func int(_ field: String, range: ClosedRange<Int64>) throws -> Int64 {
        guard let value = try optionalInt(field, range: range) else {
            throw WireError.invalidParams(field: field, expected: "an integer")
        }
        return value
    }

    /// Money is a decimal string, never a JSON number.
    public func optionalMoney(_ field: String, allowNegative: Bool = false) throws -> Money? {
        switch object[field] {
        case nil, .null?: return nil
        case .string(let text)?:
            let amount: Money
            do { amount = try Money(decimal: text) } catch {
                throw TollgateError.validation(field: field, rule: "a decimal string with at most 9 fractional digits")
            }
            guard allowNegative || amount >= .zero else {
                throw TollgateError.validation(field: field, rule: "not negative")
            }
            return amount
        default: throw WireError.invalidParams(field: field, expected: "a decimal string")
        }
    }

    public func money(_ field: String) throws -> Money {
        guard let value = try optionalMoney(field) else {
            throw WireError.invalidParams(field: field, expected: "a decimal string")
        }
        return value
    }

    public func optionalDate(_ field: String) throws -> Date? {
        guard let text = try optionalString(field, lengthMax: 64) else { return nil }
        guard let date = Timestamp.parse(text) else {
            throw TollgateError.validation(field: field, rule: "an RFC 3339 timestamp")
        }
        return date
    }

    public func optionalStrings(_ field: String, countMax: Int = 64) throws -> [String]? {
        switch object[field] {
        case nil, .null?: return nil
        case .array(let items)?:
            guard items.count <= countMax else {
                throw TollgateError.validation(field: field, rule: "at most \(countMax) entries")
            }
            return try items.enumerated().map { index, item in
                guard case .string(let text) = item else {
                    throw WireError.invalidParams(field: "\(field)[\(index)]", expected: "a string")
                }
                return text
            }
        default: throw WireError.invalidParams(field: field, expected: "an array of strings")
        }
    }

    public func optionalObject(_ field: String) throws -> Params? {
        switch object[field] {
        case nil, .null?: return nil
        case .object?: return Params(object[field]!)
        default: throw WireError.invalidParams(field: field, expected: "an object")
        }
    }

    /// Params scoped to a nested object, with field names prefixed for error messages.
    public func nested(_ field: String) throws -> NestedParams? {
        guard let inner = try optionalObject(field) else { return nil }
        return NestedParams(prefix: field, params: inner)
    }
}

/// A nested params object (`usage`, `estimate`) whose errors name the full path (`usage.inputTokens`).
public struct NestedParams: Sendable {
    let prefix: String
    let params: Params

    /// `params`, whose fields errors name as `<prefix>.<field>`.
    public init(prefix: String, params: Params) {
        self.prefix = prefix
        self.params = params
    }

    public func nested(_ field: String) throws -> NestedParams? {
        try renamed { try params.nested(field) }.map { NestedParams(prefix: "\(prefix).\(field)", params: $0.params) }
    }

    func renamed<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as WireError {
            var renamed = error
            if let field = error.data?["field"]?.stringValue, let expected = error.data?["expected"]?.stringValue {
                renamed = .invalidParams(field: "\(prefix).\(field)", expected: expected)
            }
            throw renamed
        } catch TollgateError.validation(let field, let rule) {
            throw TollgateError.validation(field: "\(prefix).\(field)", rule: rule)
        }
    }

    public func optionalInt(_ field: String, range: ClosedRange<Int64>) throws -> Int64? {
        try renamed { try params.optionalInt(field, range: range) }
    }

    public func optionalString(_ field: String, lengthMax: Int = 256) throws -> String? {
        try renamed { try params.optionalString(field, lengthMax: lengthMax) }
    }

    public func optionalMoney(_ field: String) throws -> Money? {
        try renamed { try params.optionalMoney(field) }
    }
}
