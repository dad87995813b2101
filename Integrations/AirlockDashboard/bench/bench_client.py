"""Sequential GETs over one keep-alive connection; prints latency percentiles per path.

usage: bench_client.py BASE_URL COUNT PATH...
Each path gets 10 warm-up requests (not counted; the first fills the overview's series cache), then
COUNT timed ones. Bounded: at most COUNT requests per path, stops on the first non-200 reply.
"""
import http.client
import sys
import time
import urllib.parse


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


def main():
    base, count, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    url = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    print(f"{'path':<34} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'first ms':>9} {'bytes':>9}")
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
        for _ in range(count):
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            timings.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                sys.exit(f"{path}: HTTP {response.status}")
        timings.sort()
        print(f"{path:<34} {len(timings):>5} {percentile(timings, 50):>8.2f} {percentile(timings, 90):>8.2f} "
              f"{percentile(timings, 99):>8.2f} {timings[-1]:>8.2f} {first:>9.2f} {size:>9}", flush=True)


if __name__ == "__main__":
    main()
