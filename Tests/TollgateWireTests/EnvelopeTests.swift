import NIOCore
import Testing
import TollgateCore
import TollgateJSON

@testable import TollgateWire

@Suite struct EnvelopeTests {
    func parse(_ text: String, batchMax: Int = 10) -> ParsedFrame {
        Envelope.parse(ByteBuffer(string: text), batchMax: batchMax)
    }

    func unanswerable(_ frame: ParsedFrame) -> WireError? {
        if case .unanswerable(let error) = frame { return error }
        return nil
    }

    func failure(_ frame: ParsedFrame) -> RPCFailure? {
        if case .single(.failure(let failure)) = frame { return failure }
        return nil
    }

    @Test func request_isRead() throws {
        guard
            case .single(.success(let request)) = parse(
                #"{"jsonrpc":"2.0","id":7,"method":"meter.verify","params":{"tool":"x"}}"#)
        else {
            Issue.record("not a request")
            return
        }
        #expect(request.id == .integer(7))
        #expect(request.method == "meter.verify")
        #expect(request.params["tool"] == .string("x"))
    }

    @Test func missingParams_meanEmptyParams_andMissingIdIsANotification() throws {
        guard case .single(.success(let request)) = parse(#"{"jsonrpc":"2.0","method":"x"}"#) else {
            Issue.record()
            return
        }
        #expect(request.id == nil)
        #expect(request.params == .object([:]))
    }

    @Test func invalidJSON_isAParseError() {
        #expect(unanswerable(parse("{nope"))?.code == -32700)
        #expect(unanswerable(parse(""))?.code == -32700)
    }

    @Test(arguments: [
        (#"[1]"#, -32600), (#"{"jsonrpc":"1.0","id":1,"method":"x"}"#, -32600), (#"{"jsonrpc":"2.0","id":1}"#, -32600),
        (#"{"jsonrpc":"2.0","id":1,"method":""}"#, -32600), (#"{"jsonrpc":"2.0","id":{},"method":"x"}"#, -32600),
        (#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#, -32602), (#""just a string""#, -32600),
    ])
    func malformedRequests_getTheRightCode(text: String, code: Int) {
        switch parse(text) {
        case .single(.failure(let failure)): #expect(failure.error.code == code)
        case .batch(let entries):
            guard case .failure(let failure) = entries[0] else {
                Issue.record("accepted")
                return
            }
            #expect(failure.error.code == code)
        default: Issue.record("unexpected \(text)")
        }
    }

    @Test func invalidRequest_keepsItsIdWhenReadable() {
        #expect(failure(parse(#"{"jsonrpc":"1.0","id":"a","method":"x"}"#))?.id == .string("a"))
    }

    @Test func batch_isSplitIntoRequests_eachJudgedAlone() {
        guard
            case .batch(let entries) = parse(
                #"[{"jsonrpc":"2.0","id":1,"method":"a"},5,{"jsonrpc":"2.0","id":2,"method":"b"}]"#)
        else {
            Issue.record("not a batch")
            return
        }
        #expect(entries.count == 3)
        if case .failure = entries[1] {} else { Issue.record("entry 1 should fail") }
    }

    @Test func emptyBatch_andOversizedBatch_areRefusedWhole() {
        #expect(unanswerable(parse("[]"))?.code == -32600)
        let big =
            "[" + Array(repeating: #"{"jsonrpc":"2.0","id":1,"method":"a"}"#, count: 11).joined(separator: ",") + "]"
        #expect(unanswerable(parse(big))?.reason == "BATCH_TOO_LARGE")
    }

    @Test func domainErrors_translateToTheProtocolCodes() {
        #expect(WireError(translating: TollgateError.unauthenticated("x")).code == -32001)
        #expect(WireError(translating: TollgateError.forbidden("x")).code == -32002)
        #expect(WireError(translating: TollgateError.notFound("x")).code == -32003)
        #expect(WireError(translating: TollgateError.idempotencyMismatch(fields: ["tool"])).code == -32011)
        #expect(WireError(translating: TollgateError.inProgress).data?["retryable"] == .bool(true))
        #expect(WireError(translating: TollgateError.validation(field: "f", rule: "r")).data?["field"] == .string("f"))
        #expect(WireError(translating: TollgateError.conflict("x")).code == -32030)
        #expect(WireError(translating: TollgateError.rateLimited(retryAfterMs: 5)).data?["retryAfterMs"] == .integer(5))
        #expect(WireError(translating: TollgateError.unavailable("x")).code == -32050)
        struct Secret: Error {}
        let hidden = WireError(translating: Secret())
        #expect(hidden == .internalError)
    }

    @Test func anAnswerOverTheFrameLimit_isReplacedByAnErrorUnderItsId() throws {
        let big: JSONValue = [
            "jsonrpc": "2.0", "id": "a", "result": ["blob": .string(String(repeating: "x", count: 5000))],
        ]
        let single = try JSONCodec.parse(Envelope.answer(big, frameBytesMax: 1024).readableBytesView)
        #expect(single["id"] == "a" && single["error"]?["data"]?["reason"] == "ANSWER_TOO_LARGE")

        let small: JSONValue = ["jsonrpc": "2.0", "id": "b", "result": ["ok": true]]
        let batch: JSONValue = [small, big, small, big]
        let buffer = Envelope.answer(batch, frameBytesMax: 1024)
        #expect(buffer.readableBytes <= 1024)
        let answers = try JSONCodec.parse(buffer.readableBytesView).arrayValue ?? []
        try #require(answers.count == 4)
        #expect(answers[0]["result"]?["ok"] == true && answers[2]["result"]?["ok"] == true, "the small ones stay")
        #expect(answers[1]["error"]?["data"]?["reason"] == "ANSWER_TOO_LARGE")
        #expect(answers[3]["error"]?["data"]?["reason"] == "ANSWER_TOO_LARGE")
        // Within the limit, an answer goes out exactly as it is.
        #expect(Envelope.answer(small, frameBytesMax: 1024) == Envelope.buffer(small))
    }

    @Test func anIdLongerThanTheLimit_makesTheRequestInvalid_withoutEchoingIt() throws {
        let id = String(repeating: "i", count: Envelope.idBytesMax + 1)
        let refused = try #require(self.failure(parse(#"{"jsonrpc":"2.0","id":"\#(id)","method":"m"}"#)))
        #expect(refused.id == .null && refused.error.code == -32600 && !refused.error.message.contains(id))
        guard case .single(.success) = parse(#"{"jsonrpc":"2.0","id":"\#(String(id.dropLast()))","method":"m"}"#) else {
            Issue.record("an id of exactly idBytesMax bytes is valid")
            return
        }
        #expect(WireError.methodNotFound(String(repeating: "m", count: 10_000)).message.utf8.count < 100)
    }
}
