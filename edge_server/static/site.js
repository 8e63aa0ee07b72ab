// The site page: readiness, open alerts (with acknowledge), fridge and fuel pictures, the
// generator test (start, progress, abort, result) and the technical details per node. Reads the
// edge's own API every few seconds:
//   GET /api/v1/site, /api/v1/readiness, /api/v1/alerts?state=open,
//   GET /api/v1/gentests/status (every refresh), GET /api/v1/history (the plots, once a minute),
//   POST /api/v1/alerts/{id}/ack, POST /api/v1/gentests, POST /api/v1/gentests/{id}/abort.
// Texts in Dutch and English (toggle, remembered in localStorage). No libraries: works offline.
"use strict";

const TEXT = {
  nl: {
    title: "Noodsteunpunt", loading: "Laden…", updated: "Bijgewerkt", online: "bereikbaar",
    offline: "niet bereikbaar", unavailable: "niet beschikbaar", error: "Melding",
    roles: "Rollen", other: "EN", yes: "ja", no: "nee", lastOk: "laatst gelezen",
    READY: "GEREED", DEGRADED: "BEPERKT GEREED", NOT_READY: "NIET GEREED", UNKNOWN: "ONBEKEND",
    no_conn: "Geen verbinding met de site-service. De getoonde gegevens kunnen verouderd zijn.",
    last_good: "Laatst bijgewerkt",
    no_readiness: "Gereedheid niet beschikbaar",
    autonomy: "Brandstof genoeg voor", refuel_before: "Tanken vóór", hours: "uur",
    refuel_only_running: "alleen als het aggregaat draait", power: "Stroom",
    mains_on: "Netstroom aanwezig", mains_off: "NETSTROOM UITGEVALLEN", mains_unknown: "Netstroom onbekend",
    gen_on: "Aggregaat draait", gen_off: "Aggregaat staat stil", gen_unknown: "Aggregaat onbekend",
    occupancy: "Aanwezig (schatting)", capacity: "Capaciteit", over_capacity: "VOL",
    alerts: "Open meldingen", no_alerts: "Geen open meldingen",
    alerts_na: "Meldingen niet beschikbaar (de regels draaien niet)",
    info: "info", warning: "waarschuwing", critical: "kritiek", since: "sinds",
    ack: "Bevestigen", acked_by: "Bevestigd door",
    token_label: "Toegangscode (token) om te bevestigen", token_ok: "Opslaan", cancel: "Annuleren",
    token_read: "Deze site vraagt een toegangscode (token) om gegevens te tonen.",
    forget_token: "Toegangscode vergeten",
    e401: "Deze toegangscode is onbekend of verlopen. Voer een geldige toegangscode in.",
    e403: "Deze toegangscode mag geen meldingen bevestigen. Daarvoor is een code van een operator of technicus nodig.",
    e404: "Deze melding bestaat niet meer.",
    e409: "Deze melding was al bevestigd.",
    e_other: "Bevestigen is mislukt",
    acked_ok: "Bevestigd.",
    fridge_chart: "Medicijnkoelkast, laatste 24 uur", fuel_chart: "Brandstof in de tank, laatste 7 dagen",
    band: "2-8 °C", min: "min", max: "max", now: "nu", no_data: "Geen gegevens",
    collecting: "gegevens sinds",
    tech: "Technische details", counters: "Tellers",
    up_title: "Verbinding met het C-NSP", up_off: "niet ingesteld", up_up: "verbonden",
    up_down: "geen verbinding (berichten wachten hier en gaan niet verloren)",
    up_pending: "wachtend", up_clock: "klok van deze site wijkt af van die van het C-NSP:",
    up_dead: "geweigerd door het C-NSP (zie technicus: nsp-edge uplink dead-letters)",
    gt_title: "Generatortest", gt_last: "Laatste test", gt_next: "Volgende test",
    gt_never: "Nog geen test geregistreerd", gt_report: "Rapport (PDF)",
    gt_between: "tussen", gt_and: "en",
    gt_start: "Test starten", gt_abort: "Test afbreken",
    gt_elapsed: "Verstreken", gt_remaining: "Nog te gaan",
    gt_phase_STARTING: "Het aggregaat start…", gt_phase_RUNNING: "Het aggregaat draait onder last",
    gt_confirm_start: "Het aggregaat start en draait {n} minuten onder last. Netstroom moet " +
      "aanwezig zijn. De test nu starten?",
    gt_confirm_abort: "De test wordt afgebroken en het aggregaat gestopt (alleen als er " +
      "netstroom is; anders blijft het draaien en de locatie van stroom voorzien). Afbreken?",
    gt_yes_start: "Ja, test starten", gt_yes_abort: "Ja, test afbreken",
    gt_token_label: "Toegangscode (token) van een technicus",
    gt_started: "De test is gestart.", gt_aborted: "De test is afgebroken.",
    gt_done: "De test is afgelopen:",
    gt_need_start: "Een test starten vraagt een toegangscode van een technicus. Er is niets gestart.",
    gt_need_abort: "Een test afbreken vraagt een toegangscode van een operator of technicus.",
    gt_e401: "Deze toegangscode is onbekend of verlopen. Er is niets gestart of gestopt.",
    gt_e403_start: "Deze toegangscode mag geen test starten: daarvoor is een code van een " +
      "technicus nodig. Er is niets gestart.",
    gt_e403_abort: "Deze toegangscode mag geen test afbreken: daarvoor is een code van een " +
      "operator of technicus nodig.",
    gt_e_start: "Starten is mislukt; er is niets gestart.", gt_e_abort: "Afbreken is mislukt.",
    gt_e429: "Te veel mislukte pogingen met een toegangscode. Probeer het over een minuut opnieuw.",
    rp_title: "Noodhulpmelding aan het C-NSP", rp_kind: "Soort", rp_urgency: "Urgentie",
    rp_note: "Voor medewerkers (toegangscode van een operator). Bij direct levensgevaar: ook 112 proberen.",
    rp_medical: "Medisch", rp_fire: "Brand", rp_missing_person: "Vermiste persoon",
    rp_other: "Overig", rp_immediate: "Direct", rp_urgent: "Dringend", rp_normal: "Normaal",
    rp_location: "Waar (locatie)", rp_people: "Aantal personen (leeg: onbekend)",
    rp_text: "Toelichting", rp_send: "Melding versturen",
    rp_sent: "Melding opgeslagen en in de wachtrij naar het C-NSP gezet (vóór al het andere).",
    rp_need_token: "Een melding versturen vraagt een toegangscode van een operator.",
    rp_e401: "Deze toegangscode is onbekend of verlopen. De melding is NIET verstuurd.",
    rp_e403: "Deze toegangscode mag geen melding versturen: daarvoor is een code van een " +
      "operator nodig. De melding is NIET verstuurd.",
    rp_e_other: "Versturen mislukt; de melding is NIET verstuurd. Probeer opnieuw.",
    rp_queued: "in de wachtrij naar het C-NSP", rp_delivered: "afgeleverd, nog niet bevestigd",
    rp_acked: "ontvangen door de C-NSP om", rp_people_n: "personen", rp_people_unknown:
    "aantal personen onbekend", rp_by: "door",
  },
  en: {
    title: "Emergency support point", loading: "Loading…", updated: "Updated", online: "online",
    offline: "offline", unavailable: "unavailable", error: "Problem",
    roles: "Roles", other: "NL", yes: "yes", no: "no", lastOk: "last read",
    READY: "READY", DEGRADED: "DEGRADED", NOT_READY: "NOT READY", UNKNOWN: "UNKNOWN",
    no_conn: "No connection to the site service. The data shown may be out of date.",
    last_good: "Last updated",
    no_readiness: "Readiness not available",
    autonomy: "Fuel lasts", refuel_before: "Refuel before", hours: "hours",
    refuel_only_running: "only while the generator runs", power: "Power",
    mains_on: "Mains present", mains_off: "MAINS FAILED", mains_unknown: "Mains unknown",
    gen_on: "Generator running", gen_off: "Generator stopped", gen_unknown: "Generator unknown",
    occupancy: "Inside (estimate)", capacity: "Capacity", over_capacity: "FULL",
    alerts: "Open alerts", no_alerts: "No open alerts",
    alerts_na: "Alerts not available (the rules are not running)",
    info: "info", warning: "warning", critical: "critical", since: "since",
    ack: "Acknowledge", acked_by: "Acknowledged by",
    token_label: "Access token to acknowledge", token_ok: "Save", cancel: "Cancel",
    token_read: "This site needs an access token to show its data.",
    forget_token: "Forget access token",
    e401: "This access token is unknown or expired. Enter a valid access token.",
    e403: "This access token may not acknowledge alerts. That needs an operator's or technician's token.",
    e404: "This alert no longer exists.",
    e409: "This alert was already acknowledged.",
    e_other: "Acknowledging failed",
    acked_ok: "Acknowledged.",
    fridge_chart: "Medicine fridge, last 24 hours", fuel_chart: "Fuel in the tank, last 7 days",
    band: "2-8 °C", min: "min", max: "max", now: "now", no_data: "No data",
    collecting: "collecting since",
    tech: "Technical details", counters: "Counters",
    up_title: "Link to the C-NSP", up_off: "not configured", up_up: "connected",
    up_down: "no connection (messages wait here and are not lost)",
    up_pending: "waiting", up_clock: "this site's clock differs from the C-NSP's by",
    up_dead: "refused by the C-NSP (technician: nsp-edge uplink dead-letters)",
    gt_title: "Generator test", gt_last: "Last test", gt_next: "Next test",
    gt_never: "No test on record yet", gt_report: "Report (PDF)",
    gt_between: "between", gt_and: "and",
    gt_start: "Start test", gt_abort: "Abort test",
    gt_elapsed: "Elapsed", gt_remaining: "Remaining",
    gt_phase_STARTING: "The generator is starting…", gt_phase_RUNNING: "The generator runs under load",
    gt_confirm_start: "The generator will start and run for {n} minutes under load. Mains must " +
      "be present. Start the test now?",
    gt_confirm_abort: "The test will be aborted and the generator stopped (only while mains is " +
      "present; otherwise it keeps running and powering the site). Abort?",
    gt_yes_start: "Yes, start the test", gt_yes_abort: "Yes, abort the test",
    gt_token_label: "A technician's access token",
    gt_started: "The test has started.", gt_aborted: "The test was aborted.",
    gt_done: "The test has finished:",
    gt_need_start: "Starting a test needs a technician's access token. Nothing was started.",
    gt_need_abort: "Aborting a test needs an operator's or technician's access token.",
    gt_e401: "This access token is unknown or expired. Nothing was started or stopped.",
    gt_e403_start: "This access token may not start a test: that needs a technician's token. " +
      "Nothing was started.",
    gt_e403_abort: "This access token may not abort a test: that needs an operator's or " +
      "technician's token.",
    gt_e_start: "Starting failed; nothing was started.", gt_e_abort: "Aborting failed.",
    gt_e429: "Too many failed attempts with an access token. Try again in a minute.",
    rp_title: "Emergency report to the C-NSP", rp_kind: "Kind", rp_urgency: "Urgency",
    rp_note: "For staff (an operator's access token). In immediate danger to life: try 112 as well.",
    rp_medical: "Medical", rp_fire: "Fire", rp_missing_person: "Missing person",
    rp_other: "Other", rp_immediate: "Immediate", rp_urgent: "Urgent", rp_normal: "Normal",
    rp_location: "Where (location)", rp_people: "Number of people (empty: not known)",
    rp_text: "Details", rp_send: "Send report",
    rp_sent: "Report saved and queued for the C-NSP (ahead of everything else).",
    rp_need_token: "Sending a report needs an operator's access token.",
    rp_e401: "This access token is unknown or expired. The report was NOT sent.",
    rp_e403: "This access token may not send a report: that needs an operator's token. " +
      "The report was NOT sent.",
    rp_e_other: "Sending failed; the report was NOT sent. Try again.",
    rp_queued: "queued for the C-NSP", rp_delivered: "delivered, not yet acknowledged",
    rp_acked: "received by the C-NSP at", rp_people_n: "people", rp_people_unknown:
    "number of people not known", rp_by: "by",
  },
};

