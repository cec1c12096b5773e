import Foundation

/// Reads newline-delimited lines from a file descriptor on a thread of its own (a blocking read must not hold a
/// task of the cooperative pool), and hands each line, without its newline, to an async stream. MCP's stdio
/// transport puts one message on each line and forbids embedded newlines.
public enum LineReader {
    /// The lines of `fd` until end of file. A line longer than `lineBytesMax` ends the stream (a peer that never
    /// sends a newline cannot make the proxy buffer without bound).
    public static func lines(of fd: Int32, lineBytesMax: Int = 64 << 20) -> AsyncStream<[UInt8]> {
        let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .unbounded)
        let thread = Thread {
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            reading: while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { break }
                var start = 0
                for index in 0..<count where buffer[index] == 0x0A {
                    pending.append(contentsOf: buffer[start..<index])
                    if pending.last == 0x0D { pending.removeLast() }
                    if !pending.isEmpty { continuation.yield(pending) }
                    pending.removeAll(keepingCapacity: true)
                    start = index + 1
                }
                pending.append(contentsOf: buffer[start..<count])
                if pending.count > lineBytesMax { break reading }
            }
            if !pending.isEmpty { continuation.yield(pending) }
            continuation.finish()
        }
        thread.name = "tollgate-mcp-read-\(fd)"
        thread.start()
        return stream
    }
}

/// Writes whole lines to a file descriptor, one writer at a time, so that two messages never interleave.
public final class LineWriter: Sendable {
    private let fd: Int32
    private let lock = NSLock()

    public init(fd: Int32) { self.fd = fd }

    /// Writes `line` and a newline; false once the other end is gone.
    @discardableResult
    public func write(_ line: [UInt8]) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        var bytes = line
        bytes.append(0x0A)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { pointer in
                Foundation.write(fd, pointer.baseAddress! + offset, pointer.count - offset)
            }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }
}
