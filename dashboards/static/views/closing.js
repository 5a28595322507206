// The closing board (闭园检查): per building, what is still open, on or running, by place and in
// plain words, each with its alert and work order; the guard's walk-round, signed here.

import { get, send } from "../api.js";
import { addLabels, num, pick, t, when } from "../i18n.js";
import { asStaff, card, chip, dialog, failure, h, signedIn } from "../ui.js";

addLabels({
  "zh-CN": {
    "closing.updated": "更新于 {t}",
    "closing.open": "开放中，{t} 闭园", "closing.open_all_day": "开放中",
    "closing.todo": "{n} 项要处理", "closing.known": "{n} 项已知，在处理", "closing.closed_up": "已全部关好",
    "closing.nothing": "门、电、水、紫外线灯都已查看，没有要处理的。",
    "closing.scheduled": "按计划", "closing.item_known": "已知",
    "closing.walk.title": "下班前巡查（电器、电源、门窗）",
    "closing.walk.todo": "今天的巡查还没有签字。",
    "closing.walk.sign": "巡查完毕，签字",
    "closing.walk.signed": "{who} {t} 签字：巡查完毕",
    "closing.walk.signed_problem": "{who} {t} 签字：有问题",
    "closing.walk.result": "巡查结果", "closing.walk.ok": "一切正常", "closing.walk.problem": "有问题",
    "closing.walk.note": "备注（可不填）", "closing.walk.note_hint": "如：二楼东侧窗户关不严，已报修",
    "closing.walk.dialog": "签字确认：下班前巡查",
    "closing.sweep": "今天要做：{title}", "closing.sweep_go": "去检查",
  },
  en: {
    "closing.updated": "Updated {t}",
    "closing.open": "Open, closes {t}", "closing.open_all_day": "Open",
    "closing.todo": "{n} to deal with", "closing.known": "{n} known, in hand", "closing.closed_up": "All closed up",
    "closing.nothing": "Doors, power, water and UV lamps checked: nothing left.",
    "closing.scheduled": "scheduled", "closing.item_known": "known",
    "closing.walk.title": "Walk-round before leaving (appliances, power, doors, windows)",
    "closing.walk.todo": "Today's walk-round is not signed yet.",
    "closing.walk.sign": "Walk-round done, sign",
    "closing.walk.signed": "Signed by {who} at {t}: walk-round done",
    "closing.walk.signed_problem": "Signed by {who} at {t}: problems found",
    "closing.walk.result": "Result", "closing.walk.ok": "All in order", "closing.walk.problem": "Problems found",
    "closing.walk.note": "Note (optional)", "closing.walk.note_hint": "e.g. east window on the 1st floor does not shut, reported",
    "closing.walk.dialog": "Sign: walk-round before leaving",
    "closing.sweep": "Due today: {title}", "closing.sweep_go": "Start",
  },
});

const BUILDING_TONE = { open: "", todo: "bad", known: "warn", closed_up: "ok" };
const ITEM_TONE = { todo: "bad", known: "warn", scheduled: "info" };

function buildingStatus(b) {
  const count = (state) => b.items.filter((i) => i.state === state).length;
  if (b.state === "open") return b.closes_at ? t("closing.open", { t: when(b.closes_at, "time") }) : t("closing.open_all_day");
  if (b.state === "todo") return t("closing.todo", { n: num(count("todo"), 0) });
  if (b.state === "known") return t("closing.known", { n: num(count("known"), 0) });
  return t("closing.closed_up");
}

function itemRow(item) {
  const links = [
    item.alert ? h("a", { href: `#/alerts?state=open` }, pick(item, "known")) : null,
    !item.alert && item.order ? h("a", { href: "#/orders" }, pick(item, "known")) : null,
  ];
  return h("li", { class: `closing-item ${item.state}`, dataset: { device: item.device, state: item.state } },
    h("span", { class: "mark", "aria-hidden": "true" }, item.state === "todo" ? "✗" : item.state === "known" ? "!" : "◷"),
    h("div", { class: "grow" },
      h("div", {}, pick(item, "text")),
      item.known_zh ? h("small", { class: "known" }, links) : null),
    item.state !== "todo" ? chip(t(item.state === "known" ? "closing.item_known" : "closing.scheduled"), ITEM_TONE[item.state]) : null);
}

