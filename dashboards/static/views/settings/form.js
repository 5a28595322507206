// What every settings page is built of: a field bound to the section's value being edited
// (each input writes into it as it is typed, so a list redrawn after 添加 or 删除 keeps what was
// typed), lists with 添加/删除, the save with the configuration's version, and the gateway's
// problems shown under the fields they name.

import { HttpError, send } from "../../api.js";
import { addLabels, isZh, t } from "../../i18n.js";
import { failure, h, refill } from "../../ui.js";

addLabels({
  "zh-CN": {
    "form.add": "添加", "form.remove": "删除", "form.save": "保存", "form.saved": "已保存",
    "form.saved_none": "已保存，没有改动", "form.conflict": "别人刚刚修改了设置，已重新载入最新内容，请再改一次。",
    "form.problems": "有 {n} 处需要改正，见各项下方的说明", "form.list_hint": "多项用逗号或换行分开",
    "form.id_hint": "编号：字母、数字、点、横线或下划线，以字母或数字开头，保存后不能改",
    "form.none_yet": "还没有", "common.code": "编号", "form.inherited": "沿用：{v}",
  },
  en: {
    "form.add": "Add", "form.remove": "Remove", "form.save": "Save", "form.saved": "Saved",
    "form.saved_none": "Saved: nothing changed", "form.conflict": "Someone else changed the settings just now: the newest are loaded, please make your change again.",
    "form.problems": "{n} things to correct: see the notes under the fields", "form.list_hint": "separate items with commas or new lines",
    "form.id_hint": "Code: letters, digits, dots, dashes or underscores, starting with a letter or digit; fixed once saved",
    "form.none_yet": "None yet", "common.code": "Code", "form.inherited": "inherited: {v}",
  },
});

/** A label the gateway gives in both languages: { zh, en } (a catalog's entry, a problem). */
export function said(pair) {
  return pair ? (isZh() ? pair.zh : pair.en) : "";
}

/** A catalog field's label with its unit: "面积（平方米）" / "Floor area (m²)". */
function fieldLabel(spec) {
  if (spec.label) return spec.label;
  const unit = isZh() ? spec.unit_zh : spec.unit_en;
  return unit ? (isZh() ? `${spec.zh}（${unit}）` : `${spec.en} (${unit})`) : said(spec);
}

const pathKey = (path) => path.join(".");

function read(spec, input) {
  const raw = input.value.trim();
  switch (spec.type) {
    case "boolean": return input.checked;
    case "number": return raw === "" ? null : Number(raw);
    case "integer": return raw === "" ? null : Math.trunc(Number(raw));
    case "time": case "date": return raw === "" ? null : raw;
    case "choice": return raw === "" ? null : raw;
    case "list": return raw.split(/[,，、\n]+/).map((x) => x.trim()).filter(Boolean);
    default: return raw === "" && spec.nullable ? null : raw;
  }
}

function shown(spec, value) {
  if (value === null || value === undefined) return "";
  if (spec.type === "time") return String(value).slice(0, 5);
  if (spec.type === "list") return value.join(isZh() ? "，" : ", ");
  return String(value);
}

/** The empty choice names what it inherits by its label, not its id. */
function inheritedChoice(spec, placeholder) {
  const inherited = spec.choices.find((c) => c.id === placeholder);
  return inherited ? t("form.inherited", { v: said(inherited) }) : placeholder ?? "";
}

/**
 * One field of `model[key]`, labelled, with the slot where a problem about it is shown.
 * `spec` is a catalog Field ({ key, zh, en, unit_zh, unit_en, type, min, max, choices, required })
 * or the page's own ({ label, type, … }); `path` is where it lies in the site file (a problem
 * names it). Options: `placeholder` (an inherited value), `omitEmpty` (an empty field is left
 * out of the model: it inherits), `hint`, `locked` (shown, not editable: an id once saved),
 * `onChange(value)`.
 */
