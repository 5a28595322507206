// 电价与目标: the prices (flat, and time-of-use periods 尖峰/峰/平/谷), the month's targets for
// the energy report, and each rule's parameters for the whole site (a device may set its own).

import { addLabels, t } from "../../i18n.js";
import { h } from "../../ui.js";
import { copy, field, group, listEditor, said, sectionForm, shownDefault } from "./form.js";

addLabels({
  "zh-CN": {
    "tariffs.title": "电价与水价", "tariffs.flat": "电价（元/千瓦时）", "tariffs.flat_hint": "分时时段以外的时间按此价",
    "tariffs.water": "水价（元/立方米）", "tariffs.periods": "分时电价", "tariffs.period": "时段",
    "tariffs.price": "电价（元/千瓦时）", "tariffs.add": "添加分时时段",
    "tariffs.start": "开始", "tariffs.end": "结束", "tariffs.add_span": "添加时间", "tariffs.remove": "删除这个时段",
    "tou.sharp": "尖峰", "tou.peak": "峰", "tou.flat": "平", "tou.valley": "谷",
    "targets.title": "每月用量目标", "targets.electricity": "用电（千瓦时）", "targets.water": "用水（立方米）",
    "targets.hint": "能耗月报与目标比较；不填则不比较",
    "rules.title": "告警规则参数（全校）", "rules.hint": "空着即用默认值（灰字）；单台设备可在设备页另设",
  },
  en: {
    "tariffs.title": "Electricity and water prices", "tariffs.flat": "Electricity (yuan/kWh)", "tariffs.flat_hint": "for any time no period covers",
    "tariffs.water": "Water (yuan/m³)", "tariffs.periods": "Time-of-use electricity", "tariffs.period": "Period",
    "tariffs.price": "Price (yuan/kWh)", "tariffs.add": "Add a period",
    "tariffs.start": "From", "tariffs.end": "To", "tariffs.add_span": "Add hours", "tariffs.remove": "Remove this period",
    "tou.sharp": "Critical peak", "tou.peak": "Peak", "tou.flat": "Flat", "tou.valley": "Valley",
    "targets.title": "Monthly targets", "targets.electricity": "Electricity (kWh)", "targets.water": "Water (m³)",
    "targets.hint": "the energy report compares each month with them; empty: no comparison",
    "rules.title": "Alert rules' parameters (whole site)", "rules.hint": "empty: the default (in grey); a device may set its own on its page",
  },
});

const TOU = ["sharp", "peak", "flat", "valley"];

function tariffsForm(ctx) {
  const tariffs = copy(ctx.site.tariffs);
  const at = (...rest) => ["tariffs", ...rest];
  const names = { label: t("tariffs.period"), type: "choice", required: true, choices: TOU.map((id) => ({ id, zh: t(`tou.${id}`), en: t(`tou.${id}`) })) };
  const periods = listEditor(ctx, tariffs.electricity_periods, (p, i) => h("div", { class: "tou" },
    h("div", { class: "fields" },
      field(ctx, names, p, "name", at("electricity_periods", i, "name")),
      field(ctx, { label: t("tariffs.price"), type: "number", required: true, min: 0 }, p, "yuan_per_kwh", at("electricity_periods", i, "yuan_per_kwh"))),
    group("div", { class: "tou-hours" }, at("electricity_periods", i, "hours"),
      listEditor(ctx, p.hours, (span, j) => h("div", { class: "span-fields" },
        field(ctx, { label: t("tariffs.start"), type: "time", required: true }, span, "start", at("electricity_periods", i, "hours", j, "start")),
        field(ctx, { label: t("tariffs.end"), type: "time", required: true }, span, "end", at("electricity_periods", i, "hours", j, "end"))),
      () => ({ start: "08:00", end: "11:00" }), { addLabel: t("tariffs.add_span"), class: "spans" }))),
  () => ({ name: "flat", yuan_per_kwh: tariffs.electricity_yuan_per_kwh, hours: [{ start: "08:00", end: "11:00" }] }),
  { addLabel: t("tariffs.add"), removeLabel: t("tariffs.remove") });
  return sectionForm(ctx, "tariffs", tariffs, h("div", { class: "form-body" }, h("h2", {}, t("tariffs.title")),
    h("div", { class: "fields" },
      field(ctx, { label: t("tariffs.flat"), type: "number", required: true, min: 0 }, tariffs, "electricity_yuan_per_kwh", at("electricity_yuan_per_kwh"), { hint: t("tariffs.flat_hint") }),
      field(ctx, { label: t("tariffs.water"), type: "number", required: true, min: 0 }, tariffs, "water_yuan_per_m3", at("water_yuan_per_m3"))),
    group("fieldset", { legend: t("tariffs.periods") }, at("electricity_periods"), periods)));
}

function targetsForm(ctx) {
  const reports = copy(ctx.site.reports);
  return sectionForm(ctx, "reports", reports, h("div", { class: "form-body" }, h("h2", {}, t("targets.title")),
    h("p", { class: "muted small" }, t("targets.hint")),
    h("div", { class: "fields" },
      field(ctx, { label: t("targets.electricity"), type: "number" }, reports.targets, "electricity_kwh", ["reports", "targets", "electricity_kwh"]),
      field(ctx, { label: t("targets.water"), type: "number" }, reports.targets, "water_m3", ["reports", "targets", "water_m3"]))));
}

/** Each rule's parameters for the whole site: an empty field inherits the rule's default. */
function rulesForm(ctx) {
  const rules = copy(ctx.site.rules);
  const value = () => Object.fromEntries(Object.entries(rules).filter(([, params]) => Object.keys(params).length));
  return sectionForm(ctx, "rules", value, h("div", { class: "form-body" }, h("h2", {}, t("rules.title")),
    h("p", { class: "muted small" }, t("rules.hint")),
    ctx.catalog.rules.filter((r) => r.params.length).map((r) => {
      rules[r.id] ??= {};
      return group("fieldset", { class: "rule", dataset: { rule: r.id }, legend: said(r) }, ["rules", r.id],
        h("div", { class: "fields" }, r.params.map((f) => field(ctx, f, rules[r.id], f.key, ["rules", r.id, f.key],
          { omitEmpty: true, placeholder: shownDefault(f.default) }))));
    })));
}

export default {
  render: (ctx) => h("div", { class: "stack" }, tariffsForm(ctx), targetsForm(ctx), rulesForm(ctx)),
};
