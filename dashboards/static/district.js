// The district's page (/district): every school's month side by side, sortable by a column,
// the schools that need a look marked with the reasons, the month's report to download, and
// each school's name a link to its own dashboard (sites/<id>/, next to this page); every
// school's quarterly disclosure side by side (#disclosure). A district
// administrator also manages the district's accounts there (#accounts), with the school's
// accounts page (views/settings/users.js): the routes it calls answer with the district's.

import { HttpError, download, get, login, logout, session } from "./api.js";
import { addLabels, isZh, language, num, pct, pick, setLanguage, t } from "./i18n.js";
import { quarterWords, quarters } from "./periods.js";
import { chip, h, refill, saveFile, showLogin } from "./ui.js";
import users from "./views/settings/users.js";

addLabels({
  "zh-CN": {
    "district.disclosure": "季度公示", "district.quarter": "季度", "district.disclosure_pdf": "下载 PDF 公示表", "district.disclosure_note":
      "每校的数字就是该校自己的公示表；同比变化超过 5% 的须由学校填写原因。点校名查看该校的公示。",
    "district.sheet.people": "用能人数", "district.sheet.yoy": "同比", "district.sheet.explanation": "说明",
    "district.sheet.needed": "未填写，须说明", "district.sheet.explained": "已说明 {n} 所，须说明而未填 {m} 所",
  },
  en: {
    "district.disclosure": "Quarterly disclosure", "district.quarter": "Quarter", "district.disclosure_pdf": "Download the PDF sheet", "district.disclosure_note":
      "Each school's figures are those of its own sheet; a change beyond 5% year on year needs the school's explanation. Click a name to see the school's sheet.",
    "district.sheet.people": "Energy users", "district.sheet.yoy": "y/y", "district.sheet.explanation": "Explanation",
    "district.sheet.needed": "none yet, needed", "district.sheet.explained": "{n} explained, {m} still needed",
  },
});

const view = document.getElementById("view");
const params = new URLSearchParams(location.search);

// Each column: how it reads a school, its unit, the digits shown, and which way is "worse"
// (a first click sorts the worst first).
const COLUMNS = [
  { key: "rank", value: (s) => s.rank, digits: 0, worstFirst: false },
  { key: "name", value: (s) => s.name, text: true },
  { key: "kwh_per_m2", value: (s) => s.kwh_per_m2, unit: "kWh/m²", digits: 2, flag: "intensity" },
  { key: "electricity", value: (s) => s.electricity_kwh, unit: "kWh", digits: 0 },
  { key: "kwh_per_person", value: (s) => s.kwh_per_person, unit: "kWh", digits: 1 },
  { key: "water", value: (s) => s.water_m3, unit: "m³", digits: 1 },
  { key: "water_per_person", value: (s) => s.water_m3_per_person, unit: "m³", digits: 2 },
  { key: "after_hours", value: (s) => s.after_hours_share, percent: true },
  { key: "waste", value: (s) => s.waste_kwh, unit: "kWh", digits: 0 },
  { key: "vs_last_year", value: (s) => s.change_vs_last_year, percent: true },
  { key: "alerts", value: (s) => s.open_alerts.critical * 1e6 + s.open_alerts.major * 1e3 + total(s.open_alerts),
    show: (s) => alertsText(s.open_alerts), flag: "alerts" },
  { key: "orders", value: (s) => s.overdue_orders, digits: 0, flag: "orders" },
  { key: "ledger", value: (s) => s.ledger_completion, percent: true, worstFirst: false, flag: "ledger",
    show: (s) => s.ledger_days ? `${pct(s.ledger_completion).replace(/^\+/, "")} (${s.ledger_signed}/${s.ledger_days})` : "–" },
];

const state = { league: null, sort: { key: "rank", descending: false } };

function total(alerts) {
  return alerts.critical + alerts.major + alerts.minor + alerts.warning;
}

function alertsText(alerts) {
  const serious = alerts.critical + alerts.major;
  return serious ? t("district.alerts_serious", { n: total(alerts), serious }) : num(total(alerts), 0);
}

function thisMonth() {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit" })
    .formatToParts(new Date());
  const part = (type) => parts.find((p) => p.type === type).value;
  return `${part("year")}-${part("month")}`;
}

function month() {
  return params.get("month") || thisMonth();
}

function valueWithUnit(value, column) {
  if (value === null || value === undefined) return "–";
  if (column.percent) return pct(value).replace(/^\+/, column.key === "vs_last_year" ? "+" : "");
  return [num(value, column.digits), column.unit ? h("span", { class: "unit" }, column.unit) : null];
}

