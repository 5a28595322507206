// The district's page (/district): every school's month side by side, sortable by a column,
// the schools that need a look marked with the reasons, the month's report to download, and
// each school's name a link to its own dashboard (sites/<id>/, next to this page). A district
// administrator also manages the district's accounts there (#accounts), with the school's
// accounts page (views/settings/users.js): the routes it calls answer with the district's.

import { HttpError, download, get, login, logout, session } from "./api.js";
import { isZh, language, num, pct, setLanguage, t } from "./i18n.js";
import { h, refill, saveFile, showLogin } from "./ui.js";
import users from "./views/settings/users.js";

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

async function fetchFile(format) {
  const note = view.querySelector(".download-note");
  note.textContent = t("district.preparing");
  try {
    const { blob, filename } = await download("/api/v1/district/report", { month: month(), format, lang: language() },
      `district-${month()}.${format}`);
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
  // The league's page and the accounts', one reached from the other.
  const link = document.getElementById("accounts");
  link.hidden = !managesAccounts();
  link.href = onAccounts() ? "#" : "#accounts";
  link.textContent = onAccounts() ? t("district.league") : t("district.accounts");
}

/** The view the address asks for: the accounts (#accounts, for who manages them) or the
 * league, fetched again only for another month. */
function show() {
  chrome();
  if (onAccounts()) accounts();
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