// Register names as site staff read them: [Dutch, English].
const LABELS = {
  mains_present: ["Netspanning aanwezig", "Mains present"],
  gen_running: ["Aggregaat draait", "Generator running"],
  relay_on: ["Startrelais aan", "Start relay on"],
  gen_state: ["Toestand aggregaat", "Generator state"],
  gen_run_reason: ["Reden aggregaat draait", "Generator run reason"],
  run_hours_h: ["Draaiuren", "Run hours"],
  start_count: ["Aantal starts", "Starts"],
  fuel_sender_ma: ["Brandstofsensor", "Fuel sender"],
  fuel_level_pct: ["Brandstofniveau", "Fuel level"],
  fuel_l: ["Brandstof", "Fuel"],
  starter_battery_v: ["Startaccu", "Starter battery"],
  starter_battery_min_v: ["Startaccu minimum bij starten", "Starter battery min while cranking"],
  battery_v: ["Accuspanning", "Battery voltage"],
  battery_a: ["Accustroom", "Battery current"],
  battery_w: ["Accuvermogen", "Battery power"],
  battery_soc_pct: ["Accu laadtoestand", "Battery state of charge"],
  power_faults: ["Storingen voeding", "Power faults"],
  last_command: ["Laatste opdracht", "Last command"],
  fridge_temp_c: ["Temperatuur medicijnkoelkast", "Medicine fridge temperature"],
  ambient_temp_c: ["Kamertemperatuur", "Room temperature"],
  fridge_min_c: ["Koelkast minimum", "Fridge minimum"],
  fridge_max_c: ["Koelkast maximum", "Fridge maximum"],
  door_open: ["Koelkastdeur open", "Fridge door open"],
  fridge_alarm: ["Koelkastalarm", "Fridge alarm"],
  fridge_faults: ["Storingen koelkast", "Fridge faults"],
  door_open_s: ["Deur open sinds", "Door open for"],
  visitors_in: ["Bezoekers binnen gekomen", "Visitors in"],
  visitors_out: ["Bezoekers vertrokken", "Visitors out"],
  occupancy: ["Aanwezig nu (schatting)", "Inside now (estimate)"],
  entrance_faults: ["Storingen ingang", "Entrance faults"],
};

