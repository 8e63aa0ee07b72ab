// C-NSP readiness board: plain JS, no libraries, no CDN (works offline on a regional laptop).
// The operator's token is entered once and kept in localStorage ("nsp-hub-token").
"use strict";

const T = {
  nl: {
    title: "C-NSP gereedheidsbord", logout: "Afmelden", token_label: "Toegangscode (token)",
    login: "Aanmelden", sites_heading: "Locaties (eerst tanken bovenaan)",
    alerts_heading: "Open meldingen", col_site: "Locatie", col_ready: "Gereedheid",
    col_refuel: "Tanken vóór", col_autonomy: "Autonomie", col_fridge: "Koelkast",
    col_occ: "Bezetting", col_alerts: "Open meldingen", col_contact: "Laatste contact",
    col_sev: "Ernst", col_what: "Melding", col_since: "Sinds", col_state: "Status",
    READY: "Gereed", DEGRADED: "Beperkt", NOT_READY: "Niet gereed", UNKNOWN: "Onbekend",
    no_contact: "geen contact sinds", never: "nog nooit", ack: "Bevestigen",
    acked_by: "bevestigd door", raised: "open", acknowledged: "bevestigd", cleared: "opgeheven",
    bad_token: "Onbekende toegangscode", updated: "Bijgewerkt", lang_button: "English",
    load_error: "Bijwerken mislukt", no_alerts: "Geen open meldingen", hours: "u",
    info: "info", warning: "waarschuwing", critical: "kritiek",
    col_gentest: "Aggregaattest", col_commission: "Inbedrijfstelling",
    gt_ok: "OK", gt_due: "Binnenkort nodig", gt_overdue: "Te laat", gt_never: "Nooit getest",
    gt_failed: "Laatste test mislukt",
    gt_due_before: "uiterlijk", gt_overdue_since: "sinds", gt_last: "laatste",
    gt_by: "door", gt_min: "min", gt_load: "last", gt_load_na: "last niet gemeten",
    PASSED: "geslaagd", FAILED: "afgekeurd", NOT_VERIFIED: "niet geverifieerd",
    ABORTED: "afgebroken", short_exercise: "korte oefenrun", FAILED_TO_START: "startte niet",
    OUTAGE_RUN: "gecrediteerd door de stroomuitval (het aggregaat leverde de stroom)",
    MAINS_LOST: "afgebroken (netuitval)", BY_OPERATOR: "afgebroken", NODE_OFFLINE:
    "afgebroken (knooppunt stil)", GEN_STOPPED: "stopte vanzelf",
    ABORTED_MAINS_LOST: "afgebroken (netuitval)", ABORTED_BY_OPERATOR: "afgebroken",
    ABORTED_NODE_OFFLINE: "afgebroken (knooppunt stil)",
    gt_filter: "Alleen aggregaattests mislukt, te laat of nooit getest",
    region_all: "alle regio's", region: "Regio",
    gt_count: "Aggregaattest mislukt, te laat of nooit", commissioned_on: "in bedrijf gesteld op",
    not_commissioned: "niet vastgelegd", register_link: "Register generatortests (CSV)",
    register_from: "van", register_to: "t/m",
    ready_filter: "Gereedheid", ready_all: "alle", map_heading: "Kaart",
    round_pdf: "Tankronde (PDF)", round_csv: "Tankronde (CSV)",
    map_off: "zonder coördinaten, niet op de kaart (hub set-site ID --at LAT,LON)",
    map_none: "Geen locatie heeft coördinaten: geef ze met hub add-site/set-site --at LAT,LON",
    reports_heading: "Noodhulpmeldingen", col_received: "Ontvangen", col_kind: "Soort",
    col_urgency: "Urgentie", col_where: "Waar", col_people: "Personen", col_text: "Tekst",
    medical: "medisch", fire: "brand", missing_person: "vermiste persoon", other: "overig",
    immediate: "direct", urgent: "dringend", normal: "normaal", people_unknown: "onbekend",
    report_ack: "Ontvangen bevestigen", report_acked: "ontvangen bevestigd door",
    report_open: "NIET BEVESTIGD", no_reports: "Geen noodhulpmeldingen",
    reports_alarm: "⚠ Onbevestigde noodhulpmeldingen:", by_radio: "via radio; volledige tekst volgt",
    bl_heading: "Berichten voor bewoners", bl_title_nl: "Titel (Nederlands)",
    bl_text_nl: "Tekst (Nederlands)", bl_title_en: "Titel (Engels, mag leeg)",
    bl_text_en: "Tekst (Engels, mag leeg)", bl_hours: "Geldig (uren)", bl_target: "Voor",
    bl_all: "alle locaties", bl_region: "een regio", bl_sites: "gekozen locaties",
    bl_site_ids: "Locaties (id's, met komma's)", bl_send: "Bericht versturen",
    bl_col_issued: "Geschreven", bl_col_bulletin: "Bericht", bl_col_valid: "Geldig tot",
    bl_col_delivered: "Aangekomen", bl_sent: "Bericht opgeslagen; het gaat mee met het volgende "
      + "antwoord aan elke locatie.", bl_of: "van", bl_waiting: "nog niet bij",
    bl_refused: "Niet verstuurd:", no_bulletins: "Nog geen berichten",
  },
  en: {
    title: "C-NSP readiness board", logout: "Log out", token_label: "Access token",
    login: "Log in", sites_heading: "Sites (refuel first at the top)",
    alerts_heading: "Open alerts", col_site: "Site", col_ready: "Readiness",
    col_refuel: "Refuel before", col_autonomy: "Autonomy", col_fridge: "Fridge",
    col_occ: "Occupancy", col_alerts: "Open alerts", col_contact: "Last contact",
    col_sev: "Severity", col_what: "Alert", col_since: "Since", col_state: "State",
    READY: "Ready", DEGRADED: "Degraded", NOT_READY: "Not ready", UNKNOWN: "Unknown",
    no_contact: "no contact since", never: "never", ack: "Acknowledge",
    acked_by: "acknowledged by", raised: "open", acknowledged: "acknowledged", cleared: "cleared",
    bad_token: "Unknown access token", updated: "Updated", lang_button: "Nederlands",
    load_error: "Update failed", no_alerts: "No open alerts", hours: "h",
    info: "info", warning: "warning", critical: "critical",
    col_gentest: "Generator test", col_commission: "Commissioning",
    gt_ok: "OK", gt_due: "Due soon", gt_overdue: "Overdue", gt_never: "Never tested",
    gt_failed: "Last test failed",
    gt_due_before: "by", gt_overdue_since: "since", gt_last: "last",
    gt_by: "by", gt_min: "min", gt_load: "load", gt_load_na: "load not measured",
    PASSED: "passed", FAILED: "failed", NOT_VERIFIED: "not verified", ABORTED: "aborted",
    short_exercise: "short exercise", FAILED_TO_START: "failed to start",
    OUTAGE_RUN: "credited by the outage (the generator carried the site)",
    MAINS_LOST: "aborted (mains lost)", BY_OPERATOR: "aborted",
    NODE_OFFLINE: "aborted (node silent)", GEN_STOPPED: "stopped by itself",
    ABORTED_MAINS_LOST: "aborted (mains lost)", ABORTED_BY_OPERATOR: "aborted",
    ABORTED_NODE_OFFLINE: "aborted (node silent)",
    gt_filter: "Only generator tests failed, overdue or never done",
    region_all: "all regions", region: "Region",
    gt_count: "Generator test failed, overdue or never", commissioned_on: "commissioned on",
    not_commissioned: "not recorded", register_link: "Generator test register (CSV)",
    register_from: "from", register_to: "to",
    ready_filter: "Readiness", ready_all: "all", map_heading: "Map",
    round_pdf: "Fuel round (PDF)", round_csv: "Fuel round (CSV)",
    map_off: "without coordinates, not on the map (hub set-site ID --at LAT,LON)",
    map_none: "No site has coordinates: give them with hub add-site/set-site --at LAT,LON",
    reports_heading: "Emergency reports", col_received: "Received", col_kind: "Kind",
    col_urgency: "Urgency", col_where: "Where", col_people: "People", col_text: "Text",
    medical: "medical", fire: "fire", missing_person: "missing person", other: "other",
    immediate: "immediate", urgent: "urgent", normal: "normal", people_unknown: "not known",
    report_ack: "Acknowledge", report_acked: "receipt acknowledged by",
    report_open: "NOT ACKNOWLEDGED", no_reports: "No emergency reports",
    reports_alarm: "⚠ Unacknowledged emergency reports:", by_radio: "by radio; the full text follows",
    bl_heading: "Bulletins for residents", bl_title_nl: "Title (Dutch)",
    bl_text_nl: "Text (Dutch)", bl_title_en: "Title (English, optional)",
    bl_text_en: "Text (English, optional)", bl_hours: "Valid (hours)", bl_target: "For",
    bl_all: "all sites", bl_region: "a region", bl_sites: "chosen sites",
    bl_site_ids: "Sites (ids, comma-separated)", bl_send: "Send bulletin",
    bl_col_issued: "Written", bl_col_bulletin: "Bulletin", bl_col_valid: "Valid until",
    bl_col_delivered: "Arrived", bl_sent: "Bulletin saved; it goes with the next reply to "
      + "each site.", bl_of: "of", bl_waiting: "not yet at",
    bl_refused: "Not sent:", no_bulletins: "No bulletins yet",
  },
};
// Generator-test states from the hub (the edge's NFPA 110 schedule): an icon and a word, so the
// state never rests on colour alone. In the "overdue" view: failed first, then overdue, never.
const GT_ICON = { ok: "✔", due: "◔", overdue: "⚠", never: "✖", failed: "✖" };
const GT_RANK = { failed: 0, overdue: 1, never: 2, due: 3, ok: 4 };

