import TollgateCore

/// What a plan would bill for a list of events, line by line: `tollgate plans simulate`. Rates the events
/// exactly as the server does (one `PlanRating`, marginal prices), then rounds each invoice line half-even to
/// the currency's minor unit, which is where rounding belongs.
public struct InvoicePreview: Sendable {
    public struct Line: Sendable, Hashable {
        public var description: String
        /// Exact, before rounding to the minor unit.
        public var exact: Money
        public var amount: Money
    }

    public var currency: String
    public var events: Int
    public var lines: [Line]
    /// The sum of the rounded lines.
    public var total: Money

    /// Rates `events` in order under `plan` for one period.
    public init(plan: Plan, events: [RatedEvent]) throws(MoneyError) {
        let rating = PlanRating(plan: plan)
        for event in events { try rating.rate(event) }
        let digits = Currency.minorUnitDigits(plan.currency)
        var lines: [Line] = []
        func add(_ description: String, _ exact: Money) throws(MoneyError) {
            lines.append(
                Line(description: description, exact: exact, amount: try exact.rounded(toFractionDigits: digits)))
        }
        let charges = try rating.chargeTotals()
        for (index, (charge, total)) in zip(plan.charges, charges).enumerated() {
            try add("charges[\(index)] \(type(of: charge).name)", total)
        }
        if !plan.modifiers.isEmpty {
            var names: [String] = []
            if plan.modifiers.errorRatePenalty != nil { names.append("error_rate_penalty") }
            if plan.modifiers.volumeDiscount != nil { names.append("volume_discount") }
            try add("modifiers (\(names.joined(separator: ", ")))", try rating.total.subtracting(rating.baseTotal))
        }
        let closing = try rating.closingAdjustment()
        if closing != .zero { try add("true-up to the commitment at period close", closing) }
        var total = Money.zero
        for line in lines { total = try total.adding(line.amount) }
        self.currency = plan.currency
        self.events = events.count
        self.lines = lines
        self.total = total
    }
}

extension Currency {
    /// Digits of the currency's minor unit (ISO 4217): 0 for JPY, KRW and the like, 3 for BHD, KWD, JOD,
    /// OMR, TND, 2 for the rest.
    public static func minorUnitDigits(_ code: String) -> Int {
        switch code {
        case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF",
            "XOF", "XPF":
            0
        case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND": 3
        default: 2
        }
    }
}

extension Money {
    /// The nano-units in one unit of the `digits`-th fractional digit (0…9): 10 000 000 for cents.
    public static func nanosPerUnit(ofFractionDigits digits: Int) -> Int64 {
        precondition((0...Money.fractionDigitsMax).contains(digits))
        var unit: Int64 = 1
        for _ in 0..<(Money.fractionDigitsMax - digits) { unit *= 10 }
        return unit
    }

    /// Rounded toward zero to `digits` fractional digits: what an amount holds of whole minor units.
    public func roundedDown(toFractionDigits digits: Int) -> Money {
        let unit = Money.nanosPerUnit(ofFractionDigits: digits)
        return Money(nanos: nanos / unit * unit)
    }

    /// Rounded half-even to `digits` fractional digits (0…9).
    public func rounded(toFractionDigits digits: Int) throws(MoneyError) -> Money {
        let unit = Money.nanosPerUnit(ofFractionDigits: digits)
        let rounded = ExactAmount.divideHalfEven(Int128(nanos), by: Int128(unit)) * Int128(unit)
        guard let exact = Int64(exactly: rounded) else { throw .overflow }
        return Money(nanos: exact)
    }
}
