// Reports (报表): the monthly energy report, the daily safety record with its weekly and
// monthly summaries, and the canteen record. Each shows its key figures on the page, from
// the report's JSON, and offers its PDF, HTML and CSV, fetched with the session token (the
// routes may need a login) and saved as a file.

import { HttpError, download, get } from "../api.js";
import { addLabels, dayWord, isZh, language, num, pick, t, when } from "../i18n.js";
import { card, chip, h, saveFile } from "../ui.js";
import { list } from "./common.js";

addLabels({
  "zh-CN": {
    "reports.energy": "能耗月报", "reports.safety": "安全台账", "reports.canteen": "食堂记录",
    "reports.month": "月份", "reports.this_month": "本月（进行中，截至 {d}）", "reports.period": "周期",
    "reports.day": "按日", "reports.week": "按周", "reports.by_month": "按月", "reports.date": "日期", "reports.week_of": "{a} 至 {b}",
    "reports.download": "下载", "reports.pdf": "PDF 文件", "reports.html": "网页（HTML）", "reports.csv": "表格（CSV）",
    "reports.downloading": "正在生成文件…", "reports.saved": "已下载：{f}",
    "reports.failed": "报表没能生成，请稍后重试。", "reports.login": "请先登录，再查看报表。", "reports.forbidden": "您的账号无权查看报表。",
    "reports.busy": "网关正忙，请过一会儿再试。",
    "reports.electricity": "用电", "reports.water": "用水", "reports.cost": "费用", "reports.after_hours": "闭园时段用电",
    "reports.waste": "闭园负荷偏高浪费（告警）", "reports.leaks": "漏水损失", "reports.vs_last": "比上月 {p}", "reports.no_compare": "上月无完整数据",
    "reports.vs_last_same": "比上月同期 {p}", "reports.no_compare_same": "上月同期无完整数据", "reports.too_little": "数据不足，暂不比较",
    "reports.to_date": "月初至今，截至 {t}",
    "reports.days": "{w}：{n} 天", "reports.days_so_far": "{w}：{n} 天（全月 {m} 天）", "reports.buildings": "各楼宇", "reports.building": "楼宇",
    "reports.done": "正常或已检查", "reports.fail": "异常", "reports.manual": "待检查", "reports.pending": "未到时间",
    "reports.not_required": "无需检查", "reports.alerts": "告警 {n} 次",
    "reports.fails": "异常项目", "reports.blank": "台账空白（待检查）", "reports.none_failed": "没有异常项目",
    "reports.none_blank": "台账没有空白", "reports.by_day": "逐日",
    "reports.compliant": "留样冰箱全天合格", "reports.not_compliant": "留样冰箱有不合格", "reports.check_needed": "留样冰箱需人工确认",
    "reports.fridge_range": "允许 {lo}–{hi} °C，实测 {min}–{max} °C", "reports.as_of": "截至 {t}",
    "reports.status.pass": "正常", "reports.status.done": "已检查", "reports.status.fail": "异常", "reports.status.manual": "待检查",
    "reports.status.pending": "未到时间", "reports.status.not_required": "无需检查",
  },
  en: {
    "reports.energy": "Energy report", "reports.safety": "Safety record", "reports.canteen": "Canteen record",
    "reports.month": "Month", "reports.this_month": "This month (in progress, up to {d})", "reports.period": "Period",
    "reports.day": "Day", "reports.week": "Week", "reports.by_month": "Month", "reports.date": "Date", "reports.week_of": "{a} to {b}",
    "reports.download": "Download", "reports.pdf": "PDF", "reports.html": "Web page (HTML)", "reports.csv": "Spreadsheet (CSV)",
    "reports.downloading": "Preparing the file…", "reports.saved": "Downloaded: {f}",
    "reports.failed": "The report could not be made: try again later.", "reports.login": "Please log in to see reports.",
    "reports.forbidden": "Your account may not see reports.", "reports.busy": "The gateway is busy: try again in a moment.",
    "reports.electricity": "Electricity", "reports.water": "Water", "reports.cost": "Cost", "reports.after_hours": "Electricity after hours",
    "reports.waste": "Wasted after hours (alerts)", "reports.leaks": "Leak losses", "reports.vs_last": "{p} vs last month",
    "reports.no_compare": "no complete data for last month",
    "reports.vs_last_same": "{p} vs the same days last month", "reports.no_compare_same": "no complete data for the same days last month",
    "reports.too_little": "too little data to compare", "reports.to_date": "month to date, up to {t}",
    "reports.days": "{w}: {n}", "reports.days_so_far": "{w}: {n} so far ({m} in the month)", "reports.buildings": "Buildings", "reports.building": "Building",
    "reports.done": "OK or checked", "reports.fail": "Problem", "reports.manual": "To check", "reports.pending": "Not due yet",
    "reports.not_required": "Not required", "reports.alerts": "{n} alerts",
    "reports.fails": "Problems", "reports.blank": "Blank in the ledger (to check)", "reports.none_failed": "No problems",
    "reports.none_blank": "Nothing blank in the ledger", "reports.by_day": "Day by day",
    "reports.compliant": "Sample fridges in range all day", "reports.not_compliant": "A sample fridge was out of range",
    "reports.check_needed": "A sample fridge needs a check by hand",
    "reports.fridge_range": "allowed {lo}–{hi} °C, measured {min}–{max} °C", "reports.as_of": "as of {t}",
    "reports.status.pass": "OK", "reports.status.done": "Checked", "reports.status.fail": "Problem", "reports.status.manual": "To check",
    "reports.status.pending": "Not due yet", "reports.status.not_required": "Not required",
  },
});

