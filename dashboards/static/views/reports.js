// Reports (报表): the energy report (a month, a quarter or a year), the daily safety record
// with its weekly and monthly summaries, the canteen record and the quarterly public
// disclosure of energy and water (能耗公示) with the school's explanation. Each shows its key
// figures on the page, from the report's JSON, and offers its files (PDF, HTML, CSV), fetched
// with the session token (the routes may need a login) and saved as a file.

import { HttpError, download, get, send, session } from "../api.js";
import { addLabels, dayWord, isZh, language, num, pick, t, when } from "../i18n.js";
import { card, chip, failure, h, saveFile } from "../ui.js";
import { quarters, years } from "../periods.js";
import { list } from "./common.js";

addLabels({
  "zh-CN": {
    "reports.energy": "能耗报告", "reports.safety": "安全台账", "reports.canteen": "食堂记录",
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
    "reports.span": "周期", "reports.span.month": "按月", "reports.span.quarter": "按季", "reports.span.year": "按年",
    "reports.quarter": "季度", "reports.year": "年度",
    "reports.kgce": "综合能耗（折标准煤）", "reports.yoy": "同比 {p}", "reports.no_yoy": "去年同期无完整数据",
    "reports.meters_complete": "数据完整的表计", "reports.meters_complete_note": "收到的读数不少于应收的 {p}",
    "reports.school_days": "{w} {n} 天", "reports.through": "截至 {t}",
    "reports.months": "各月", "reports.to_date_short": "（至今）", "reports.per_m2": "kWh/m²",
    "reports.subitems": "分项能耗", "reports.subitem": "分项", "reports.use": "用量", "reports.whole_site": "全园",
    "reports.no_subitems": "还没有表计标注分项。",
    "reports.intensity": "能耗强度与定额", "reports.intensity_measure": "强度", "reports.coverage": "覆盖率", "reports.judged": "判断", "reports.this_period": "本期", "reports.last_year": "去年同期",
    "reports.quota": "本期定额", "reports.above_quota": "超出定额", "reports.within_quota": "未超出",
    "reports.no_quota": "无定额", "reports.quota_from": "全年定额按本期已过小时数折算；定额来源：{s}", "reports.not_named": "未注明",
    "reports.intensity.kgce_per_m2": "单位面积能耗（kgce/m²）", "reports.intensity.kgce_per_person": "人均能耗（kgce/人）",
    "reports.intensity.kgce_per_student": "生均能耗（kgce/生）", "reports.intensity.kwh_per_m2": "单位面积用电（kWh/m²）",
    "reports.intensity.kwh_per_person": "人均用电（kWh/人）", "reports.intensity.water_m3_per_person": "人均用水（m³/人）",
    "reports.metering": "计量覆盖率", "reports.target": "目标 {p}", "reports.met": "达到", "reports.not_met": "未达到",
    "reports.metering.per_unit": "分户计量率", "reports.metering.per_zone": "分区计量率", "reports.metering.per_subitem": "分项计量率",
    "reports.utility.electricity": "电", "reports.utility.water": "水", "reports.utility.gas": "燃气", "reports.utility.heat": "集中供热",
    "reports.disclosure": "能耗公示", "disclosure.item": "项目", "disclosure.now": "本期", "disclosure.then": "去年同期",
    "disclosure.change": "同比", "disclosure.to_explain": "需说明",
    "disclosure.rule": "同比变化超过 {p} 的项目需要说明原因；去年同期数据不足 95% 的不作比较（–）。",
    "disclosure.people": "用能人数", "disclosure.floor_area": "建筑面积", "disclosure.person_unit": "人",
    "disclosure.explanation": "同比变化说明", "disclosure.by": "{who} 于 {t} 填写",
    "disclosure.missing": "尚未填写说明：{names}同比变化超过 {p}，请说明原因。", "disclosure.none_needed": "各项同比变化都不超过 {p}，无需说明。",
    "disclosure.none_compared": "去年同期没有完整数据可比较，无需说明。",
    "disclosure.list_sep": "、", "disclosure.write": "填写或修改说明（最多 {n} 字；清空后保存即删除说明）",
    "disclosure.save": "保存说明", "disclosure.saving": "正在保存…", "disclosure.saved": "说明已保存。", "disclosure.removed": "说明已删除。",
    "disclosure.too_long": "说明太长了：最多 {n} 个字。", "disclosure.forbidden": "只有管理员可以填写说明。",
    "disclosure.login": "登录已过期，请重新登录后再保存。",
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
    "reports.span": "Span", "reports.span.month": "Month", "reports.span.quarter": "Quarter", "reports.span.year": "Year",
    "reports.quarter": "Quarter", "reports.year": "Year",
    "reports.kgce": "Energy in standard coal", "reports.yoy": "{p} year on year", "reports.no_yoy": "no complete data last year",
    "reports.meters_complete": "Meters with complete data", "reports.meters_complete_note": "at least {p} of the readings expected",
    "reports.school_days": "{w}: {n}", "reports.through": "up to {t}",
    "reports.months": "By month", "reports.to_date_short": " (to date)", "reports.per_m2": "kWh/m²",
    "reports.subitems": "Sub-items", "reports.subitem": "Sub-item", "reports.use": "Use", "reports.whole_site": "Whole site",
    "reports.no_subitems": "No meter is tagged with a sub-item yet.",
    "reports.intensity": "Intensity and quotas", "reports.intensity_measure": "Intensity", "reports.coverage": "Coverage",
    "reports.judged": "Judgement", "reports.this_period": "This period", "reports.last_year": "Last year",
    "reports.quota": "Quota for the period", "reports.above_quota": "Above quota", "reports.within_quota": "Within quota",
    "reports.no_quota": "No quota", "reports.quota_from": "The year's quota in proportion to the period's hours; quotas from: {s}",
    "reports.not_named": "not named",
    "reports.intensity.kgce_per_m2": "Energy per m² (kgce/m²)", "reports.intensity.kgce_per_person": "Energy per person (kgce/person)",
    "reports.intensity.kgce_per_student": "Energy per student (kgce/student)", "reports.intensity.kwh_per_m2": "Electricity per m² (kWh/m²)",
    "reports.intensity.kwh_per_person": "Electricity per person (kWh/person)", "reports.intensity.water_m3_per_person": "Water per person (m³/person)",
    "reports.metering": "Metering coverage", "reports.target": "target {p}", "reports.met": "Met", "reports.not_met": "Not met",
    "reports.metering.per_unit": "Per building", "reports.metering.per_zone": "Per zone", "reports.metering.per_subitem": "Per sub-item",
    "reports.utility.electricity": "Electricity", "reports.utility.water": "Water", "reports.utility.gas": "Gas", "reports.utility.heat": "District heat",
    "reports.disclosure": "Disclosure", "disclosure.item": "Item", "disclosure.now": "This period", "disclosure.then": "Last year",
    "disclosure.change": "Year on year", "disclosure.to_explain": "to explain",
    "disclosure.rule": "Items that changed by more than {p} year on year need an explanation; last year's figures with under 95% of their data are not compared (–).",
    "disclosure.people": "Energy users", "disclosure.floor_area": "Floor area", "disclosure.person_unit": "people",
    "disclosure.explanation": "Explanation of the change", "disclosure.by": "written by {who}, {t}",
    "disclosure.missing": "No explanation yet: {names} changed by more than {p} year on year; please give the reason.",
    "disclosure.none_needed": "Nothing changed by more than {p} year on year: no explanation is needed.",
    "disclosure.none_compared": "Last year has no complete data to compare with: no explanation is needed.",
    "disclosure.list_sep": ", ", "disclosure.write": "Write or change the explanation (at most {n} characters; save it empty to remove it)",
    "disclosure.save": "Save the explanation", "disclosure.saving": "Saving…", "disclosure.saved": "Explanation saved.",
    "disclosure.removed": "Explanation removed.",
    "disclosure.too_long": "The explanation is too long: {n} characters at most.", "disclosure.forbidden": "Only an admin may write the explanation.",
    "disclosure.login": "Your login has expired: log in again, then save.",
  },
});