let lang = localStorage.getItem("nsp-hub-lang") || "nl";
let last = null;
let lastReports = null;
let lastBulletins = null;
const $ = (sel) => document.querySelector(sel);
const t = (key) => (T[lang][key] !== undefined ? T[lang][key] : key);
// Numbers in the reader's convention: "5,0 °C" in Dutch, "5.0 °C" in English.
const num = (x, digits) => x.toLocaleString(lang === "nl" ? "nl-NL" : "en-GB",
  { minimumFractionDigits: digits, maximumFractionDigits: digits });

function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(lang === "nl" ? "nl-NL" : "en-GB",
    { dateStyle: "short", timeStyle: "short", timeZone: "Europe/Amsterdam" });
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function applyLang() {
  document.documentElement.lang = lang;
  document.title = t("title");
  document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  $("#lang").textContent = t("lang_button");
  if (last) render(last.sites, last.alerts, last.now);
  if (lastReports) renderReports(lastReports);
  if (lastBulletins) renderBulletins(lastBulletins);
}

function refuelKey(site) {
  // Sites that need fuel soonest first; sites without an estimate last, then by id.
  return site.refuel_before ? Date.parse(site.refuel_before) : Number.POSITIVE_INFINITY;
}

function fmtDay(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleDateString(lang === "nl" ? "nl-NL" : "en-GB",
    { dateStyle: "short", timeZone: "Europe/Amsterdam" });
}

