import Foundation
import Testing
import TollgateCore
import TollgateJSON

@testable import TollgateMCP

/// A `tools/call` answered with a task (the tasks extension): its hold stands while the task runs, and the task's
/// final status — however the proxy learns it — commits or releases it, once.
@Suite struct ToolCallMeterTaskTests {
    static let t0 = ToolCallMeterTests.t0
    static let line = ToolCallMeterTests.line

    /// A meter whose call `1` (tool `report`, hold `rsv_1`) the server answered with task `tk-1`.
    static func meterWithTask(
        ttlMs: JSONValue = 60_000, reservation: String? = "rsv_1",
        whenUnavailable: ToolCallMeter.UnavailablePolicy = .block
    ) -> ToolCallMeter {
        var meter = ToolCallMeter(keyPrefix: "run", whenUnavailable: whenUnavailable)
        _ = meter.fromClient(ToolCallMeterTests.call(1, tool: "report"), at: t0)
        if let reservation {
            _ = meter.authorized(callId: "1", reservationId: reservation, at: t0)
        } else {
            _ = meter.unavailable(callId: "1", at: t0)
        }
        let created = line([
            "jsonrpc": "2.0", "id": 1,
            "result": [
                "resultType": "task", "taskId": "tk-1", "status": "working", "createdAt": "2026-12-01T10:00:00Z",
                "lastUpdatedAt": "2026-12-01T10:00:00Z", "ttlMs": ttlMs,
            ],
        ])
        #expect(meter.fromServer(created, at: t0.addingTimeInterval(0.01)) == [.toClient(created.bytes)])
        return meter
    }

    static func poll(_ id: Int64) -> MCPMessage {
        line(["jsonrpc": "2.0", "id": .integer(id), "method": "tasks/get", "params": ["taskId": "tk-1"]])
    }

    static func status(_ id: Int64?, _ status: String, _ extra: [String: JSONValue] = [:]) -> MCPMessage {
        var task: [String: JSONValue] = [
            "taskId": "tk-1", "status": .string(status), "createdAt": "2026-12-01T10:00:00Z",
            "lastUpdatedAt": "2026-12-01T10:00:04.500Z", "ttlMs": 60_000,
        ]
        task.merge(extra) { $1 }
        guard let id else { return line(["jsonrpc": "2.0", "method": "notifications/tasks", "params": .object(task)]) }
        task["resultType"] = "complete"
        return line(["jsonrpc": "2.0", "id": .integer(id), "result": .object(task)])
    }