function sorted(schools) {
  const column = COLUMNS.find((c) => c.key === state.sort.key);
  const sign = state.sort.descending ? -1 : 1;
  return [...schools].sort((a, b) => {
    const x = column.value(a);
    const y = column.value(b);
    if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1; // unknown last
    if (y === null || y === undefined) return -1;
    if (column.text) return sign * String(x).localeCompare(String(y), language());
    return sign * (x - y);
  });
}

function sortBy(key) {
  const column = COLUMNS.find((c) => c.key === key);
  state.sort = state.sort.key === key
    ? { key, descending: !state.sort.descending }
    : { key, descending: !column.text && column.worstFirst !== false };
  renderTable();
}

function header() {
  return h("tr", {}, COLUMNS.map((c) => {
    const sorted = state.sort.key === c.key;
    return h("th", {
      scope: "col", class: c.key === "name" ? "name" : null, dataset: { column: c.key },
      "aria-sort": sorted ? (state.sort.descending ? "descending" : "ascending") : null,
    }, h("button", { type: "button", onclick: () => sortBy(c.key) }, t(`district.col.${c.key}`),
      sorted ? (state.sort.descending ? " ▼" : " ▲") : ""));
  }));
}

function row(s) {
  const flagged = new Set(s.attention.map((r) => r.kind));
  return h("tr", { class: s.attention.length ? "attention" : null, dataset: { school: s.name } },
    COLUMNS.map((c) => {
      if (c.key === "name") {
        return h("td", { class: "name" },
          h("a", { href: `sites/${encodeURIComponent(s.site_id)}/` }, s.name),
          s.attention.length ? h("ul", { class: "reasons" }, s.attention.map((r) => h("li", {}, isZh() ? r.zh : r.en))) : null);
      }
      return h("td", { class: c.flag && flagged.has(c.flag) ? "bad" : null },
        c.show ? c.show(s) : valueWithUnit(c.value(s), c));
    }));
}

function renderTable() {
  const table = view.querySelector("table.league");
  if (!table) return;
  refill(table, h("thead", {}, header()), h("tbody", {}, sorted(state.league.schools).map(row)));
}

function figure(label, value, note = "", tone = "") {
  return h("div", { class: `figure ${tone}` }, h("span", {}, label), h("strong", {}, value),
    note ? h("span", { class: "figure-note" }, note) : null);
}

function summary(league) {
  const s = league.totals;
  const serious = s.open_alerts.critical + s.open_alerts.major;
  return h("div", { class: "figures" },
    figure(t("district.schools"), num(s.schools, 0), t("district.attention_n", { n: s.attention }), s.attention ? "warn" : "ok"),
    figure(t("district.col.electricity"), [num(s.electricity_kwh, 0), h("span", { class: "unit" }, "kWh")]),
    figure(t("district.col.kwh_per_m2"), [num(s.kwh_per_m2, 2), h("span", { class: "unit" }, "kWh/m²")],
      t("district.median", { v: num(s.median_kwh_per_m2, 2) })),
    figure(t("district.col.water"), [num(s.water_m3, 1), h("span", { class: "unit" }, "m³")]),
    figure(t("district.col.waste"), [num(s.waste_kwh, 0), h("span", { class: "unit" }, "kWh")]),
    figure(t("district.col.alerts"), num(s.open_alerts.critical + s.open_alerts.major + s.open_alerts.minor + s.open_alerts.warning, 0),
      t("district.serious", { n: serious }), serious ? "bad" : "ok"),
    figure(t("district.col.orders"), num(s.overdue_orders, 0), "", s.overdue_orders ? "bad" : "ok"),
    figure(t("district.col.ledger"), s.ledger_days ? pct(s.ledger_completion).replace(/^\+/, "") : "–",
      t("district.ledger_of", { signed: s.ledger_signed, days: s.ledger_days })));
}

function refusal(err) {
  if (err instanceof HttpError && err.detail?.zh) return isZh() ? err.detail.zh : err.detail.en;
  return t("common.load_failed");
}

async function fetchFile(format, path = "/api/v1/district/report", query = { month: month() }, key = `district-${month()}`) {
  const note = view.querySelector(".download-note");
  note.textContent = t("district.preparing");
  try {
    const { blob, filename } = await download(path, { ...query, format, lang: language() }, `${key}.${format}`);
    saveFile(blob, filename);
    note.textContent = "";
  } catch (err) {
    note.textContent = refusal(err);
  }
}

