import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// `tollgate events upload` and `tollgate events show`, the real binary against a real server.
@Suite struct EventUploadTests {
    @Test func anUpload_sendsEveryRowOnce_reportsTheRejected_andIsSafeToRunAgain() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let directory = try temporaryDirectory()
            let now = Timestamp.format(Date())
            var lines = (0..<1200).map {
                #"{"eventId":"u\#($0)","type":"tool_invocation","tool":"search","occurredAt":"\#(now)"}"#
            }
            lines[10] = #"{"eventId":"u10","type":"tool_invocation","occurredAt":"\#(now)"}"#  // no tool
            lines[20] = "not json"
            let file = directory.appendingPathComponent("events.jsonl")
            try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
            let environment = ["TOLLGATE_TOKEN": world.agentToken, "TOLLGATE_ADDRESS": server.address]
            let first = try await run(
                Products.path("tollgate"), ["events", "upload", file.path, "--json", "--batch", "500"],
                environment: environment)
            #expect(first.status == 3, "some rows were rejected: \(first.error)")
            let summary = try JSONCodec.parse(Array(first.output.utf8))
            #expect(summary["accepted"] == 1198 && summary["rejected"] == 2 && summary["rows"] == 1200, "\(summary)")
            #expect(first.error.contains("events.jsonl: 1200/1200 rows"), "progress is shown: \(first.error)")
            #expect(!first.output.contains(world.agentToken) && !first.error.contains(world.agentToken))
            let rejects = try String(contentsOfFile: file.path + ".rejected.jsonl", encoding: .utf8)
                .split(separator: "\n").map { try JSONCodec.parse(Array($0.utf8)) }
            #expect(rejects.map { $0["line"] } == [21, 11], "\(rejects)")
            #expect(rejects[1]["reason"] == "VALIDATION_FAILED" && rejects[1]["field"] == "tool")
            #expect(rejects[0]["reason"] == "UNREADABLE")

            // Run again (after an interruption, say): nothing is counted twice.
            let second = try await run(
                Products.path("tollgate"), ["events", "upload", file.path, "--json"], environment: environment)
            let again = try JSONCodec.parse(Array(second.output.utf8))
            #expect(again["duplicate"] == 1198 && again["accepted"] == 0, "\(again)")
            let op = try await server.connect(token: world.operatorToken)
            #expect(try await op.call("usage.summary")["total"]?["calls"] == 1198)

            // A CSV file, and one event shown with its provenance.
            let csv = directory.appendingPathComponent("tokens.csv")
            let rows =
                "eventId,type,occurredAt,inputTokens,outputTokens,model,providerCost\n"
                + "t1,token_consumption,\(now),900,100,m1,0.002\n"
            try rows.write(to: csv, atomically: true, encoding: .utf8)
            let uploaded = try await run(
                Products.path("tollgate"), ["events", "upload", csv.path], environment: environment)
            #expect(
                uploaded.status == 0 && uploaded.output.contains("accepted"), "\(uploaded.output) \(uploaded.error)")
            let shown = try await run(
                Products.path("tollgate"), ["events", "show", "t1", "--json"], environment: environment)
            let event = try JSONCodec.parse(Array(shown.output.utf8))
            #expect(event["source"] == "upload" && event["type"] == "token_consumption", "\(shown.output)")
            #expect(event["context"]?["inputTokens"] == 900 && event["context"]?["model"] == "m1")

            // An operator's pipeline uploads an agent's usage with --agent (scope events:write).
            let pipeline = try await op.call("operators.issue", ["name": "pipeline", "scopes": ["events:write"]])
            let operatorFile = directory.appendingPathComponent("operator.jsonl")
            try (0..<3).map {
                #"{"eventId":"op\#($0)","type":"tool_invocation","tool":"search","occurredAt":"\#(now)"}"#
            }
            .joined(separator: "\n").write(to: operatorFile, atomically: true, encoding: .utf8)
            let asOperator = ["TOLLGATE_TOKEN": pipeline["token"]!.stringValue!, "TOLLGATE_ADDRESS": server.address]
            let withoutAgent = try await run(
                Products.path("tollgate"), ["events", "upload", operatorFile.path], environment: asOperator)
            #expect(withoutAgent.status == 1 && withoutAgent.error.contains("agentId"), "\(withoutAgent.error)")
            let sent = try await run(
                Products.path("tollgate"), ["events", "upload", operatorFile.path, "--agent", world.agentId, "--json"],
                environment: asOperator)
            #expect(try JSONCodec.parse(Array(sent.output.utf8))["accepted"] == 3, "\(sent.output) \(sent.error)")
            #expect(
                try await op.call("usage.summary")["total"]?["calls"] == 1201, "1198 and 3: a token event is no call")
        }
    }

    @Test func anUploadThatCannotReachTheServer_saysSo() async throws {
        let directory = try temporaryDirectory()
        let file = directory.appendingPathComponent("e.jsonl")
        try #"{"eventId":"x"}"#.write(to: file, atomically: true, encoding: .utf8)
        let nothingListens = try ClosedPort()
        let result = try await run(
            Products.path("tollgate"), ["events", "upload", file.path],
            environment: ["TOLLGATE_TOKEN": "AGT-x", "TOLLGATE_ADDRESS": nothingListens.address])
        #expect(result.status == 1 && result.error.contains("cannot connect"), "\(result.error)")
        withExtendedLifetime(nothingListens) {}
    }
}