function gentestLate(s) {
  const st = s.gentest && s.gentest.state;
  return st === "failed" || st === "overdue" || st === "never";
}

function gentestCell(tr, g) {
  const td = cell(tr, "", "gentest gt-" + g.state);
  td.dataset.state = g.state;
  const head = document.createElement("span");
  head.className = "gt-state";
  let text = GT_ICON[g.state] + " " + t("gt_" + g.state);
  if (g.state === "due") text += " (" + t("gt_due_before") + " " + fmtDay(g.due.latest) + ")";
  if (g.state === "overdue") text += " (" + t("gt_overdue_since") + " " + fmtDay(g.due.latest) + ")";
  head.textContent = text;
  td.appendChild(head);
  if (g.last) {
    const l = g.last;
    // how it ended where that says more than the word (FAILED: "startte niet")
    const word = l.end && l.end !== "COMPLETED" && T[lang][l.end] !== undefined ? l.end : l.outcome;
    const parts = [t("gt_last") + " " + fmtDay(l.ended_at) + ": " + t(word)
      + (l.kind === "short_exercise" ? " (" + t("short_exercise") + ")" : "")];
    if (l.started_by && l.kind !== "outage_credit") parts.push(t("gt_by") + " " + l.started_by);
    if (l.ran_min != null) parts.push(num(l.ran_min, 0) + " " + t("gt_min"));
    parts.push(l.load == null ? t("gt_load_na") : t("gt_load") + " " + l.load);
    const small = document.createElement("small");
    small.className = "gt-last";
    small.textContent = parts.join(", ");
    td.appendChild(document.createElement("br"));
    td.appendChild(small);
  }
}

