// The site page: reads GET /api/v1/site every few seconds and shows the values per node.
// Texts in Dutch and English (toggle, remembered in localStorage). No libraries: works offline.
"use strict";

const TEXT = {
  nl: {
    title: "Noodsteunpunt", loading: "Laden…", updated: "Bijgewerkt", online: "bereikbaar",
    offline: "niet bereikbaar", unavailable: "niet beschikbaar", error: "Melding",
    fetch_failed: "De edge-service antwoordt niet", roles: "Rollen", other: "EN",
    token: "Deze site vraagt een toegangscode (token). Plak hem hier:",
    yes: "ja", no: "nee", lastOk: "laatst gelezen",
  },
  en: {
    title: "Emergency support point", loading: "Loading…", updated: "Updated", online: "online",
    offline: "offline", unavailable: "unavailable", error: "Problem",
    fetch_failed: "The edge service does not answer", roles: "Roles", other: "NL",
    token: "This site needs an access token. Paste it here:",
    yes: "yes", no: "no", lastOk: "last read",
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

let lang = localStorage.getItem("nsp-lang") || "nl";
let last = null;
let askedToken = false;

function t(key) { return TEXT[lang][key] || key; }

function label(name) {
  const l = LABELS[name];
  return l ? l[lang === "nl" ? 0 : 1] : name;
}

function show(name, r, meta) {
  if (r.quality !== "good" || r.value === null) return t("unavailable");
  if (typeof r.value === "boolean") return r.value ? t("yes") : t("no");
  const m = meta[name];
  if (m && m.enum && m.enum[r.value] !== undefined) return m.enum[r.value];
  if (m && m.bits) {
    const set = Object.entries(m.bits).filter(([bit]) => r.value & (1 << Number(bit)));
    return set.length ? set.map(([, n]) => n).join(", ") : "-";
  }
  const v = typeof r.value === "number" && !Number.isInteger(r.value)
    ? r.value.toLocaleString(lang, { maximumFractionDigits: 2 }) : String(r.value);
  return r.unit ? `${v} ${r.unit}` : v;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function render() {
  document.documentElement.lang = lang;
  for (const e of document.querySelectorAll("[data-t]")) e.textContent = t(e.dataset.t);
  document.getElementById("lang").textContent = t("other");
  if (!last) return;
  document.title = `NSP ${last.site_name || last.site_id}`;
  document.getElementById("site-id").textContent = last.site_name || last.site_id;
  const main = document.getElementById("nodes");
  main.replaceChildren();
  const meta = last.registers || {};
  for (const [name, node] of Object.entries(last.nodes)) {
    const badge = el("span", { class: `badge ${node.online ? "online" : "offline"}` },
      node.online ? t("online") : t("offline"));
    const section = el("section", { class: "node", id: `node-${name}`, "data-node": name },
      el("h2", {}, `${name} (unit ${node.unit_id})`, badge),
      el("div", {}, `${t("roles")}: ${node.roles.join(", ")}`));
    if (node.last_error) {
      section.append(el("div", { class: "error" }, `${t("error")}: ${node.last_error}`));
    }
    const table = el("table");
    for (const [channel, r] of Object.entries(last.values)) {
      if (!channel.startsWith(name + ".")) continue;
      const reg = channel.slice(name.length + 1);
      table.append(el("tr", { class: r.quality, "data-channel": channel },
        el("td", {}, label(reg)), el("td", { class: "value" }, show(reg, r, meta))));
    }
    section.append(table);
    main.append(section);
  }
  document.getElementById("updated").textContent =
    new Date(last.now).toLocaleString(lang === "nl" ? "nl-NL" : "en-GB");
}

async function refresh() {
  const status = document.getElementById("status");
  status.removeAttribute("data-t");
  try {
    const headers = { Accept: "application/json" };
    const token = localStorage.getItem("nsp-token");
    if (token) headers.Authorization = `Bearer ${token}`;
    const resp = await fetch("/api/v1/site", { headers });
    if ((resp.status === 401 || resp.status === 403) && !askedToken) {
      // api.require_auth_for_read = true: ask once for a viewer token, keep it in this browser.
      askedToken = true;
      const entered = window.prompt(t("token"));
      if (entered) {
        localStorage.setItem("nsp-token", entered.trim());
        askedToken = false;  // try the new token; ask again if it is refused too
      }
    }
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    last = await resp.json();
    status.textContent = "";
    status.className = "";
  } catch (err) {
    status.textContent = `${t("fetch_failed")} (${err.message})`;
    status.className = "bad";
  }
  render();
  const every_s = last && last.poll_interval_s ? Math.max(1, last.poll_interval_s) : 2;
  setTimeout(refresh, every_s * 1000);
}

document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "nl" ? "en" : "nl";
  localStorage.setItem("nsp-lang", lang);
  render();
});

render();
refresh();
