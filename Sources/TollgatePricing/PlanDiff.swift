import TollgateCore
import TollgateJSON

/// The differences between two plan documents, field by field (`charges[0].rates.search: "0.001" → "0.002"`),
/// for `tollgate plans diff`.
public enum PlanDiff {
    public struct Change: Sendable, Hashable {
        public var path: String
        /// nil when the field is absent on that side.
        public var old: JSONValue?
        public var new: JSONValue?
    }

    public static func changes(from old: JSONValue, to new: JSONValue) -> [Change] {
        var changes: [Change] = []
        walk(old, new, path: "", into: &changes)
        return changes
    }

    private static func walk(_ old: JSONValue?, _ new: JSONValue?, path: String, into changes: inout [Change]) {
        switch (old, new) {
        case (.object(let a)?, .object(let b)?):
            for key in Set(a.keys).union(b.keys).sorted() {
                walk(a[key], b[key], path: path.isEmpty ? key : "\(path).\(key)", into: &changes)
            }
        case (.array(let a)?, .array(let b)?):
            for index in 0..<max(a.count, b.count) {
                walk(
                    index < a.count ? a[index] : nil, index < b.count ? b[index] : nil, path: "\(path)[\(index)]",
                    into: &changes)
            }
        default:
            if old != new { changes.append(Change(path: path, old: old, new: new)) }
        }
    }
}
