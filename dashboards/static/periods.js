// Reporting periods as people pick them: quarters (2026 年第三季度) and years, the newest
// first and the one in progress said so. Shared by the school's reports and the district's page.

import { addLabels, isZh, t } from "./i18n.js";

addLabels({
  "zh-CN": { "period.in_progress": "{p}（进行中）", "period.year": "{y} 年" },
  en: { "period.in_progress": "{p} (in progress)", "period.year": "{y}" },
});

/** A quarter as people write it: 2026 年第三季度, Q3 2026. */
export function quarterName(year, n) {
  return isZh() ? `${year} 年第${"一二三四"[n - 1]}季度` : `Q${n} ${year}`;
}

/** "2026-Q3" as people write it. */
export function quarterWords(value) {
  const [year, n] = value.split("-Q").map(Number);
  return quarterName(year, n);
}

/** The last `count` quarters before `today` ({ year, month }), this one first, as [value, text]. */
export function quarters(today, count = 8) {
  const now = today.year * 4 + Math.floor((today.month - 1) / 3);
  return Array.from({ length: count }, (_, i) => {
    const year = Math.floor((now - i) / 4);
    const n = ((now - i) % 4) + 1;
    const name = quarterName(year, n);
    return [`${year}-Q${n}`, i === 0 ? t("period.in_progress", { p: name }) : name];
  });
}

/** This year and the 2 before, as [value, text]. */
export function years(today) {
  return [0, 1, 2].map((i) => {
    const name = t("period.year", { y: today.year - i });
    return [String(today.year - i), i === 0 ? t("period.in_progress", { p: name }) : name];
  });
}
