import Foundation
import Testing
import TollgateCore
import TollgateJSON
import TollgatePricing

/// The worked examples of seed document 001 ("Dimension Pricing in the Rate Plan" and "Real-World
/// Monetization Patterns"), each reproduced to the exact figure. The plans are the ones in `Config/plans/`.
@Suite struct SeedExamplesTests {
    @Test func dimensions1and2_toolPlusTokens_is0_1027() throws {
        let plan = try compile(
            #"""
            {"name":"dimensions","currency":"USD","charges":[
              {"strategy":"per_tool","rates":{"transform_schema":"0.10","validate_credentials":"0.001",
                                              "read_database":"0.05","*":"0.002"}},
              {"strategy":"token_multiplier","rates":{"input":"0.000001","output":"0.000002"}}]}
            """#)
        let call = RatedEvent(tool: "transform_schema", inputTokens: 2400, outputTokens: 150)
        #expect(try plan.price(of: call) == usd("0.1027"))
        #expect(try plan.price(of: RatedEvent(tool: "xyz_unknown_tool")) == usd("0.002"))
    }

    @Test func dimension3_durationBuckets() throws {
        let plan = try plan(
            #"{"strategy":"duration_buckets","buckets":[{"upTo":60000,"rate":"0.10"},{"upTo":300000,"rate":"0.50"},"#
                + #"{"rate":"2.00"}]}"#
        )
        #expect(try plan.price(of: RatedEvent(tool: "t", durationMs: 847)) == usd("0.10"))
        #expect(try plan.price(of: RatedEvent(tool: "t", durationMs: 60000)) == usd("0.10"))
        #expect(try plan.price(of: RatedEvent(tool: "t", durationMs: 60001)) == usd("0.50"))
        #expect(try plan.price(of: RatedEvent(tool: "t", durationMs: 3_600_000)) == usd("2.00"))
    }

    @Test func dimension4_errorRatePenalty_1_5xAbove5Percent() throws {
        let plan = try plan(
            #"{"strategy":"per_tool","rates":{"*":"0.10"}}"#,
            modifiers: #"{"type":"error_rate_penalty","threshold":"0.05","multiplier":"1.5"}"#,
            creditsAllowed: true)
        // 20 calls with one failure: 5 %, not above the threshold.
        let rating = PlanRating(plan: plan)
        for index in 0..<20 {
            try rating.rate(RatedEvent(tool: "t", sessionId: "s1", status: index == 0 ? "FAILED" : "SUCCESS"))
        }
        #expect(rating.total == (try usd("2.00")))
        // A second failure: 2 of 21 is above 5 %, and the whole session costs 1.5×.
        let price = try rating.rate(RatedEvent(tool: "t", sessionId: "s1", status: "TIMEOUT"))
        #expect(rating.total == (try usd("3.15")))
        #expect(price == (try usd("1.15")))
        // Another session is not affected.
        #expect(try rating.rate(RatedEvent(tool: "t", sessionId: "s2")) == usd("0.10"))
    }

    @Test func dimension5_volumeTiers_retroactive() throws {
        let plan = try plan(
            #"{"strategy":"volume","tiers":[{"upTo":9999,"rate":"0.10"},{"upTo":99999,"rate":"0.08"},"#
                + #"{"rate":"0.05"}]}"#,
            creditsAllowed: true)
        let rating = PlanRating(plan: plan)
        #expect(try rating.rate(RatedEvent(tool: "t", quantity: 9999)) == usd("999.90"))
        // The 10,000th call moves every call to 0.08: 800.00 in all, a credit of 199.90.
        #expect(try rating.rate(RatedEvent(tool: "t")) == usd("-199.90"))
        try rating.rate(RatedEvent(tool: "t", quantity: 90_000))
        #expect(rating.total == (try usd("5000.00")), "above 100,000 calls every call is 0.05")
        #expect(
            validationError(
                #"{"name":"p","currency":"USD","charges":[{"strategy":"volume","tiers":[{"upTo":9999,"rate":"0.10"},"#
                    + #"{"rate":"0.08"}]}]}"#
            )?.field == "creditsAllowed")
    }

    @Test func pattern1_perToolWithTieredDiscounts() throws {
        let plan = try compile(
            #"""
            {"name":"pattern-1","currency":"USD","creditsAllowed":true,
             "charges":[{"strategy":"per_tool","rates":{"read_cache":"0.001","write_cache":"0.003",
                 "analyze_schema":"0.10","transform_data":"0.25","run_validation":"0.05","*":"0.05"}}],
             "modifiers":[{"type":"volume_discount","metric":"calls","tiers":[{"upTo":999,"percent":"0"},
                 {"upTo":9999,"percent":"10"},{"upTo":100000,"percent":"25"},{"percent":"40"}]}]}
            """#)
        let rating = PlanRating(plan: plan)
        #expect(try rating.rate(RatedEvent(tool: "transform_data", quantity: 999)) == usd("249.75"))
        // The 1,000th call reaches 10 % off for the whole month: 1,000 × 0.25 × 0.9 = 225.00.
        #expect(try rating.rate(RatedEvent(tool: "transform_data")) == usd("-24.75"))
        #expect(rating.total == (try usd("225.00")))
        try rating.rate(RatedEvent(tool: "read_cache", quantity: 99_001))
        // 100,001 calls: 40 % off (250 + 99.001) = 209.4006.
        #expect(rating.total == (try usd("209.4006")))
    }

    @Test func pattern2_sessionBundle_5DollarsFor100CallsThen5Cents() throws {
        let plan = try compile(
            #"""
            {"name":"pattern-2","currency":"USD","charges":[
              {"strategy":"session_bundle","fee":"5","includedCalls":100,"overageRate":"0.05"},
              {"strategy":"token_multiplier","rates":{"output":"0.000002"}}]}
            """#)
        let rating = PlanRating(plan: plan)
        #expect(try rating.rate(RatedEvent(tool: "t", sessionId: "s1")) == usd("5"))
        for _ in 1..<100 { #expect(try rating.rate(RatedEvent(tool: "t", sessionId: "s1")) == .zero) }
        #expect(try rating.rate(RatedEvent(tool: "t", outputTokens: 1000, sessionId: "s1")) == usd("0.052"))
        // 100 sessions within their bundles: the predictable 500.
        let month = PlanRating(plan: plan)
        for session in 0..<100 { try month.rate(RatedEvent(tool: "t", quantity: 100, sessionId: "s\(session)")) }
        #expect(month.total == (try usd("500")))
    }

    @Test func pattern3_tokensWithToolMultipliers() throws {
        let plan = try compile(
            #"""
            {"name":"pattern-3","currency":"USD","charges":[{"strategy":"token_multiplier",
              "rates":{"input":"0.0000005","output":"0.000002"},
              "multipliers":{"simple_lookup":"0.5","schema_analysis":"2.0","transform_multi_step":"3.5"}}]}
            """#)
        // 50,000 output tokens × 0.000002 × 2.0. (The seed's prose says $0.05 for this; its own formula
        // gives 0.20, which is what the plan charges.)
        #expect(try plan.price(of: RatedEvent(tool: "schema_analysis", outputTokens: 50_000)) == usd("0.20"))
        #expect(
            try plan.price(of: RatedEvent(tool: "simple_lookup", inputTokens: 3, outputTokens: 0)) == usd("0.00000075"))
        #expect(
            try plan.price(of: RatedEvent(tool: "transform_multi_step", inputTokens: 1000, outputTokens: 1000))
                == usd("0.00875"))
        #expect(try plan.price(of: RatedEvent(tool: "unlisted", outputTokens: 1000)) == usd("0.002"))
    }

    @Test func pattern4_committedWithAgentAllocations() throws {
        let plan = try compile(
            #"""
            {"name":"pattern-4","currency":"USD","charges":[{"strategy":"committed","amount":"10000",
              "includedCalls":1000000,
              "overageRate":"0.01","allocations":{"agt_support":300000,"agt_analyst":500000,"agt_integration":200000}}]}
            """#)
        let rating = PlanRating(plan: plan)
        #expect(try rating.rate(RatedEvent(tool: "t", quantity: 300_000, agentId: "agt_support")) == usd("3000"))
        #expect(try rating.rate(RatedEvent(tool: "t", quantity: 10, agentId: "agt_support")) == usd("0.10"), "overage")
        #expect(try rating.rate(RatedEvent(tool: "t", quantity: 1000, agentId: "agt_analyst")) == usd("10"))
        #expect(
            try rating.rate(RatedEvent(tool: "t", agentId: "agt_unlisted")) == usd("0.01"), "no allocation: overage")
        // Closing the month bills what the allocations left unused, so the month costs at least 10,000.
        #expect(try rating.closingAdjustment() == usd("6990"))
        #expect(try rating.total.adding(rating.closingAdjustment()) == usd("10000.11"))
    }
}

/// Plan documents that break a rule are refused naming the exact field and the rule.
@Suite struct PlanValidationTests {
    @Test func tiersAndModifiers_nameTheExactField() {
        func graduated(_ tiers: String) -> PlanValidationError? {
            validationError(#"{"name":"p","currency":"USD","charges":[{"strategy":"graduated","tiers":\#(tiers)}]}"#)
        }
        #expect(
            graduated(#"[{"upTo":100,"rate":"0.1"},{"upTo":100,"rate":"0.2"},{"rate":"0.3"}]"#)
                == PlanValidationError(
                    field: "charges[0].tiers[1].upTo",
                    rule: "greater than the previous tier's upTo (100): tiers must not overlap"))
        #expect(
            graduated(#"[{"upTo":100,"rate":"0.1"},{"upTo":200,"rate":"0.2"}]"#)?.field == "charges[0].tiers[1].upTo")
        #expect(graduated(#"[{"rate":"0.1"},{"rate":"0.2"}]"#)?.field == "charges[0].tiers[0].upTo")
        #expect(
            graduated(#"[{"upTo":10,"rate":"-0.1"},{"rate":"0.2"}]"#)
                == PlanValidationError(field: "charges[0].tiers[0].rate", rule: "not negative"))
        #expect(graduated(#"[]"#)?.field == "charges[0].tiers")
        #expect(
            validationError(
                #"{"name":"p","currency":"USD","charges":[{"strategy":"graduated","metric":"bananas","#
                    + #""tiers":[{"rate":"1"}]}]}"#
            )?.field == "charges[0].metric")
        #expect(
            validationError(
                #"{"name":"p","currency":"USD","charges":[{"strategy":"committed","amount":"10","includedCalls":10,"#
                    + #""overageRate":"1","allocations":{"a":6,"b":5}}]}"#
            )?.field == "charges[0].allocations")
        #expect(
            validationError(
                #"{"name":"p","currency":"USD","charges":[{"strategy":"session_bundle","fee":"5","includedCalls":-1,"#
                    + #""overageRate":"1"}]}"#
            )?.field == "charges[0].includedCalls")
        #expect(
            validationError(
                #"{"name":"p","currency":"USD","charges":[{"strategy":"token_multiplier","rates":{"cached":"0.1"}}]}"#)?
                .field == "charges[0].rates.cached")
        #expect(
            validationError(
                #"{"name":"p","currency":"USD","charges":[{"strategy":"per_tool","rates":{"*":"1"}}],"#
                    + #""modifiers":[{"type":"error_rate_penalty","threshold":"0.05","multiplier":"1.5"}]}"#
            )?.field == "creditsAllowed")
        #expect(
            validationError(
                #"{"name":"p","currency":"USD","creditsAllowed":true,"charges":[{"strategy":"per_tool","#
                    + #""rates":{"*":"1"}}],"modifiers":[{"type":"error_rate_penalty","threshold":"1.5","#
                    + #""multiplier":"1.5"}]}"#
            )?.field == "modifiers[0].threshold")
        #expect(
            validationError(
                #"{"name":"p","currency":"USD","creditsAllowed":true,"charges":[{"strategy":"per_tool","#
                    + #""rates":{"*":"1"}}],"modifiers":[{"type":"volume_discount","tiers":[{"percent":"101"}]}]}"#
            )?.field == "modifiers[0].tiers[0].percent")
        #expect(
            validationError(#"{"name":"p","currency":"USD","creditsAllowed":"yes","charges":[]}"#)?.field
                == "creditsAllowed")
    }
}

/// Every example plan shipped in `Config/plans/` compiles.
@Suite struct ExamplePlanTests {
    @Test func everyPlanInConfigCompiles() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../Config/plans")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }
        #expect(files.count >= 6)
        for file in files {
            let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            #expect(throws: Never.self, "\(file)") { try compile(text) }
        }
    }
}

@Suite struct PlanDiffAndRoundingTests {
    @Test func diffNamesEveryChangedField() throws {
        let old = try JSONCodec.parse(#"{"name":"p","charges":[{"strategy":"per_tool","rates":{"a":"1","*":"2"}}]}"#)
        let new = try JSONCodec.parse(
            #"{"name":"p","charges":[{"strategy":"per_tool","rates":{"*":"3"}},{"strategy":"cost_plus","#
                + #""markup":"1.1"}]}"#
        )
        #expect(
            PlanDiff.changes(from: old, to: new).map(\.path) == [
                "charges[0].rates.*", "charges[0].rates.a", "charges[1]",
            ])
        #expect(PlanDiff.changes(from: old, to: old).isEmpty)
    }

    @Test func invoiceLinesRoundHalfEvenToTheMinorUnit() throws {
        #expect(try usd("0.125").rounded(toFractionDigits: 2) == usd("0.12"))
        #expect(try usd("0.135").rounded(toFractionDigits: 2) == usd("0.14"))
        #expect(try usd("-0.125").rounded(toFractionDigits: 2) == usd("-0.12"))
        #expect(try usd("0.1250001").rounded(toFractionDigits: 2) == usd("0.13"))
        #expect(try usd("2.5").rounded(toFractionDigits: 0) == usd("2"))
        #expect(
            Currency.minorUnitDigits("JPY") == 0 && Currency.minorUnitDigits("KWD") == 3
                && Currency.minorUnitDigits("USD") == 2)
    }
}