    @Test func aTaskKeepsItsHoldWhileWorking_andIsCommittedOnceWhenAPollShowsItCompleted() throws {
        var meter = Self.meterWithTask()
        #expect(meter.callsInFlight == 0 && meter.tasksRunning == 1 && !meter.isIdle)
        // The exchange of the call is over, but the call is not: an HTTP exchange ending now abandons nothing.
        #expect(!meter.isInFlight(callId: "1"))
        #expect(meter.fromClient(Self.poll(2), at: Self.t0) == [.toServer(Self.poll(2).bytes)])
        let working = Self.status(2, "working")
        #expect(meter.fromServer(working, at: Self.t0) == [.toClient(working.bytes)])
        #expect(meter.tasksRunning == 1)

        _ = meter.fromClient(Self.poll(3), at: Self.t0)
        let completed = Self.status(
            3, "completed",
            [
                "result": [
                    "content": [], "isError": false,
                    "_meta": [ToolCallMeter.usageMetaKey: ["outputTokens": 40, "providerCost": "0.01"]],
                ]
            ])
        let usage = ToolCallMeter.CallUsage(
            durationMs: 4_500, failed: false, outputTokens: 40, providerCost: try Money(decimal: "0.01"))
        #expect(
            meter.fromServer(completed, at: Self.t0.addingTimeInterval(9)) == [
                .toClient(completed.bytes), .commit(reservationId: "rsv_1", tool: "report", key: "run-1", usage: usage),
            ])
        #expect(meter.isIdle)
        // Polled again, the finished task is charged no second time.
        _ = meter.fromClient(Self.poll(4), at: Self.t0)
        let again = Self.status(4, "completed", ["result": ["content": []]])
        #expect(meter.fromServer(again, at: Self.t0) == [.toClient(again.bytes)])
    }

    @Test(arguments: ["failed", "cancelled"])
    func aFailedOrCancelledTask_givesItsHoldBack(status: String) {
        var meter = Self.meterWithTask()
        _ = meter.fromClient(Self.poll(2), at: Self.t0)
        let answer = Self.status(2, status, status == "failed" ? ["error": ["code": -32603, "message": "boom"]] : [:])
        #expect(meter.fromServer(answer, at: Self.t0) == [.toClient(answer.bytes), .release(reservationId: "rsv_1")])
        #expect(meter.isIdle)
    }

    @Test func aStatusNotification_settlesTheTaskAsAPollWould() {
        var meter = Self.meterWithTask()
        let pushed = Self.status(nil, "completed", ["result": ["content": [], "isError": true]])
        let actions = meter.fromServer(pushed, at: Self.t0)
        #expect(actions.first == .toClient(pushed.bytes))
        guard case .commit(let reservationId, _, _, let usage)? = actions.last else {
            Issue.record("\(actions)")
            return
        }
        #expect(reservationId == "rsv_1" && usage.failed && usage.durationMs == 4_500)
    }

    @Test func aTaskNobodyAsksAbout_isReleasedWhenItsTTLPasses_asTheServerLastStatedIt() {
        var meter = Self.meterWithTask(ttlMs: 60_000)
        #expect(meter.expireTasks(at: Self.t0.addingTimeInterval(59)).isEmpty)
        // The server lengthens the TTL in a later status: the hold stands longer.
        _ = meter.fromClient(Self.poll(2), at: Self.t0)
        _ = meter.fromServer(Self.status(2, "working", ["ttlMs": 120_000]), at: Self.t0.addingTimeInterval(30))
        #expect(meter.expireTasks(at: Self.t0.addingTimeInterval(61)).isEmpty)
        #expect(meter.expireTasks(at: Self.t0.addingTimeInterval(121)) == [.release(reservationId: "rsv_1")])
        #expect(meter.isIdle)
        // Unlimited (ttlMs null): only a final status or the end of the connection releases it.
        var unlimited = Self.meterWithTask(ttlMs: .null)
        #expect(unlimited.expireTasks(at: Self.t0.addingTimeInterval(86_400 * 30)).isEmpty)
        #expect(unlimited.ended() == [.release(reservationId: "rsv_1")])
    }

    @Test func aTaskRunWithoutAHold_isSpooledBeforeTheClientLearnsItIsDone() {
        var meter = Self.meterWithTask(reservation: nil, whenUnavailable: .allow)
        _ = meter.fromClient(Self.poll(2), at: Self.t0)
        let completed = Self.status(2, "completed", ["result": ["content": []]])
        let actions = meter.fromServer(completed, at: Self.t0)
        guard actions.count == 2, case .spool(let tool, let key, let usage) = actions.first else {
            Issue.record("\(actions)")
            return
        }
        #expect(tool == "report" && key == "run-1" && usage.durationMs == 4_500)
        #expect(actions.last == .toClient(completed.bytes))
    }

    @Test func aTaskSeededAsCompleted_isCommittedAtOnce() {
        var meter = ToolCallMeter(keyPrefix: "run")
        _ = meter.fromClient(ToolCallMeterTests.call(1, tool: "report"), at: Self.t0)
        _ = meter.authorized(callId: "1", reservationId: "rsv_1", at: Self.t0)
        let created = Self.line([
            "jsonrpc": "2.0", "id": 1,
            "result": ["resultType": "task", "taskId": "tk-1", "status": "completed", "ttlMs": 1, "result": [:]],
        ])
        let actions = meter.fromServer(created, at: Self.t0.addingTimeInterval(0.2))
        guard case .commit(_, _, _, let usage)? = actions.last else {
            Issue.record("\(actions)")
            return
        }
        #expect(usage.durationMs == 200, "no timestamps: the proxy's own measure")
        #expect(meter.isIdle)
    }

    @Test func pollsOfOtherTasks_andStatusesOfUnknownTasks_changeNothing() {
        var meter = Self.meterWithTask()
        let other = Self.line(["jsonrpc": "2.0", "id": 5, "method": "tasks/get", "params": ["taskId": "tk-9"]])
        #expect(meter.fromClient(other, at: Self.t0) == [.toServer(other.bytes)])
        let answer = Self.line([
            "jsonrpc": "2.0", "id": 5, "result": ["taskId": "tk-9", "status": "completed", "result": [:]],
        ])
        #expect(meter.fromServer(answer, at: Self.t0) == [.toClient(answer.bytes)])
        // An answer that is about another task than the one polled is not taken for it.
        _ = meter.fromClient(Self.poll(6), at: Self.t0)
        let mismatched = Self.line([
            "jsonrpc": "2.0", "id": 6, "result": ["taskId": "tk-9", "status": "cancelled"],
        ])
        #expect(meter.fromServer(mismatched, at: Self.t0) == [.toClient(mismatched.bytes)])
        #expect(meter.tasksRunning == 1)
    }
}