function commissionCell(tr, c) {
  if (!c) return cell(tr, t("not_commissioned"), "commission none");
  const icon = { PASS: "✔", WARN: "⚠", FAIL: "✖" }[c.result] || "";
  const td = cell(tr, icon + " " + t("commissioned_on") + " " + fmtDay(c.commissioned_at) + ": "
    + c.result, "commission c-" + c.result);
  td.title = c.by + ", " + c.tool_version;
  return td;
}

// The site as people know it (its registered name, municipality and region), the id below.
function siteCell(tr, s) {
  const td = cell(tr, "", "site");
  const name = document.createElement("span");
  name.className = "site-name";
  name.textContent = s.name || s.site_id;
  td.appendChild(name);
  const place = [s.municipality, s.region].filter(Boolean).join(" · ");
  const small = document.createElement("small");
  small.textContent = s.name ? (place ? place + " · " : "") + s.site_id : place;
  if (small.textContent) {
    td.appendChild(document.createElement("br"));
    td.appendChild(small);
  }
  return td;
}

// The region filter lists the regions the sites are registered in (all, by default).
function regionOptions(sites) {
  const sel = $("#region-filter");
  const regions = [...new Set(sites.map((s) => s.region).filter(Boolean))].sort();
  const have = [...sel.options].slice(1).map((o) => o.value);
  if (have.join("|") === regions.join("|")) return;
  const keep = sel.value;
  while (sel.options.length > 1) sel.remove(1);
  for (const r of regions) sel.add(new Option(r, r));
  sel.value = regions.includes(keep) ? keep : "";
}

// The map: the European Netherlands' outline (Natural Earth, public domain; nl-outline.json,
// shipped with the hub: no tiles, no network) and a dot per site in its readiness colour, with
// the readiness letter-shape (✔ ◐ ✖ ?) beside the colour and the name in its tooltip.
// Projection: plain equirectangular, x scaled by cos(52.2°): at this size the error is
// invisible and it needs no library.
const MAP_K = Math.cos(52.2 * Math.PI / 180);
const MAP_SCALE = 100;
const MAP_MARK = { READY: "✔", DEGRADED: "◐", NOT_READY: "✖", UNKNOWN: "?" };
let outline = null;
const mapX = (lon) => (lon * MAP_K * MAP_SCALE).toFixed(1);
const mapY = (lat) => (-lat * MAP_SCALE).toFixed(1);
// The SVG namespace, from the page's own <svg> (no URL literal in an offline page).
const SVG = document.getElementById("map").namespaceURI;

async function loadOutline() {
  try {
    const r = await fetch("/static/nl-outline.json");
    if (r.ok) outline = await r.json();
  } catch (e) { outline = null; }
  if (last) render(last.sites, last.alerts, last.now);
}

