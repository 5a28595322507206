// 开放时间: the school's hours per weekday, and each building's own (or 与学校相同).

import { addLabels, t } from "../../i18n.js";
import { h, refill } from "../../ui.js";
import { copy, field, group, listEditor, said, sectionForm } from "./form.js";

addLabels({
  "zh-CN": {
    "hours.school": "学校开放时间", "hours.building": "{name}的开放时间", "hours.same": "与学校相同",
    "hours.start": "开始", "hours.end": "结束", "hours.add": "添加时段", "hours.closed": "全天不开放",
    "hours.hint": "每天可有多个时段（如午间关闭）。放假、停课等按校历另算。",
  },
  en: {
    "hours.school": "The school's opening hours", "hours.building": "Opening hours of {name}", "hours.same": "Same as the school",
    "hours.start": "From", "hours.end": "To", "hours.add": "Add a span", "hours.closed": "Closed all day",
    "hours.hint": "A day may have several spans (closed at noon, say). Breaks and closures follow the calendar.",
  },
});

/** Spans per weekday of `hours` (edited in place); `path` is where the hours lie. */
export function weekEditor(ctx, hours, path) {
  return h("div", { class: "week" }, ctx.catalog.weekdays.map((day) => {
    hours[day.id] ??= [];
    return group("div", { class: "weekday", dataset: { day: day.id } }, [...path, day.id],
      h("strong", { class: "day-name" }, said(day)),
      listEditor(ctx, hours[day.id], (span, j) => h("div", { class: "span-fields" },
        field(ctx, { label: t("hours.start"), type: "time", required: true }, span, "start", [...path, day.id, j, "start"]),
        field(ctx, { label: t("hours.end"), type: "time", required: true }, span, "end", [...path, day.id, j, "end"])),
      () => ({ start: "08:00", end: "17:00" }), { addLabel: t("hours.add"), empty: t("hours.closed"), class: "spans" }));
  }));
}

function schoolHours(ctx) {
  const hours = copy(ctx.site.opening_hours);
  return sectionForm(ctx, "opening_hours", hours, h("div", { class: "form-body" },
    h("h2", {}, t("hours.school")), h("p", { class: "muted small" }, t("hours.hint")),
    weekEditor(ctx, hours, ["opening_hours"])), { dataset: { hours: "school" } });
}

function buildingHours(ctx, i) {
  const buildings = copy(ctx.site.buildings);
  const b = buildings[i];
  const body = h("div", {});
  const draw = () => refill(body, b.opening_hours ? weekEditor(ctx, b.opening_hours, ["buildings", i, "opening_hours"]) : null);
  const toggle = { same: b.opening_hours === null || b.opening_hours === undefined };
  draw();
  const form = sectionForm(ctx, "buildings", buildings, h("div", { class: "form-body" },
    h("h2", {}, t("hours.building", { name: b.name })),
    field(ctx, { label: t("hours.same"), type: "boolean" }, toggle, "same", ["buildings", i, "opening_hours"], {
      onChange: (same) => {
        b.opening_hours = same ? null : copy(ctx.site.opening_hours);
        draw();
      },
    }),
    body));
  form.dataset.building = b.id;
  return form;
}

export default {
  render: (ctx) => h("div", { class: "stack" }, schoolHours(ctx), ctx.site.buildings.map((_, i) => buildingHours(ctx, i))),
};