// Values of enum registers and fault bits (registers.toml's words) as people read them:
// [Dutch, English]. tests/test_site_page_words.py fails when a word of the map is missing here.
const WORDS = {
  power: ["voeding", "power"], fridge: ["koelkast", "fridge"], entrance: ["ingang", "entrance"],
  unknown: ["onbekend", "unknown"], power_on: ["aangezet", "powered on"],
  hard: ["harde reset", "hard reset"], watchdog: ["watchdog (vastgelopen)", "watchdog (stuck)"],
  deep_sleep: ["uit diepe slaap", "from deep sleep"], soft: ["herstart", "soft restart"],
  config_error: ["fout in config.json", "config.json error"], safe_mode: ["veilige modus", "safe mode"],
  persist_error: ["opslag op het bord faalt", "board storage failing"],
  virtual_clock: ["virtuele klok (test)", "virtual clock (test)"],
  stopped: ["gestopt", "stopped"], starting: ["start op", "starting"], running: ["draait", "running"],
  start_failed: ["start mislukt", "start failed"], cooldown: ["koelt af", "cooling down"],
  none: ["geen", "none"], mains_lost: ["netstroom weg", "mains lost"], test: ["test", "test"],
  unexpected: ["onverwacht", "unexpected"],
  fuel_open_loop: ["brandstofsensor los (open kring)", "fuel sender open loop"],
  fuel_over_range: ["brandstofsensor buiten bereik", "fuel sender over range"],
  starter_sense: ["meting startaccu faalt", "starter battery sense fault"],
  battery_sensor: ["accumeter faalt", "battery monitor fault"],
  mains_sense: ["meting netstroom faalt", "mains sense fault"],
  accepted: ["uitgevoerd", "accepted"],
  refused_mains_absent: ["geweigerd: geen netstroom", "refused: mains absent"],
  refused_carrying_site: ["geweigerd: aggregaat levert de stroom", "refused: set carries the site"],
  fridge_probe_missing: ["koelkastvoeler ontbreekt", "fridge probe missing"],
  fridge_probe_crc: ["koelkastvoeler geeft foute data", "fridge probe CRC error"],
  fridge_probe_power_on: ["koelkastvoeler net aangezet (85 °C)", "fridge probe power-on value (85 °C)"],
  ambient_probe_fault: ["kamervoeler storing", "room probe fault"],
  beam_a_blocked: ["lichtstraal A geblokkeerd", "beam A blocked"],
  beam_b_blocked: ["lichtstraal B geblokkeerd", "beam B blocked"],
  net_down: ["netwerk van het bord weg", "board's network down"],
  down: ["weg", "down"], connecting: ["verbinden", "connecting"], up: ["verbonden", "up"],
};

function word(name) {
  const w = WORDS[name];
  return w ? w[lang === "nl" ? 0 : 1] : name;
}

// Poller counters (GET /api/v1/site nodes.*.counters): [Dutch, English].
const COUNTERS = {
  reads_ok: ["gelukte lezingen", "reads ok"], timeouts: ["geen antwoord", "timeouts"],
  crc_errors: ["CRC-fouten", "CRC errors"], exceptions: ["foutantwoorden", "exception replies"],
  decode_errors: ["onleesbare waarden", "decode errors"],
};

const ICONS = { READY: "✓", DEGRADED: "!", NOT_READY: "✕", UNKNOWN: "?" };
const HISTORY_EVERY_MS = 60_000;
const TOKEN_KEY = "nsp-token";  // the same key for reading (require_auth_for_read) and acking

let lang = localStorage.getItem("nsp-lang") || "nl";
const data = { site: null, readiness: null, readinessError: null, alerts: null,
  fridge: null, fuel: null, gentest: null, lastOk: null, connected: true };
let historyAt = 0;
let pendingAck = null;  // the alert id to acknowledge once a token is entered
let alertMsg = null;  // [text key, extra] of the last acknowledge outcome

const $ = (sel) => document.querySelector(sel);
function t(key) { return TEXT[lang][key] !== undefined ? TEXT[lang][key] : key; }
const locale = () => (lang === "nl" ? "nl-NL" : "en-GB");

function label(name) {
  const l = LABELS[name];
  return l ? l[lang === "nl" ? 0 : 1] : name;
}