function drawMap(sites) {
  const svg = $("#map");
  svg.textContent = "";
  if (outline) {
    let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const ring of outline.rings) {
      const path = document.createElementNS(SVG, "path");
      path.setAttribute("class", "land");
      path.setAttribute("d", "M" + ring.map(([lon, lat]) => {
        const x = +mapX(lon), y = +mapY(lat);
        x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
        return x + "," + y;
      }).join("L") + "Z");
      svg.appendChild(path);
    }
    svg.setAttribute("viewBox", [x0 - 10, y0 - 10, x1 - x0 + 20, y1 - y0 + 20].join(" "));
  }
  const placed = sites.filter((s) => typeof s.lat === "number" && typeof s.lon === "number");
  for (const s of placed) {
    const g = document.createElementNS(SVG, "g");
    g.setAttribute("class", "site-dot " + s.readiness);
    g.dataset.site = s.site_id;
    const c = document.createElementNS(SVG, "circle");
    c.setAttribute("cx", mapX(s.lon));
    c.setAttribute("cy", mapY(s.lat));
    c.setAttribute("r", "4");
    const mark = document.createElementNS(SVG, "text");
    mark.setAttribute("x", mapX(s.lon));
    mark.setAttribute("y", (+mapY(s.lat) + 2.2).toFixed(1));
    mark.textContent = MAP_MARK[s.readiness] || "?";
    const title = document.createElementNS(SVG, "title");
    title.textContent = (s.name || s.site_id) + (s.municipality ? " (" + s.municipality + ")" : "")
      + ": " + t(s.readiness);
    g.append(c, mark, title);
    g.addEventListener("click", () => {
      const row = document.querySelector("#sites tr[data-site='" + CSS.escape(s.site_id) + "']");
      if (row) { row.scrollIntoView({ block: "center" }); row.classList.add("picked"); }
    });
    svg.appendChild(g);
  }
  // No site has coordinates yet: the note says how to give them; an empty country stays away.
  svg.style.display = placed.length ? "" : "none";
  const off = sites.length - placed.length;
  $("#map-note").textContent = !placed.length && sites.length ? t("map_none")
    : off ? off + " " + t("map_off") : "";
}

function render(sites, alerts, now) {
  const counts = { READY: 0, DEGRADED: 0, NOT_READY: 0, UNKNOWN: 0 };
  const body = $("#sites tbody");
  body.textContent = "";
  const onlyLate = $("#gt-filter").checked;
  regionOptions(sites);
  const region = $("#region-filter").value;
  if (region) sites = sites.filter((s) => s.region === region);
  const ready = $("#ready-filter").value;
  if (ready) sites = sites.filter((s) => s.readiness === ready);
  drawMap(sites);
  let sorted = sites.slice().sort((a, b) => refuelKey(a) - refuelKey(b)
    || a.site_id.localeCompare(b.site_id));
  if (onlyLate) {
    // The morning question "who is overdue": most overdue first, then never tested.
    sorted = sorted.filter(gentestLate).sort((a, b) =>
      GT_RANK[a.gentest.state] - GT_RANK[b.gentest.state]
      || Date.parse(a.gentest.due.latest) - Date.parse(b.gentest.due.latest)
      || a.site_id.localeCompare(b.site_id));
  }
  const late = sites.filter(gentestLate).length;
  for (const s of sites) counts[s.readiness] = (counts[s.readiness] || 0) + 1;
  for (const s of sorted) {
    const tr = document.createElement("tr");
    tr.dataset.site = s.site_id;
    siteCell(tr, s);
    const badge = document.createElement("span");
    badge.className = "badge " + s.readiness;
    badge.textContent = t(s.readiness);
    const rtd = cell(tr, "");
    rtd.className = "readiness";
    rtd.appendChild(badge);
    if (s.reasons && s.reasons.length && !s.stale) {
      rtd.appendChild(document.createTextNode(" " + s.reasons.map(
        (r) => (lang === "nl" ? r.text_nl : r.text_en)).join("; ")));
    }
    cell(tr, fmtTime(s.refuel_before), "refuel");
    cell(tr, s.fuel_autonomy_h == null ? "–" : num(s.fuel_autonomy_h, 1) + " " + t("hours"));
    cell(tr, s.fridge_temp_c == null ? "–" : num(s.fridge_temp_c, 1) + " °C");
    cell(tr, s.occupancy == null ? "–" : String(s.occupancy));
    cell(tr, String(s.open_alerts));
    if (s.stale) {
      cell(tr, t("no_contact") + " " + (s.last_contact ? fmtTime(s.last_contact) : t("never")),
        "stale contact");
    } else {
      cell(tr, fmtTime(s.last_contact), "contact");
    }
    if (s.gentest) gentestCell(tr, s.gentest); else cell(tr, "–", "gentest");
    commissionCell(tr, s.commissioning);
    body.appendChild(tr);
  }
  $("#summary").textContent = "";
  for (const k of Object.keys(counts)) {
    const span = document.createElement("span");
    span.className = "count-" + k;
    span.textContent = t(k) + ": " + counts[k];
    $("#summary").appendChild(span);
  }
  const lateSpan = document.createElement("span");
  lateSpan.className = "count-gentest-late";
  lateSpan.textContent = "⚠ " + t("gt_count") + ": " + late;
  $("#summary").appendChild(lateSpan);
  const ab = $("#alerts tbody");
  ab.textContent = "";
  if (!alerts.length) {
    const tr = document.createElement("tr");
    const td = cell(tr, t("no_alerts"));
    td.colSpan = 6;
    ab.appendChild(tr);
  }
  for (const a of alerts) {
    const tr = document.createElement("tr");
    tr.dataset.alert = a.site_id + "/" + a.alert_id;
    cell(tr, a.site_id);
    cell(tr, t(a.severity || "info"), a.severity || "");
    cell(tr, (lang === "nl" ? a.body.text_nl : a.body.text_en) || a.code || "");
    cell(tr, fmtTime(a.body.raised_at || a.at));
    let state = t(a.state);
    if (a.hub_ack) state += " (" + t("acked_by") + " " + a.hub_ack.by + ")";
    cell(tr, state, "state");
    const td = cell(tr, "");
    if (a.state === "raised" && !a.hub_ack) {
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "ack";
      btn.textContent = t("ack");
      btn.addEventListener("click", () => ack(a.site_id, a.alert_id));
      td.appendChild(btn);
    }
    ab.appendChild(tr);
  }
  $("#updated").textContent = t("updated") + " " + fmtTime(now);
}

