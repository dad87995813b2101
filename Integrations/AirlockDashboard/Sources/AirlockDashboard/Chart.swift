import AirlockRedis

/// Inline SVG charts: no images, no external scripts; the live script redraws them with numbers only.
enum Chart {
    /// Height of the drawing in SVG units (the width is one unit per second).
    static let height = 1000

    /// Processed and failed jobs per second over the last `seconds` of the series, oldest at the
    /// left. `name` prefixes the element ids (`<name>-processed`, `<name>-failed`, `<name>-peak`);
    /// the svg's `data-seconds` tells the live script how much of the feed's hour to draw.
    static func throughput(_ series: ThroughputSeries, seconds: Int, name: String, caption: String) -> HTML {
        let processed = Array(series.processed.suffix(seconds)), failed = Array(series.failed.suffix(seconds))
        let peak = max(1, processed.max() ?? 0, failed.max() ?? 0)
        let width = max(1, processed.count - 1)
        let start = seconds >= 120 ? "\(seconds / 60) min ago" : "\(seconds) s ago"
        return """
            <figure class="chart" id="\(attribute: name)">
            <div class="chart-scale">\(caption) · peak <span id="\(attribute: name)-peak">\(Format.count(peak))</span>/s</div>
            <svg viewBox="0 0 \(width) \(height)" preserveAspectRatio="none" role="img" aria-label="processed and failed jobs per second" data-chart="\(attribute: name)" data-seconds="\(seconds)">
            <line class="grid" x1="0" y1="\(height / 2)" x2="\(width)" y2="\(height / 2)" vector-effect="non-scaling-stroke"/>
            <polyline id="\(attribute: name)-processed" class="processed" vector-effect="non-scaling-stroke" points="\(points(processed, peak: peak))"/>
            <polyline id="\(attribute: name)-failed" class="failed" vector-effect="non-scaling-stroke" points="\(points(failed, peak: peak))"/>
            </svg>
            <figcaption><span>\(start)</span><span class="legend"><i class="processed"></i>processed/s <i class="failed"></i>failed/s</span><span>now</span></figcaption>
            </figure>
            """
    }

    /// `x,y` pairs, one per second, y scaled so `peak` touches the top. Digits, commas and spaces
    /// only, so the markup needs no escaping; built as bytes (the overview draws 7,800 points).
    static func points(_ values: [Int], peak: Int) -> HTML {
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 9)
        for (x, value) in values.enumerated() {
            if x > 0 { out.append(UInt8(ascii: " ")) }
            appendDecimal(x, to: &out)
            out.append(UInt8(ascii: ","))
            appendDecimal(height - value * height / max(peak, 1), to: &out)
        }
        return HTML(trusted: String(decoding: out, as: UTF8.self))
    }

    /// The decimal digits of `value` (a minus sign first when negative), without a String.
    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        let start = out.count
        var magnitude = value.magnitude
        repeat {
            out.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        out[start...].reverse()
    }
}
