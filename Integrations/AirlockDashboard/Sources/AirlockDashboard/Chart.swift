import AirlockRedis

/// Inline SVG charts: no images, no external scripts; the live script redraws them with numbers only.
enum Chart {
    /// Height of the drawing in SVG units (the width is one unit per second).
    static let height = 1000

    /// Processed and failed jobs per second over the series' window, oldest at the left.
    static func throughput(_ series: ThroughputSeries) -> HTML {
        let peak = max(1, series.processed.max() ?? 0, series.failed.max() ?? 0)
        let width = max(1, series.count - 1)
        return """
            <figure class="chart" id="throughput-chart">
            <div class="chart-scale"><span id="chart-peak">\(Format.count(peak))</span>/s</div>
            <svg viewBox="0 0 \(width) \(height)" preserveAspectRatio="none" role="img" aria-label="processed and failed jobs per second, last hour">
            <line class="grid" x1="0" y1="\(height / 2)" x2="\(width)" y2="\(height / 2)" vector-effect="non-scaling-stroke"/>
            <polyline id="chart-processed" class="processed" vector-effect="non-scaling-stroke" points="\(attribute: points(series.processed, peak: peak))"/>
            <polyline id="chart-failed" class="failed" vector-effect="non-scaling-stroke" points="\(attribute: points(series.failed, peak: peak))"/>
            </svg>
            <figcaption><span>\(series.count / 60) min ago</span><span class="legend"><i class="processed"></i>processed/s <i class="failed"></i>failed/s</span><span>now</span></figcaption>
            </figure>
            """
    }

    /// `x,y` pairs, one per second, y scaled so `peak` touches the top.
    static func points(_ values: [Int], peak: Int) -> String {
        var out = ""
        out.reserveCapacity(values.count * 8)
        for (x, value) in values.enumerated() {
            if x > 0 { out += " " }
            out += String(x)
            out += ","
            out += String(height - value * height / peak)
        }
        return out
    }
}
