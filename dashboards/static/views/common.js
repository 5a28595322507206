// What several views share: where a thing is, lists, filters, the chart library, severities.

import { t } from "../i18n.js";
import { h, roomName } from "../ui.js";

export const SEVERITIES = ["critical", "major", "minor", "warning"];
export const SEVERITY_TONE = { critical: "bad", major: "bad", minor: "warn", warning: "info" };

export function where(state, item) {
  // Something of the whole site (a fire round, the 留样 register's day) has no room.
  if (!item.room && !item.building) return state.site.name;
  return `${roomName(state, item.room)} · ${state.buildings.get(item.building) ?? item.building}`;
}

export function list(items, render, empty) {
  return items.length ? h("ul", { class: "list" }, items.map((x) => h("li", {}, render(x))))
    : h("p", { class: "muted" }, empty);
}

export function select(name, value, options, label) {
  return h("label", { class: "filter" }, label, h("select", { name }, h("option", { value: "" }, t("common.all")),
    options.map(([v, text]) => h("option", { value: v, selected: v === value }, text))));
}

export function filters(params, controls, base) {
  const form = h("form", { class: "filters" }, controls);
  form.addEventListener("change", () => {
    const query = new URLSearchParams([...new FormData(form)].filter(([, v]) => v !== ""));
    location.hash = `#/${base}?${query}`;
  });
  return form;
}

let echartsLoading = null;
/** Apache ECharts, loaded on first use (it is large and only charts need it). */
export function echarts() {
  echartsLoading ??= new Promise((resolve, reject) => {
    const script = h("script", { src: `${document.body.dataset.static}/vendor/echarts/echarts.min.js` });
    script.onload = () => resolve(window.echarts);
    script.onerror = reject;
    document.head.append(script);
  });
  return echartsLoading;
}
