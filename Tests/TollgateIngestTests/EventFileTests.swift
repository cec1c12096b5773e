import Testing
import TollgateJSON

@testable import TollgateIngest

/// Reading event files for `tollgate events upload`: JSON Lines and CSV with its column mapping, each bad row named
/// by its line, and the tally of what the server answered.
@Suite struct EventFileTests {
    @Test func jsonLines_oneEventPerLine_blankLinesSkipped_badLinesNamed() {
        let rows = EventFile.jsonLines(
            """
            {"eventId":"a","type":"tool_invocation","tool":"t","occurredAt":"2026-12-01T00:00:00Z"}

            {"eventId":"b"
            [1,2]
            """)
        #expect(rows.map(\.line) == [1, 3, 4])
        #expect((try? rows[0].event.get())?["eventId"] == "a")
        guard case .failure(let broken) = rows[1].event, case .failure(let array) = rows[2].event else {
            Issue.record("\(rows)")
            return
        }
        #expect(broken.message.hasPrefix("not JSON") && array.message == "not a JSON object")
    }

    @Test func csv_mapsColumnsToFieldsAndProperties_withQuotesAndEmptyCells() throws {
        let text =
            "eventId,type,occurredAt,tool,quantity,parallel,inputTokens,model,properties.region,sessionId\r\n"
            + "e1,tool_invocation,2026-12-01T00:00:00Z,search,3,true,,,,\r\n"
            + "e2,token_consumption,2026-12-01T00:00:00Z,,,,1200,\"gpt, \"\"x\"\"\",eu-west,\"multi\nline\"\r\n"
            + "e3,tool_invocation,2026-12-01T00:00:00Z,search,three,,,,,\n"
            + "e4,tool_invocation\n"
        let rows = try EventFile.csv(text)
        #expect(rows.map(\.line) == [2, 3, 5, 6], "a row starts on its own line, a quoted line break moves the next")
        let first = try rows[0].event.get()
        #expect(
            first == [
                "eventId": "e1", "type": "tool_invocation", "occurredAt": "2026-12-01T00:00:00Z", "tool": "search",
                "quantity": 3, "parallel": true,
            ])
        let second = try rows[1].event.get()
        #expect(second["properties"] == ["inputTokens": 1200, "model": #"gpt, "x""#, "region": "eu-west"])
        #expect(second["sessionId"] == "multi\nline" && second["tool"] == nil)
        guard case .failure(let notInteger) = rows[2].event, case .failure(let short) = rows[3].event else {
            Issue.record("\(rows)")
            return
        }
        #expect(notInteger.message == "quantity: not an integer: three")
        #expect(short.message == "2 fields where the header has 10")
    }

    @Test func csv_withAColumnThatIsNoEventField_isRefusedWhole() {
        #expect(throws: EventFile.RowError.self) { try EventFile.csv("eventId,tpye\ne1,tool_invocation\n") }
    }

    @Test func theFormat_comesFromTheNameElseTheFirstCharacter() {
        #expect(EventFile.format(path: "x.CSV", contents: "{") == .csv)
        #expect(EventFile.format(path: "x.ndjson", contents: "a,b") == .jsonl)
        #expect(EventFile.format(path: "events", contents: "  {\"a\":1}") == .jsonl)
        #expect(EventFile.format(path: "events", contents: "eventId,type") == .csv)
    }

    @Test func theTally_countsEachStatus_andKeepsEachRejectedRowWithItsLineAndReason() {
        var tally = UploadTally()
        tally.unreadable(line: 2, EventFile.RowError("not JSON"))
        tally.fold(
            [(1, ["eventId": "a"]), (3, ["eventId": "b"]), (4, ["eventId": "c"]), (5, ["eventId": "d"]), (6, [:])],
            results: [
                ["status": "accepted"], ["status": "late"], ["status": "duplicate"],
                ["status": "rejected", "reason": "TOO_OLD", "message": "too old", "field": "occurredAt"],
            ])
        #expect(tally.json == ["accepted": 1, "late": 1, "duplicate": 1, "rejected": 3])
        #expect(tally.rejects.map { $0["line"] } == [2, 5, 6])
        #expect(tally.rejects[1]["reason"] == "TOO_OLD" && tally.rejects[1]["eventId"] == "d")
        #expect(tally.rejects[2]["reason"] == "NO_RESULT", "a row the server did not answer is not counted as sent")
    }
}
