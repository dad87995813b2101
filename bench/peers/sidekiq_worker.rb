# Sidekiq 6 worker for the side-by-side drain benchmark (sidekiq_bench.rb pushes the jobs and runs
# `sidekiq -r` on this file). The job does what every peer task does (peer_common.py): INCR a counter;
# the first run stamps bench:peer:first and the COUNT-th (and any run after it) bench:peer:last.
#
# Environment (set by sidekiq_bench.rb): REDIS_URL, PEER_COUNT, PEER_FETCH=basic|reliable.
# PEER_FETCH=reliable installs gitlab-sidekiq-fetcher's ReliableFetch (RPOPLPUSH into a per-process
# working list, LREM on completion): the at-least-once fetch, like Airlock's.
require "sidekiq"
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=) # redis-rb 4.8 warns on every push

# Warnings only, like the other peers' workers (Celery -l WARNING) and airlock-workerd --log-level warning:
# at its default level (info) Sidekiq logs a "start" and a "done" line for every job.
# SIDEKIQ_LOG_LEVEL=info (bench/run.sh passes the environment on) measures it that way.
Sidekiq.configure_server { |config| config.logger.level = ENV.fetch("SIDEKIQ_LOG_LEVEL", "warn") }

if ENV["PEER_FETCH"] == "reliable"
  require "sidekiq-reliable-fetch"
  Sidekiq.configure_server do |config|
    config.options[:semi_reliable_fetch] = false
    Sidekiq::ReliableFetch.setup_reliable_fetch!(config) # logs "GitLab reliable fetch activated!"
  end
end

module PeerBench
  COUNTER = "bench:peer:count"
  FIRST = "bench:peer:first"
  LAST = "bench:peer:last"
  COUNT = Integer(ENV.fetch("PEER_COUNT"))
end

class PeerNoopJob
  include Sidekiq::Worker
  sidekiq_options retry: false

  def perform(_i)
    Sidekiq.redis do |c|
      n = c.incr(PeerBench::COUNTER)
      now = Process.clock_gettime(Process::CLOCK_REALTIME)
      c.set(PeerBench::FIRST, now.to_s) if n == 1
      c.set(PeerBench::LAST, now.to_s) if n >= PeerBench::COUNT
    end
  end
end