function tools() {
  const picker = h("input", { type: "month", name: "month", value: month(), required: true });
  picker.addEventListener("change", () => {
    if (!picker.value) return;
    params.set("month", picker.value);
    history.replaceState(null, "", `?${params}`);
    load();
  });
  return h("div", { class: "report-tools" },
    h("label", {}, t("district.month"), " ", picker),
    h("div", { class: "downloads" },
      h("button", { type: "button", class: "secondary", onclick: () => fetchFile("pdf") }, t("district.pdf")),
      h("button", { type: "button", class: "secondary", onclick: () => fetchFile("csv") }, t("district.csv")),
      h("p", { class: "download-note muted small", role: "status" })));
}

// ------------------------------------------------------------------ the quarterly disclosure

/** The quarter asked for in the address (a link may name an older one), else this one. */
function quarter() {
  const asked = params.get("quarter");
  return /^\d{4}-Q[1-4]$/.test(asked ?? "") ? asked : recent()[0][0];
}

/** The last 8 quarters by the district's clock (China), this one first. */
function recent() {
  const [year, month] = thisMonth().split("-").map(Number);
  return quarters({ year, month });
}

function named(value) {
  return recent().find(([v]) => v === value)?.[1] ?? quarterWords(value);
}

// The sheet's figures shown side by side (the rest are in each school's sheet and the download).
const SHEET_COLUMNS = ["electricity", "water", "kgce_per_m2", "kgce_per_person", "water_m3_per_person"];

function disclosureTools() {
  const options = recent().some(([v]) => v === quarter()) ? recent() : [[quarter(), named(quarter())], ...recent()];
  const picker = h("select", { name: "quarter" },
    options.map(([v, text]) => h("option", { value: v, selected: v === quarter() }, text)));
  picker.addEventListener("change", () => {
    params.set("quarter", picker.value);
    history.replaceState(null, "", `?${params}${location.hash}`);
    disclosure();
  });
  const file = (format) => fetchFile(format, "/api/v1/district/disclosure", { period: quarter() },
    `district-disclosure-${quarter()}`);
  return h("div", { class: "report-tools" },
    h("label", {}, t("district.quarter"), " ", picker),
    h("div", { class: "downloads" },
      h("button", { type: "button", class: "secondary", onclick: () => file("pdf") }, t("district.disclosure_pdf")),
      h("button", { type: "button", class: "secondary", onclick: () => file("csv") }, t("district.csv")),
      h("p", { class: "download-note muted small", role: "status" })));
}

/** A figure and its change year on year (where last year's data is nearly complete). */
function yoy(figure, digits, unit) {
  if (!figure) return "–";
  const change = figure.change !== null && figure.coverage >= 0.95 ? figure.change : null;
  return [num(figure.now, digits), unit ? h("span", { class: "unit" }, unit) : null,
    change === null ? null : h("small", { class: `yoy ${change > 0.05 ? "bad" : change < -0.05 ? "ok" : ""}` },
      ` ${t("district.sheet.yoy")} ${pct(change)}`)];
}

async function disclosure() {
  refill(view, disclosureTools(), h("p", { class: "muted" }, t("common.loading")));
  delete view.dataset.period;
  let found;
  try {
    found = await get("/api/v1/district/disclosure", { period: quarter() });
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) {
      loggedOut();
      return;
    }
    refill(view, disclosureTools(), h("div", { class: "card error", role: "alert" }, h("p", {}, refusal(err)),
      h("button", { type: "button", onclick: disclosure }, t("common.retry"))));
    return;
  }
  if (!onDisclosure()) return; // the league was asked for meanwhile
  const explained = found.schools.filter((s) => s.explanation).length;
  const needed = found.schools.filter((s) => s.to_explain.length && !s.explanation).length;
  const words = (key) => pick(found.rows.find((r) => r.key === key) ?? { words_zh: "–", words_en: "–" }, "words");
  const head = [h("th", { class: "name" }, t("district.col.name")), h("th", {}, t("district.sheet.people")),
    ...SHEET_COLUMNS.map((key) => h("th", {}, words(key))), h("th", {}, t("district.sheet.explanation"))];
  const rows = found.schools.map((s) => h("tr", { dataset: { site: s.site_id } },
    h("td", { class: "name" }, h("a", { href: `sites/${encodeURIComponent(s.site_id)}/#/reports?type=disclosure&period=${found.period}` }, s.name)),
    h("td", {}, num(s.people, 0)),
    ...SHEET_COLUMNS.map((key) => {
      const row = found.rows.find((r) => r.key === key);
      return h("td", {}, row ? yoy(s.figures[key], row.digits, pick(row, "unit")) : "–");
    }),
    h("td", { class: "explanation" }, s.explanation
      || (s.to_explain.length ? chip(t("district.sheet.needed"), "warn") : "–"))));
  refill(view, disclosureTools(),
    h("section", { class: "card" },
      h("h2", {}, named(found.period)),
      h("p", { class: "muted small" }, t("district.disclosure_note")),
      h("p", { class: "small" }, t("district.sheet.explained", { n: explained, m: needed })),
      h("div", { class: "league-wrap" }, h("table", { class: "report-table league disclosure" },
        h("thead", {}, h("tr", {}, head)), h("tbody", {}, rows)))));
  view.dataset.period = found.period; // what is on the page now (tests wait for it)
}