function num(v, digits) {
  return v.toLocaleString(locale(), { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

// Every time is shown in the SITE's zone (the API's "timezone", [site] timezone in site.toml),
// never the browser's: a laptop set to UTC at the site shows the same clock as the wall.
function siteZone() {
  return (data.site && data.site.timezone) || "Europe/Amsterdam";
}

function fmtTime(iso, withDate) {
  if (!iso) return "–";
  const opts = withDate ? { weekday: "short", day: "numeric", month: "short", hour: "2-digit",
    minute: "2-digit" } : { hour: "2-digit", minute: "2-digit", second: "2-digit" };
  return new Date(iso).toLocaleString(locale(), { ...opts, timeZone: siteZone() });
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function show(name, r, meta) {
  if (r.quality !== "good" || r.value === null) return t("unavailable");
  if (typeof r.value === "boolean") return r.value ? t("yes") : t("no");
  const m = meta[name];
  if (m && m.enum && m.enum[r.value] !== undefined) return word(m.enum[r.value]);
  if (m && m.bits) {
    const set = Object.entries(m.bits).filter(([bit]) => r.value & (1 << Number(bit)));
    return set.length ? set.map(([, n]) => word(n)).join(", ") : "-";
  }
  const v = typeof r.value === "number" && !Number.isInteger(r.value)
    ? r.value.toLocaleString(lang, { maximumFractionDigits: 2 }) : String(r.value);
  return r.unit ? `${v} ${r.unit}` : v;
}

// --- fetching -------------------------------------------------------------------------------

function authHeaders() {
  const headers = { Accept: "application/json" };
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  return headers;
}

class HttpError extends Error {
  constructor(status, detail) { super(`HTTP ${status}`); this.status = status; this.detail = detail; }
}

async function getJson(path) {
  const resp = await fetch(path, { headers: authHeaders(), cache: "no-store" });
  if (!resp.ok) {
    let detail = "";
    try { detail = (await resp.json()).detail || ""; } catch (e) { /* not JSON */ }
    throw new HttpError(resp.status, detail);
  }
  return resp.json();
}

function nodeWithRole(site, role) {
  return Object.values(site.nodes).find((n) => n.roles.includes(role));
}

async function fetchHistory(site) {
  const now = Date.parse(site.now);
  const iso = (ms) => new Date(ms).toISOString();
  // points: at most that many min/mean/max buckets, about one per pixel of the plot (the
  // server reads them from its minute/hour tables; every excursion stays in a bucket's min/max).
  const one = async (role, register, spanMs, step, points) => {
    const node = nodeWithRole(site, role);
    if (!node) return null;
    const q = new URLSearchParams({ channel: `${node.name}.${register}`, from: iso(now - spanMs),
      to: iso(now), step, points: String(points) });
    try {
      const h = await getJson(`/api/v1/history?${q}`);
      return { ...h, fromMs: now - spanMs, toMs: now };
    } catch (err) {
      if (err instanceof HttpError) return { points: [], fromMs: now - spanMs, toMs: now };
      throw err;  // no connection: keep the last picture
    }
  };
  const [fridge, fuel] = await Promise.all([
    one("fridge", "fridge_temp_c", 24 * 3600e3, "1m", 720),
    one("power", "fuel_l", 7 * 24 * 3600e3, "1h", 720),
  ]);
  data.fridge = fridge;
  data.fuel = fuel;
  data.historyVersion = (data.historyVersion || 0) + 1;
}

async function refresh() {
  try {
    const [site, readiness, alerts, , reports] = await Promise.all([
      getJson("/api/v1/site"),
      getJson("/api/v1/readiness").catch((e) => { if (e instanceof HttpError) return e; throw e; }),
      getJson("/api/v1/alerts?state=open").catch((e) => {
        if (e instanceof HttpError) return null; throw e;
      }),
      fetchGentest(),
      fetchReports(),
    ]);
    data.reports = reports;
    data.site = site;
    data.readiness = readiness instanceof HttpError ? null : readiness;
    data.readinessError = readiness instanceof HttpError ? readiness : null;
    data.alerts = alerts;
    if (Date.now() - historyAt > HISTORY_EVERY_MS) {
      await fetchHistory(site);
      historyAt = Date.now();
    }
    data.lastOk = new Date();
    data.connected = true;
    if (!$("#token-form").hidden && pendingAck === null) $("#token-form").hidden = true;
  } catch (err) {
    if (err instanceof HttpError && (err.status === 401 || err.status === 403)) {
      // api.require_auth_for_read = true: ask for a viewer token, keep it in this browser.
      data.connected = true;
      showTokenForm(t("token_read"));
    } else {
      data.connected = false;
    }
  }
  render();
  const everyS = data.site && data.site.poll_interval_s ? data.site.poll_interval_s : 2;
  setTimeout(refresh, Math.min(10, Math.max(2, everyS)) * 1000);
}

// --- acknowledging (token asked once, kept in localStorage, as the hub board does) ----------

function showTokenForm(message) {
  const form = $("#token-form");
  if (message) setAlertMsg(null, message);
  if (!form.hidden) return;  // already asking: do not steal the focus on every refresh
  form.hidden = false;
  $("#token").focus();
}

function setAlertMsg(key, extra, kind) {
  alertMsg = key || extra ? [key, extra || "", kind || "bad"] : null;
  renderAlertMsg();
}

function renderAlertMsg() {
  const p = $("#alert-msg");
  p.hidden = !alertMsg;
  if (!alertMsg) return;
  const [key, extra, kind] = alertMsg;
  p.className = kind;
  p.dataset.code = key || "";
  p.textContent = [key ? t(key) : "", extra].filter(Boolean).join(" ");
}

async function ack(alertId) {
  const token = localStorage.getItem(TOKEN_KEY);
  if (!token) {
    pendingAck = alertId;
    showTokenForm(null);
    return;
  }
  let resp;
  try {
    resp = await fetch(`/api/v1/alerts/${encodeURIComponent(alertId)}/ack`,
      { method: "POST", headers: authHeaders() });
  } catch (err) {
    data.connected = false;
    render();
    return;
  }
  if (resp.ok) {
    setAlertMsg("acked_ok", "", "good");
  } else if (resp.status === 401) {
    localStorage.removeItem(TOKEN_KEY);
    pendingAck = alertId;
    setAlertMsg("e401");
    showTokenForm(null);
  } else if (resp.status === 403) {
    // A valid token without the operator role: say so, and offer to enter another token.
    pendingAck = alertId;
    setAlertMsg("e403");
    showTokenForm(null);
  } else if (resp.status === 404 || resp.status === 409) {
    setAlertMsg(`e${resp.status}`);
  } else {
    setAlertMsg("e_other", `(HTTP ${resp.status})`);
  }
  try {
    data.alerts = await getJson("/api/v1/alerts?state=open");
  } catch (err) { /* the next refresh shows the state */ }
  render();
}

$("#token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  localStorage.setItem(TOKEN_KEY, $("#token").value.trim());
  $("#token").value = "";
  $("#token-form").hidden = true;
  setAlertMsg(null);
  const id = pendingAck;
  pendingAck = null;
  if (id !== null) ack(id); else historyAt = 0;
  if (reportPending) { reportPending = false; sendReport(); }
});
$("#token-cancel").addEventListener("click", () => {
  pendingAck = null;
  $("#token-form").hidden = true;
});
$("#logout").addEventListener("click", () => {
  localStorage.removeItem(TOKEN_KEY);
  setAlertMsg(null);
  render();
});

// --- emergency reports (docs/bulletins-and-reports.md): the form and the site's reports ----
// POST /api/v1/reports with an operator's token (the same TOKEN_KEY; asked for when none is
// kept). The list (GET /api/v1/reports, operator only) says where each one is: queued, at the
// C-NSP, or "received by the C-NSP at HH:MM" once the hub's acknowledgement came back. The form
// keeps what was typed until the edge has stored it: a refused send loses nothing.
let reportPending = false;  // a send waiting for a token
let reportMsg = null;  // [text key, kind]

async function fetchReports() {
  if (!localStorage.getItem(TOKEN_KEY)) return null;
  try {
    return (await getJson("/api/v1/reports?limit=20")).reports;
  } catch (e) {
    if (e instanceof HttpError) return null;  // a viewer's token, or no crisis part
    throw e;
  }
}

function setReportMsg(key, kind) {
  reportMsg = key ? [key, kind || "bad"] : null;
  renderReports();
}

async function sendReport() {
  if (!localStorage.getItem(TOKEN_KEY)) {
    reportPending = true;
    setReportMsg("rp_need_token");
    showTokenForm(null);
    return;
  }
  const people = $("#rp-people").value.trim();
  const body = { kind: $("#rp-kind").value, urgency: $("#rp-urgency").value,
    location: $("#rp-location").value, people: people === "" ? null : Number(people),
    text: $("#rp-text").value };
  let resp;
  try {
    resp = await fetch("/api/v1/reports", { method: "POST", cache: "no-store",
      headers: { ...authHeaders(), "Content-Type": "application/json" },
      body: JSON.stringify(body) });
  } catch (err) {
    setReportMsg("rp_e_other");
    return;
  }
  if (resp.status === 201) {
    $("#rp-form").reset();
    setReportMsg("rp_sent", "good");
    data.reports = await fetchReports().catch(() => data.reports);
  } else if (resp.status === 401 || resp.status === 403) {
    if (resp.status === 401) localStorage.removeItem(TOKEN_KEY);
    reportPending = true;
    setReportMsg(`rp_e${resp.status}`);
    showTokenForm(null);
  } else {
    let detail = "";
    try { detail = (await resp.json()).detail; } catch (e) { /* not JSON */ }
    reportMsg = ["rp_e_other", "bad", typeof detail === "string" ? detail : ""];
  }
  renderReports();
}

function fmtHM(iso) {
  return new Date(iso).toLocaleTimeString(locale(),
    { hour: "2-digit", minute: "2-digit", timeZone: siteZone() });
}

function renderReports() {
  const p = $("#rp-msg");
  p.hidden = !reportMsg;
  if (reportMsg) {
    p.className = reportMsg[1];
    p.dataset.code = reportMsg[0];
    p.textContent = [t(reportMsg[0]), reportMsg[2] || ""].filter(Boolean).join(" ");
  }
  const list = $("#rp-list");
  list.textContent = "";
  for (const r of data.reports || []) {
    const state = r.ack ? `${t("rp_acked")} ${fmtHM(r.ack.at)}`
      : t(r.delivered_at ? "rp_delivered" : "rp_queued");
    const stateEl = el("span", { class: "rp-state" }, state);
    if (r.ack) stateEl.title = `${t("rp_by")} ${r.ack.by}, ${fmtTime(r.ack.at, true)}`;
    const people = r.people == null ? t("rp_people_unknown") : `${r.people} ${t("rp_people_n")}`;
    const head = el("div", {}, `${fmtTime(r.reported_at, true)} · ${t("rp_" + r.kind)} · `
      + `${t("rp_" + r.urgency)} · ${r.location} · ${people} · `, stateEl);
    const li = el("li", { "data-report": r.report_id, class: r.ack ? "acked" : "open" }, head);
    if (r.text) li.append(el("div", { class: "rp-text" }, r.text));
    list.append(li);
  }
}

$("#rp-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sendReport();
});

// --- the generator test (docs/generator-tests.md, "From the site page") ---------------------
// The same token as acknowledging (TOKEN_KEY): asked for when none is kept, forgotten on 401.
// The button is disabled with the edge's own reason while a start would be refused (mains
// absent, ...), but the edge checks again on every POST: it stays the authority.

let gtAction = null;  // "start" | "abort" while the confirmation is open
let gtMsg = null;  // {key, api: {text_nl, text_en} | null, kind, code}
let gtSeenActive = null;  // the id of the test the last status showed running

async function fetchGentest() {
  try {
    const st = await getJson("/api/v1/gentests/status");
    const was = gtSeenActive;
    gtSeenActive = st.active ? st.active.id : null;
    if (was !== null && !st.active && st.last && st.last.id === was) {
      // The test this page watched has ended: say how, next to its report link.
      setGtMsg("gt_done", { text_nl: st.last.outcome_nl, text_en: st.last.outcome_en },
        st.last.passed === true ? "good" : st.last.passed === false ? "bad" : "info",
        st.last.outcome);
    }
    data.gentest = st;
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    data.gentest = null;  // no generator-test component on this edge: no section
  }
}

function setGtMsg(key, api, kind, code) {
  gtMsg = key || api ? { key, api, kind: kind || "bad", code: code || key || "" } : null;
  renderGtMsg();
}

function renderGtMsg() {
  const p = $("#gt-msg");
  p.hidden = !gtMsg;
  if (!gtMsg) return;
  p.className = gtMsg.kind;
  p.dataset.code = gtMsg.code;
  const api = gtMsg.api ? (lang === "nl" ? gtMsg.api.text_nl : gtMsg.api.text_en) : "";
  p.textContent = [gtMsg.key ? t(gtMsg.key) : "", api].filter(Boolean).join(" ");
}

function gtConfirm(action, askToken) {
  gtAction = action;
  const needToken = askToken || !localStorage.getItem(TOKEN_KEY);
  $("#gt-token-row").hidden = !needToken;
  $("#gt-confirm").hidden = false;
  renderGentest();
  (needToken ? $("#gt-token") : $("#gt-confirm-ok")).focus();
}

async function gtSend(action) {
  const active = data.gentest && data.gentest.active;
  const url = action === "abort" && active
    ? `/api/v1/gentests/${encodeURIComponent(active.id)}/abort` : "/api/v1/gentests";
  let resp;
  try {
    resp = await fetch(url, { method: "POST", headers: authHeaders() });
  } catch (err) {
    data.connected = false;
    render();
    return;
  }
  let body = null;
  try { body = await resp.json(); } catch (e) { /* not JSON */ }
  if (resp.ok) {
    setGtMsg(action === "start" ? "gt_started" : "gt_aborted", null, "good");
    if (action === "abort") gtSeenActive = null;  // said here already: no "has finished" too
  } else if (resp.status === 401) {
    const had = localStorage.getItem(TOKEN_KEY);
    localStorage.removeItem(TOKEN_KEY);
    setGtMsg(had ? "gt_e401" : `gt_need_${action}`, null, "bad", had ? "e401" : "no_token");
    gtConfirm(action, true);
  } else if (resp.status === 403) {
    setGtMsg(`gt_e403_${action}`, null, "bad", "e403");
    gtConfirm(action, true);
  } else if (resp.status === 409 && body && body.text_nl) {
    // The edge's interlock said no: its own reason, in words (mains absent, test running, ...).
    setGtMsg(null, body, "bad", body.error);
  } else if (resp.status === 429) {
    setGtMsg("gt_e429", null, "bad", "e429");
  } else {
    setGtMsg(`gt_e_${action}`, { text_nl: `(HTTP ${resp.status})`, text_en: `(HTTP ${resp.status})` },
      "bad", `http${resp.status}`);
  }
  try { await fetchGentest(); } catch (err) { /* the next refresh shows the state */ }
  render();
}

function fmtDuration(s) {
  const total = Math.max(0, Math.round(s));
  const h = Math.floor(total / 3600);
  const m = Math.floor(total / 60) % 60;
  const sec = String(total % 60).padStart(2, "0");
  return h ? `${h} h ${m} min` : `${m} min ${sec} s`;
}

function renderGentest() {
  const st = data.gentest;
  $("#gentest").hidden = !st;
  renderGtMsg();
  if (!st) return;
  const nl = lang === "nl";
  const last = st.last;
  const lastEl = $("#gt-last");
  lastEl.textContent = last ? `${fmtTime(last.ended_at, true)}: ${nl ? last.outcome_nl : last.outcome_en}`
    : t("gt_never");
  lastEl.className = !last ? "" : last.passed === true ? "good" : last.passed === false ? "bad" : "";
  lastEl.dataset.outcome = last ? last.outcome : "";
  $("#gt-report-dd").hidden = !last;
  if (last) $("#gt-report").href = `/api/v1/gentests/${last.id}/report.pdf`;

  const next = st.next;
  const nextEl = $("#gt-next");
  const span = next.status === "never_tested" ? ""
    : ` (${t("gt_between")} ${fmtTime(next.earliest, true)} ${t("gt_and")} ${fmtTime(next.latest, true)})`;
  nextEl.textContent = `${nl ? next.text_nl : next.text_en}${span}`;
  nextEl.className = next.status === "overdue" || next.status === "never_tested" ? "bad"
    : next.status === "due" ? "warn" : "";
  nextEl.dataset.status = next.status;

  const a = st.active;
  $("#gentest").dataset.phase = a ? a.phase : "";
  $("#gt-run").hidden = !a;
  if (a) {
    // Spoken (aria-live) once a minute at most: the phase and the whole minutes to go.
    const live = `${t(`gt_phase_${a.phase}`)}. ${t("gt_remaining")}: ${Math.ceil(a.remaining_s / 60)} min`;
    if ($("#gt-phase").textContent !== live) $("#gt-phase").textContent = live;
    const bar = $("#gt-progress");
    bar.value = a.progress;
    bar.setAttribute("aria-valuetext", `${Math.round(a.progress * 100)} %`);
    bar.dataset.progress = String(a.progress);
    $("#gt-elapsed").textContent = fmtDuration(a.elapsed_s);
    $("#gt-remaining").textContent = fmtDuration(a.remaining_s);
  }
  const blocked = !a && st.blocked;
  const why = $("#gt-blocked");
  why.hidden = !blocked;
  why.textContent = blocked ? (nl ? blocked.text_nl : blocked.text_en) : "";
  why.dataset.code = blocked ? blocked.error : "";
  $("#gt-start").hidden = !!a;
  $("#gt-start").disabled = !!blocked;
  $("#gt-abort").hidden = !a;
  // A confirmation for a state that has passed (the test ended meanwhile) is withdrawn.
  if (gtAction === "abort" && !a) gtAction = null;
  $("#gt-confirm").hidden = gtAction === null;
  if (gtAction) {
    $("#gt-confirm-text").textContent = t(`gt_confirm_${gtAction}`)
      .replace("{n}", num(st.duration_min, 1));
    $("#gt-confirm-ok").textContent = t(`gt_yes_${gtAction}`);
    $("#gt-confirm").dataset.action = gtAction;
  }
}

$("#gt-start").addEventListener("click", () => { setGtMsg(null); gtConfirm("start", false); });
$("#gt-abort").addEventListener("click", () => { setGtMsg(null); gtConfirm("abort", false); });
$("#gt-confirm-cancel").addEventListener("click", () => {
  gtAction = null;
  $("#gt-token").value = "";
  renderGentest();
});
$("#gt-confirm").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const typed = $("#gt-token").value.trim();
  if (typed) localStorage.setItem(TOKEN_KEY, typed);  // kept as the acknowledge form keeps it
  $("#gt-token").value = "";
  const action = gtAction;
  gtAction = null;
  renderGentest();
  if (action) gtSend(action);
});
// The report: a plain link while reading is open; with a token kept, fetched with it (a site
// with api.require_auth_for_read = true refuses the plain link).
$("#gt-report").addEventListener("click", async (ev) => {
  if (!localStorage.getItem(TOKEN_KEY)) return;
  ev.preventDefault();
  const href = $("#gt-report").href;
  try {
    const resp = await fetch(href, { headers: authHeaders() });
    if (!resp.ok) throw new HttpError(resp.status, "");
    const link = el("a", { href: URL.createObjectURL(await resp.blob()),
      download: href.split("/").slice(-2).join("-") });
    link.click();
  } catch (err) {
    window.location.href = href;
  }
});

