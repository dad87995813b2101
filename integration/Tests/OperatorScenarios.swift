import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

extension IntegrationScenarios {
    // MARK: 9. Operator CLI end to end

    @Test("9. CLI: pause stops fetching, resume runs the backlog; failed jobs → dead list → dead retry --all re-runs them", .timeLimit(.minutes(5)))
    func operatorCommands() async throws {
        try await Scenario.run("cli") { s in
            let fleet = try await s.startFleet("cli", count: 2, concurrency: 4)

            // Pause, with both workers idle (blocked waiting for work).
            let pause = try await s.cli(["pause", "default"])
            let pausedAt = ContinuousClock.now
            #expect(pause.status == 0, "\(pause)")
            #expect(try await s.command("EXISTS", s.keys.paused("default")).int == 1, "pause did not set the paused flag")
            let statsWhilePaused = try await s.cli(["stats", "--json", "--no-rate"])
            #expect(statsWhilePaused.status == 0, "\(statsWhilePaused)")
            #expect(Self.queueField(statsWhilePaused.stdout, queue: "default", field: "paused") == .bool(true), "stats does not show the pause: \(statsWhilePaused)")

            let tokens = Self.tokens("p", 200)
            try await s.produceRecords(tokens, using: try s.executor())
            let viaCLI = try await s.cli(["enqueue", "airlock.record", "--kwargs", #"{"token": "p-cli"}"#, "--queue", "default"])
            #expect(viaCLI.status == 0, "\(viaCLI)")
            let total = tokens.count + 1
            // The documented contract: workers stop taking jobs within about a second of `pause`.
            // Whatever was taken in that grace is counted; after it, nothing more may be taken.
            let grace = pausedAt + .milliseconds(1_200)
            if ContinuousClock.now < grace { try await Task.sleep(until: grace, clock: .continuous) }
            let takenInGrace = total - (try await s.llen(s.keys.ready("default")))
            var takenLater = 0
            let observeUntil = ContinuousClock.now + .seconds(2)
            while ContinuousClock.now < observeUntil {
                takenLater = max(takenLater, total - (try await s.llen(s.keys.ready("default"))) - takenInGrace)
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(takenLater == 0, "\(takenLater) jobs were taken from a paused queue more than a second after `pause`")
            #expect(takenInGrace <= fleet.count, "\(takenInGrace) jobs taken right after `pause` (at most one per blocked fetcher)")

            let resume = try await s.cli(["resume", "default"])
            let resumedAt = ContinuousClock.now
            #expect(resume.status == 0, "\(resume)")
            #expect(try await s.command("EXISTS", s.keys.paused("default")).int == 0)
            let resumed = try await s.waitForRecords(total, timeout: .seconds(60))
            let resumeToDrained = ContinuousClock.now - resumedAt
            #expect(resumed, "the backlog did not run after `resume`")
            let check = RecordCheck(expected: Set(tokens + ["p-cli"]), recorded: try await s.strings(s.keys.diagRecord))
            #expect(check.missing.isEmpty && check.duplicates == 0 && check.unexpected.isEmpty, "\(check)")

            // Failing jobs reach the dead letter; the CLI lists, shows and retries them.
            let failing = (0..<10).map { index in
                Intent(taskName: "airlock.fail", payload: .dynamic(TaskArguments(kwargs: ["message": .string("boom-\(index)")])),
                       options: DispatchOptions(maxRetries: 0))
            }
            let failingIDs = failing.map { $0.id.uuidString.lowercased() }
            #expect(try await s.executor().enqueue(failing).allSatisfy { $0 == .queued })
            let dead = s.keys.dead("default")
            let allDead = try await eventually(timeout: .seconds(30)) { try await s.llen(dead) == failing.count }
            #expect(allDead, "the failing jobs did not reach the dead letter")

            let list = try await s.cli(["dead", "list", "--limit", "0"])
            #expect(list.status == 0, "\(list)")
            for id in failingIDs { #expect(list.stdout.contains(id), "dead list does not show \(id): \(list.stdout.prefix(3000))") }
            #expect(list.stdout.contains("boom-"), "dead list does not show the error")

            let show = try await s.cli(["dead", "show", failingIDs[3]])
            #expect(show.status == 0 && show.stdout.contains(failingIDs[3]) && show.stdout.contains("boom-3"), "\(show)")
            let showMissing = try await s.cli(["dead", "show", "no-such-dead-letter"])
            #expect(showMissing.status == 1 && !showMissing.stderr.isEmpty, "an unknown id must fail with status 1 and a reason: \(showMissing)")

            let failedBefore = try await s.stats()["failed"] ?? 0
            let retry = try await s.cli(["dead", "retry", "--all"])
            #expect(retry.status == 0, "\(retry)")
            for id in failingIDs { #expect(retry.stdout.contains(id), "dead retry did not report \(id): \(retry.stdout.prefix(3000))") }
            // They ran again: airlock.fail fails again, so each comes back to the dead letter once more.
            let reran = try await eventually(timeout: .seconds(30)) {
                let failed = try await s.stats()["failed"] ?? 0
                guard failed >= failedBefore + failing.count else { return false }
                return try await s.llen(dead) == failing.count
            }
            let stats = try await s.stats()
            #expect(reran, "the retried jobs did not run again: stats \(stats)")
            #expect(stats["failed"] == 2 * failing.count && stats["dead"] == 2 * failing.count, "stats \(stats)")
            let entries = (try await s.strings(dead)).compactMap { try? JSONParser.parse(Array($0.utf8)).objectValue }
            #expect(Set(entries.compactMap { $0["id"]?.stringValue }) == Set(failingIDs), "the re-dead jobs are not the retried ones")
            #expect(entries.allSatisfy { $0["attempts"]?.intValue == 1 }, "a retried job should start again at attempt 0 and fail once")

            let workers = try await s.cli(["workers"])
            #expect(workers.status == 0, "\(workers)")
            for (_, id) in fleet { #expect(workers.stdout.contains(id), "`workers` does not list \(id): \(workers.stdout.prefix(2000))") }
            let queues = try await s.cli(["queues"])
            #expect(queues.status == 0 && queues.stdout.split(separator: "\n").contains("default"), "\(queues)")

            let purge = try await s.cli(["dead", "purge", "--all"])
            #expect(purge.status == 0, "\(purge)")
            #expect(try await s.llen(dead) == 0, "dead purge left entries")
            for (worker, _) in fleet {
                #expect(worker.isRunning, "\(worker.label) exited:\n\(worker.stderrTail())")
            }
            Integration.report(
                "cli paused_jobs=\(total) taken_in_pause_grace=\(takenInGrace) taken_after_grace=\(takenLater) "
                    + "resume_to_drained_ms=\(resumeToDrained.ms) dead=\(failing.count) retried_and_reran=\(reran)")
        }
    }

    /// A field of one queue in `stats --json` output.
    static func queueField(_ json: String, queue: String, field: String) -> JSONValue? {
        guard let document = try? JSONParser.parse(Array(json.utf8)).objectValue,
              let queues = document["queues"]?.arrayValue else { return nil }
        return queues.compactMap(\.objectValue).first { $0["name"]?.stringValue == queue }?[field]
    }
}
