// 设备: the devices by building and room; adding one (or adopting one from the 新设备 inbox),
// editing or moving it to another room, and retiring it (its history is kept). A device's
// kind is chosen by its label; its settings and its own rule parameters come with labels and
// units from the catalog, each showing what it inherits when left empty.

import { get, send } from "../../api.js";
import { addLabels, num, t, when } from "../../i18n.js";
import { dialog, h, refill } from "../../ui.js";
import { copy, field, group, idField, outcome, said, shownDefault, submit } from "./form.js";

addLabels({
  "zh-CN": {
    "devices.add": "添加设备", "devices.none": "这个房间没有设备", "devices.edit": "编辑", "devices.retire": "停用",
    "devices.page": "查看读数", "devices.every": "每 {n} 秒上报", "devices.native": "直接接入",
    "devices.retired": "已停用的设备", "devices.retired_at": "{t} 停用", "devices.retired_none": "没有停用的设备",
    "devices.retire_title": "停用设备", "devices.retire_text": "停用「{name}」后不再接收它的读数、也不再告警；历史数据保留。它的编号以后不能再用。",
    "devices.retire_confirm": "确认停用",
    "device.form_new": "添加设备", "device.form_edit": "编辑设备", "device.form_adopt": "采用新设备",
    "device.name": "名称", "device.name_hint": "如：厨房水表", "device.kind_label": "设备类型", "device.pick_kind": "请选择类型",
    "device.room_label": "所在房间", "device.pick_room": "请选择房间", "device.interval_label": "上报间隔（秒）",
    "device.settings": "设备参数", "device.rules": "告警规则参数（仅此设备）",
    "device.rules_hint": "空着即沿用全校设置（灰字）", "device.source_label": "接入方式", "device.source_fields": "接入参数",
    "device.back": "返回设备列表", "device.not_found": "没有这个设备",
    "device.subitem_label": "能耗分项", "device.no_subitem": "不标注（总表或未分项）",
  },
  en: {
    "devices.add": "Add a device", "devices.none": "No devices in this room", "devices.edit": "Edit", "devices.retire": "Retire",
    "devices.page": "Readings", "devices.every": "reports every {n} s", "devices.native": "Direct",
    "devices.retired": "Retired devices", "devices.retired_at": "retired {t}", "devices.retired_none": "No retired devices",
    "devices.retire_title": "Retire a device", "devices.retire_text": "Once “{name}” is retired its readings are no longer taken and it raises no alerts; its history is kept. Its code cannot be used again.",
    "devices.retire_confirm": "Retire it",
    "device.form_new": "Add a device", "device.form_edit": "Edit a device", "device.form_adopt": "Adopt a new device",
    "device.name": "Name", "device.name_hint": "e.g. Kitchen water meter", "device.kind_label": "Kind of device", "device.pick_kind": "Choose a kind",
    "device.room_label": "Room", "device.pick_room": "Choose a room", "device.interval_label": "Reporting interval (s)",
    "device.settings": "Settings", "device.rules": "Alert rules' parameters (this device only)",
    "device.rules_hint": "empty: the site's setting (in grey)", "device.source_label": "Connected as", "device.source_fields": "Connection",
    "device.back": "All devices", "device.not_found": "No such device",
    "device.subitem_label": "Energy sub-item", "device.no_subitem": "None (a main meter, or not split)",
  },
});

const LIST = "#/settings/devices";

function kindOf(ctx, id) {
  return ctx.catalog.kinds.find((k) => k.id === id);
}

function roomLabel(ctx, roomId) {
  for (const b of ctx.site.buildings) {
    const room = b.rooms.find((r) => r.id === roomId);
    if (room) return `${room.name} · ${b.name}`;
  }
  return t("common.unknown");
}

function retireDialog(ctx, device, root, top) {
  dialog((close) => {
    const form = h("form", { class: "form retire" }, h("h2", {}, t("devices.retire_title")),
      h("p", { class: "warning", role: "note" }, t("devices.retire_text", { name: device.name || said(kindOf(ctx, device.kind)) })),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: close }, t("common.cancel")),
        h("button", { type: "submit", class: "danger" }, t("devices.retire_confirm"))));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      close();
      submit(ctx, root, top, (version) => send("POST", `/api/v1/admin/devices/${encodeURIComponent(device.id)}/retire`, { version }));
    });
    return form;
  });
}