// --- pictures: a small hand-written SVG line plot -------------------------------------------
// No chart library on purpose: the page must work offline from the edge box (no CDN), stay
// tiny (this function is ~80 lines; a chart library is 200+ KB), and need no build step.

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function niceStep(span, count) {
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
}

// points: [[t_ms, min, mean, max], ...]; a point whose mean is null is a gap (drawn as a gap).
// opts: {fromMs, toMs, unit, band: [lo, hi] | null, yMin, yMax, tickMs, tickFmt, digits}
function plot(svg, points, opts) {
  const W = Math.max(280, Math.round(svg.getBoundingClientRect().width) || 600);
  const H = W < 500 ? 170 : 210;
  const pad = { l: 44, r: 10, t: 10, b: 24 };
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("height", H);
  const keep = svg.querySelector("title");
  svg.replaceChildren();
  if (keep) svg.append(keep);
  const values = points.filter((p) => p[2] !== null);
  let lo = Math.min(opts.yMin, ...values.map((p) => p[1] ?? p[2]));
  let hi = Math.max(opts.yMax, ...values.map((p) => p[3] ?? p[2]));
  const step = niceStep(hi - lo || 1, 4);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const x = (ms) => pad.l + (ms - opts.fromMs) / (opts.toMs - opts.fromMs) * (W - pad.l - pad.r);
  const y = (v) => H - pad.b - (v - lo) / (hi - lo) * (H - pad.t - pad.b);
  if (opts.band) {
    svg.append(svgEl("rect", { class: "band", x: pad.l, width: W - pad.l - pad.r,
      y: y(opts.band[1]), height: y(opts.band[0]) - y(opts.band[1]) }));
  }
  for (let v = lo; v <= hi + step / 2; v += step) {
    svg.append(svgEl("line", { class: "grid", x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v) }));
    svg.append(svgEl("text", { class: "ylabel", x: pad.l - 4, y: y(v) + 4 },
      num(v, opts.digits)));
  }
  if (opts.band) {
    svg.append(svgEl("text", { class: "bandlabel", x: W - pad.r - 4, y: y(opts.band[1]) + 13 },
      `${num(opts.band[0], 0)}-${num(opts.band[1], 0)} ${opts.unit}`));
  }
  const first = Math.ceil(opts.fromMs / opts.tickMs) * opts.tickMs;
  // On a narrow screen, label every 2nd grid line so the labels do not run into each other.
  const labelEvery = x(first + opts.tickMs) - x(first) < 56 ? 2 : 1;
  let n = 0;
  for (let ms = first; ms <= opts.toMs; ms += opts.tickMs, n += 1) {
    svg.append(svgEl("line", { class: "grid", x1: x(ms), x2: x(ms), y1: pad.t, y2: H - pad.b }));
    if (n % labelEvery === 0 && x(ms) > pad.l + 20 && x(ms) < W - pad.r - 20) {
      svg.append(svgEl("text", { class: "xlabel", x: x(ms), y: H - 6 }, opts.tickFmt(ms)));
    }
  }
  svg.append(svgEl("text", { class: "unit", x: pad.l + 4, y: pad.t + 12 }, opts.unit));
  let d = "";
  let pen = false;
  for (const [ms, , mean] of points) {
    if (mean === null) { pen = false; continue; }
    d += `${pen ? "L" : "M"}${x(ms).toFixed(1)},${y(mean).toFixed(1)}`;
    pen = true;
  }
  if (d) svg.append(svgEl("path", { class: "line", d }));
  if (values.length && values.length < 3) {  // too few for a line: draw them as dots
    for (const [ms, , mean] of values) {
      svg.append(svgEl("circle", { class: "dot", cx: x(ms), cy: y(mean), r: 3 }));
    }
  }
  if (!values.length) {
    svg.append(svgEl("text", { class: "nodata", x: W / 2, y: H / 2 }, t("no_data")));
  } else if (values[0][0] - opts.fromMs > (opts.toMs - opts.fromMs) / 10) {
    // A young site: say since when it collects, in the empty part before the first value.
    const mid = (pad.l + x(values[0][0])) / 2;
    svg.append(svgEl("text", { class: "nodata", x: mid, y: H / 2 },
      `${t("collecting")} ${new Date(values[0][0]).toLocaleTimeString(locale(),
        { hour: "2-digit", minute: "2-digit", timeZone: siteZone() })}`));
  }
  svg.dataset.points = String(values.length);
}

