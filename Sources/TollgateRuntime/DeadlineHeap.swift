import Foundation

/// Ids ordered by a deadline, soonest first (a binary min-heap): what the sweeper walks instead of every hold
/// or session. Entries are not removed when their object ends or moves its deadline; the owner checks each
/// entry as it comes up and skips (or pushes again) what is stale, so that no hot path searches the heap.
struct DeadlineHeap {
    private var items: [(deadline: Date, id: String)] = []

    var count: Int { items.count }

    func peek() -> (deadline: Date, id: String)? { items.first }

    mutating func push(_ deadline: Date, _ id: String) {
        items.append((deadline, id))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].deadline < items[parent].deadline else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    /// Takes the soonest entry out.
    @discardableResult
    mutating func pop() -> (deadline: Date, id: String)? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let first = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count, items[left].deadline < items[smallest].deadline { smallest = left }
            if right < items.count, items[right].deadline < items[smallest].deadline { smallest = right }
            guard smallest != parent else { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return first
    }

    mutating func removeAll() { items.removeAll() }
}
