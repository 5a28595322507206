// Labels and number/date formats in the dashboard's two languages. zh-CN is the default;
// the choice is kept in the browser. Names from the site file (buildings, rooms, devices) and
// alert texts (the gateway sends both languages) are not translated here.

const LABELS = {
  "zh-CN": {
    "nav.district": "← 全区", "nav.overview": "概览", "nav.closing": "闭园检查", "nav.buildings": "楼宇房间", "nav.alerts": "告警",
    "nav.orders": "工单", "nav.reports": "报表",
    "live.connected": "实时", "live.connecting": "连接中…", "live.down": "已断开，正在重连",
    "lang.switch": "EN", "lang.name": "English",
    "user.login": "登录", "user.logout": "退出",
    "login.title": "登录", "login.username": "用户名", "login.password": "密码", "login.submit": "登录",
    "login.needed": "请先登录，再办理此事", "login.wrong": "用户名或密码不对",
    "login.locked": "登录失败次数太多，请 {s} 秒后再试", "login.offline": "连不上网关，请稍后再试",
    "action.offline": "连不上网关，未保存，请稍后再试", "action.forbidden": "您的账号无权办理此事，请换有权限的账号登录",
    "action.too_large": "文件太大，未保存", "action.conflict": "记录已被他人更改，请刷新后再试",
    "action.invalid": "填写的内容不符合要求，请检查后再试", "action.failed": "未保存，请稍后再试",
    "common.cancel": "取消", "common.close": "关闭", "common.loading": "加载中…", "common.none": "无", "common.error": "出错了",
    "common.retry": "重试", "common.offline": "离线", "common.online": "在线", "common.all": "全部",
    "common.unknown": "未知", "common.since": "自 {t} 起", "common.updated": "更新于 {t}", "common.colon": "：",
    "common.load_failed": "没能加载，请稍后重试", "common.menu": "菜单",
    "day.school": "上学日", "day.closed": "非上学日", "day.school.kindergarten": "开园日", "day.closed.kindergarten": "不开园",
    "value.on": "开", "value.off": "关",
    "overview.alerts": "未处理告警", "overview.unacked": "{n} 条待确认",
    "overview.energy": "今日能耗", "overview.electricity": "用电", "overview.water": "用水",
    "overview.today": "今日累计", "overview.yesterday": "昨日同期", "overview.last_week": "上周同日同期",
    "overview.yesterday_total": "昨日全天 {v}", "overview.fridges": "留样冰箱", "overview.doors": "当前开着的门",
    "overview.lamps": "今日紫外线消毒", "overview.offline": "离线设备", "overview.no_doors": "所有门已关",
    "overview.no_offline": "全部在线", "overview.range": "范围 {lo}–{hi} °C",
    "fridge.ok": "正常", "fridge.out": "超出范围",
    "lamp.running": "消毒中", "lamp.ran": "已完成", "lamp.due": "待消毒", "lamp.missed": "未完成", "lamp.unknown": "不详",
    "lamp.none": "今日无需", "lamp.minutes": "{ran}/{need} 分钟",
    "severity.critical": "紧急", "severity.major": "重要", "severity.minor": "一般", "severity.warning": "提示",
    "buildings.title": "楼宇房间", "buildings.no_devices": "无设备",
    "device.history": "历史", "device.range.24h": "24 小时", "device.range.7d": "7 天", "device.range.30d": "30 天",
    "device.metadata": "设备信息", "device.alerts": "最近告警", "device.events": "最近刷卡/开门记录",
    "device.kind": "类型", "device.room": "房间", "device.building": "楼宇",
    "device.interval": "上报间隔", "device.last_seen": "最后上报", "device.source": "数据来源",
    "source.native": "直接接入", "source.zigbee2mqtt": "Zigbee2MQTT", "source.tasmota": "Tasmota",
    "source.shelly": "Shelly", "source.modbus": "Modbus 轮询", "source.dlt645": "DL/T 645 轮询",
    "device.no_data": "此时段无数据", "device.per_bucket": "每段用量", "device.not_found": "没有这个设备",
    "alerts.title": "告警", "alerts.state": "状态", "alerts.severity": "级别", "alerts.building": "楼宇",
    "alerts.rule": "规则", "alerts.ack": "确认", "alerts.ack_title": "确认告警", "alerts.comment": "处理说明",
    "alerts.comment_hint": "例如：已到现场，已关阀门", "alerts.acked_by": "{who} 于 {t} 确认",
    "alerts.history": "处理记录", "alerts.count": "第 {n} 次", "alerts.first": "开始 {t}", "alerts.raised": "告警 {t}", "alerts.cleared": "已于 {t} 恢复",
    "alerts.none": "没有符合条件的告警",
    "state.open": "未恢复", "state.active": "未确认", "state.acknowledged": "已确认", "state.cleared": "已恢复",
    "transition.raised": "触发", "transition.repeated": "再次发生", "transition.reminder": "提醒",
    "transition.escalated": "升级", "transition.acknowledged": "确认", "transition.cleared": "恢复",
    "district.title": "全区学校总览", "district.login": "请用区级账号登录", "district.other_account": "换区级账号登录",
    "district.month": "月份", "district.pdf": "下载 PDF 月报", "district.csv": "下载 CSV", "district.preparing": "正在生成…",
    "district.month_to_date": "月初至今", "district.whole_month": "全月", "district.table": "各校排名",
    "district.table_note": "按每平方米用电排序；点表头可按该列排序；标色的学校需要关注，原因写在校名下。点校名进入该校。",
    "district.schools": "学校", "district.attention_n": "{n} 所需要关注", "district.median": "全区中位数 {v}",
    "district.serious": "紧急或重要 {n} 条", "district.alerts_serious": "{n}（紧急或重要 {serious}）",
    "district.ledger_of": "{signed}/{days} 校日已签字",
    "district.col.rank": "名次", "district.col.name": "学校", "district.col.kwh_per_m2": "每平方米用电",
    "district.col.electricity": "用电", "district.col.kwh_per_person": "人均用电", "district.col.water": "用水",
    "district.col.water_per_person": "人均用水", "district.col.after_hours": "闭园用电占比", "district.col.waste": "闭园浪费",
    "district.col.vs_last_year": "比去年同期", "district.col.alerts": "未恢复告警", "district.col.orders": "逾期工单",
    "district.col.ledger": "台账签字",
    "district.accounts": "区级账号", "district.league": "← 各校排名",
    "district.accounts_note": "区级账号可以登录全区每一所学校，在每所学校的权限都按这里设的来。各校自己的账号由学校的管理员在本校「设置」里管理。",
  },
  en: {
    "nav.district": "← District", "nav.overview": "Overview", "nav.closing": "Closing check", "nav.buildings": "Buildings", "nav.alerts": "Alerts",
    "nav.orders": "Work orders", "nav.reports": "Reports",
    "live.connected": "Live", "live.connecting": "Connecting…", "live.down": "Disconnected, retrying",
    "lang.switch": "中文", "lang.name": "中文",
    "user.login": "Log in", "user.logout": "Log out",
    "login.title": "Log in", "login.username": "User name", "login.password": "Password", "login.submit": "Log in",
    "login.needed": "Please log in first to do this", "login.wrong": "Wrong user name or password",
    "login.locked": "Too many failed logins: try again in {s} s", "login.offline": "Cannot reach the gateway: try again later",
    "action.offline": "Cannot reach the gateway: nothing was saved, try again later",
    "action.forbidden": "Your account may not do this: log in with one that may",
    "action.too_large": "The file is too large: nothing was saved", "action.conflict": "Someone changed this meanwhile: reload and try again",
    "action.invalid": "Something filled in is not allowed: check and try again", "action.failed": "Not saved: try again later",
    "common.cancel": "Cancel", "common.close": "Close", "common.loading": "Loading…", "common.none": "None", "common.error": "Something went wrong",
    "common.retry": "Retry", "common.offline": "Offline", "common.online": "Online", "common.all": "All",
    "common.unknown": "Unknown", "common.since": "since {t}", "common.updated": "updated {t}", "common.colon": ": ",
    "common.load_failed": "Could not load this page: try again later", "common.menu": "Menu",
    "day.school": "School day", "day.closed": "No school", "day.school.kindergarten": "Open day", "day.closed.kindergarten": "Closed day",
    "value.on": "On", "value.off": "Off",
    "overview.alerts": "Open alerts", "overview.unacked": "{n} to acknowledge",
    "overview.energy": "Today's consumption", "overview.electricity": "Electricity", "overview.water": "Water",
    "overview.today": "Today so far", "overview.yesterday": "Yesterday, same time",
    "overview.last_week": "Same day last week", "overview.yesterday_total": "All of yesterday {v}",
    "overview.fridges": "Sample fridges", "overview.doors": "Doors open now", "overview.lamps": "UV disinfection today",
    "overview.offline": "Devices offline", "overview.no_doors": "All doors closed", "overview.no_offline": "All online",
    "overview.range": "range {lo}–{hi} °C",
    "fridge.ok": "In range", "fridge.out": "Out of range",
    "lamp.running": "Running", "lamp.ran": "Done", "lamp.due": "Due", "lamp.missed": "Missed", "lamp.unknown": "Unknown", "lamp.none": "Not today",
    "lamp.minutes": "{ran}/{need} min",
    "severity.critical": "Critical", "severity.major": "Major", "severity.minor": "Minor", "severity.warning": "Warning",
    "buildings.title": "Buildings and rooms", "buildings.no_devices": "No devices",
    "device.history": "History", "device.range.24h": "24 h", "device.range.7d": "7 days", "device.range.30d": "30 days",
    "device.metadata": "Device", "device.alerts": "Recent alerts", "device.events": "Recent card and door events",
    "device.kind": "Kind", "device.room": "Room", "device.building": "Building",
    "device.interval": "Reporting interval", "device.last_seen": "Last heard", "device.source": "Data from",
    "source.native": "direct", "source.zigbee2mqtt": "Zigbee2MQTT", "source.tasmota": "Tasmota",
    "source.shelly": "Shelly", "source.modbus": "Modbus (polled)", "source.dlt645": "DL/T 645 (polled)",
    "device.no_data": "No data in this range", "device.per_bucket": "Use per interval",
    "device.not_found": "No such device",
    "alerts.title": "Alerts", "alerts.state": "State", "alerts.severity": "Severity", "alerts.building": "Building",
    "alerts.rule": "Rule", "alerts.ack": "Acknowledge", "alerts.ack_title": "Acknowledge alert", "alerts.comment": "What was done",
    "alerts.comment_hint": "e.g. on site, valve closed", "alerts.acked_by": "acknowledged by {who} at {t}",
    "alerts.history": "What happened", "alerts.count": "{n} times", "alerts.first": "began {t}", "alerts.raised": "raised {t}", "alerts.cleared": "cleared {t}",
    "alerts.none": "No alerts match",
    "state.open": "Not cleared", "state.active": "Active", "state.acknowledged": "Acknowledged", "state.cleared": "Cleared",
    "transition.raised": "raised", "transition.repeated": "repeated", "transition.reminder": "reminder",
    "transition.escalated": "escalated", "transition.acknowledged": "acknowledged", "transition.cleared": "cleared",
    "district.title": "District overview", "district.login": "Log in with a district account",
    "district.other_account": "Log in with a district account", "district.month": "Month", "district.pdf": "Download the PDF report",
    "district.csv": "Download CSV", "district.preparing": "Preparing…", "district.month_to_date": "Month to date",
    "district.whole_month": "Whole month", "district.table": "Schools ranked",
    "district.table_note": "By electricity per m²; click a heading to sort by it; marked schools need a look, the reasons under their names. Click a name to open the school.",
    "district.schools": "Schools", "district.attention_n": "{n} need a look", "district.median": "district median {v}",
    "district.serious": "{n} critical or major", "district.alerts_serious": "{n} ({serious} critical or major)",
    "district.ledger_of": "{signed} of {days} school-days signed",
    "district.col.rank": "Rank", "district.col.name": "School", "district.col.kwh_per_m2": "Electricity per m²",
    "district.col.electricity": "Electricity", "district.col.kwh_per_person": "Electricity per person", "district.col.water": "Water",
    "district.col.water_per_person": "Water per person", "district.col.after_hours": "After hours", "district.col.waste": "Left on after hours",
    "district.col.vs_last_year": "vs last year", "district.col.alerts": "Open alerts", "district.col.orders": "Work orders past due",
    "district.col.ledger": "Records signed",
    "district.accounts": "District accounts", "district.league": "← Schools ranked",
    "district.accounts_note": "A district account logs in at every school of the district, with the role set here at each of them. A school's own accounts are managed by its administrators, in the school's Settings.",
  },
};

