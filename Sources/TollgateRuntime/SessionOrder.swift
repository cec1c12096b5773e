import Foundation

/// The tenant's open sessions in the order they opened, so that `sessions.list` reads the newest few without
/// sorting them all. A closed session leaves its entry behind (skipped when read) until enough have piled up
/// to be worth a compaction.
struct SessionOrder {
    private var entries: [(openedAt: Date, id: String)] = []
    private var stale = 0

    /// Sessions mostly open in time order, so this appends; one adopted late from storage is put in its place.
    mutating func insert(_ id: String, openedAt: Date) {
        guard let last = entries.last, (openedAt, id) < (last.openedAt, last.id) else {
            entries.append((openedAt, id))
            return
        }
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if (entries[middle].openedAt, entries[middle].id) < (openedAt, id) {
                low = middle + 1
            } else {
                high = middle
            }
        }
        entries.insert((openedAt, id), at: low)
    }

    /// One of the sessions closed. Once stale entries outnumber the live ones (and are many), they are dropped.
    mutating func closedOne(isOpen: (String) -> Bool) {
        stale += 1
        guard stale > 1024, stale * 2 > entries.count else { return }
        entries.removeAll { !isOpen($0.id) }
        stale = 0
    }

    /// Up to `limit` ids of open sessions, newest first.
    func newest(_ limit: Int, isOpen: (String) -> Bool) -> [String] {
        var found: [String] = []
        var index = entries.count - 1
        while index >= 0, found.count < limit {
            if isOpen(entries[index].id) { found.append(entries[index].id) }
            index -= 1
        }
        return found
    }
}