export function field(ctx, spec, model, key, path, opts = {}) {
  if (spec.type === "list" && spec.choices) return checkboxes(ctx, spec, model, key, path, opts);
  const value = model[key];
  const attrs = { name: key, "data-path": pathKey(path), disabled: ctx.readOnly || opts.locked };
  let input;
  if (spec.type === "boolean") {
    input = h("input", { ...attrs, type: "checkbox", checked: Boolean(value ?? spec.default) });
  } else if (spec.type === "choice") {
    input = h("select", { ...attrs, required: spec.required },
      spec.required && (value ?? "") !== "" ? null : h("option", { value: "" }, inheritedChoice(spec, opts.placeholder)),
      spec.choices.map((c) => h("option", { value: c.id, selected: c.id === value }, said(c))));
  } else {
    const number = spec.type === "number" || spec.type === "integer";
    const type = number ? "number" : spec.type === "time" || spec.type === "date" ? spec.type : "text";
    const tag = spec.type === "list" ? "textarea" : "input";
    input = h(tag, {
      ...attrs, type: tag === "input" ? type : null, rows: tag === "textarea" ? 2 : null,
      inputmode: spec.type === "number" ? "decimal" : spec.type === "integer" ? "numeric" : null,
      step: spec.type === "number" ? "any" : spec.type === "integer" ? 1 : null,
      min: spec.min, max: spec.max, required: spec.required && !opts.omitEmpty,
      placeholder: opts.placeholder ?? (spec.type === "list" ? t("form.list_hint") : null),
    });
    if (tag === "textarea") input.textContent = shown(spec, value);
    else input.value = shown(spec, value);
  }
  const onChange = () => {
    const next = read(spec, input);
    if (opts.omitEmpty && (next === null || (Array.isArray(next) && !next.length))) delete model[key];
    else model[key] = next;
    opts.onChange?.(model[key]);
  };
  input.addEventListener(spec.type === "boolean" || spec.type === "choice" ? "change" : "input", onChange);
  // A time field shows no placeholder: what it inherits is said under it.
  const inherits = spec.type === "time" && opts.placeholder ? t("form.inherited", { v: opts.placeholder.slice(0, 5) }) : null;
  const hint = opts.hint || inherits ? h("small", { class: "muted" }, opts.hint ?? inherits) : null;
  const error = h("small", { class: "field-error error-text", role: "alert" });
  if (spec.type === "boolean") {
    return h("div", { class: "field check" }, h("label", {}, input, fieldLabel(spec)), hint, error);
  }
  return h("label", { class: "field" }, h("span", {}, fieldLabel(spec)), input, hint, error);
}

/** A list chosen from `spec.choices`, one checkbox each, kept in the choices' order. */
function checkboxes(ctx, spec, model, key, path, opts) {
  const chosen = new Set(model[key] ?? []);
  const boxes = spec.choices.map((c) => {
    const box = h("input", { type: "checkbox", value: c.id, checked: chosen.has(c.id), disabled: ctx.readOnly });
    box.addEventListener("change", () => {
      const next = spec.choices.map((x) => x.id).filter((id) => boxes.some((b) => b.value === id && b.checked));
      if (opts.omitEmpty && !next.length) delete model[key];
      else model[key] = next;
      opts.onChange?.(model[key]);
    });
    return box;
  });
  return h("fieldset", { class: "field choices", "data-path": pathKey(path), dataset: { name: key } },
    h("legend", {}, fieldLabel(spec)),
    spec.choices.map((c, i) => h("label", {}, boxes[i], said(c))),
    opts.hint ? h("small", { class: "muted" }, opts.hint) : null,
    h("small", { class: "field-error error-text", role: "alert" }));
}

/** A value as the placeholder of an empty input: what it inherits (a number or a text). */
export function shownDefault(value) {
  return typeof value === "number" || typeof value === "string" ? String(value) : null;
}

/** The id a person types when creating a thing (编号), fixed once it is saved. */
export function idField(ctx, model, path, saved) {
  return field(ctx, { label: t("common.code"), type: "text", required: true }, model, "id", path,
    { locked: saved, hint: saved ? null : t("form.id_hint") });
}

/** Something made of fields that a problem may name as a whole (a building, its rooms, a
 * weekday's spans): an element with the path and its own slot for the problem, first. */
export function group(tag, attrs, path, ...children) {
  const { legend, ...rest } = attrs;
  return h(tag, { ...rest, "data-path": pathKey(path) }, legend ? h("legend", {}, legend) : null,
    h("small", { class: "field-error error-text", role: "alert" }), children);
}

/** A list of things with 删除 on each and 添加 after (with `addWith` beside it: what to add);
 * the list is drawn again after either. */
