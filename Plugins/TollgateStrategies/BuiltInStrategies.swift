import CommittedStrategy
import CostPlusStrategy
import DurationBucketsStrategy
import GraduatedStrategy
import PerToolStrategy
import SessionBundleStrategy
import TokenMultiplierStrategy
import TollgatePricing
import VolumeStrategy

extension StrategyRegistry {
    /// Every strategy shipped with Tollgate. A new plug-in is one target under `Plugins/` and one line here.
    public static let builtIn: StrategyRegistry = {
        var registry = StrategyRegistry()
        registry.register(PerToolStrategy.self)
        registry.register(SessionBundleStrategy.self)
        registry.register(TokenMultiplierStrategy.self)
        registry.register(CommittedStrategy.self)
        registry.register(GraduatedStrategy.self)
        registry.register(VolumeStrategy.self)
        registry.register(DurationBucketsStrategy.self)
        registry.register(CostPlusStrategy.self)
        return registry
    }()
}
