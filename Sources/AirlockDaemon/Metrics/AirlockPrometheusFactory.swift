import AirlockWorker
public import Metrics
public import Prometheus

/// A swift-metrics factory over a Prometheus registry that knows Airlock's metrics: each name in
/// ``AirlockMetrics`` gets its `# HELP` line and its histogram buckets; any other name is made as
/// swift-prometheus's own factory makes it.
///
/// `airlock-workerd run --metrics-listen` bootstraps swift-metrics with it. An application that
/// bootstraps metrics itself can do the same and serve the registry however it likes:
///
/// ```swift
/// let registry = PrometheusCollectorRegistry()
/// MetricsSystem.bootstrap(AirlockPrometheusFactory(registry: registry))
/// await AirlockCommand.main(tasks: tasks, metrics: .alreadyBootstrapped(serving: registry))
/// ```
public struct AirlockPrometheusFactory: MetricsFactory {
    /// Where the metrics are registered (what `/metrics` emits).
    public let registry: PrometheusCollectorRegistry
    private let plain: PrometheusMetricsFactory

    /// A factory registering into `registry`.
    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        self.plain = PrometheusMetricsFactory(registry: registry)
    }

    private func descriptor(_ definition: AirlockMetrics.Definition) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: definition.name, unitName: "", helpText: definition.help)
    }

    /// A counter; Airlock's come with their help text.
    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        guard let definition = AirlockMetrics.definition(named: label) else { return plain.makeCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(descriptor: descriptor(definition), labels: dimensions)
    }

    /// A floating-point counter (Airlock records none).
    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        plain.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }

    /// A gauge (`aggregate: false`) or a value histogram; Airlock's gauges come with their help text.
    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard !aggregate, let definition = AirlockMetrics.definition(named: label) else {
            return plain.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
        }
        return registry.makeGauge(descriptor: descriptor(definition), labels: dimensions)
    }

    /// A gauge that moves up and down; Airlock's come with their help text.
    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        guard let definition = AirlockMetrics.definition(named: label) else { return plain.makeMeter(label: label, dimensions: dimensions) }
        return registry.makeGauge(descriptor: descriptor(definition), labels: dimensions)
    }

    /// A histogram of durations in seconds; Airlock's come with their help text and buckets.
    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard let definition = AirlockMetrics.definition(named: label), !definition.buckets.isEmpty else {
            return plain.makeTimer(label: label, dimensions: dimensions)
        }
        return registry.makeDurationHistogram(descriptor: descriptor(definition), labels: dimensions, buckets: definition.buckets)
    }

    /// Unregisters the counter.
    public func destroyCounter(_ handler: any CounterHandler) { plain.destroyCounter(handler) }
    /// Unregisters the counter.
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { plain.destroyFloatingPointCounter(handler) }
    /// Unregisters the gauge or histogram.
    public func destroyRecorder(_ handler: any RecorderHandler) { plain.destroyRecorder(handler) }
    /// Unregisters the gauge.
    public func destroyMeter(_ handler: any MeterHandler) { plain.destroyMeter(handler) }
    /// Unregisters the histogram.
    public func destroyTimer(_ handler: any TimerHandler) { plain.destroyTimer(handler) }
}