function deviceLine(ctx, d, root, top) {
  const kind = kindOf(ctx, d.kind);
  const protocol = d.source ? ctx.catalog.protocols.find((p) => p.id === d.source.protocol) : null;
  return h("li", { class: "device-line", dataset: { device: d.id } },
    h("div", { class: "grow" }, h("strong", {}, d.name || said(kind)),
      h("p", { class: "muted small" }, [said(kind), t("devices.every", { n: num(d.interval_s, 0) }), protocol ? said(protocol) : null]
        .filter(Boolean).join(" · "))),
    h("a", { href: `#/device/${encodeURIComponent(d.id)}`, class: "page-link" }, t("devices.page")),
    ctx.readOnly ? null : h("a", { href: `${LIST}/edit/${encodeURIComponent(d.id)}`, class: "button secondary edit" }, t("devices.edit")),
    ctx.readOnly ? null : h("button", { type: "button", class: "secondary retire", onclick: () => retireDialog(ctx, d, root, top) }, t("devices.retire")));
}

function listPage(ctx) {
  const top = outcome();
  const root = h("div", { class: "stack devices-admin" });
  root.append(top,
    ctx.readOnly ? null : h("button", { type: "button", class: "add-device", onclick: () => { location.hash = `${LIST}/new`; } }, t("devices.add")),
    ...ctx.site.buildings.map((b) => h("section", { class: "card", dataset: { building: b.id } }, h("h2", {}, b.name),
      b.rooms.map((r) => {
        const here = ctx.site.devices.filter((d) => d.room === r.id);
        return h("div", { class: "room-devices", dataset: { room: r.id } }, h("h3", {}, r.name),
          here.length ? h("ul", { class: "list" }, here.map((d) => deviceLine(ctx, d, root, top))) : h("p", { class: "muted small" }, t("devices.none")));
      }))),
    h("details", { class: "card retired" }, h("summary", {}, t("devices.retired")),
      ctx.site.retired.length ? h("ul", { class: "list" }, ctx.site.retired.map((d) => h("li", { class: "small" },
        `${d.name || said(kindOf(ctx, d.kind))} · ${roomLabel(ctx, d.room)} · ${t("devices.retired_at", { t: when(d.retired_at_ms) })}`)))
        : h("p", { class: "muted small" }, t("devices.retired_none"))));
  return root;
}

/** The room, chosen by building then room. */
function roomField(ctx, device) {
  const select = h("select", { name: "room", "data-path": "device.room", required: true, disabled: ctx.readOnly },
    h("option", { value: "", disabled: true, selected: !device.room }, t("device.pick_room")),
    ctx.site.buildings.map((b) => h("optgroup", { label: b.name },
      b.rooms.map((r) => h("option", { value: r.id, selected: r.id === device.room }, r.name)))));
  select.addEventListener("change", () => { device.room = select.value; });
  return h("label", { class: "field" }, h("span", {}, t("device.room_label")), select,
    h("small", { class: "field-error error-text", role: "alert" }));
}

/** The kind's settings and its rules' parameters for this device; drawn again when the kind changes. */
function kindParts(ctx, device) {
  const kind = kindOf(ctx, device.kind);
  if (!kind) return null;
  device.settings ??= {};
  device.rules ??= {};
  const rules = kind.rules.map((id) => ctx.catalog.rules.find((r) => r.id === id)).filter((r) => r?.params.length);
  // A meter's sub-item (分项) by the guideline's catalog, shown as "01D30 特殊用电·厨房餐厅".
  const subitem = kind.subitems.length
    ? h("div", { class: "fields" }, field(ctx, { label: t("device.subitem_label"), type: "choice", choices: kind.subitems },
      device, "subitem", ["device", "subitem"], { omitEmpty: true, placeholder: t("device.no_subitem") }))
    : null;
  return h("div", { class: "stack" }, subitem,
    kind.settings.length ? group("fieldset", { class: "device-settings", legend: t("device.settings") }, ["device", "settings"],
      h("div", { class: "fields" }, kind.settings.map((f) => field(ctx, f, device.settings, f.key, ["device", "settings", f.key],
        { omitEmpty: !f.required, placeholder: shownDefault(f.default) })))) : null,
    rules.length ? group("fieldset", { class: "device-rules", legend: t("device.rules") }, ["device", "rules"],
      h("small", { class: "muted" }, t("device.rules_hint")),
      rules.map((r) => {
        const own = device.rules[r.id] ?? {};
        const site = ctx.site.rules[r.id] ?? {};
        return h("div", { class: "rule", dataset: { rule: r.id } }, h("h4", {}, said(r)),
          h("div", { class: "fields" }, r.params.map((f) => field(ctx, f, own, f.key, ["device", "rules", r.id, f.key], {
            omitEmpty: true, placeholder: shownDefault(site[f.key] ?? f.default),
            onChange: () => {
              if (Object.keys(own).length) device.rules[r.id] = own;
              else delete device.rules[r.id];
            },
          }))));
      })) : null);
}

