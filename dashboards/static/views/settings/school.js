// 学校与楼宇: the school's name and kind, and its buildings with their rooms, floor area,
// headcount and standby power.

import { addLabels, t } from "../../i18n.js";
import { h } from "../../ui.js";
import { copy, field, group, idField, listEditor, sectionForm } from "./form.js";

addLabels({
  "zh-CN": {
    "school.title": "学校", "school.name": "校名", "school.kind": "学校类型", "school.timezone": "时区",
    "school.timezone_hint": "中国大陆的学校不用改", "school.headcount": "总人数（师生）",
    "school.headcount_hint": "不填则按各楼人数相加",
    "buildings.list": "楼宇", "building.name": "楼名", "building.area": "建筑面积（平方米）",
    "building.headcount": "使用人数", "building.standby": "闭园时应有的待机功率（瓦）",
    "building.rooms": "房间", "room.name": "房间名", "room.type": "用途",
    "building.add": "添加楼宇", "building.remove": "删除这栋楼", "room.add": "添加房间", "room.remove": "删除房间",
    "building.new": "新楼宇", "room.none": "这栋楼还没有房间",
  },
  en: {
    "school.title": "School", "school.name": "Name", "school.kind": "Kind of school", "school.timezone": "Time zone",
    "school.timezone_hint": "schools in mainland China keep it", "school.headcount": "Headcount (children and staff)",
    "school.headcount_hint": "empty: the buildings' headcounts added up",
    "buildings.list": "Buildings", "building.name": "Name", "building.area": "Floor area (m²)",
    "building.headcount": "People using it", "building.standby": "Expected standby power while closed (W)",
    "building.rooms": "Rooms", "room.name": "Room name", "room.type": "Used as",
    "building.add": "Add a building", "building.remove": "Remove this building", "room.add": "Add a room", "room.remove": "Remove the room",
    "building.new": "New building", "room.none": "No rooms yet",
  },
});

function schoolForm(ctx) {
  const { site, catalog } = ctx;
  const value = { name: site.name, kind: site.kind, timezone: site.timezone, headcount: site.headcount ?? null };
  return sectionForm(ctx, "school", value, h("div", { class: "form-body" }, h("h2", {}, t("school.title")),
    h("div", { class: "fields" },
      field(ctx, { label: t("school.name"), type: "text", required: true }, value, "name", ["name"]),
      field(ctx, { label: t("school.kind"), type: "choice", required: true, choices: catalog.school_kinds }, value, "kind", ["kind"]),
      field(ctx, { label: t("school.timezone"), type: "text", required: true }, value, "timezone", ["timezone"], { hint: t("school.timezone_hint") }),
      field(ctx, { label: t("school.headcount"), type: "integer", min: 1 }, value, "headcount", ["headcount"], { hint: t("school.headcount_hint") }))));
}

function roomsEditor(ctx, building, i, fresh) {
  return listEditor(ctx, building.rooms, (room, j) => h("div", { class: "fields room-fields", dataset: { room: room.id } },
    idField(ctx, room, ["buildings", i, "rooms", j, "id"], !fresh.has(room)),
    field(ctx, { label: t("room.name"), type: "text", required: true }, room, "name", ["buildings", i, "rooms", j, "name"]),
    field(ctx, { label: t("room.type"), type: "choice", required: true, choices: ctx.catalog.room_types }, room, "type",
      ["buildings", i, "rooms", j, "type"])),
  () => {
    const room = { id: "", name: "", type: "other" };
    fresh.add(room);
    return room;
  }, { addLabel: t("room.add"), removeLabel: t("room.remove"), empty: t("room.none"), class: "rooms-editor" });
}

function buildingsForm(ctx) {
  const buildings = copy(ctx.site.buildings);
  const fresh = new WeakSet();
  const editor = listEditor(ctx, buildings, (b, i) => group("fieldset", { class: "building", dataset: { building: b.id }, legend: b.name || t("building.new") }, ["buildings", i],
    h("div", { class: "fields" },
      idField(ctx, b, ["buildings", i, "id"], !fresh.has(b)),
      field(ctx, { label: t("building.name"), type: "text", required: true }, b, "name", ["buildings", i, "name"]),
      field(ctx, { label: t("building.area"), type: "number" }, b, "floor_area_m2", ["buildings", i, "floor_area_m2"]),
      field(ctx, { label: t("building.headcount"), type: "integer" }, b, "headcount", ["buildings", i, "headcount"]),
      field(ctx, { label: t("building.standby"), type: "number" }, b, "standby_w", ["buildings", i, "standby_w"])),
    h("h3", {}, t("building.rooms")),
    group("div", {}, ["buildings", i, "rooms"], roomsEditor(ctx, b, i, fresh))),
  () => {
    const room = { id: "", name: "", type: "other" };
    const b = { id: "", name: "", floor_area_m2: null, headcount: null, standby_w: null, opening_hours: null, rooms: [room] };
    fresh.add(b);
    fresh.add(room);
    return b;
  }, { addLabel: t("building.add"), removeLabel: t("building.remove"), class: "buildings-editor" });
  return sectionForm(ctx, "buildings", buildings, h("div", { class: "form-body" }, h("h2", {}, t("buildings.list")), editor));
}

export default {
  render: (ctx) => h("div", { class: "stack" }, schoolForm(ctx), buildingsForm(ctx)),
};