export function listEditor(ctx, items, render, make, opts = {}) {
  const box = h("div", { class: `list-editor ${opts.class ?? ""}` });
  const draw = () => {
    refill(box,
      items.length ? null : h("p", { class: "muted small" }, opts.empty ?? t("form.none_yet")),
      items.map((item, i) => h("div", { class: "list-item" }, render(item, i),
        ctx.readOnly ? null : h("button", { type: "button", class: "secondary remove", onclick: () => { items.splice(i, 1); draw(); } },
          opts.removeLabel ?? t("form.remove")))),
      ctx.readOnly ? null : h("div", { class: "add-row" }, opts.addWith,
        h("button", { type: "button", class: "secondary add", onclick: () => { items.push(make()); draw(); } }, opts.addLabel ?? t("form.add"))));
  };
  draw();
  return box;
}

/** The answer line of a form: saved and what changed, or why not. */
export function outcome() {
  return h("div", { class: "outcome", role: "status" });
}

/** Each problem under the field its path names (or the nearest enclosing one that is on the
 * page), the rest in `top`. `rewrite(path)` maps a problem's path onto the form's. */
export function showProblems(root, top, problems, rewrite) {
  for (const el of root.querySelectorAll(".field-error")) el.textContent = "";
  const rest = [];
  for (const p of problems) {
    const path = rewrite(p.path ?? []);
    let target = null;
    for (let n = path.length; n > 0 && !target; n--) {
      target = root.querySelector(`[data-path="${CSS.escape(pathKey(path.slice(0, n)))}"]`);
    }
    const slot = !target ? null : target.matches("input, select, textarea, .field")
      ? target.closest(".field")?.querySelector(".field-error") : target.querySelector(":scope > .field-error");
    if (slot) slot.textContent = slot.textContent ? `${slot.textContent} ${said(p)}` : said(p);
    else rest.push(said(p));
  }
  refill(top, h("p", { class: "error-text", role: "alert" }, t("form.problems", { n: problems.length })),
    rest.length ? h("ul", { class: "problems" }, rest.map((x) => h("li", { class: "error-text" }, x))) : null);
  root.querySelector(".field-error:not(:empty)")?.scrollIntoView({ block: "center" });
}

/** A save's answer, kept for the page drawn after it (the configuration is loaded anew). */
let notice = null;
export function takeNotice() {
  const n = notice;
  notice = null;
  return n;
}

/**
 * Sends a change (`request(version)` → the gateway's answer) with the configuration's
 * version. Saved: the page is drawn anew from the new configuration, with what changed.
 * 409: someone changed it meanwhile, the page is reloaded and says so. 422: each problem
 * under its field. Anything else: the reason in `top`. `rewrite(path)` maps a problem's path
 * onto the form's; `after()` shows the saved state (by default the page drawn anew).
 */
export async function submit(ctx, root, top, request, rewrite = (p) => p, after = ctx.rerender) {
  top.replaceChildren();
  // The last save's answer no longer speaks for the page once another save is on its way.
  for (const old of document.querySelectorAll(".settings > .banner.notice")) old.remove();
  try {
    const out = await request(ctx.config.version);
    notice = { tone: "ok", text: out?.changes?.length ? t("form.saved") : t("form.saved_none"), changes: out?.changes ?? [] };
    await ctx.reloadSite();
    after();
    return out;
  } catch (err) {
    if (err instanceof HttpError && err.status === 409) {
      notice = { tone: "bad", text: t("form.conflict"), changes: [] };
      ctx.rerender();
    } else if (err instanceof HttpError && err.status === 422 && err.detail?.problems?.length) {
      showProblems(root, top, err.detail.problems, rewrite);
    } else {
      top.replaceChildren(h("p", { class: "error-text", role: "alert" }, failure(err)));
    }
    return null;
  }
}

/** PUT one section of the site file. */
export function saveSection(ctx, section, value, root, top) {
  return submit(ctx, root, top, (version) => send("PUT", `/api/v1/admin/config/${section}`, { version, value }));
}

/** A form for one section: a card of its fields (or, `bare`, the cards it is given), then a
 * bar that stays in sight at the bottom with the answer and 保存 (none when read-only). */
export function sectionForm(ctx, section, value, body, attrs = {}) {
  const { bare, ...rest } = attrs;
  const top = outcome();
  const form = h("form", { ...rest, class: `form settings-form ${bare ? "bare" : "card"} ${rest.class ?? ""}`, dataset: { ...rest.dataset, section }, novalidate: true },
    body, ctx.readOnly ? null : h("div", { class: "save-bar" }, top, h("button", { type: "submit", class: "save" }, t("form.save"))));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    saveSection(ctx, section, typeof value === "function" ? value() : value, form, top);
  });
  return form;
}

/** A deep copy of a section, to edit without touching the loaded configuration. */
export function copy(value) {
  return structuredClone(value);
}