const TYPES = ["energy", "safety", "canteen"];
const STATUS_TONE = { pass: "ok", done: "ok", fail: "bad", manual: "warn", pending: "", not_required: "" };

// ------------------------------------------------------------------ dates in the site's zone

function parts(ms, timeZone) {
  const p = Object.fromEntries(new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" })
    .formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return { year: Number(p.year), month: Number(p.month), day: Number(p.day), iso: `${p.year}-${p.month}-${p.day}` };
}

const pad = (n) => String(n).padStart(2, "0");

function monthName(year, month) {
  return new Intl.DateTimeFormat(language(), { year: "numeric", month: "long", timeZone: "UTC" }).format(Date.UTC(year, month - 1, 15));
}

/** A day of the year as people write it: 12 月 2 日, 2 December. */
function dayName(iso) {
  const [, month, day] = iso.split("-").map(Number);
  if (isZh()) return `${month} 月 ${day} 日`;
  return new Intl.DateTimeFormat("en-GB", { month: "long", day: "numeric", timeZone: "UTC" }).format(Date.parse(`${iso}T12:00:00Z`));
}

/** The last 12 months, this one first, as [value, text]. */
function months(today) {
  const out = [];
  for (let i = 0; i < 12; i++) {
    const total = today.year * 12 + (today.month - 1) - i;
    const year = Math.floor(total / 12);
    const month = (total % 12) + 1;
    out.push([`${year}-${pad(month)}`, i === 0 ? t("reports.this_month", { d: dayName(today.iso) }) : monthName(year, month)]);
  }
  return out;
}

/** ISO week of a UTC date: [year, week]. */
function isoWeek(date) {
  const d = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
  const weekday = d.getUTCDay() || 7;
  d.setUTCDate(d.getUTCDate() + 4 - weekday);
  const start = Date.UTC(d.getUTCFullYear(), 0, 1);
  return [d.getUTCFullYear(), Math.ceil(((d - start) / 86_400_000 + 1) / 7)];
}

/** The last 8 ISO weeks, this one first, as [value, "12月1日 至 12月7日"]. */
function weeks(today) {
  const out = [];
  const now = new Date(Date.parse(`${today.iso}T12:00:00Z`));
  const monday = new Date(now.getTime() - ((now.getUTCDay() || 7) - 1) * 86_400_000);
  for (let i = 0; i < 8; i++) {
    const start = new Date(monday.getTime() - i * 7 * 86_400_000);
    const end = new Date(start.getTime() + 6 * 86_400_000);
    const [year, week] = isoWeek(start);
    const iso = (d) => d.toISOString().slice(0, 10);
    out.push([`${year}-W${pad(week)}`, t("reports.week_of", { a: dayName(iso(start)), b: dayName(iso(end)) })]);
  }
  return out;
}

// --------------------------------------------------------------------------- building blocks

function picker(name, value, options, label) {
  return h("label", { class: "filter" }, label, h("select", { name },
    options.map(([v, text]) => h("option", { value: v, selected: v === value }, text))));
}

function why(err) {
  if (err instanceof HttpError) {
    if (err.status === 401) return t("reports.login");
    if (err.status === 403) return t("reports.forbidden");
    if (err.status === 503) return t("reports.busy");
  }
  return t("reports.failed");
}

function downloads(path, query, key) {
  const message = h("p", { class: "small muted download-note", role: "status" });
  const button = (fmt) => h("button", {
    type: "button", class: "secondary", dataset: { format: fmt }, onclick: async () => {
      message.className = "small muted download-note";
      message.textContent = t("reports.downloading");
      try {
        const { blob, filename } = await download(path, { ...query, format: fmt, lang: language() }, `${key}.${fmt}`);
        saveFile(blob, filename);
        message.textContent = t("reports.saved", { f: filename });
      } catch (err) {
        message.className = "small error-text download-note";
        message.textContent = why(err);
      }
    },
  }, t(`reports.${fmt}`));
  return h("div", { class: "downloads" }, h("span", { class: "muted small" }, t("reports.download")),
    button("pdf"), button("html"), button("csv"), message);
}

function figure(label, value, note, tone = "") {
  return h("div", { class: `figure ${tone}` }, h("small", { class: "muted" }, label), h("strong", {}, value),
    note ? h("small", { class: "figure-note" }, note) : null);
}

const money = (v) => (v == null ? "–" : `¥${num(v, 0)}`);
const share = (v) => (v == null ? "–" : `${num(v * 100, 1)}%`);

// ------------------------------------------------------------------------------ the reports

// A month's total against the previous month's: the same days while the month is in progress
// (the report's `partial`), nothing at all while the period has too little data to compare.
function change(totals, partial) {
  const now = totals.total;
  const then = totals.previous_month;
  if (!totals.enough_data) return [t("reports.too_little"), ""];
  if (now == null || !then?.total || then.coverage < 0.95) return [t(partial ? "reports.no_compare_same" : "reports.no_compare"), ""];
  const d = now / then.total - 1;
  const p = `${d > 0 ? "+" : ""}${num(d * 100, 1)}%`;
  return [t(partial ? "reports.vs_last_same" : "reports.vs_last", { p }), d > 0.02 ? "bad" : d < -0.02 ? "ok" : ""];
}

async function energy(state, params, today) {
  const options = months(today);
  const month = options.some(([v]) => v === params.month) ? params.month : options[0][0];
  const r = await get("/api/v1/reports/energy", { month });
  const e = r.electricity;
  const w = r.water;
  const cost = e.cost_yuan == null && w.cost_yuan == null ? null : (e.cost_yuan ?? 0) + (w.cost_yuan ?? 0);
  const [eNote, eTone] = change(e, r.partial);
  const [wNote, wTone] = change(w, r.partial);
  return [
    h("div", { class: "report-tools" }, picker("month", month, options, t("reports.month")),
      downloads("/api/v1/reports/energy", { month }, `energy-${month}`)),
    card(null, [
      h("p", { class: "muted small" }, r.site_name, " · ",
        t(r.partial ? "reports.days_so_far" : "reports.days", { w: dayWord(state.site, true), n: num(r.school_days, 0), m: num(r.school_days_month, 0) }),
        r.partial ? ` · ${t("reports.to_date", { t: when(r.through_ms) })}` : ""),
      h("div", { class: "figures", dataset: { report: "energy" } },
        figure(t("reports.electricity"), `${num(e.total, 0)} kWh`, eNote, eTone),
        figure(t("reports.water"), `${num(w.total, 1)} m³`, wNote, wTone),
        figure(t("reports.cost"), money(cost)),
        figure(t("reports.after_hours"), share(e.after_hours_share), `${num(e.after_hours, 0)} kWh`),
        figure(t("reports.waste"), money(r.waste_yuan), `${num(r.waste_kwh, 0)} kWh`, r.waste_kwh ? "bad" : e.enough_data ? "ok" : ""),
        figure(t("reports.leaks"), money(r.leak_yuan), `${num(r.leak_m3, 2)} m³`, r.leaks.length ? "bad" : w.enough_data ? "ok" : "")),
    ]),
    card(t("reports.buildings"), h("table", { class: "report-table" },
      h("thead", {}, h("tr", {}, h("th", {}, t("reports.building")), h("th", {}, "kWh"), h("th", {}, "m³"), h("th", {}, t("reports.cost")))),
      h("tbody", {}, r.buildings.map((b) => h("tr", {}, h("td", {}, b.name), h("td", {}, num(b.electricity_kwh, 0)),
        h("td", {}, num(b.water_m3, 1)), h("td", {}, money(b.cost_yuan))))))),
  ];
}

function counts(c) {
  const rows = [["done", c.pass + c.done, "ok"], ["fail", c.fail, "bad"], ["manual", c.manual, "warn"], ["pending", c.pending, ""],
    ["not_required", c.not_required, ""]];
  return h("div", { class: "figures" }, rows.map(([k, n, tone]) => figure(t(`reports.${k}`), num(n, 0), null, n ? tone : "")));
}

function itemLine(item) {
  return h("div", { class: "row item" }, chip(t(`reports.status.${item.status}`), STATUS_TONE[item.status]),
    h("span", { class: "grow" }, h("strong", {}, item.subject), ` ${pick(item, "check")}`,
      h("small", { class: "muted" }, ` ${pick(item, "detail")}`)),
    item.date ? h("small", { class: "muted" }, dayName(item.date)) : null);
}

async function safety(state, params, today) {
  const period = ["day", "week", "month"].includes(params.period) ? params.period : "day";
  const weekOptions = weeks(today);
  const monthOptions = months(today);
  let query;
  let control;
  if (period === "week") {
    const week = weekOptions.some(([v]) => v === params.week) ? params.week : weekOptions[0][0];
    query = { week };
    control = picker("week", week, weekOptions, t("reports.week"));
  } else if (period === "month") {
    const month = monthOptions.some(([v]) => v === params.month) ? params.month : monthOptions[0][0];
    query = { month };
    control = picker("month", month, monthOptions, t("reports.month"));
  } else {
    const date = /^\d{4}-\d{2}-\d{2}$/.test(params.date ?? "") && params.date <= today.iso ? params.date : today.iso;
    query = { date };
    control = h("label", { class: "filter" }, t("reports.date"), h("input", { type: "date", name: "date", value: date, max: today.iso }));
  }
  const r = await get("/api/v1/reports/safety", query);
  const key = `safety-${Object.values(query)[0]}`;
  const tools = h("div", { class: "report-tools" },
    picker("period", period, [["day", t("reports.day")], ["week", t("reports.week")], ["month", t("reports.by_month")]], t("reports.period")),
    control, downloads("/api/v1/reports/safety", query, key));
  if (period === "day") {
    const failed = r.items.filter((i) => i.status === "fail");
    const blank = r.items.filter((i) => i.status === "manual");
    return [tools,
      card(null, [h("p", { class: "muted small" }, when(r.day.date, "date"), " · ", pick(r.day, "name") || dayWord(state.site, r.day.school_day),
        r.complete ? "" : ` · ${t("reports.as_of", { t: when(r.as_of, "time") })}`, " · ", t("reports.alerts", { n: num(r.alerts.length, 0) })),
      h("div", { dataset: { report: "safety" } }, counts(r.counts))]),
      card(t("reports.fails"), list(failed, itemLine, t("reports.none_failed"))),
      card(t("reports.blank"), list(blank, itemLine, t("reports.none_blank")))];
  }
  return [tools,
    card(null, [h("p", { class: "muted small" }, `${dayName(r.first)} – ${dayName(r.last)}`, " · ", t("reports.alerts", { n: num(r.alerts, 0) })),
      h("div", { dataset: { report: "safety" } }, counts(r.totals))]),
    card(t("reports.by_day"), h("table", { class: "report-table" },
      h("thead", {}, h("tr", {}, h("th", {}, t("reports.date")), h("th", {}, t("reports.done")), h("th", {}, t("reports.fail")), h("th", {}, t("reports.manual")))),
      h("tbody", {}, r.days.map((d) => h("tr", {}, h("td", {}, dayName(d.day.date), " ", h("small", { class: "muted" }, pick(d.day, "name") || dayWord(state.site, d.day.school_day))),
        h("td", {}, num(d.counts.pass + d.counts.done, 0)), h("td", { class: d.counts.fail ? "error-text" : "" }, num(d.counts.fail, 0)),
        h("td", {}, num(d.counts.manual, 0))))))),
    card(t("reports.fails"), list(r.fails, itemLine, t("reports.none_failed"))),
    card(t("reports.blank"), list(r.open_manual, itemLine, t("reports.none_blank")))];
}

async function canteen(state, params, today) {
  const date = /^\d{4}-\d{2}-\d{2}$/.test(params.date ?? "") && params.date <= today.iso ? params.date : today.iso;
  const r = await get("/api/v1/reports/canteen", { date });
  const verdict = r.compliant == null ? chip(t("reports.check_needed"), "warn") : r.compliant ? chip(t("reports.compliant"), "ok")
    : chip(t("reports.not_compliant"), "bad");
  const range = (rows, k) => rows.map((x) => x[k]).filter((v) => v != null);
  return [
    h("div", { class: "report-tools" }, h("label", { class: "filter" }, t("reports.date"), h("input", { type: "date", name: "date", value: date, max: today.iso })),
      downloads("/api/v1/reports/canteen", { date }, `canteen-${date}`)),
    card(null, [h("p", { class: "muted small" }, when(r.day.date, "date"), r.complete ? "" : ` · ${t("reports.as_of", { t: when(r.as_of, "time") })}`),
      h("p", {}, verdict),
      list(r.fridges, (f) => {
        const lows = range(f.hours, "min_c");
        const highs = range(f.hours, "max_c");
        return h("div", { class: "row" }, h("strong", { class: "grow" }, f.name), h("small", {}, t("reports.fridge_range", {
          lo: num(f.range_min_c), hi: num(f.range_max_c), min: lows.length ? num(Math.min(...lows)) : "–", max: highs.length ? num(Math.max(...highs)) : "–",
        })));
      }, ""),
      h("div", { dataset: { report: "canteen" } }, counts(r.counts))]),
    card(null, list(r.items, itemLine, t("common.none"))),
  ];
}

async function reports({ state, params }) {
  const type = TYPES.includes(params.type) ? params.type : "energy";
  const today = parts(Date.now(), state.site.timezone);
  const tabs = h("div", { class: "segmented report-tabs" }, TYPES.map((x) => h("a", {
    href: `#/reports?type=${x}`, class: x === type ? "active" : "", dataset: { type: x },
  }, t(`reports.${x}`))));
  let body;
  try {
    body = await { energy, safety, canteen }[type](state, params, today);
  } catch (err) {
    body = [h("div", { class: "card error", role: "alert" }, h("p", {}, why(err)))];
  }
  const view = h("div", { class: "stack reports", dataset: { type } }, tabs, body);
  // A changed picker is a new address: the back button and a shared link show the same report.
  view.addEventListener("change", (ev) => {
    const field = ev.target.closest("select, input");
    if (!field) return;
    const next = { ...params, type, [field.name]: field.value };
    location.hash = `#/reports?${new URLSearchParams(Object.entries(next).filter(([, v]) => v))}`;
  });
  return view;
}

export default { render: reports, live: [] };