function localTick(ms, withDay) {
  const opts = withDay ? { weekday: "short", day: "numeric" } : { hour: "2-digit", minute: "2-digit" };
  return new Date(ms).toLocaleString(locale(), { ...opts, timeZone: siteZone() });
}

let chartsKey = "";

function renderCharts(force) {
  // Redrawn only when new history came in, the language or the width changed.
  const key = `${data.historyVersion}/${lang}/${$("#charts").clientWidth}`;
  if (key === chartsKey && !force) return;
  chartsKey = key;
  const fridge = data.fridge;
  const fridgeSvg = $("#fridge-chart");
  if (fridge) {
    // Ticks at whole local hours, every 6 h.
    plot(fridgeSvg, fridge.points, { fromMs: fridge.fromMs, toMs: fridge.toMs, unit: "°C",
      band: [2, 8], yMin: 0, yMax: 10, tickMs: 6 * 3600e3, digits: 1,
      tickFmt: (ms) => localTick(ms, false) });
    const mins = fridge.points.map((p) => p[1]).filter((v) => v !== null);
    const maxs = fridge.points.map((p) => p[3]).filter((v) => v !== null);
    const mm = $("#fridge-minmax");
    if (mins.length) {
      const lo = Math.min(...mins);
      const hi = Math.max(...maxs);
      mm.textContent = `${t("min")} ${num(lo, 1)} °C · ${t("max")} ${num(hi, 1)} °C`;
      mm.className = `minmax${lo < 2 || hi > 8 ? " out" : ""}`;
    } else {
      mm.textContent = "";
    }
  }
  fridgeSvg.closest("figure").hidden = !fridge;
  const fuel = data.fuel;
  const fuelSvg = $("#fuel-chart");
  if (fuel) {
    plot(fuelSvg, fuel.points, { fromMs: fuel.fromMs, toMs: fuel.toMs, unit: "L", band: null,
      yMin: 0, yMax: 0, tickMs: 24 * 3600e3, digits: 0, tickFmt: (ms) => localTick(ms, true) });
    const lastPoint = [...fuel.points].reverse().find((p) => p[2] !== null);
    $("#fuel-now").textContent = lastPoint ? `${t("now")} ${num(lastPoint[2], 0)} L` : "";
  }
  fuelSvg.closest("figure").hidden = !fuel;
}