const TYPES = ["energy", "safety", "canteen", "disclosure"];
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

function downloads(path, query, key, formats = ["pdf", "html", "csv"]) {
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
    formats.map(button), message);
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

const SPANS = ["month", "quarter", "year"];

function spanPicker(span) {
  return picker("span", span, SPANS.map((x) => [x, t(`reports.span.${x}`)]), t("reports.span"));
}

async function energy(state, params, today) {
  const span = SPANS.includes(params.span) ? params.span : "month";
  return span === "month" ? energyMonth(state, params, today) : energyPeriod(state, params, today, span);
}

async function energyMonth(state, params, today) {
  const options = months(today);
  const month = options.some(([v]) => v === params.month) ? params.month : options[0][0];
  const r = await get("/api/v1/reports/energy", { month });
  const e = r.electricity;
  const w = r.water;
  const cost = e.cost_yuan == null && w.cost_yuan == null ? null : (e.cost_yuan ?? 0) + (w.cost_yuan ?? 0);
  const [eNote, eTone] = change(e, r.partial);
  const [wNote, wTone] = change(w, r.partial);
  return [
    h("div", { class: "report-tools" }, spanPicker("month"), picker("month", month, options, t("reports.month")),
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

// A comparison is only shown where last year's data is nearly complete, as the reports' own
// (energy_doc.COVERAGE_WORTH); beyond NOTABLE a change reads red or green, as in the PDF.
const COVERAGE_WORTH = 0.95;
const NOTABLE = 0.02;
const COMPLETE = 0.9; // a meter's data is complete with this share of its readings (energy.COMPLETE)

/** The change year on year as people read it ("+3.2%"), or null where it is not compared. */
function yoyChange(f) {
  if (f.change == null || f.coverage < COVERAGE_WORTH) return null;
  return `${f.change > 0 ? "+" : f.change < 0 ? "−" : "±"}${num(Math.abs(f.change) * 100, 1)}%`;
}

function yoyTone(f, beyond) {
  if (yoyChange(f) == null) return "";
  return f.change > beyond ? "bad" : f.change < -beyond ? "ok" : "";
}

function yoyFigure(label, f, unit, digits) {
  const p = yoyChange(f);
  return figure(label, `${num(f.now, digits)} ${unit}`, p ? t("reports.yoy", { p }) : t("reports.no_yoy"), yoyTone(f, NOTABLE));
}

function monthShort(month) {
  const [year, number] = month.split("-").map(Number);
  return monthName(year, number);
}

function table(name, heads, rows) {
  return h("div", { class: "table-scroll" }, h("table", { class: "report-table", dataset: { table: name } },
    h("thead", {}, h("tr", {}, heads.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => (c instanceof Node ? c : h("td", {}, c))))))));
}

function periodMeta(state, r) {
  return h("p", { class: "muted small" }, r.site_name, " · ",
    t("reports.school_days", { w: dayWord(state.site, true), n: num(r.school_days, 0) }),
    r.partial ? ` · ${t("reports.through", { t: when(r.through_ms) })}` : "");
}

async function energyPeriod(state, params, today, span) {
  const options = span === "quarter" ? quarters(today) : years(today);
  const period = options.some(([v]) => v === params.period) ? params.period : options[0][0];
  const r = await get("/api/v1/reports/energy/period", { period });
  const power = r.categories.find((c) => c.utility === "electricity");
  const water = r.categories.find((c) => c.utility === "water");
  const counted = r.meters.filter((m) => m.completeness != null);
  const complete = counted.filter((m) => m.complete).length;
  const buildings = Object.fromEntries(r.buildings.map((b) => [b.building_id, b.name]));
  return [
    h("div", { class: "report-tools" }, spanPicker(span),
      picker("period", period, options, t(span === "quarter" ? "reports.quarter" : "reports.year")),
      downloads("/api/v1/reports/energy/period", { period }, `energy-${period}`)),
    card(null, [
      periodMeta(state, r),
      h("div", { class: "figures", dataset: { report: "energy-period" } },
        yoyFigure(t("reports.electricity"), power.total, "kWh", 0),
        yoyFigure(t("reports.water"), water.total, "m³", 1),
        yoyFigure(t("reports.kgce"), r.total_kgce, "kgce", 0),
        figure(t("reports.meters_complete"), `${num(complete, 0)} / ${num(counted.length, 0)}`,
          t("reports.meters_complete_note", { p: share(COMPLETE) }), complete === counted.length ? "ok" : "warn")),
    ]),
    card(t("reports.months"), table("months", [t("reports.month"), "kWh", "m³", "kgce"], r.by_month.map((m) => [
      `${monthShort(m.month)}${m.partial ? t("reports.to_date_short") : ""}`, num(m.electricity_kwh, 0), num(m.water_m3, 1),
      num(m.kgce, 0)]))),
    card(t("reports.buildings"), table("buildings", [t("reports.building"), "kWh", "m³", "kgce", t("reports.per_m2")],
      r.buildings.map((b) => [b.name, num(b.electricity_kwh, 0), num(b.water_m3, 1), num(b.kgce, 0), num(b.kwh_per_m2, 2)]))),
    card(t("reports.subitems"), r.subitems.length
      ? table("subitems", [t("reports.subitem"), t("reports.building"), t("reports.use")], r.subitems.map((x) => [
        pick(x, "words"), x.building_id ? buildings[x.building_id] ?? "–" : t("reports.whole_site"), x.total == null ? "–" : `${num(x.total, 0)} ${x.unit}`]))
      : h("p", { class: "muted" }, t("reports.no_subitems"))),
    card(t("reports.intensity"), [
      table("intensity", [t("reports.intensity_measure"), t("reports.this_period"), t("reports.last_year"), t("reports.quota")],
        r.intensity.map((i) => [
          h("td", {}, t(`reports.intensity.${i.measure}`), " ", i.exceeded == null ? null
            : chip(t(i.exceeded ? "reports.above_quota" : "reports.within_quota"), i.exceeded ? "bad" : "ok")),
          num(i.value, 3), num(i.last_year, 3), i.quota_period == null ? t("reports.no_quota") : num(i.quota_period, 3)])),
      h("p", { class: "muted small" }, t("reports.quota_from", { s: r.quota_standard || t("reports.not_named") }))]),
    card(t("reports.metering"), table("metering", [t("reports.coverage"), t("reports.this_period"), t("reports.judged")],
      r.metering.flatMap((m) => METERING_TARGETS.map(([key, target]) => {
        const value = m[key];
        return [`${t(`reports.utility.${m.utility}`)} · ${t(`reports.metering.${key}`)}`,
          h("td", {}, share(value), h("small", { class: "muted" }, ` ${t("reports.target", { p: share(target) })}`)),
          h("td", {}, value == null ? "–" : chip(t(value >= target ? "reports.met" : "reports.not_met"), value >= target ? "ok" : "warn"))];
      })))),
  ];
}

// The 2014 notice's targets (energy_doc.METERING_TARGETS): per building 100 %, per zone and per sub-item 90 %.
const METERING_TARGETS = [["per_unit", 1], ["per_zone", 0.9], ["per_subitem", 0.9]];

// The sheet's rows in its order (disclosure.ROWS): each key with its unit and digits.
const MAX_EXPLANATION = 2000;

function itemCell(words, unit, mark) {
  return h("td", {}, h("span", { class: "item-words" }, words), " ", h("small", { class: "muted" }, unit),
    mark ? [" ", chip(t("disclosure.to_explain"), "warn")] : null);
}

function explanationBody(d) {
  const threshold = share(d.explain_above);
  if (d.explanation) {
    return [h("p", { class: "explanation-text" }, d.explanation.text),
      h("p", { class: "muted small" }, t("disclosure.by", { who: pick(d.explanation.by, "name"), t: when(d.explanation.at) }))];
  }
  if (d.to_explain.length) {
    const names = d.rows.filter((r) => d.to_explain.includes(r.key)).map((r) => pick(r, "words")).join(t("disclosure.list_sep"));
    return [h("p", { class: "warn-text" }, t("disclosure.missing", { names, p: threshold }))];
  }
  const compared = Object.values(d.figures).some((f) => yoyChange(f) != null);
  return [h("p", { class: "muted" }, compared ? t("disclosure.none_needed", { p: threshold }) : t("disclosure.none_compared"))];
}

function saveFailure(err) {
  if (err instanceof HttpError) {
    if (err.status === 401) return t("disclosure.login");
    if (err.status === 403) return t("disclosure.forbidden");
    if (err.status === 422) return t("disclosure.too_long", { n: num(MAX_EXPLANATION, 0) });
  }
  return failure(err);
}

function explanationEditor(d, shown) {
  const text = h("textarea", { rows: 5, maxlength: MAX_EXPLANATION, "aria-label": t("disclosure.explanation") },
    d.explanation?.text ?? "");
  const message = h("p", { class: "small muted", role: "status" });
  const save = h("button", { type: "button", class: "save-explanation", onclick: async () => {
    save.disabled = true;
    message.className = "small muted";
    message.textContent = t("disclosure.saving");
    try {
      const said = await send("PUT", `/api/v1/reports/disclosure/${d.period}/explanation`, { text: text.value });
      d.explanation = said;
      shown.replaceChildren(...explanationBody(d));
      text.value = said?.text ?? "";
      message.className = "small ok-text";
      message.textContent = t(said ? "disclosure.saved" : "disclosure.removed");
    } catch (err) {
      message.className = "small error-text";
      message.textContent = saveFailure(err);
    } finally {
      save.disabled = false;
    }
  } }, t("disclosure.save"));
  return h("div", { class: "explanation-editor" },
    h("label", { class: "small muted" }, t("disclosure.write", { n: num(MAX_EXPLANATION, 0) })), text, h("div", {}, save), message);
}

async function disclosure(state, params, today) {
  const options = quarters(today);
  const period = options.some(([v]) => v === params.period) ? params.period : options[0][0];
  const d = await get("/api/v1/reports/disclosure", { period });
  const rows = [
    [itemCell(t("disclosure.people"), t("disclosure.person_unit")), num(d.people, 0), "", ""],
    [itemCell(t("disclosure.floor_area"), "m²"), num(d.floor_area_m2, 0), "", ""],
    ...d.rows.map((row) => {
      const f = d.figures[row.key];
      const p = yoyChange(f);
      return [itemCell(pick(row, "words"), pick(row, "unit"), d.to_explain.includes(row.key)), num(f.now, row.digits),
        p == null ? "–" : num(f.last_year, row.digits), h("td", { class: `change ${yoyTone(f, d.explain_above)}` }, p ?? "–")];
    }),
  ];
  const shown = h("div", { class: "explanation" }, explanationBody(d));
  return [
    h("div", { class: "report-tools" }, picker("period", period, options, t("reports.quarter")),
      downloads("/api/v1/reports/disclosure", { period }, `disclosure-${period}`, ["pdf", "csv"])),
    card(null, [
      h("p", { class: "muted small" }, state.site.name, " · ", options.find(([v]) => v === period)[1]),
      table("disclosure", [t("disclosure.item"), t("disclosure.now"), t("disclosure.then"), t("disclosure.change")], rows),
      h("p", { class: "muted small" }, t("disclosure.rule", { p: share(d.explain_above) }))]),
    card(t("disclosure.explanation"), [shown, session()?.role === "admin" ? explanationEditor(d, shown) : null]),
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
    body = await { energy, safety, canteen, disclosure }[type](state, params, today);
  } catch (err) {
    body = [h("div", { class: "card error", role: "alert" }, h("p", {}, why(err)))];
  }
  const view = h("div", { class: "stack reports", dataset: { type } }, tabs, body);
  // A changed picker is a new address: the back button and a shared link show the same report.
  view.addEventListener("change", (ev) => {
    const field = ev.target.closest("select, input");
    if (!field) return;
    const next = { ...params, type, [field.name]: field.value };
    if (field.name === "span") delete next.period; // a quarter is not a year: the new span's latest
    location.hash = `#/reports?${new URLSearchParams(Object.entries(next).filter(([, v]) => v))}`;
  });
  return view;
}

export default { render: reports, live: [] };