function sourceParts(ctx, device) {
  const protocol = device.source ? ctx.catalog.protocols.find((p) => p.id === device.source.protocol) : null;
  if (!protocol?.fields?.length) return null;
  return group("fieldset", { class: "device-source", legend: t("device.source_fields") }, ["device", "source"],
    h("div", { class: "fields" }, protocol.fields.map((f) => field(ctx, f, device.source, f.key, ["device", "source", f.key],
      { omitEmpty: !f.required, placeholder: shownDefault(f.default) }))));
}

function deviceForm(ctx, device, mode) {
  const top = outcome();
  const kindBox = h("div", {});
  const sourceBox = h("div", {});
  const drawKind = () => refill(kindBox, kindParts(ctx, device));
  const drawSource = () => refill(sourceBox, sourceParts(ctx, device));
  drawKind();
  drawSource();
  const kinds = { label: t("device.kind_label"), type: "choice", required: true, choices: ctx.catalog.kinds };
  const protocol = { protocol: device.source?.protocol ?? null };
  const protocols = { label: t("device.source_label"), type: "choice", choices: ctx.catalog.protocols };
  const form = h("form", { class: "form settings-form device-form", dataset: { mode }, novalidate: true },
    h("section", { class: "card stack" },
      h("p", { class: "small" }, h("a", { href: LIST }, `← ${t("device.back")}`)),
      h("h2", {}, t(`device.form_${mode}`)),
      h("div", { class: "fields" },
        field(ctx, { label: t("device.name"), type: "text" }, device, "name", ["device", "name"], { placeholder: t("device.name_hint") }),
        field(ctx, kinds, device, "kind", ["device", "kind"], {
          placeholder: t("device.pick_kind"),
          onChange: () => {
            device.settings = {};
            device.rules = {};
            delete device.subitem;
            drawKind();
          },
        }),
        roomField(ctx, device),
        idField(ctx, device, ["device", "id"], mode === "edit"),
        field(ctx, { label: t("device.interval_label"), type: "number", required: true, min: 1 }, device, "interval_s", ["device", "interval_s"]),
        field(ctx, protocols, protocol, "protocol", ["device", "source", "protocol"], {
          placeholder: t("devices.native"),
          onChange: (id) => {
            device.source = id ? { protocol: id } : null;
            drawSource();
          },
        })),
      sourceBox, kindBox,
      ctx.readOnly ? null : h("div", { class: "save-bar" }, top, h("button", { type: "submit", class: "save" }, t("form.save")))));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const request = mode === "edit"
      ? (version) => send("PUT", `/api/v1/admin/devices/${encodeURIComponent(device.id)}`, { version, device })
      : (version) => send("POST", "/api/v1/admin/devices", { version, device });
    // A problem names the device where it lies in the site file (devices[7].room): here it is "device".
    submit(ctx, form, top, request, (path) => (path[0] === "devices" ? ["device", ...path.slice(2)] : path), () => { location.hash = LIST; });
  });
  return form;
}

async function adopted(ctx, key) {
  const found = (await get("/api/v1/admin/discovered")).find((d) => d.key === key);
  const s = found?.suggestion;
  return { id: s?.id ?? "", name: s?.name ?? "", kind: s?.kind ?? "", room: "", interval_s: 60, settings: {}, rules: {}, source: s?.source ?? null };
}

async function devicesPage(ctx) {
  const [action, id] = ctx.rest.split("/");
  if (action === "new") {
    const device = ctx.params.adopt ? await adopted(ctx, ctx.params.adopt)
      : { id: "", name: "", kind: "", room: "", interval_s: 60, settings: {}, rules: {}, source: null };
    return deviceForm(ctx, device, ctx.params.adopt ? "adopt" : "new");
  }
  if (action === "edit") {
    const device = ctx.site.devices.find((d) => d.id === id);
    if (!device) return h("div", { class: "card error" }, h("p", { role: "alert" }, t("device.not_found")), h("a", { href: LIST }, t("device.back")));
    return deviceForm(ctx, copy(device), "edit");
  }
  return listPage(ctx);
}

export default { render: devicesPage };