function onDisclosure() {
  return location.hash === "#disclosure" && Boolean(session());
}

function askLogin(message) {
  showLogin(message, async (u, p) => { await login(u, p); show(); });
}

/** Nobody logged in (any more): nothing of the district's stays on the page. */
function loggedOut() {
  state.league = null;
  chrome();
  refill(view, h("p", { class: "muted" }, t("district.login")));
  askLogin(t("district.login"));
}

/** Whether the account logged in manages the district's accounts: the district's
 * administrators (the gateway refuses anyone else, whatever the page shows). */
function managesAccounts() {
  const who = session();
  return Boolean(who?.district && who.role === "admin");
}

function onAccounts() {
  return location.hash === "#accounts" && managesAccounts();
}

async function accounts() {
  refill(view, h("p", { class: "muted" }, t("common.loading")));
  delete view.dataset.month;
  delete view.dataset.period;
  let page;
  try {
    page = await users.render();
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) {
      loggedOut();
      return;
    }
    refill(view, h("div", { class: "card error", role: "alert" }, h("p", {}, refusal(err)),
      h("button", { type: "button", onclick: accounts }, t("common.retry"))));
    return;
  }
  refill(view, h("section", { class: "card" }, h("h2", {}, t("district.accounts")),
    h("p", { class: "muted small" }, t("district.accounts_note"))), page);
}

async function load() {
  refill(view, tools(), h("p", { class: "muted" }, t("common.loading")));
  delete view.dataset.month;
  delete view.dataset.period;
  try {
    state.league = await get("/api/v1/district/schools", { month: month() });
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) {
      loggedOut();
      return;
    }
    refill(view, tools(), h("div", { class: "card error", role: "alert" }, h("p", {}, refusal(err)),
      err instanceof HttpError && err.status === 403
        ? h("button", { type: "button", onclick: async () => { await logout(); loggedOut(); } },
          t("district.other_account"))
        : h("button", { type: "button", onclick: load }, t("common.retry"))));
    return;
  }
  if (!onAccounts()) render(); // unless the accounts were asked for meanwhile
}

function render() {
  const league = state.league;
  refill(view, tools(),
    h("section", { class: "card" },
      h("h2", {}, league.partial ? t("district.month_to_date") : t("district.whole_month")),
      summary(league)),
    h("section", { class: "card" },
      h("h2", {}, t("district.table")),
      h("p", { class: "muted small" }, t("district.table_note")),
      h("div", { class: "league-wrap" }, h("table", { class: "report-table league" }))));
  renderTable();
  view.dataset.month = league.month; // what is on the page now (tests wait for it)
}

function chrome() {
  document.getElementById("title").textContent = t("district.title");
  document.title = t("district.title");
  document.getElementById("lang").textContent = t("lang.switch");
  document.getElementById("lang").title = t("lang.name");
  const who = session();
  document.getElementById("user").textContent = who ? `${who.name} · ${t("user.logout")}` : t("user.login");
  // The league's page, the disclosure's and the accounts', each reached from the others.
  const link = document.getElementById("accounts");
  link.hidden = !managesAccounts() || onDisclosure();
  link.href = onAccounts() ? "#" : "#accounts";
  link.textContent = onAccounts() ? t("district.league") : t("district.accounts");
  const sheets = document.getElementById("disclosure");
  sheets.hidden = !who || onAccounts();
  sheets.href = onDisclosure() ? "#" : "#disclosure";
  sheets.textContent = onDisclosure() ? t("district.league") : t("district.disclosure");
}

/** The view the address asks for: the accounts (#accounts, for who manages them) or the
 * league, fetched again only for another month. */
function show() {
  chrome();
  if (onAccounts()) accounts();
  else if (onDisclosure()) disclosure();
  else if (state.league?.month === month()) render();
  else load();
}

document.getElementById("lang").addEventListener("click", () => {
  setLanguage(language() === "zh-CN" ? "en" : "zh-CN");
  show();
});
document.getElementById("user").addEventListener("click", async () => {
  if (session()) await logout();
  loggedOut();
});
window.addEventListener("hashchange", show);
setLanguage(language());
show();
