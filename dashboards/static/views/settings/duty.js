// 值班: who is on duty now and next, the people of the roster (what they repair, how they
// are reached) and the shifts with their chains (on duty first, then who is next).

import { get } from "../../api.js";
import { addLabels, t } from "../../i18n.js";
import { card, h } from "../../ui.js";
import { copy, field, group, idField, listEditor, sectionForm } from "./form.js";

addLabels({
  "zh-CN": {
    "duty.now": "当前值班", "duty.next": "其后", "duty.nobody": "此刻没有排班",
    "duty.people": "值班人员", "duty.person_name": "姓名", "duty.person_role": "职务", "duty.person_role_hint": "如：门卫",
    "duty.trades": "会修", "duty.email": "电子邮箱", "duty.mobile": "手机号", "duty.mobile_hint": "用于企业微信、钉钉群机器人 @ 提醒",
    "duty.add_person": "添加人员",
    "duty.shifts": "班次", "duty.days": "哪些日子", "duty.start": "开始", "duty.end": "结束",
    "duty.end_hint": "结束不晚于开始即跨过午夜；00:00 到 00:00 为全天",
    "duty.chain": "先后顺序", "duty.chain_hint": "告警先发给第一位，未确认则依次往后", "duty.who": "第 {n} 位",
    "duty.pick": "请选择", "duty.add_shift": "添加班次", "duty.add_link": "再加一位",
    "duty.remove_person": "删除这个人", "duty.remove_shift": "删除这个班次",
    "duty.timing": "提醒与升级", "duty.remind": "未确认时每隔多少分钟提醒", "duty.escalate": "未确认多少分钟后找下一位",
  },
  en: {
    "duty.now": "On duty now", "duty.next": "Then", "duty.nobody": "Nobody is rostered now",
    "duty.people": "People", "duty.person_name": "Name", "duty.person_role": "Job", "duty.person_role_hint": "e.g. gate guard",
    "duty.trades": "Repairs", "duty.email": "E-mail", "duty.mobile": "Mobile", "duty.mobile_hint": "for @-mentions by WeCom and DingTalk group robots",
    "duty.add_person": "Add a person",
    "duty.shifts": "Shifts", "duty.days": "Days", "duty.start": "From", "duty.end": "To",
    "duty.end_hint": "an end at or before the start runs past midnight; 00:00 to 00:00 is the whole day",
    "duty.chain": "In order", "duty.chain_hint": "alerts go to the first; unacknowledged, to each next in turn", "duty.who": "No. {n}",
    "duty.pick": "Choose", "duty.add_shift": "Add a shift", "duty.add_link": "Add someone",
    "duty.remove_person": "Remove this person", "duty.remove_shift": "Remove this shift",
    "duty.timing": "Reminders and escalation", "duty.remind": "Remind every (min) while unacknowledged",
    "duty.escalate": "Next in the chain after (min) unacknowledged",
  },
});

async function onDuty() {
  const today = await get("/api/v1/calendar");
  const [now, ...next] = today.on_duty;
  return card(t("duty.now"), now ? [h("p", { class: "big-name duty-now" }, now),
    next.length ? h("p", { class: "small" }, h("span", { class: "muted" }, `${t("duty.next")}${t("common.colon")}`), next.join(" → ")) : null]
    : h("p", { class: "muted" }, t("duty.nobody")), { class: "on-duty" });
}

function peopleEditor(ctx, duty, fresh) {
  const trades = { label: t("duty.trades"), type: "list", choices: ctx.catalog.trades };
  return group("fieldset", { class: "people", legend: t("duty.people") }, ["duty", "people"],
    listEditor(ctx, duty.people, (p, i) => h("div", { class: "fields person" },
      idField(ctx, p, ["duty", "people", i, "id"], !fresh.has(p)),
      field(ctx, { label: t("duty.person_name"), type: "text", required: true }, p, "name", ["duty", "people", i, "name"]),
      field(ctx, { label: t("duty.person_role"), type: "text" }, p, "role", ["duty", "people", i, "role"], { placeholder: t("duty.person_role_hint") }),
      field(ctx, trades, p, "trades", ["duty", "people", i, "trades"]),
      field(ctx, { label: t("duty.email"), type: "text", nullable: true }, p, "email", ["duty", "people", i, "email"]),
      field(ctx, { label: t("duty.mobile"), type: "text", nullable: true }, p, "mobile", ["duty", "people", i, "mobile"], { hint: t("duty.mobile_hint") })),
    () => {
      const p = { id: "", name: "", role: "", trades: [], email: null, mobile: null };
      fresh.add(p);
      return p;
    }, { addLabel: t("duty.add_person"), removeLabel: t("duty.remove_person") }));
}

function chainEditor(ctx, duty, shift, i) {
  const who = { label: "", type: "choice", required: true, choices: duty.people.map((p) => ({ id: p.id, zh: p.name, en: p.name })) };
  return group("fieldset", { class: "chain", legend: t("duty.chain") }, ["duty", "shifts", i, "chain"],
    h("small", { class: "muted" }, t("duty.chain_hint")),
    listEditor(ctx, shift.chain, (_, j) => field(ctx, { ...who, label: t("duty.who", { n: j + 1 }) }, shift.chain, j,
      ["duty", "shifts", i, "chain", j], { placeholder: t("duty.pick") }), () => null, { addLabel: t("duty.add_link"), class: "compact" }));
}

function shiftsEditor(ctx, duty) {
  const days = { label: t("duty.days"), type: "list", choices: ctx.catalog.day_keys };
  return group("fieldset", { class: "shifts", legend: t("duty.shifts") }, ["duty", "shifts"],
    listEditor(ctx, duty.shifts, (s, i) => h("div", { class: "shift" },
      field(ctx, days, s, "days", ["duty", "shifts", i, "days"]),
      h("div", { class: "fields" },
        field(ctx, { label: t("duty.start"), type: "time", required: true }, s, "start", ["duty", "shifts", i, "start"]),
        field(ctx, { label: t("duty.end"), type: "time", required: true }, s, "end", ["duty", "shifts", i, "end"], { hint: t("duty.end_hint") })),
      chainEditor(ctx, duty, s, i)),
    () => ({ days: [], start: "00:00", end: "00:00", chain: [null] }), { addLabel: t("duty.add_shift"), removeLabel: t("duty.remove_shift") }));
}

function dutyForm(ctx) {
  const duty = copy(ctx.site.duty);
  const fresh = new WeakSet();
  return sectionForm(ctx, "duty", duty, h("div", { class: "stack" },
    h("section", { class: "card" }, peopleEditor(ctx, duty, fresh)),
    h("section", { class: "card" }, shiftsEditor(ctx, duty)),
    h("section", { class: "card" }, h("h2", {}, t("duty.timing")), h("div", { class: "fields" },
      field(ctx, { label: t("duty.remind"), type: "number", min: 1, required: true }, duty, "remind_every_min", ["duty", "remind_every_min"]),
      field(ctx, { label: t("duty.escalate"), type: "number", min: 1, required: true }, duty, "escalate_after_min", ["duty", "escalate_after_min"])))), { bare: true });
}

export default {
  render: async (ctx) => h("div", { class: "stack" }, await onDuty(), dutyForm(ctx)),
};