// Emergency reports (noodhulpmeldingen, hub/reports.py): unacknowledged first, by urgency (the
// hub's order). While one is unacknowledged the section has a red outline and banner: a visual
// alarm without sound or animation. Every typed field is set as text, never as HTML.
function renderReports(reports) {
  const body = $("#reports-table tbody");
  body.textContent = "";
  const open = reports.filter((r) => !r.ack);
  $("#reports").classList.toggle("alarm", open.length > 0);
  $("#reports-alarm").hidden = !open.length;
  $("#reports-alarm").textContent = t("reports_alarm") + " " + open.length;
  if (!reports.length) {
    const tr = document.createElement("tr");
    cell(tr, t("no_reports")).colSpan = 8;
    body.appendChild(tr);
  }
  for (const r of reports) {
    const b = r.body || {};
    const tr = document.createElement("tr");
    tr.dataset.report = r.site_id + "/" + r.report_id;
    tr.className = r.ack ? "acked" : "open";
    cell(tr, fmtTime(r.received_at), "received");
    siteCell(tr, { site_id: r.site_id, name: r.name, municipality: r.municipality });
    cell(tr, t(b.kind || "other"), "kind");
    cell(tr, t(b.urgency || "normal"), "urgency");
    // By radio only the start of place and text fit the frame (`cut`): "…" marks the cut.
    const cut = (f) => (r.complete === false && (b.cut || []).includes(f) ? "…" : "");
    cell(tr, (b.location || "") + cut("location"), "where");
    cell(tr, b.people == null ? t("people_unknown") : String(b.people), "people");
    cell(tr, r.complete === false ? (b.text || "") + cut("text") + " (" + t("by_radio") + ")"
      : b.text || "", "report-text");
    const td = cell(tr, r.ack ? t("report_acked") + " " + r.ack.by + ", " + fmtTime(r.ack.at)
      : t("report_open"), "state");
    if (!r.ack) {
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "report-ack";
      btn.textContent = t("report_ack");
      btn.addEventListener("click", () => ack(r.site_id, r.report_id, "reports"));
      td.appendChild(document.createTextNode(" "));
      td.appendChild(btn);
    }
    body.appendChild(tr);
  }
}

