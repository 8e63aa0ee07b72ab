// The kiosk page (edge_server/crisis/kiosk.py): fetches /api/v1/kiosk every 30 s and shows it.
// Every text goes in with textContent: HTML in a bulletin is shown as text, never run.
"use strict";

// Times in the site's zone ([site] timezone, sent by the API), never the screen's own zone.
const DEFAULT_ZONE = "Europe/Amsterdam";
let zone = DEFAULT_ZONE;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

function clock(iso) {
  return new Date(iso).toLocaleString("nl-NL", {
    timeZone: zone, weekday: "short", day: "numeric", month: "short",
    hour: "2-digit", minute: "2-digit",
  });
}

function age(iso, now) {
  const min = Math.max(0, Math.round((Date.parse(now) - Date.parse(iso)) / 60000));
  if (min < 1) return "zojuist / just now";
  if (min < 120) return min + " min geleden / ago";
  const h = Math.round(min / 60);
  if (h < 48) return h + " uur geleden / hours ago";
  return Math.round(h / 24) + " dagen geleden / days ago";
}

function words(node, w) {
  node.replaceChildren();
  if (!w) { node.hidden = true; return; }
  node.hidden = false;
  node.append(el("span", "", w.nl), " ", el("span", "en", w.en));
}

function show(d) {
  zone = d.timezone || DEFAULT_ZONE;
  document.getElementById("site").textContent = d.site_name || "Noodsteunpunt";
  document.getElementById("updated").textContent =
    "Bijgewerkt / updated: " + clock(d.now);
  words(document.getElementById("readiness"), d.readiness);
  words(document.getElementById("power"), d.power);
  words(document.getElementById("link"), d.link);
  const list = document.getElementById("bulletins");
  list.replaceChildren();
  for (const b of d.bulletins) {
    const li = el("li", "bulletin");
    li.append(el("h3", "title", b.title_nl));
    li.append(el("p", "text", b.text_nl));
    if (b.title_en) {
      li.append(el("h3", "title en", b.title_en));
      li.append(el("p", "text en", b.text_en));
    }
    li.append(el("p", "small", "Van het coördinatiepunt / from the coordination point, " +
      clock(b.issued_at) + " (" + age(b.issued_at, d.now) + ")"));
    list.append(li);
  }
  document.getElementById("none").hidden = d.bulletins.length > 0;
}

async function refresh() {
  try {
    const r = await fetch("/api/v1/kiosk", { cache: "no-store" });
    if (!r.ok) throw new Error(String(r.status));
    show(await r.json());
    document.getElementById("offline").hidden = true;
  } catch (e) {
    document.getElementById("offline").hidden = false; // keep what is shown
  }
}

refresh();
setInterval(refresh, 30000);
