// 留样: today's meals with their samples and deadlines, registering a dish's sample, and the
// samples in the fridges now with when each may be discarded. Phone first: the canteen
// manager does this standing in the kitchen.

import { get, send } from "../api.js";
import { addLabels, num, pick, t, when } from "../i18n.js";
import { card, chip, dialog, failure, h, signedIn } from "../ui.js";

addLabels({
  "zh-CN": {
    "nav.samples": "留样",
    "samples.today": "今日留样", "samples.register": "登记留样", "samples.kept": "冰箱内留样",
    "samples.none_kept": "冰箱内暂无留样", "samples.none_yet": "尚未留样",
    "samples.rule": "每餐每样至少 {g} 克，冷藏至少 {h} 小时",
    "samples.status.pass": "已留样", "samples.status.fail": "未按时留样", "samples.status.pending": "待留样", "samples.status.not_required": "今日不供应",
    "samples.due": "{t} 前", "samples.meal": "餐次", "samples.dish": "菜品", "samples.dish_hint": "如：番茄炒蛋",
    "samples.weight": "重量（克，至少 {g} 克）", "samples.fridge": "存放冰箱", "samples.time": "留样时间",
    "samples.save": "保存", "samples.by": "{who} 登记", "samples.after": "可处理时间：{t}",
    "samples.discard": "处理", "samples.discard_title": "处理留样",
    "samples.discard_ok": "已满保存时间，确认已将这份留样处理掉？",
    "samples.early_warning": "未到可处理时间（{t}）。提前处理会发出告警，请写明原因。如怀疑食物中毒，留样须封存移交，不得处理。",
    "samples.reason": "提前处理的原因", "samples.confirm": "确认处理", "samples.early_confirm": "提前处理并告警",
    "samples.temp": "保存期间 {span} °C", "samples.temp_out": "，超出 {range} 共 {m} 分钟",
    "samples.temp_in": "，全程在 {range} 内", "samples.temp_none": "保存期间无温度读数",
    "samples.no_meal": "今日不开餐，无需留样",
    "samples.discarded": "{t} 由 {who} 处理", "samples.early": "提前处理", "samples.why": "原因：{r}",
  },
  en: {
    "nav.samples": "Samples",
    "samples.today": "Today's food samples", "samples.register": "Register a sample", "samples.kept": "In the fridge",
    "samples.none_kept": "No samples in the fridge", "samples.none_yet": "No sample yet",
    "samples.rule": "At least {g} g of every dish of every meal, refrigerated at least {h} h",
    "samples.status.pass": "Kept", "samples.status.fail": "Missed", "samples.status.pending": "Due", "samples.status.not_required": "Not served today",
    "samples.due": "by {t}", "samples.meal": "Meal", "samples.dish": "Dish", "samples.dish_hint": "e.g. tomato and egg",
    "samples.weight": "Weight (g, at least {g} g)", "samples.fridge": "Fridge", "samples.time": "Time taken",
    "samples.save": "Save", "samples.by": "registered by {who}", "samples.after": "Discard after {t}",
    "samples.discard": "Discard", "samples.discard_title": "Discard a sample",
    "samples.discard_ok": "Its retention has ended. Confirm that this sample was discarded?",
    "samples.early_warning": "Not due until {t}. Discarding it early raises an alert: give the reason. If food poisoning is suspected, samples are sealed and handed over, never discarded.",
    "samples.reason": "Why it is discarded early", "samples.confirm": "Confirm", "samples.early_confirm": "Discard early and alert",
    "samples.temp": "{span} °C while kept", "samples.temp_out": "; {m} min outside {range}",
    "samples.temp_in": "; within {range} throughout", "samples.temp_none": "No temperature readings while kept",
    "samples.no_meal": "No meals today: no samples needed",
    "samples.discarded": "discarded {t} by {who}", "samples.early": "Discarded early", "samples.why": "because: {r}",
  },
});

const TONE = { pass: "ok", fail: "bad", pending: "warn", not_required: "" };

function temperature(s) {
  const temp = s.temperature;
  if (!temp || temp.lowest_c === null) return t("samples.temp_none");
  const range = `${num(temp.range_min_c)}–${num(temp.range_max_c)} °C`;
  const span = temp.lowest_c === temp.highest_c ? num(temp.lowest_c) : `${num(temp.lowest_c)}–${num(temp.highest_c)}`;
  return t("samples.temp", { span })
    + (temp.minutes_out ? t("samples.temp_out", { m: num(temp.minutes_out, 0), range }) : t("samples.temp_in", { range }));
}

function sampleLine(s) {
  const gone = s.discarded_at ? t("samples.discarded", { t: when(s.discarded_at), who: pick(s.discarded_by, "name") }) : null;
  return h("li", { class: "sample", dataset: { sample: s.id } },
    h("div", { class: "sample-head" }, h("strong", {}, s.dish), h("span", {}, `${num(s.weight_g, 0)} g`),
      s.early_reason ? chip(t("samples.early"), "bad") : null),
    h("p", { class: "muted small" }, `${when(s.taken_at, "time")} · ${t("samples.by", { who: pick(s.taken_by, "name") })} · ${s.fridge_name}`),
    gone ? h("p", { class: "muted small" }, gone, s.early_reason ? ` · ${t("samples.why", { r: s.early_reason })}` : "") : null);
}