// Bulletins (hub/bulletins.py): the form posts one; the list shows per bulletin how many of
// its sites confirmed it (delivery receipts) and which have not yet. Texts as text.
function renderBulletins(bulletins) {
  const body = $("#bl-table tbody");
  body.textContent = "";
  if (!bulletins.length) {
    const tr = document.createElement("tr");
    cell(tr, t("no_bulletins")).colSpan = 4;
    body.appendChild(tr);
  }
  for (const b of bulletins) {
    const tr = document.createElement("tr");
    tr.dataset.bulletin = b.id;
    cell(tr, fmtTime(b.issued_at) + " · " + b.issued_by, "issued");
    const td = cell(tr, "", "bl-text");
    const title = document.createElement("b");
    title.textContent = lang === "en" && b.title_en ? b.title_en : b.title_nl;
    td.append(title, document.createElement("br"),
      document.createTextNode(lang === "en" && b.text_en ? b.text_en : b.text_nl));
    cell(tr, fmtTime(b.valid_until), "valid");
    const done = b.deliveries.filter((d) => d.confirmed_at);
    const missing = b.deliveries.filter((d) => !d.confirmed_at).map((d) => d.site_id);
    const dtd = cell(tr, done.length + " " + t("bl_of") + " " + b.deliveries.length, "delivered");
    if (missing.length) {
      const small = document.createElement("small");
      small.className = "bl-missing";
      small.textContent = t("bl_waiting") + ": " + missing.join(", ");
      dtd.append(document.createElement("br"), small);
    }
    body.appendChild(tr);
  }
}

function bulletinRegions(sites) {
  const sel = $("#bl-region");
  const regions = [...new Set(sites.map((s) => s.region).filter(Boolean))].sort();
  if ([...sel.options].map((o) => o.value).join("|") === regions.join("|")) return;
  const keep = sel.value;
  sel.textContent = "";
  for (const r of regions) sel.add(new Option(r, r));
  if (regions.includes(keep)) sel.value = keep;
}

async function sendBulletin(ev) {
  ev.preventDefault();
  const v = (id) => $(id).value.trim();
  const req = { title_nl: v("#bl-title-nl"), text_nl: v("#bl-text-nl"),
    valid_hours: Number(v("#bl-hours")), target: $("#bl-target").value };
  if (v("#bl-title-en") || v("#bl-text-en")) {
    req.title_en = v("#bl-title-en");
    req.text_en = v("#bl-text-en");
  }
  if (req.target === "region") req.region = $("#bl-region").value;
  if (req.target === "sites") req.sites = v("#bl-site-ids").split(",").map((x) => x.trim());
  const msg = $("#bl-msg");
  try {
    await api("/api/v1/bulletins", { method: "POST", body: JSON.stringify(req),
      headers: { "Content-Type": "application/json" } });
    $("#bl-form").reset();
    msg.className = "good";
    msg.textContent = t("bl_sent");
  } catch (e) {
    if (String(e.message) === "401") return;
    msg.className = "error";
    msg.textContent = t("bl_refused") + " " + e.message;  // the hub says which field and why
  }
  await refresh();
}

async function api(path, options) {
  const token = localStorage.getItem("nsp-hub-token");
  const opts = Object.assign({}, options || {});
  opts.headers = Object.assign({ Authorization: "Bearer " + token }, opts.headers || {});
  const r = await fetch(path, opts);
  if (r.status === 401) {
    showLogin(t("bad_token"));
    throw new Error("401");
  }
  if (!r.ok) throw new Error((await r.json()).error || r.status);
  return r.json();
}

// Every page of a list (the hub pages lists: `next` is the cursor of the next page).
async function apiAll(path, key) {
  const first = await api(path);
  let page = first;
  while (page.next) {
    page = await api(path + (path.includes("?") ? "&" : "?") + "cursor="
      + encodeURIComponent(page.next));
    first[key] = first[key].concat(page[key]);
  }
  return first;
}

async function refresh() {
  if (!localStorage.getItem("nsp-hub-token")) return;
  try {
    const [s, a, rep, bl] = await Promise.all([apiAll("/api/v1/sites", "sites"),
      apiAll("/api/v1/alerts?open=1&limit=2000", "alerts"), api("/api/v1/reports?limit=200"),
      api("/api/v1/bulletins?limit=50")]);
    last = { sites: s.sites, alerts: a.alerts, now: s.now };
    lastReports = rep.reports;
    lastBulletins = bl.bulletins;
    $("#error").textContent = "";
    renderReports(lastReports);
    renderBulletins(lastBulletins);
    bulletinRegions(last.sites);
    render(last.sites, last.alerts, last.now);
    if (!$("#reg-to").value) {
      // The register's default: the last 12 months by the hub's clock.
      const now = new Date(s.now);
      $("#reg-to").value = isoDay(now);
      $("#reg-from").value = isoDay(new Date(now.getTime() - 365 * 86400000));
    }
    document.body.dataset.loaded = "1";
  } catch (e) {
    if (String(e.message) !== "401") $("#error").textContent = t("load_error") + ": " + e.message;
  }
}