/** The word for a day people come in (or do not), by what sort of school the site is:
 * a kindergarten has 开园日 where a school has 上学日. */
export function dayWord(site, schoolDay) {
  const key = schoolDay ? "day.school" : "day.closed";
  return site?.kind === "kindergarten" ? t(`${key}.kindergarten`) : t(key);
}

// Unit symbols as a Chinese page writes them where the symbol is not one people read there.
const UNIT_WORDS = { "zh-CN": { "L/min": "升/分钟", h: "小时" } };

/** A unit as the page's language writes it: L/min is 升/分钟 in Chinese; kWh, m³ and °C stay. */
export function unitWord(unit) {
  return UNIT_WORDS[lang]?.[unit] ?? unit;
}

/** A view's own labels, `{ "zh-CN": {...}, en: {...} }`, added to the common ones above. */
export function addLabels(labels) {
  for (const [language, entries] of Object.entries(labels)) Object.assign(LABELS[language], entries);
}

export const LANGS = Object.keys(LABELS);
const STORE_KEY = "facility.lang";

let lang = localStorage.getItem(STORE_KEY) || document.body.dataset.lang || "zh-CN";
if (!LABELS[lang]) lang = "zh-CN";
let timeZone = "Asia/Shanghai";

export function language() { return lang; }
export function isZh() { return lang === "zh-CN"; }

