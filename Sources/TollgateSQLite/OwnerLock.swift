import Synchronization
import TollgateStorage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Makes one process the only user of a database file, for as long as it has the file open.
///
/// A running server keeps state that only holds if nobody else writes the ledger: the tenants' spend under
/// their caps, and the idempotency keys still pending (`LedgerKeys`). A second `tollgated` on the same file
/// would refuse neither the other's over-budget calls nor its retried keys. So the store takes an exclusive
/// `flock` on `<database>.lock` when it opens and refuses to open if another holds it. The kernel drops the
/// lock when the process exits, however it exits, so a crash never leaves the file locked.
final class OwnerLock: Sendable {
    private let descriptor: Mutex<Int32>

    /// How long a lock held elsewhere is waited for before the store refuses to open: a process that starts
    /// children (a test suite, a supervisor) lends each a copy of the lock's descriptor from fork to exec —
    /// close-on-exec is not close-on-fork — so a store reopened in such a process can find its own released
    /// lock still held for a moment. Another live owner still holds it after the wait.
    static let waitMs = 5_000

    init(path: String) throws(StorageError) {
        let lockPath = path + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .backend("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        var waited = 0
        while flock(fd, LOCK_EX | LOCK_NB) != 0, errno == EWOULDBLOCK, waited < Self.waitMs {
            usleep(10_000)
            waited += 10
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason =
                errno == EWOULDBLOCK ? "another process (or store) has \(path) open" : String(cString: strerror(errno))
            close(fd)
            throw .backend("cannot lock \(lockPath): \(reason)")
        }
        descriptor = Mutex(fd)
    }

    /// Gives the file up; later calls do nothing.
    func release() {
        descriptor.withLock { fd in
            guard fd >= 0 else { return }
            close(fd)
            fd = -1
        }
    }

    deinit { release() }
}
