import Testing
import TollgateCore
import TollgateStrategies

@testable import TollgatePricing

@Suite struct PerToolStrategyTests {
    @Test func seedDimension1_namedToolsAndDefault() throws {
        // Seed 001, "Dimension 1: Tool-Specific Rates".
        let plan = try compile(
            #"""
            {"name":"d1","currency":"USD","charges":[{"strategy":"per_tool","rates":
              {"transform_schema":"0.10","validate_credentials":"0.001","read_database":"0.05","*":"0.002"}}]}
            """#)
        #expect(try plan.price(of: RatedEvent(tool: "transform_schema")).decimalString == "0.1")
        #expect(try plan.price(of: RatedEvent(tool: "xyz_unknown_tool")).decimalString == "0.002")
        #expect(try plan.price(of: RatedEvent(tool: "read_database", quantity: 3)).decimalString == "0.15")
    }

    @Test func protocolExamplePlan_worksExactlyAsWritten() throws {
        let plan = try compile(
            #"{"name":"search","currency":"USD","charges":[{"strategy":"per_tool","rates":{"search":"0.001","#
                + #""transform":"0.25","*":"0.002"}}]}"#
        )
        #expect(try plan.price(of: RatedEvent(tool: "search")).decimalString == "0.001")
        #expect(try plan.price(of: RatedEvent(tool: "transform")).decimalString == "0.25")
        #expect(try plan.price(of: RatedEvent(tool: "other")).decimalString == "0.002")
    }

    @Test func validation_namesTheExactFieldAndRule() {
        let base = #"{"name":"p","currency":"USD","charges":[{"strategy":"per_tool","rates":RATES}]}"#
        func rates(_ text: String) -> String { base.replacingOccurrences(of: "RATES", with: text) }
        #expect(
            validationError(rates(#"{"a":"0.1"}"#))
                == PlanValidationError(field: "charges[0].rates.*", rule: "a default rate for tools not listed"))
        #expect(validationError(rates(#"{"a":"-0.1","*":"1"}"#))?.field == "charges[0].rates.a")
        #expect(validationError(rates(#"{"a":0.1,"*":"1"}"#))?.field == "charges[0].rates.a")
        #expect(validationError(rates(#"{"a":"0.0000000001","*":"1"}"#))?.field == "charges[0].rates.a")
        #expect(validationError(rates(#""x""#))?.field == "charges[0].rates")
        #expect(validationError(#"{"name":"p","currency":"usd","charges":[]}"#)?.field == "currency")
        #expect(validationError(#"{"name":"p","currency":"USD","charges":[]}"#)?.field == "charges")
        #expect(
            validationError(#"{"name":"p","currency":"USD","charges":[{"strategy":"nope"}]}"#)?.field
                == "charges[0].strategy")
        #expect(
            validationError(#"{"name":"p","currency":"USD","charges":[{"rates":{}}]}"#)?.field == "charges[0].strategy")
        #expect(
            validationError(
                #"{"name":"p","currency":"USD","charges":[{"strategy":"per_tool","rates":{"*":"1"},"extra":1}]}"#)?
                .field == "charges[0].extra")
        #expect(validationError(#"{"name":"","currency":"USD","charges":[]}"#)?.field == "name")
        #expect(validationError(#"{"name":"p","currency":"USD","charges":[1]}"#)?.field == "charges[0]")
        #expect(
            validationError(
                #"{"name":"p","currency":"USD","charges":[{"strategy":"per_tool","rates":{"*":"1"}}],"#
                    + #""modifiers":[{"kind":"x"}]}"#
            )?.field == "modifiers[0].type")
        #expect(validationError(#"{"name":"p","currency":"USD","charges":[],"colour":"red"}"#)?.field == "colour")
    }

    @Test func price_overflowIsAnErrorNotAWrap() throws {
        let plan = try compile(
            #"{"name":"p","currency":"USD","charges":[{"strategy":"per_tool","rates":{"*":"1000"}}]}"#)
        #expect(throws: MoneyError.overflow) { try plan.price(of: RatedEvent(tool: "x", quantity: 1_000_000_000_000)) }
    }

    @Test func registry_listsBuiltInStrategiesByName() {
        #expect(
            StrategyRegistry.builtIn.names == [
                "committed", "cost_plus", "duration_buckets", "graduated", "per_tool",
                "session_bundle", "token_multiplier", "volume",
            ])
        #expect(StrategyRegistry.builtIn.strategy(named: "per_tool") != nil)
    }
}
