import TollgateCore

/// The strategies a server knows, by name. The list of built-in plug-ins lives in `Plugins/TollgateStrategies`;
/// adding a strategy means adding its target there and one `register` line.
public struct StrategyRegistry: Sendable {
    private var strategies: [String: any PricingStrategy.Type] = [:]

    public init() {}

    public mutating func register(_ strategy: any PricingStrategy.Type) {
        precondition(strategies[strategy.name] == nil, "strategy \(strategy.name) registered twice")
        strategies[strategy.name] = strategy
    }

    public var names: [String] { strategies.keys.sorted() }

    public func strategy(named name: String) -> (any PricingStrategy.Type)? { strategies[name] }
}