function mealCard(meal) {
  const due = when(meal.deadline, "time");
  return h("article", { class: `meal ${meal.status}`, dataset: { meal: meal.id, status: meal.status } },
    h("div", { class: "meal-head" },
      h("strong", { class: "grow" }, pick(meal, "label")),
      meal.served ? h("span", { class: "muted small" }, t("samples.due", { t: due })) : null,
      chip(t(`samples.status.${meal.status}`), TONE[meal.status])),
    meal.samples.length ? h("ul", { class: "samples-list" }, meal.samples.map(sampleLine))
      : meal.served ? h("p", { class: "muted small" }, t("samples.none_yet")) : null);
}

/** The register form, in a dialog: a refusal (too little kept) is shown in it, the form kept. */
function registerDialog(day, onDone) {
  const now = new Date();
  const shown = when(now, "time");
  const open = day.meals.filter((m) => m.served);
  const next = open.find((m) => m.status !== "pass") ?? open[0];
  dialog((close) => {
    const error = h("p", { class: "error-text", role: "alert" });
    const form = h("form", { class: "form sample-form" },
      h("h2", {}, t("samples.register")),
      h("label", {}, t("samples.meal"), h("select", { name: "meal", required: true },
        open.map((m) => h("option", { value: m.id, selected: m === next }, pick(m, "label"))))),
      h("label", {}, t("samples.dish"), h("input", { name: "dish", required: true, maxlength: 60, placeholder: t("samples.dish_hint") })),
      h("label", {}, t("samples.weight", { g: num(day.min_weight_g, 0) }),
        h("input", { name: "weight", type: "number", inputmode: "decimal", required: true, min: 1, max: 5000, step: "any" })),
      h("label", {}, t("samples.fridge"), h("select", { name: "fridge", required: true },
        day.fridges.map((f) => h("option", { value: f.id }, f.name)))),
      h("label", {}, t("samples.time"), h("input", { name: "time", type: "time", required: true, value: shown })),
      error,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: close }, t("common.cancel")),
        h("button", { type: "submit" }, t("samples.save"))));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = { day: day.day, meal: form.meal.value, dish: form.dish.value.trim(), weight_g: Number(form.weight.value), fridge: form.fridge.value };
      if (form.time.value !== shown) body.taken_at = new Date(now.getTime() + (minutes(form.time.value) - minutes(shown)) * 60_000).toISOString();
      try {
        await send("POST", "/api/v1/samples", body);
        close();
        onDone();
      } catch (err) {
        error.textContent = failure(err);
      }
    });
    return form;
  });
  document.querySelector("#dialog input[name=dish]")?.focus();
}

const minutes = (hhmm) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** Discarding: a confirmation once the retention has ended; before it, a warning and a reason. */
function discardDialog(s, onDone) {
  const early = Date.now() < new Date(s.discard_after).getTime();
  dialog((close) => {
    const error = h("p", { class: "error-text", role: "alert" });
    const reason = early ? h("textarea", { name: "reason", rows: 3, maxlength: 500, required: true }) : null;
    const form = h("form", { class: "form" },
      h("h2", {}, t("samples.discard_title")),
      h("p", {}, `${s.dish} · ${pick(s, "meal")} · ${num(s.weight_g, 0)} g`),
      early ? h("p", { class: "warning", role: "note" }, t("samples.early_warning", { t: when(s.discard_after) }))
        : h("p", {}, t("samples.discard_ok")),
      early ? h("label", {}, t("samples.reason"), reason) : null,
      error,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: close }, t("common.cancel")),
        h("button", { type: "submit", class: early ? "danger" : "" }, t(early ? "samples.early_confirm" : "samples.confirm"))));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await send("POST", `/api/v1/samples/${s.id}/discard`, early ? { reason: reason.value.trim() } : {});
        close();
        onDone();
      } catch (err) {
        error.textContent = failure(err);
      }
    });
    return form;
  });
}

function keptLine(s, rerender) {
  return h("li", { class: "sample kept", dataset: { sample: s.id } },
    h("div", { class: "sample-head" },
      h("strong", { class: "grow" }, s.dish),
      h("span", {}, `${num(s.weight_g, 0)} g`)),
    h("p", { class: "muted small" }, `${pick(s, "meal")} · ${when(s.taken_at)} · ${s.fridge_name}`),
    h("p", { class: "small" }, t("samples.after", { t: when(s.discard_after) })),
    h("p", { class: `small ${s.temperature?.minutes_out ? "error-text" : "muted"}` }, temperature(s)),
    h("div", { class: "actions" }, h("button", {
      type: "button", class: "secondary discard", onclick: async () => { if (await signedIn()) discardDialog(s, rerender); },
    }, t("samples.discard"))));
}

async function samplesView({ rerender }) {
  const day = await get("/api/v1/samples");
  const served = day.meals.some((m) => m.served);
  return h("div", { class: "stack samples-view" },
    card(t("samples.today"), h("div", { class: "stack" },
      h("p", { class: "muted small" }, `${when(day.day, "date")} · ${t("samples.rule", { g: num(day.min_weight_g, 0), h: num(day.keep_h, 0) })}`),
      served ? h("button", {
        type: "button", class: "primary register",
        onclick: async () => { if (await signedIn()) registerDialog(day, rerender); },
      }, t("samples.register")) : h("p", { class: "muted" }, t("samples.no_meal")),
      day.meals.map(mealCard))),
    card(t("samples.kept"), day.kept.length ? h("ul", { class: "samples-list" }, day.kept.map((s) => keptLine(s, rerender)))
      : h("p", { class: "muted" }, t("samples.none_kept"))));
}

export default { render: samplesView, live: ["alert"] };