// --- rendering ------------------------------------------------------------------------------

function renderBanner() {
  const r = data.readiness;
  const state = r ? r.state : "UNKNOWN";
  const banner = $("#banner");
  banner.className = `banner ${state}`;
  banner.dataset.state = state;
  $("#ready-icon").textContent = ICONS[state] || "?";
  $("#ready-text").textContent = t(state);
  const items = r ? r.reasons.filter((x) => x.code !== "ALL_OK" || r.reasons.length === 1)
    .map((x) => el("li", { "data-code": x.code }, lang === "nl" ? x.text_nl : x.text_en))
    : [el("li", {}, `${t("no_readiness")}${data.readinessError ? ` (${data.readinessError.message})` : ""}`)];
  $("#reasons").replaceChildren(...items);
}

function renderTiles() {
  const r = data.readiness;
  const a = r && r.autonomy;
  const s = r && r.status;
  const hours = a && a.hours !== null && a.hours !== undefined ? a.hours
    : (s ? s.fuel_autonomy_h : null);
  $("#autonomy").textContent = hours === null || hours === undefined ? "–"
    : `${num(hours, hours < 10 ? 1 : 0)} ${t("hours")}`;
  const refuel = a ? a.refuel_before : (s && s.refuel_before);
  const known = hours !== null && hours !== undefined;
  $("#refuel").textContent = refuel ? fmtTime(refuel, true)
    : (known ? `– (${t("refuel_only_running")})` : "–");
  // Thresholds of docs/rules.md: below 24 h NOT_READY, below the 72 h target DEGRADED.
  $("#tile-fuel").className = `tile${!known ? " unknown" : hours < 24 ? " bad"
    : hours < 72 ? " warn" : ""}`;

  const mains = s ? s.mains_present : null;
  const gen = s ? s.gen_running : null;
  $("#mains").textContent = mains === true ? t("mains_on") : mains === false ? t("mains_off")
    : t("mains_unknown");
  $("#gen").textContent = gen === true ? t("gen_on") : gen === false ? t("gen_off")
    : t("gen_unknown");
  $("#tile-power").className = `tile${mains === false ? (gen ? " warn" : " bad")
    : mains === null || mains === undefined ? " unknown" : ""}`;

  const occ = s ? s.occupancy : null;
  const cap = data.site ? data.site.capacity : null;
  $("#occupancy").textContent = occ === null || occ === undefined ? "–"
    : (cap ? `${occ} / ${cap}` : String(occ));
  $("#capacity").textContent = cap ? String(cap) : "–";
  $("#tile-occ").className = `tile${occ === null || occ === undefined ? " unknown"
    : cap && occ > cap ? " bad" : ""}`;
}

