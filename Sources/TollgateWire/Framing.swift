import NIOCore

/// What the frame decoder hands up: a complete frame's payload, or the reason the stream is unusable.
public enum InboundFrame: Sendable {
    case payload(ByteBuffer)
    /// The header announced an impossible length. The decoder has discarded everything after it and will
    /// ignore all further bytes; the connection answers with one error and closes.
    case violation(FrameViolation)
}

public enum FrameViolation: Error, Sendable, Equatable {
    case empty
    case tooLarge(announcedBytes: UInt32, frameBytesMax: Int)

    public var reason: String {
        switch self {
        case .empty: "FRAME_EMPTY"
        case .tooLarge: "FRAME_TOO_LARGE"
        }
    }
}

/// Splits a byte stream into frames: a 4-byte big-endian length `L`, then `L` bytes.
///
/// The length is checked as soon as its four bytes arrive, before any of the body is waited for, so an
/// announced 4 GiB frame costs the server four bytes, not four gigabytes.
public final class FrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = InboundFrame

    public static let headerBytes = 4
    private let frameBytesMax: Int
    private var broken = false

    public init(frameBytesMax: Int) {
        precondition(frameBytesMax >= 1 && frameBytesMax <= Int(UInt32.max), "frameBytesMax out of range")
        self.frameBytesMax = frameBytesMax
    }

    public func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if broken {
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return .needMoreData
        }
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            return .needMoreData
        }
        if length == 0 || Int(length) > frameBytesMax {
            broken = true
            buffer.moveReaderIndex(to: buffer.writerIndex)
            let violation: FrameViolation =
                length == 0
                ? .empty : .tooLarge(announcedBytes: length, frameBytesMax: frameBytesMax)
            context.fireChannelRead(wrapInboundOut(.violation(violation)))
            return .needMoreData
        }
        guard buffer.readableBytes >= Self.headerBytes + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: Self.headerBytes)
        let payload = buffer.readSlice(length: Int(length))!
        context.fireChannelRead(wrapInboundOut(.payload(payload)))
        return .continue
    }

    public func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        // A partial frame at end of stream is dropped: its sender went away before finishing it.
        while try decode(context: context, buffer: &buffer) == .continue {}
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}

/// Prefixes each outbound payload with its 4-byte big-endian length.
public final class FrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = ByteBuffer

    public init() {}

    public func encode(data: ByteBuffer, out: inout ByteBuffer) throws {
        out.reserveCapacity(FrameDecoder.headerBytes + data.readableBytes)
        out.writeInteger(UInt32(data.readableBytes), endianness: .big)
        out.writeImmutableBuffer(data)
    }
}