// "Acknowledge" for an alert or (what "reports") an emergency report, then the board again.
async function ack(site, id, what) {
  try {
    await api("/api/v1/" + (what || "alerts") + "/" + encodeURIComponent(site) + "/"
      + encodeURIComponent(id) + "/ack", { method: "POST" });
  } catch (e) {
    if (String(e.message) !== "401") $("#error").textContent = String(e.message);
  }
  await refresh();
}

function isoDay(d) {
  return d.toISOString().slice(0, 10);
}

async function downloadRegister(ev) {
  ev.preventDefault();
  const from = $("#reg-from").value;
  const to = $("#reg-to").value;
  // In Dutch: semicolons and a byte order mark, as Excel with Dutch settings expects.
  const path = "/api/v1/gentests?format=csv&from=" + encodeURIComponent(from)
    + "&to=" + encodeURIComponent(to) + (lang === "nl" ? "&sep=semicolon" : "");
  await download(path, "generatortests_" + from + "_" + to + ".csv");
}

// The fuel round for the region shown (hub/fuel_round.py): PDF for the driver, or CSV.
async function downloadRound(ev, format) {
  ev.preventDefault();
  const region = $("#region-filter").value;
  const path = "/api/v1/fuel-round?format=" + format
    + (region ? "&region=" + encodeURIComponent(region) : "")
    + (format === "csv" && lang === "nl" ? "&sep=semicolon" : "");
  await download(path, "tankronde" + (region ? "_" + region : "") + "." + format);
}

async function download(path, filename) {
  // A plain link cannot carry the Bearer token: fetch the file, then save it from a blob.
  try {
    const r = await fetch(path,
      { headers: { Authorization: "Bearer " + localStorage.getItem("nsp-hub-token") } });
    if (r.status === 401) { showLogin(t("bad_token")); return; }
    if (!r.ok) throw new Error((await r.json()).error || r.status);
    const url = URL.createObjectURL(await r.blob());
    const a = document.createElement("a");
    a.href = url;
    a.download = filename;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  } catch (e) {
    $("#error").textContent = t("load_error") + ": " + e.message;
  }
}

function showLogin(message) {
  $("#board").hidden = true;
  $("#logout").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
}

function showBoard() {
  $("#login").hidden = true;
  $("#board").hidden = false;
  $("#logout").hidden = false;
  refresh();
}

$("#login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  localStorage.setItem("nsp-hub-token", $("#token").value.trim());
  $("#token").value = "";
  showBoard();
});
$("#logout").addEventListener("click", () => {
  localStorage.removeItem("nsp-hub-token");
  showLogin("");
});
$("#lang").addEventListener("click", () => {
  lang = lang === "nl" ? "en" : "nl";
  localStorage.setItem("nsp-hub-lang", lang);
  applyLang();
});

$("#gt-filter").checked = localStorage.getItem("nsp-hub-gt-filter") === "1";
$("#gt-filter").addEventListener("change", () => {
  localStorage.setItem("nsp-hub-gt-filter", $("#gt-filter").checked ? "1" : "0");
  if (last) render(last.sites, last.alerts, last.now);
});
$("#register").addEventListener("click", downloadRegister);
$("#bl-form").addEventListener("submit", sendBulletin);
$("#round-pdf").addEventListener("click", (ev) => downloadRound(ev, "pdf"));
$("#round-csv").addEventListener("click", (ev) => downloadRound(ev, "csv"));
$("#region-filter").addEventListener("change", () => {
  if (last) render(last.sites, last.alerts, last.now);
});
$("#ready-filter").addEventListener("change", () => {
  if (last) render(last.sites, last.alerts, last.now);
});
loadOutline();

applyLang();
if (localStorage.getItem("nsp-hub-token")) showBoard(); else showLogin("");
setInterval(refresh, 30000);
