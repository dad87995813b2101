import AirlockRedis
import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Airlock
import AirlockRedisClient
import AirlockWorker

/// `airlock-workerd stats`: per-queue depth, latency, counters and throughput.
struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show each queue's ready, delayed, in-flight and dead jobs, latency, counters and rate.",
        discussion: """
            OLDEST is the age of the job next in line (its enqueued_at, or its eta when later): the queue's \
            latency. PROCESSED/S compares two samples --interval seconds apart. Counters are totals since the \
            queue was first used. --json prints one object (schema "airlock.stats/1", see docs/OPERATIONS.md). \
            --watch refreshes in place on a terminal and prints one sample per period otherwise.
            """
    )

    /// The refresh period a bare `--watch` gets.
    static let defaultWatchPeriod = 2.0

    @OptionGroup var connection: ConnectionOptions

    @Option(name: .customLong("queue"), help: ArgumentHelp("Only these queues (repeatable, or a comma-separated list).", valueName: "name"))
    var queues: [String] = []

    @Option(help: ArgumentHelp("Seconds between the two samples the rate comes from; 0 skips the rate.", valueName: "seconds"))
    var interval: Double = 1

    @Flag(name: .customLong("no-rate"), help: "Take one sample and show no rate (same as --interval 0).")
    var noRate = false

    @Flag(help: "Print one JSON object (one per line with --watch).")
    var json = false

    @Option(help: ArgumentHelp("Refresh every N seconds (default \(Int(defaultWatchPeriod)) when N is omitted) until interrupted.", valueName: "seconds"))
    var watch: Double?

    @Option(help: ArgumentHelp("With --watch: stop after this many samples.", valueName: "n"))
    var count: Int?

    func validate() throws {
        guard interval <= 3600, Duration(checkedSeconds: interval) != nil else {
            throw ValidationError("--interval must be a number of seconds from 0 to 3600")
        }
        if let watch, watch <= 0 || watch > 86_400 || Duration(checkedSeconds: watch) == nil {
            throw ValidationError("--watch needs a positive number of seconds, at most 86400")
        }
        _ = try validatedQueueList(queues, option: "--queue")
        if let count {
            guard count >= 1 else { throw ValidationError("--count must be at least 1") }
            guard watch != nil else { throw ValidationError("--count only applies with --watch") }
        }
    }

    private var rateInterval: Duration? {
        noRate || interval == 0 ? nil : Duration(checkedSeconds: interval)
    }

    func run() async throws {
        let selection = queueList(queues)
        try await withAdmin(connection) { admin in
            guard let watch else {
                let report = try await admin.stats(queues: selection, interval: rateInterval)
                if json {
                    Console.out(report.json)
                } else {
                    // Running batches' progress below the queues (`batches --json` for scripts).
                    let running = try await admin.batches(limit: BatchesCommand.statsLimit).batches.filter { !$0.isComplete }
                    Console.out(render(report) + (running.isEmpty ? "" : "\n\n" + BatchesCommand.runningSection(running)))
                }
                return
            }
            let terminal = Console.stdoutIsTerminal && !json
            var previous: StatsReport?
            var printed = 0
            while count.map({ printed < $0 }) ?? true {
                let report: StatsReport
                if let previous {
                    try await Task.sleep(for: Duration(checkedSeconds: watch) ?? .seconds(2))
                    let sample = try await admin.statsSample(queues: selection)
                    report = rateInterval == nil ? sample : sample.withRates(since: previous)
                } else {
                    report = try await admin.stats(queues: selection, interval: rateInterval)
                }
                if json {
                    Console.out(report.json)
                } else if terminal {
                    Console.raw(Console.clearScreen + header(watch: watch) + "\n\n" + render(report) + "\n")
                } else {
                    Console.out((printed > 0 ? "\n" : "") + render(report))
                }
                previous = report
                printed += 1
            }
        }
    }

    private func header(watch: Double) -> String {
        "airlock-workerd stats · every \(Format.seconds(watch)) · Ctrl-C to stop"
    }

    func render(_ report: StatsReport) -> String {
        var table = TextTable(
            headers: ["QUEUE", "READY", "DELAYED", "IN FLIGHT", "DEAD", "PAUSED", "OLDEST", "PROCESSED", "FAILED", "RETRIED", "EXPIRED", "PROCESSED/S"],
            rightAligned: [1, 2, 3, 4, 6, 7, 8, 9, 10, 11])
        for q in report.queues {
            table.rows.append([
                q.partitions > 1 ? "\(q.name) (\(q.partitions) partitions)" : q.name, "\(q.ready)", "\(q.delayed)", "\(q.inFlight)", "\(q.dead)", q.paused ? "yes" : "no",
                Format.age(milliseconds: q.oldestReadyAgeMilliseconds), "\(q.counters.processed)", "\(q.counters.failed)",
                "\(q.counters.retried)", "\(q.counters.expired)", Format.rate(q.processedPerSecond),
            ])
        }
        let t = report.totals
        table.rows.append([
            "TOTAL", "\(t.ready)", "\(t.delayed)", "\(t.inFlight)", "\(t.dead)", t.pausedQueues == 0 ? "-" : "\(t.pausedQueues) paused",
            Format.age(milliseconds: t.oldestReadyAgeMilliseconds), "\(t.counters.processed)", "\(t.counters.failed)",
            "\(t.counters.retried)", "\(t.counters.expired)", Format.rate(t.processedPerSecond),
        ])
        var lines: [String] = []
        if report.queues.isEmpty {
            lines.append("no queues in namespace '\(safe(report.namespace))' yet (a queue appears once a job is enqueued or a worker consumes it)")
        } else {
            lines.append(table.rendered)
        }
        let w = report.workers
        var footer = "workers: \(w.alive) alive"
        if w.dead > 0 { footer += ", \(w.dead) dead (awaiting recovery)" }
        footer += " · namespace \(safe(report.namespace)) · \(Format.date(milliseconds: report.sampledAtMilliseconds))"
        if let seconds = report.rateIntervalSeconds { footer += " · rate over \(Format.oneDecimal(seconds))s" }
        let limited = report.queues.filter { $0.limit != nil }
        if !limited.isEmpty {
            lines.append("")
            lines += limited.map { "limit: " + Self.limitText($0.name, $0.limit, held: $0.limitHeld) }
        }
        lines.append("")
        lines.append(footer)
        lines.append(Self.outboxLine(report.outbox, now: report.sampledAtMilliseconds))
        return lines.joined(separator: "\n")
    }

    /// `orders: concurrency 5 (3 held) · rate 100/1s (burst 2)`, names escaped.
    static func limitText(_ queue: String, _ limit: QueueLimit?, held: Int) -> String {
        guard let limit else { return "\(safe(queue)): no limit" }
        var parts: [String] = []
        if let concurrency = limit.concurrency { parts.append("concurrency \(concurrency) (\(held) held)") }
        if let rate = limit.rate { parts.append("rate \(rate)") }
        return "\(safe(queue)): " + parts.joined(separator: " · ")
    }

    /// `outbox: 12 pending (oldest 3.1s), 0 parked · 2 relays, last report 1.0s ago`, or that no
    /// relay reports (no outbox, or its relays are down: their reports expire).
    static func outboxLine(_ outbox: OutboxSummary, now: Int64) -> String {
        guard let latest = outbox.latest else { return "outbox: no relay reporting" }
        var line = "outbox: \(latest.pending) pending"
        if let oldest = latest.oldestPendingAgeMilliseconds { line += " (oldest \(Format.age(milliseconds: oldest)))" }
        line += ", \(latest.parked) parked · \(outbox.relays.count) relay\(outbox.relays.count == 1 ? "" : "s")"
        line += ", last report \(Format.age(milliseconds: max(0, now.subtractingSaturated(latest.reportedAtMilliseconds)))) ago"
        if let error = latest.lastError { line += " · last error: \(safe(error))" }
        return line
    }
}
