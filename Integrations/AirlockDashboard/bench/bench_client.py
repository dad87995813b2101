"""Sequential GETs over one keep-alive connection; prints latency percentiles per path.

usage: bench_client.py [--pid PID] BASE_URL COUNT PATH...
Each path gets 10 warm-up requests (not counted; the first fills the overview's series cache), then
COUNT timed ones. With --pid (the server's), also the server's CPU time (user + system, from
/proc/PID/stat) per timed request: on a shared machine it moves far less with other load than the
latency does. Bounded: at most COUNT requests per path, stops on the first non-200 reply.
"""
import http.client
import os
import sys
import time
import urllib.parse


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


def cpu_seconds(pid):
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    arguments = sys.argv[1:]
    pid = None
    if arguments[:1] == ["--pid"]:
        pid, arguments = int(arguments[1]), arguments[2:]
    base, count, paths = arguments[0], int(arguments[1]), arguments[2:]
    url = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    print(f"{'path':<34} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'first ms':>9} {'bytes':>9}" + (f" {'cpu ms/req':>10}" if pid else ""))
    for path in paths:
        first = None
        size = 0
        for i in range(10):
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                sys.exit(f"{path}: HTTP {response.status}")
            if first is None:
                first = (time.perf_counter() - started) * 1000
            size = len(body)
        timings = []
        cpu_before = cpu_seconds(pid)
        for _ in range(count):
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            timings.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                sys.exit(f"{path}: HTTP {response.status}")
        cpu = (cpu_seconds(pid) - cpu_before) * 1000 / count
        timings.sort()
        print(f"{path:<34} {len(timings):>5} {percentile(timings, 50):>8.2f} {percentile(timings, 90):>8.2f} "
              f"{percentile(timings, 99):>8.2f} {timings[-1]:>8.2f} {first:>9.2f} {size:>9}" + (f" {cpu:>10.2f}" if pid else ""), flush=True)


if __name__ == "__main__":
    main()
