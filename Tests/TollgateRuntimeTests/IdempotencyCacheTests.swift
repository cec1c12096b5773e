import Foundation
import Testing
import TollgateCore
import TollgateJSON
import TollgateStorage

@testable import TollgateRuntime

/// The idempotency rule as a value: what a key's second call gets, from memory and from a stored record.
@Suite struct IdempotencyCacheTests {
    static func call(
        _ key: String = "k", _ method: WriteMethod = .meterVerify, params: JSONValue = ["tool": "a"],
        by principal: String = "agt_1"
    ) -> KeyedCall {
        KeyedCall(key: key, method: method, params: params, principal: principal)
    }

    /// The fields of the IDEMPOTENCY_MISMATCH `body` throws, or nil.
    static func mismatch(_ body: () throws -> Void) -> [String]? {
        do { try body() } catch let error as TollgateError {
            if case .idempotencyMismatch(let fields) = error { return fields }
        } catch {}
        return nil
    }

    /// Whether `body` throws IN_PROGRESS.
    static func inProgress(_ body: () throws -> Void) -> Bool {
        do { try body() } catch let error as TollgateError { return error == .inProgress } catch {}
        return false
    }

    @Test func aNewKey_isClaimed_andItsRetryIsInProgressUntilAnswered() throws {
        var cache = IdempotencyCache(capacity: 10)
        #expect(try cache.claim(Self.call()) == .claimed)
        #expect(Self.inProgress { _ = try cache.claim(Self.call()) })
        cache.answered(Self.call(), ["cost": "1"])
        #expect(try cache.claim(Self.call()) == .replay(["cost": "1", "replayed": true]))
    }

    @Test func otherParamsAnotherMethodOrAnotherAgent_areMismatchesNamingWhatDiffers() throws {
        var cache = IdempotencyCache(capacity: 10)
        _ = try cache.claim(Self.call())
        cache.answered(Self.call(), ["cost": "1"])
        #expect(Self.mismatch { _ = try cache.claim(Self.call(params: ["tool": "b", "n": 2])) } == ["n", "tool"])
        #expect(Self.mismatch { _ = try cache.claim(Self.call("k", .meterAuthorize)) } == ["method"])
        #expect(Self.mismatch { _ = try cache.claim(Self.call(by: "agt_2")) } == ["agentId"])
    }

    @Test func aCallThatStoredNothing_leavesItsKeyFree() throws {
        var cache = IdempotencyCache(capacity: 10)
        _ = try cache.claim(Self.call())
        cache.release("k")
        #expect(try cache.claim(Self.call(params: ["tool": "other"])) == .claimed)
        // Releasing an answered key changes nothing.
        cache.answered(Self.call(params: ["tool": "other"]), ["ok": true])
        cache.release("k")
        #expect(try cache.claim(Self.call(params: ["tool": "other"])) == .replay(["ok": true, "replayed": true]))
    }

    @Test func aStoredRecord_isJudgedByTheSameRule_andRemembered() throws {
        var cache = IdempotencyCache(capacity: 10)
        let call = Self.call()
        let stored = IdempotencyRecord(
            tenantId: "ten_1", key: "k", method: "meter.verify", params: call.fingerprint, result: #"{"cost":"1"}"#,
            createdAt: Date())
        _ = try cache.claim(call)
        #expect(try cache.replay(stored: stored, asking: call) == ["cost": "1", "replayed": true])
        // Now answered from memory.
        #expect(try cache.claim(call) == .replay(["cost": "1", "replayed": true]))
        #expect(
            Self.mismatch { _ = try cache.replay(stored: stored, asking: Self.call("k", .sessionOpen)) } == ["method"])
    }

    @Test func aCommitStoredBeforeCommitsHadTheirOwnMethod_replaysAsACommit() throws {
        var cache = IdempotencyCache(capacity: 10)
        let call = Self.call("commit:rsv_1", .meterCommit)
        let legacy = IdempotencyRecord(
            tenantId: "ten_1", key: "commit:rsv_1", method: "meter.verify", params: call.fingerprint,
            result: #"{"cost":"1"}"#, createdAt: Date())
        #expect(try cache.replay(stored: legacy, asking: call)["replayed"] == true)
    }

    @Test func aHoldStoredWithoutItsAnswer_isAMismatch_neverAReplay() {
        var cache = IdempotencyCache(capacity: 10)
        let old = IdempotencyRecord(
            tenantId: "ten_1", key: "k", method: "meter.authorize", params: "", result: "", createdAt: Date())
        #expect(
            Self.mismatch { _ = try cache.replay(stored: old, asking: Self.call("k", .meterAuthorize)) } == ["params"])
    }

    @Test func memoryIsBounded_butKeysInFlightAreNeverForgotten() throws {
        var cache = IdempotencyCache(capacity: 3)
        _ = try cache.claim(Self.call("busy"))
        for n in 0..<10 {
            _ = try cache.claim(Self.call("k\(n)"))
            cache.answered(Self.call("k\(n)"), ["n": .integer(Int64(n))])
        }
        #expect(cache.count <= 3)
        #expect(Self.inProgress { _ = try cache.claim(Self.call("busy")) })
        #expect(try cache.claim(Self.call("k9")) == .replay(["n": 9, "replayed": true]))
        // The oldest answered keys were forgotten: storage answers for them.
        #expect(try cache.claim(Self.call("k0")) == .claimed)
    }
}
