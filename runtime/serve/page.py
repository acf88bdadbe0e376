"""The one page the server serves (held here, never read from disk): the live video (MJPEG,
scaled to the browser; the mosaic of every stream or one picked), each stream's state and top-k,
and the event log, updated by server-sent events."""

from __future__ import annotations

import json

__all__ = ["page"]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>TSI live</title>
<style>
body { margin: 0; font: 15px/1.4 system-ui, sans-serif; background: #111; color: #eee; }
header { padding: 8px 14px; background: #222; display: flex; gap: 14px; align-items: center; }
h1 { font-size: 17px; margin: 0; }
main { display: flex; flex-wrap: wrap; gap: 14px; padding: 14px; }
#video { flex: 3 1 480px; min-width: 0; }
#video img { width: 100%; height: auto; background: #000; display: block; }
aside { flex: 1 1 300px; }
.stream { background: #1c1c1c; padding: 8px 10px; margin-bottom: 10px; border-radius: 4px; }
.state { font-size: 12px; padding: 1px 7px; border-radius: 9px; margin-left: 6px; }
.live { background: #1d6b2c; } .gap { background: #8a6d00; } .reconnecting { background: #9a3b00; }
.ended, .starting { background: #555; }
.bar { height: 4px; background: #50dc50; margin: 1px 0 4px; }
.action { color: #50dc50; font-weight: 600; }
#log { list-style: none; padding: 0; margin: 0; max-height: 50vh; overflow-y: auto; }
#log li { padding: 3px 0; border-bottom: 1px solid #2a2a2a; }
.open { color: #50dc50; } .close { color: #bbb; }
#conn { font-size: 12px; color: #999; }
</style></head>
<body>
<header><h1>TSI live</h1>
<label>view <select id="pick"></select></label><span id="conn">connecting</span></header>
<main>
<section id="video"><img id="feed" alt="live video"></section>
<aside><div id="streams"></div><h2 style="font-size:15px">Events</h2><ul id="log"></ul></aside>
</main>
<script>
const TOKEN = __TOKEN__, NAMES = __NAMES__;
const q = (extra) => { const p = new URLSearchParams(extra); if (TOKEN) p.set("token", TOKEN); return "?" + p; };
const pick = document.getElementById("pick"), feed = document.getElementById("feed");
for (const n of (NAMES.length > 1 ? ["all", ...NAMES] : NAMES)) {
  const o = document.createElement("option"); o.value = n; o.textContent = n === "all" ? "every stream" : n;
  pick.appendChild(o);
}
const show = () => { feed.src = "/video.mjpg" + q({stream: pick.value}); };
pick.onchange = show; show();
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
function drawStreams(snap) {
  document.getElementById("streams").innerHTML = snap.streams.map((s) =>
    `<div class="stream"><b>${esc(s.name)}</b><span class="state ${esc(s.state)}">${esc(s.state)}</span>
     <span style="float:right">${s.fps.toFixed(1)} FPS</span>` +
    s.top.map((t) => `<div class="${t.label === s.action ? "action" : ""}">${esc(t.label)} ${t.score.toFixed(2)}</div>
     <div class="bar" style="width:${Math.round(100 * t.score)}%"></div>`).join("") + `</div>`).join("");
}
function addLog(e) {
  const li = document.createElement("li"); li.className = e.kind;
  const when = e.kind === "open" ? `from ${e.start_s.toFixed(1)} s` : `${e.start_s.toFixed(1)}-${e.end_s.toFixed(1)} s`;
  li.innerHTML = `<span class="label">${esc(e.label)}</span> ${e.kind === "open" ? "started" : "ended"} ` +
    `[${esc(e.stream)}] ${e.score.toFixed(2)} ${when}`;
  const log = document.getElementById("log"); log.insertBefore(li, log.firstChild);
}
const es = new EventSource("/updates" + q({}));
es.addEventListener("state", (m) => { drawStreams(JSON.parse(m.data)); document.getElementById("conn").textContent = "connected"; });
es.addEventListener("log", (m) => JSON.parse(m.data).forEach(addLog));
es.onerror = () => { document.getElementById("conn").textContent = "reconnecting"; };
</script></body></html>
"""


def page(names: list[str], token: str | None) -> bytes:
    """The page for streams ``names``; ``token`` (the one the request carried) goes into its
    requests."""
    def js(value: object) -> str:  # a JSON literal safe inside <script>
        return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")

    return _PAGE.replace("__TOKEN__", js(token)).replace("__NAMES__", js(list(names))).encode("utf-8")
