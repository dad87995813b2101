#!/usr/bin/env ruby
# frozen_string_literal: true
# Drain benchmark of Sidekiq on the bench's Redis, the Ruby counterpart of peer_bench.py.
#
#   sidekiq_bench.rb --url redis://host:port/db --count N --concurrency C --fetch basic|reliable
#                    [--pgid-file F] [--log F] [--timeout S]
#
# FLUSHDBs its db, pushes --count no-op jobs (sidekiq_worker.rb) with Sidekiq::Client.push_bulk in slices
# of 1,000, then starts one `sidekiq -c C` process (its own process group, whose id is appended to
# --pgid-file at once so the calling script can kill it even if this driver dies), waits until the jobs'
# own counter reaches --count (Sidekiq's stat:processed is flushed by its heartbeat and lags), and reports:
#   per_s         = (count - 1) / (time the last job ran - time the first job ran), stamped by the jobs
#                   (the same measure as peer_bench.py)
#   wall_per_s    = count / (time the last job ran - time `sidekiq` was started): boot included
#   boot_s        = time the first job ran - time `sidekiq` was started
#   enqueue_per_s = count / time the push_bulk loop took
#   extra_runs    = jobs run more than --count times in all (at-least-once redeliveries; 0 expected)
# Last line: `result: per_s=… wall_per_s=… enqueue_per_s=… seconds=… boot_s=… extra_runs=… tasks=…`.
require "optparse"

HERE = File.expand_path(__dir__)
opts = { count: 20_000, concurrency: 10, fetch: "basic", timeout: 900.0, pgid_file: nil, log: nil, url: nil }
OptionParser.new do |o|
  o.on("--url URL") { |v| opts[:url] = v }
  o.on("--count N", Integer) { |v| opts[:count] = v }
  o.on("--concurrency C", Integer) { |v| opts[:concurrency] = v }
  o.on("--fetch KIND", %w[basic reliable]) { |v| opts[:fetch] = v }
  o.on("--timeout S", Float) { |v| opts[:timeout] = v }
  o.on("--pgid-file F") { |v| opts[:pgid_file] = v }
  o.on("--log F") { |v| opts[:log] = v }
end.parse!
abort "sidekiq_bench: --url is required" unless opts[:url]
count = opts[:count]
label = "sidekiq (#{opts[:fetch]} fetch, -c #{opts[:concurrency]})"

ENV["REDIS_URL"] = opts[:url]
ENV["PEER_COUNT"] = count.to_s
ENV["PEER_FETCH"] = opts[:fetch]
require_relative "sidekiq_worker"

def now_real = Process.clock_gettime(Process::CLOCK_REALTIME)
def now_mono = Process.clock_gettime(Process::CLOCK_MONOTONIC)

redis = Redis.new(url: opts[:url])
redis.flushdb

started = now_mono
(0...count).each_slice(1000) do |slice|
  Sidekiq::Client.push_bulk("class" => PeerNoopJob, "args" => slice.map { |i| [i] })
end
enqueue_seconds = now_mono - started
queued = redis.llen("queue:default")
abort "#{label}: #{queued} jobs in queue:default after pushing #{count}" unless queued == count

# The jobs are all queued before the process starts, so ReliableFetch's 5 s sleep on an empty queue
# cannot delay the first fetch; it only idles threads once the queue has run dry at the end.
log = opts[:log] ? File.open(opts[:log], "a") : File::NULL
spawned = now_real
pid = Process.spawn(ENV.to_h, "sidekiq", "-r", File.join(HERE, "sidekiq_worker.rb"), "-c", opts[:concurrency].to_s,
                    "-q", "default", chdir: HERE, in: File::NULL, out: log, err: log, pgroup: true)
File.open(opts[:pgid_file], "a") { |f| f.puts(pid) } if opts[:pgid_file]

status = nil
stop = lambda do
  next if status
  begin
    Process.kill("TERM", -pid)
    deadline = now_mono + 30
    sleep 0.05 while (status = Process.wait2(pid, Process::WNOHANG)&.last).nil? && now_mono < deadline
    unless status
      Process.kill("KILL", -pid)
      status = Process.wait2(pid).last
    end
  rescue Errno::ESRCH, Errno::ECHILD
    status = true
  end
end
%w[TERM INT].each do |sig|
  Signal.trap(sig) do
    stop.call
    exit!(128 + Signal.list[sig])
  end
end

begin
  deadline = now_mono + opts[:timeout]
  until redis.get(PeerBench::COUNTER).to_i >= count
    raise "#{label}: timed out with #{redis.get(PeerBench::COUNTER).to_i} of #{count} done" if now_mono > deadline
    if (status = Process.wait2(pid, Process::WNOHANG)&.last)
      raise "#{label}: sidekiq exited (#{status}) with #{redis.get(PeerBench::COUNTER).to_i} of #{count} done"
    end
    sleep 0.02
  end
  first = Float(redis.get(PeerBench::FIRST))
  # Any job run twice would have made the counter reach count early: let the queue empty, give
  # in-flight jobs a moment, then read the counter again.
  sleep 0.02 until redis.llen("queue:default").zero? || now_mono > deadline
  sleep 0.5
  runs = redis.get(PeerBench::COUNTER).to_i
  last = Float(redis.get(PeerBench::LAST))
  # ReliableFetch's heartbeat key (SET EX 60 at start-up) shows which fetch actually ran.
  heartbeat = !redis.keys("reliable-fetcher-heartbeat-*").empty?
  raise "#{label}: ReliableFetch was not active (no reliable-fetcher-heartbeat-* key)" if opts[:fetch] == "reliable" && !heartbeat
  raise "#{label}: ReliableFetch was active (a reliable-fetcher-heartbeat-* key)" if opts[:fetch] == "basic" && heartbeat
ensure
  stop.call
  redis.flushdb
end

seconds = last - first
per_s = (count - 1) / seconds
wall_per_s = count / (last - spawned)
enqueue_per_s = count / enqueue_seconds
warn "#{label}: #{runs - count} jobs ran more than once" if runs > count
puts format("%s: drained %d jobs in %.3f s = %.0f jobs/s (from process start: %.0f/s, first job after %.2f s; " \
            "enqueue %.0f/s)", label, count, seconds, per_s, wall_per_s, first - spawned, enqueue_per_s)
puts format("result: per_s=%.0f wall_per_s=%.0f enqueue_per_s=%.0f seconds=%.4f boot_s=%.3f extra_runs=%d tasks=%d",
            per_s, wall_per_s, enqueue_per_s, seconds, first - spawned, runs - count, count)
