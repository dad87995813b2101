import Hummingbird
import NIOCore

/// The stylesheet and the script, served by the dashboard itself (the pages load nothing from
/// anywhere else, and the Content-Security-Policy forbids it).
enum Assets {
    static func response(_ text: String, type: String) -> Response {
        var response = RouteHandler<BasicRequestContext>.secured(
            Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: text))))
        response.headers[.cacheControl] = "max-age=300"
        return response
    }

    /// Confirmation prompts for destructive buttons, and the live refresh: the page's
    /// `data-live` feed is polled every `data-refresh` seconds and each value is written with
    /// `textContent` into the element with that id (never as markup); the chart is redrawn from
    /// numbers. A value whose element is missing (a new queue or worker) reloads the page.
    static let script = #"""
        (function () {
          'use strict';
          document.addEventListener('submit', function (event) {
            var source = event.submitter || {};
            var message = (source.dataset && source.dataset.confirm) || event.target.dataset.confirm;
            if (message && !window.confirm(message)) event.preventDefault();
          });
          var body = document.body;
          var url = body.dataset.live;
          var seconds = Number(body.dataset.refresh || 0);
          if (!url || !(seconds > 0)) return;
          var status = document.getElementById('live-status');
          var height = 1000;
          function points(values, peak) {
            var out = [];
            for (var x = 0; x < values.length; x++) out.push(x + ',' + (height - Math.floor(values[x] * height / peak)));
            return out.join(' ');
          }
          function apply(data) {
            var values = data.values || {};
            for (var id in values) {
              if (!Object.prototype.hasOwnProperty.call(values, id)) continue;
              var element = document.getElementById(id);
              if (!element) { window.location.reload(); return; }
              if (element.textContent !== values[id]) element.textContent = values[id];
            }
            if (data.chart) {
              document.querySelectorAll('svg[data-chart]').forEach(function (svg) {
                var name = svg.dataset.chart;
                var seconds = Number(svg.dataset.seconds);
                var processed = data.chart.processed.slice(-seconds);
                var failed = data.chart.failed.slice(-seconds);
                var peak = 1;
                processed.concat(failed).forEach(function (v) { if (v > peak) peak = v; });
                var p = document.getElementById(name + '-processed');
                var f = document.getElementById(name + '-failed');
                if (p) p.setAttribute('points', points(processed, peak));
                if (f) f.setAttribute('points', points(failed, peak));
              });
            }
            if (status) status.textContent = 'live · updated ' + new Date().toISOString().substring(11, 19) + 'Z';
          }
          function tick() {
            if (document.hidden) { window.setTimeout(tick, seconds * 1000); return; }
            fetch(url, { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
              .then(function (response) {
                if (!response.ok) throw new Error('HTTP ' + response.status);
                return response.json();
              })
              .then(apply)
              .catch(function (error) { if (status) status.textContent = 'live refresh failed: ' + error.message; })
              .then(function () { window.setTimeout(tick, seconds * 1000); });
          }
          window.setTimeout(tick, seconds * 1000);
        })();
        """#

    static let css = """
        :root { --fg: #1d232b; --muted: #5f6b7a; --line: #d9dee5; --bg: #f6f7f9; --ok: #1f7a4d; --bad: #b3261e; --accent: #2d5bd3; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
        header { display: flex; flex-wrap: wrap; align-items: center; gap: 12px 24px; padding: 10px 20px; background: #14213d; color: #fff; }
        header a { color: #fff; text-decoration: none; }
        .brand a { font-weight: 700; font-size: 16px; }
        .ns { color: #c8d1e0; margin-left: 8px; }
        .ns code { color: #fff; }
        nav a { margin-right: 14px; opacity: .85; }
        nav a[aria-current] { opacity: 1; border-bottom: 2px solid #fff; }
        .finder { margin-left: auto; }
        .finder input { width: 20em; }
        main { padding: 16px 20px 40px; max-width: 1500px; }
        h1 { font-size: 20px; margin: 6px 0 14px; }
        h2 { font-size: 15px; margin: 22px 0 8px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
        footer { padding: 8px 20px; color: var(--muted); font-size: 12px; }
        .badge { background: #f2c94c; color: #222; border-radius: 3px; padding: 1px 6px; font-size: 12px; }
        .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; }
        .card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
        .card .label { color: var(--muted); font-size: 12px; }
        .card .figure { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
        .card .hint { color: var(--muted); font-size: 11px; }
        .card.placeholder { border-style: dashed; background: transparent; }
        .charts { display: grid; grid-template-columns: 3fr 1fr; gap: 10px; }
        .chart { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
        .chart svg { width: 100%; height: 180px; display: block; }
        .chart polyline { fill: none; stroke-width: 1.5; }
        .chart polyline.processed { stroke: var(--ok); }
        .chart polyline.failed { stroke: var(--bad); }
        .chart line.grid { stroke: var(--line); stroke-width: 1; }
        .chart figcaption { display: flex; justify-content: space-between; color: var(--muted); font-size: 12px; }
        .chart-scale { color: var(--muted); font-size: 12px; }
        .legend i { display: inline-block; width: 10px; height: 3px; margin: 0 4px 3px 10px; vertical-align: middle; }
        .legend i.processed { background: var(--ok); }
        .legend i.failed { background: var(--bad); }
        table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
        th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
        thead th { background: #eef1f5; font-size: 12px; color: var(--muted); }
        td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
        td.error { color: var(--bad); max-width: 38em; overflow-wrap: anywhere; }
        tr.dead td.status { color: var(--bad); }
        tr.alive td.status { color: var(--ok); }
        td.actions, td.links { white-space: nowrap; }
        code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; overflow-wrap: anywhere; }
        button { font: inherit; padding: 2px 10px; border: 1px solid #9aa5b5; border-radius: 4px; background: #fff; cursor: pointer; }
        button:hover { border-color: var(--accent); }
        button.delete { color: var(--bad); }
        form { display: inline; }
        form.filters, form.bulk { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: center; margin: 8px 0; }
        .summary { color: var(--muted); }
        .notice { background: #e7f5ec; border: 1px solid #b8e0c8; padding: 6px 10px; border-radius: 4px; }
        .problem { background: #fdecea; border: 1px solid #f5c2bd; padding: 6px 10px; border-radius: 4px; }
        .empty, .hint { color: var(--muted); }
        .pager { display: flex; gap: 14px; margin: 10px 0; }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; background: #fff; border: 1px solid var(--line); padding: 10px 14px; border-radius: 6px; }
        dl.facts dt { color: var(--muted); }
        dl.facts dd { margin: 0; }
        pre.envelope { background: #fff; border: 1px solid var(--line); padding: 10px 14px; border-radius: 6px; overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
        .location { margin-bottom: 16px; }
        """
}
