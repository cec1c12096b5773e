import PerToolStrategy
import TollgatePricing

extension StrategyRegistry {
    /// Every strategy shipped with Tollgate. A new plug-in is one target under `Plugins/` and one line here.
    public static let builtIn: StrategyRegistry = {
        var registry = StrategyRegistry()
        registry.register(PerToolStrategy.self)
        return registry
    }()
}