function buildingCard(b) {
  return card(null, [
    h("div", { class: "closing-head" }, h("h2", {}, b.name), chip(buildingStatus(b), BUILDING_TONE[b.state], { dataset: { role: "status" } })),
    b.items.length ? h("ul", { class: "closing-items" }, b.items.map(itemRow))
      : h("p", { class: "muted" }, t("closing.nothing")),
  ], { class: `closing ${b.state}`, "data-building": b.id, "data-state": b.state });
}

function walkDialog(day, done) {
  dialog((close) => {
    const note = h("textarea", { name: "note", rows: 3, maxlength: 2000, placeholder: t("closing.walk.note_hint") });
    const radio = (value, label, checked) => h("label", { class: "choice" },
      h("input", { type: "radio", name: "result", value, checked }), label);
    const error = h("p", { class: "error-text", role: "alert" });
    const form = h("form", { class: "form walk-form" },
      h("h2", {}, t("closing.walk.dialog")),
      h("fieldset", { class: "choices" }, h("legend", {}, t("closing.walk.result")),
        radio("ok", t("closing.walk.ok"), true), radio("problem", t("closing.walk.problem"), false)),
      h("label", {}, t("closing.walk.note"), note), error,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: close }, t("common.cancel")),
        h("button", { type: "submit" }, t("closing.walk.sign"))));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        // The signed-in account is who signed: the body carries only the result and the note.
        await asStaff(() => send("POST", `/api/v1/reports/safety/${day}/items/guard:walkround`,
          { result: form.result.value, note: note.value.trim() }));
        close();
        done();
      } catch (err) {
        error.textContent = failure(err);
      }
    });
    return form;
  });
}

function walkround(c, rerender) {
  const w = c.walkround;
  const body = w
    ? h("p", { class: `walk-signed ${w.result}` },
      chip(w.result === "ok" ? t("closing.walk.ok") : t("closing.walk.problem"), w.result === "ok" ? "ok" : "bad"), " ",
      t(w.result === "ok" ? "closing.walk.signed" : "closing.walk.signed_problem", { who: pick(w.by, "name"), t: when(w.at, "time") }),
      w.note ? h("span", { class: "muted" }, ` · ${w.note}`) : null)
    : h("p", { class: "muted" }, t("closing.walk.todo"));
  const sign = h("button", { type: "button", class: "walk-sign", onclick: async () => {
    if (await signedIn()) walkDialog(c.day, rerender);
  } }, t("closing.walk.sign"));
  return card(t("closing.walk.title"), [body, w ? null : h("div", { class: "actions" }, sign)], { class: "walkround" });
}

async function closing({ rerender }) {
  const c = await get("/api/v1/dashboard/closing");
  const head = h("div", { class: "closing-top" },
    h("span", { class: "muted" }, when(c.day, "date")),
    h("span", { class: "muted updated" }, t("closing.updated", { t: when(c.at, "time") })));
  const sweeps = c.sweeps.map((s) => h("a", { class: "sweep-due", href: s.id ? `#/sweep/${s.id}` : "#/sweep" },
    h("span", {}, t("closing.sweep", { title: pick(s, "title") })), h("strong", {}, `${t("closing.sweep_go")} →`)));
  // The buildings side by side, as many as the width holds; on a phone one column.
  return h("div", { class: "stack closing-board" }, head, sweeps,
    h("div", { class: "grid closing-buildings" }, c.buildings.map(buildingCard)), walkround(c, rerender));
}

export default { render: closing, live: ["reading", "event", "alert", "work_order"] };