let alertsKey = "";

function renderAlerts() {
  const list = $("#alerts");
  const alerts = data.alerts ? data.alerts.alerts : null;
  $("#logout").hidden = !localStorage.getItem(TOKEN_KEY);
  // Rebuilt only when something changed: a button must not be replaced under a finger.
  const key = `${lang}/${JSON.stringify(alerts)}`;
  if (key === alertsKey) return;
  alertsKey = key;
  if (alerts === null) {
    list.replaceChildren(el("li", { class: "na" }, t("alerts_na")));
    return;
  }
  if (!alerts.length) {
    list.replaceChildren(el("li", { class: "none" }, t("no_alerts")));
  } else {
    // Critical first, then warnings, then info; newest first within each (as the API sends).
    const rank = { critical: 0, warning: 1, info: 2 };
    const sorted = alerts.slice().sort((a, b) => (rank[a.severity] ?? 3) - (rank[b.severity] ?? 3));
    list.replaceChildren(...sorted.map((a) => {
      const li = el("li", { class: `alert ${a.severity}`, "data-alert": String(a.id),
        "data-code": a.code },
        el("span", { class: `sev ${a.severity}` }, t(a.severity)),
        el("span", { class: "what" }, lang === "nl" ? a.text_nl : a.text_en),
        el("span", { class: "since" }, `${t("since")} ${fmtTime(a.raised_at, true)}`));
      if (a.acknowledged_at) {
        li.append(el("span", { class: "acked" },
          `${t("acked_by")} ${a.acknowledged_by} (${fmtTime(a.acknowledged_at, true)})`));
      } else {
        const btn = el("button", { type: "button", class: "ack" }, t("ack"));
        btn.addEventListener("click", () => ack(a.id));
        li.append(btn);
      }
      return li;
    }));
  }
}

function renderNodes() {
  const site = data.site;
  if (!site) return;
  const main = $("#nodes");
  const meta = site.registers || {};
  const sections = [];
  for (const [name, node] of Object.entries(site.nodes)) {
    const badge = el("span", { class: `badge ${node.online ? "online" : "offline"}` },
      node.online ? t("online") : t("offline"));
    const section = el("section", { class: "node", id: `node-${name}`, "data-node": name },
      el("h3", {}, `${name} (unit ${node.unit_id})`, badge),
      el("div", {}, `${t("roles")}: ${node.roles.join(", ")}`));
    if (node.last_ok) section.append(el("div", { class: "small" }, `${t("lastOk")}: ${fmtTime(node.last_ok, true)}`));
    if (node.last_error) {
      section.append(el("div", { class: "error" }, `${t("error")}: ${node.last_error}`));
    }
    const table = el("table");
    for (const [channel, r] of Object.entries(site.values)) {
      if (!channel.startsWith(name + ".")) continue;
      const reg = channel.slice(name.length + 1);
      table.append(el("tr", { class: r.quality, "data-channel": channel },
        el("td", {}, label(reg)), el("td", { class: "value" }, show(reg, r, meta))));
    }
    section.append(table);
    if (node.counters) {
      const counters = el("table", { class: "counters" });
      for (const [k, v] of Object.entries(node.counters)) {
        const l = COUNTERS[k];
        counters.append(el("tr", { "data-counter": k },
          el("td", {}, l ? l[lang === "nl" ? 0 : 1] : k), el("td", { class: "value" }, String(v))));
      }
      section.append(el("h4", {}, t("counters")), counters);
    }
    sections.push(section);
  }
  main.replaceChildren(...sections);
}

function renderUplink() {
  const up = data.site.uplink || { enabled: false };
  const p = $("#uplink");
  if (!up.enabled) {
    p.textContent = `${t("up_title")}: ${t("up_off")}`;
    p.dataset.state = "off";
    return;
  }
  const pending = Object.values(up.pending_by_kind || {}).reduce((a, b) => a + b, 0);
  const parts = [`${t("up_title")}: ${up.link_up ? t("up_up") : t("up_down")}`,
    `${t("up_pending")}: ${pending}`];
  if (up.dead_letters) parts.push(`${up.dead_letters} ${t("up_dead")}`);
  const off = up.clock_offset_s || 0;
  if (Math.abs(off) >= 60) parts.push(`${t("up_clock")} ${fmtDuration(Math.abs(off))}`);
  p.textContent = parts.join(" · ");
  p.dataset.state = up.dead_letters ? "refused" : (up.link_up ? "up" : "down");
}

function render() {
  document.documentElement.lang = lang;
  for (const e of document.querySelectorAll("[data-t]")) e.textContent = t(e.dataset.t);
  $("#lang").textContent = t("other");
  const conn = $("#conn");
  conn.hidden = data.connected;
  document.body.classList.toggle("stale", !data.connected);
  conn.textContent = data.connected ? "" : `${t("no_conn")} ${t("last_good")}: ${
    data.lastOk ? fmtTime(data.lastOk.toISOString(), false) : "–"}`;
  renderAlertMsg();
  if (!data.site) return;
  document.title = `NSP ${data.site.site_name || data.site.site_id}`;
  $("#site-id").textContent = data.site.site_name || data.site.site_id;
  renderBanner();
  renderTiles();
  renderAlerts();
  renderCharts();
  renderGentest();
  renderReports();
  renderUplink();
  renderNodes();
  $("#updated").textContent = data.lastOk
    ? data.lastOk.toLocaleString(locale(), { timeZone: siteZone() }) : "-";
  document.body.dataset.loaded = "1";
}

$("#lang").addEventListener("click", () => {
  lang = lang === "nl" ? "en" : "nl";
  localStorage.setItem("nsp-lang", lang);
  render();
});

// Keep the technical details open or closed across reloads, as this person left them.
const tech = $("#tech");
tech.open = localStorage.getItem("nsp-tech-open") === "1";
tech.addEventListener("toggle", () => localStorage.setItem("nsp-tech-open", tech.open ? "1" : "0"));

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(renderCharts, 150);
});

render();
refresh();
