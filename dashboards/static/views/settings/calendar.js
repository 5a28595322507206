// 校历: a month with each day coloured by its kind (from the gateway's calendar, so what the
// rules and the closing board will do), and the school's own periods: 寒假/暑假, 停课, 护校 and
// 调休上课, each from a start to an end with a name.

import { get } from "../../api.js";
import { addLabels, language, num, pick, t } from "../../i18n.js";
import { h } from "../../ui.js";
import { copy, field, group, listEditor, sectionForm } from "./form.js";

addLabels({
  "zh-CN": {
"cal.prev": "上个月", "cal.next": "下个月", "cal.legend": "图例",
    "cal.periods": "学校自定的日子", "cal.statutory": "按国家法定节假日和调休安排",
    "cal.term_breaks": "寒假、暑假", "cal.closures": "停课", "cal.guard_duty": "护校", "cal.makeup_days": "调休上课",
    "cal.term_breaks_hint": "这些日子不上课", "cal.closures_hint": "其他不上课的日子（如停电、恶劣天气）",
    "cal.guard_duty_hint": "不上课，有人值守护校；告警发给护校值班的人", "cal.makeup_days_hint": "本来不上课、学校另行安排上课的日子",
    "cal.start": "开始日期", "cal.end": "结束日期", "cal.name": "名称", "cal.name_hint": "如：寒假",
    "cal.add": "添加一段",
  },
  en: {
"cal.prev": "Previous month", "cal.next": "Next month", "cal.legend": "Legend",
    "cal.periods": "The school's own days", "cal.statutory": "Follow China's public holidays and make-up days",
    "cal.term_breaks": "Winter and summer breaks", "cal.closures": "Closures", "cal.guard_duty": "Guard duty",
    "cal.makeup_days": "Make-up school days",
    "cal.term_breaks_hint": "no school on these days", "cal.closures_hint": "other days without school (a power cut, bad weather)",
    "cal.guard_duty_hint": "no school, the site is guarded; alerts go to the guard-duty rota", "cal.makeup_days_hint": "days the school opens that would be closed",
    "cal.start": "From", "cal.end": "To", "cal.name": "Name", "cal.name_hint": "e.g. Winter break",
    "cal.add": "Add a period",
  },
});

const PERIODS = ["term_breaks", "closures", "guard_duty", "makeup_days"];

function thisMonth(tz) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit" })
    .formatToParts(new Date()).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}`;
}

function shift(month, by) {
  const [y, m] = month.split("-").map(Number);
  const d = new Date(Date.UTC(y, m - 1 + by, 1));
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}

async function monthView(ctx) {
  const month = /^\d{4}-\d{2}$/.test(ctx.params.month ?? "") ? ctx.params.month : thisMonth(ctx.site.timezone);
  const days = await get("/api/v1/calendar/month", { month });
  const [y, m] = month.split("-").map(Number);
  const lead = (new Date(Date.UTC(y, m - 1, 1)).getUTCDay() + 6) % 7; // Monday first
  const kinds = new Map(days.map((d) => [d.kind, d]));
  // Months and weekdays as the page's language writes dates: 2026年12月, ‹ 11月; December 2026, ‹ November.
  const named = (ym, style) => new Intl.DateTimeFormat(language(), { ...style, timeZone: "UTC" })
    .format(Date.UTC(Number(ym.slice(0, 4)), Number(ym.slice(5, 7)) - 1, 1));
  const link = (to, label, cls) => h("a", { href: `#/settings/calendar?month=${to}`, class: cls }, label);
  const weekday = new Intl.DateTimeFormat(language(), { weekday: "short", timeZone: "UTC" });
  return h("section", { class: "card month", dataset: { month } },
    h("div", { class: "month-head" }, link(shift(month, -1), `‹ ${named(shift(month, -1), { month: "long" })}`, "prev"),
      h("h2", {}, named(month, { year: "numeric", month: "long" })), link(shift(month, 1), `${named(shift(month, 1), { month: "long" })} ›`, "next")),
    h("div", { class: "month-grid" },
      Array.from({ length: 7 }, (_, i) => h("div", { class: "weekday-name" }, weekday.format(Date.UTC(2024, 0, 1 + i)))), // 2024-01-01: a Monday
      Array.from({ length: lead }, () => h("div", { class: "day blank" })),
      days.map((d) => {
        const name = pick(d, "name");
        const label = `${pick(d, "kind")}${name && name !== pick(d, "kind") ? ` · ${name}` : ""}`;
        return h("div", { class: `day kind-${d.kind}`, title: label, dataset: { date: d.date, kind: d.kind } },
          h("span", { class: "date" }, num(Number(d.date.slice(8)), 0)),
          name ? h("span", { class: "day-label" }, name) : null);
      })),
    h("ul", { class: "legend", "aria-label": t("cal.legend") }, [...kinds.values()].map((d) => h("li", {},
      h("span", { class: `swatch kind-${d.kind}` }), pick(d, "kind")))));
}

function periodsForm(ctx) {
  const calendar = copy(ctx.site.calendar);
  const lists = PERIODS.map((key) => {
    calendar[key] ??= [];
    return group("fieldset", { class: "periods", dataset: { periods: key }, legend: t(`cal.${key}`) }, ["calendar", key],
      h("p", { class: "muted small" }, t(`cal.${key}_hint`)),
      listEditor(ctx, calendar[key], (p, i) => h("div", { class: "fields period" },
        field(ctx, { label: t("cal.start"), type: "date", required: true }, p, "start", ["calendar", key, i, "start"]),
        field(ctx, { label: t("cal.end"), type: "date", required: true }, p, "end", ["calendar", key, i, "end"]),
        field(ctx, { label: t("cal.name"), type: "text" }, p, "name", ["calendar", key, i, "name"], { placeholder: t("cal.name_hint") })),
      () => ({ start: "", end: "", name: "" }), { addLabel: t("cal.add") }));
  });
  return sectionForm(ctx, "calendar", calendar, h("div", { class: "form-body" }, h("h2", {}, t("cal.periods")),
    field(ctx, { label: t("cal.statutory"), type: "boolean" }, calendar, "statutory_holidays", ["calendar", "statutory_holidays"]),
    lists));
}

export default {
  render: async (ctx) => h("div", { class: "stack" }, await monthView(ctx), periodsForm(ctx)),
};