export function setLanguage(next) {
  lang = LABELS[next] ? next : "zh-CN";
  localStorage.setItem(STORE_KEY, lang);
  document.documentElement.lang = lang;
}

export function setTimeZone(tz) { timeZone = tz; }

/** The label for `key`, with {name} placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const text = LABELS[lang][key] ?? LABELS["zh-CN"][key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

/** Picks the language's half of a pair the gateway sends (title_zh / title_en, label_zh / …). */
export function pick(obj, field) {
  return isZh() ? obj[`${field}_zh`] : obj[`${field}_en`];
}

export function num(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return cached(`num:${digits}`, () => new Intl.NumberFormat(lang, { maximumFractionDigits: digits, minimumFractionDigits: 0 }))
    .format(value);
}

// Building an Intl formatter costs about half a millisecond: each is made once per language.
const formats = new Map();
function cached(key, make) {
  const full = `${lang}:${key}`;
  if (!formats.has(full)) formats.set(full, make());
  return formats.get(full);
}

export function pct(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return cached("pct", () => new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 0, signDisplay: "exceptZero" }))
    .format(value);
}

const FORMATS = {
  time: { hour: "2-digit", minute: "2-digit", hourCycle: "h23" },
  datetime: { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" },
  date: { year: "numeric", month: "long", day: "numeric", weekday: "long" },
  day: { month: "short", day: "numeric", weekday: "short" },
  axis: { month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" },
};

/** A moment in the site's time zone (the school's clock, wherever the browser is). */
export function when(value, style = "datetime") {
  if (value === null || value === undefined) return "–";
  const d = value instanceof Date ? value : new Date(value);
  return cached(`date:${style}:${timeZone}`, () => new Intl.DateTimeFormat(lang, { ...FORMATS[style], timeZone })).format(d);
}
