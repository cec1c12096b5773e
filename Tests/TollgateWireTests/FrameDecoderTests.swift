import NIOCore
import NIOEmbedded
import Testing

@testable import TollgateWire

@Suite struct FrameDecoderTests {
    func channel(frameBytesMax: Int = 64) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(frameBytesMax: frameBytesMax)))
        return channel
    }

    func frame(_ body: [UInt8]) -> [UInt8] {
        let length = UInt32(body.count)
        return [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + body
    }

    func feedByteByByte(_ channel: EmbeddedChannel, _ bytes: [UInt8]) throws -> [InboundFrame] {
        var frames: [InboundFrame] = []
        for byte in bytes {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
            while let frame = try channel.readInbound(as: InboundFrame.self) { frames.append(frame) }
        }
        return frames
    }

    func payloads(_ frames: [InboundFrame]) -> [[UInt8]] {
        frames.compactMap { if case .payload(let buffer) = $0 { Array(buffer.readableBytesView) } else { nil } }
    }

    @Test func framesFedOneByteAtATime_comeOutWhole() throws {
        let channel = try channel()
        let bytes = frame(Array("{\"a\":1}".utf8)) + frame(Array("[]".utf8)) + frame([0x7B])
        let frames = try feedByteByByte(channel, bytes)
        #expect(payloads(frames) == [Array("{\"a\":1}".utf8), Array("[]".utf8), [0x7B]])
        #expect(try channel.finish().isClean)
    }

    @Test func manyFramesInOneRead_areAllDelivered() throws {
        let channel = try channel()
        try channel.writeInbound(ByteBuffer(bytes: frame([1]) + frame([2, 2]) + frame([3, 3, 3])))
        var frames: [InboundFrame] = []
        while let frame = try channel.readInbound(as: InboundFrame.self) { frames.append(frame) }
        #expect(payloads(frames) == [[1], [2, 2], [3, 3, 3]])
    }

    @Test func frameOfExactlyTheMaximum_isAccepted() throws {
        let channel = try channel(frameBytesMax: 8)
        #expect(
            payloads(try feedByteByByte(channel, frame(Array(repeating: 9, count: 8)))) == [
                Array(repeating: 9, count: 8)
            ])
    }

    @Test func oversizedHeader_isRefusedAsSoonAsTheHeaderArrives() throws {
        let channel = try channel(frameBytesMax: 8)
        // Only the four header bytes: the decoder must not wait for a body.
        let frames = try feedByteByByte(channel, [0, 0, 0, 9])
        guard case .violation(.tooLarge(let announced, let maximum))? = frames.first else {
            Issue.record("expected a violation, got \(frames)")
            return
        }
        #expect(announced == 9 && maximum == 8)
    }

    @Test func hugeHeader_isRefusedWithoutBuffering() throws {
        let channel = try channel(frameBytesMax: 1 << 20)
        let frames = try feedByteByByte(channel, [0xFF, 0xFF, 0xFF, 0xFF])
        guard case .violation(.tooLarge(let announced, _))? = frames.first else {
            Issue.record("no violation")
            return
        }
        #expect(announced == UInt32.max)
    }

    @Test func emptyHeader_isRefused() throws {
        let channel = try channel()
        let frames = try feedByteByByte(channel, [0, 0, 0, 0])
        guard case .violation(.empty)? = frames.first else {
            Issue.record("no violation")
            return
        }
        #expect(frames.count == 1)
    }

    @Test func afterAViolation_everythingElseIsIgnored() throws {
        let channel = try channel(frameBytesMax: 8)
        let frames = try feedByteByByte(channel, [0, 0, 0, 0] + frame([1]) + frame([2]))
        #expect(frames.count == 1)
        #expect(payloads(frames).isEmpty)
    }

    @Test func partialFrameAtEndOfStream_isDropped() throws {
        let channel = try channel()
        try channel.writeInbound(ByteBuffer(bytes: [0, 0, 0, 5, 1, 2]))
        #expect(try channel.readInbound(as: InboundFrame.self) == nil)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func encoder_prefixesTheLength() throws {
        let channel = EmbeddedChannel(handler: MessageToByteHandler(FrameEncoder()))
        try channel.writeOutbound(ByteBuffer(bytes: [7, 8, 9]))
        let written = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(Array(written.readableBytesView) == [0, 0, 0, 3, 7, 8, 9])
    }
}
