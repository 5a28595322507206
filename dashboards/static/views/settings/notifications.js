// 通知: where alerts and reports go (e-mail, WeCom and DingTalk robots, a webhook, MQTT), each
// channel with a 发送测试消息 button, and which alerts each gets: from which severity up, of
// which rules, in which buildings.

import { send } from "../../api.js";
import { addLabels, t } from "../../i18n.js";
import { failure, h } from "../../ui.js";
import { copy, field, group, idField, listEditor, said, sectionForm, shownDefault } from "./form.js";

addLabels({
  "zh-CN": {
    "notify.title": "通知渠道", "notify.type": "渠道类型", "notify.add": "添加渠道", "notify.remove": "删除这个渠道",
    "notify.test": "发送测试消息", "notify.testing": "正在发送…", "notify.routing": "发哪些告警",
    "notify.severity": "从哪个级别起", "notify.rules": "哪些规则", "notify.rules_hint": "都不选即全部规则",
    "notify.buildings": "哪些楼宇", "notify.buildings_hint": "都不选即全部楼宇",
    "notify.timing": "发送失败时", "notify.retry_first": "第一次重试等待（秒）", "notify.retry_max": "重试间隔最长（秒）",
    "notify.give_up": "多少小时仍未送达则放弃",
  },
  en: {
    "notify.title": "Channels", "notify.type": "Kind of channel", "notify.add": "Add a channel", "notify.remove": "Remove this channel",
    "notify.test": "Send a test message", "notify.testing": "Sending…", "notify.routing": "Which alerts",
    "notify.severity": "From severity", "notify.rules": "Rules", "notify.rules_hint": "none ticked: every rule",
    "notify.buildings": "Buildings", "notify.buildings_hint": "none ticked: every building",
    "notify.timing": "When a send fails", "notify.retry_first": "First retry after (s)", "notify.retry_max": "Longest wait between retries (s)",
    "notify.give_up": "Give up after (h) undelivered",
  },
});

// What every channel has, edited here the same way whatever its kind; its own fields come from the catalog.
const COMMON = new Set(["id", "type", "min_severity", "rules", "buildings", "queue"]);
const KNOWN = new Set(["number", "integer", "boolean", "text", "choice", "time", "list"]);

function testButton(channel) {
  const result = h("p", { class: "test-result", role: "status" });
  const button = h("button", { type: "button", class: "secondary test", onclick: async () => {
    button.disabled = true;
    result.className = "test-result muted";
    result.textContent = t("notify.testing");
    try {
      const out = await send("POST", "/api/v1/admin/channels/test", { channel });
      result.className = `test-result ${out.ok ? "ok-text" : "error-text"}`;
      result.textContent = said(out);
    } catch (err) {
      result.className = "test-result error-text";
      result.textContent = failure(err);
    } finally {
      button.disabled = false;
    }
  } }, t("notify.test"));
  return h("div", { class: "test-line" }, button, result);
}

function channelFields(ctx, channel, i, fresh) {
  const type = ctx.catalog.channel_types.find((x) => x.id === channel.type);
  const path = (key) => ["notifications", "channels", i, key];
  const buildings = ctx.site.buildings.map((b) => ({ id: b.id, zh: b.name, en: b.name }));
  return h("div", { class: "channel", dataset: { channel: channel.id, type: channel.type } },
    h("h3", {}, said(type)),
    h("div", { class: "fields" }, idField(ctx, channel, path("id"), !fresh.has(channel)),
      (type?.fields ?? []).filter((f) => !COMMON.has(f.key) && KNOWN.has(f.type))
        .map((f) => field(ctx, f, channel, f.key, path(f.key), { placeholder: shownDefault(f.default) }))),
    h("h4", {}, t("notify.routing")),
    h("div", { class: "fields" }, field(ctx, { label: t("notify.severity"), type: "choice", required: true, choices: ctx.catalog.severities },
      channel, "min_severity", path("min_severity"))),
    field(ctx, { label: t("notify.rules"), type: "list", choices: ctx.catalog.rules }, channel, "rules", path("rules"), { omitEmpty: true, hint: t("notify.rules_hint") }),
    field(ctx, { label: t("notify.buildings"), type: "list", choices: buildings }, channel, "buildings", path("buildings"), { omitEmpty: true, hint: t("notify.buildings_hint") }),
    testButton(channel));
}

function newChannel(ctx, typeId) {
  const type = ctx.catalog.channel_types.find((x) => x.id === typeId);
  const channel = { id: "", type: typeId, min_severity: "warning" };
  for (const f of type.fields ?? []) if (!COMMON.has(f.key) && f.default != null) channel[f.key] = copy(f.default);
  return channel;
}

function notificationsForm(ctx) {
  const value = copy(ctx.site.notifications);
  const fresh = new WeakSet();
  const kind = h("select", { name: "new_type", "aria-label": t("notify.type") },
    ctx.catalog.channel_types.map((x) => h("option", { value: x.id }, said(x))));
  const list = listEditor(ctx, value.channels, (c, i) => channelFields(ctx, c, i, fresh), () => {
    const c = newChannel(ctx, kind.value);
    fresh.add(c);
    return c;
  }, { addLabel: t("notify.add"), removeLabel: t("notify.remove"), class: "channels",
    addWith: h("label", { class: "field new-type" }, h("span", {}, t("notify.type")), kind) });
  return sectionForm(ctx, "notifications", value, h("div", { class: "stack" },
    h("section", { class: "card" }, h("h2", {}, t("notify.title")),
      group("div", {}, ["notifications", "channels"], list)),
    h("section", { class: "card" }, h("h2", {}, t("notify.timing")), h("div", { class: "fields" },
      field(ctx, { label: t("notify.retry_first"), type: "number", required: true }, value, "retry_first_s", ["notifications", "retry_first_s"]),
      field(ctx, { label: t("notify.retry_max"), type: "number", required: true }, value, "retry_max_s", ["notifications", "retry_max_s"]),
      field(ctx, { label: t("notify.give_up"), type: "number", required: true }, value, "give_up_after_h", ["notifications", "give_up_after_h"])))), { bare: true });
}

export default { render: notificationsForm };
