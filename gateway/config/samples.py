"""The 留样 register's settings (`samples:`): how much of each dish is kept, for how long, and
the meals whose samples are due by a time of day.

Defaults follow 《学校食品安全与营养健康管理规定》 as widely restated: at least 125 g of every
dish of every meal, kept refrigerated for at least 48 hours (local rules ask for 100, 150 or
200 g: set the site's). The meals are a kindergarten's: breakfast, lunch and the afternoon
snack on school days (docs/samples.md).
"""

from __future__ import annotations

from datetime import time
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

# When a meal is served: on the school calendar's school days (调休 included), or every day
# (a boarding school's canteen).
MealDays = Literal["school_days", "every_day"]


class Meal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="e.g. lunch; names the record's item sample:lunch")
    label_zh: str = Field(min_length=1, max_length=20)
    label_en: str = Field(min_length=1, max_length=40)
    deadline: time = Field(description="its samples are registered by this local time")
    days: MealDays = "school_days"


def _kindergarten() -> list[Meal]:
    return [
        Meal(id="breakfast", label_zh="早餐", label_en="Breakfast", deadline=time(8, 30)),
        Meal(id="lunch", label_zh="午餐", label_en="Lunch", deadline=time(12, 30)),
        Meal(id="snack", label_zh="午点", label_en="Afternoon snack", deadline=time(15, 30)),
    ]


class SampleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_weight_g: float = Field(125, gt=0, le=1000, description="the least of each dish kept")
    keep_h: float = Field(48, gt=0, le=24 * 14, description="kept at least this long before it may be discarded")
    meals: list[Meal] = Field(default_factory=_kindergarten, min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        seen: set[str] = set()
        for i, meal in enumerate(self.meals):
            if meal.id in seen:
                raise ValueError(f"@samples.meals[{i}].id: meal {meal.id!r} is listed twice")
            seen.add(meal.id)
        return self

    def meal(self, meal_id: str) -> Meal | None:
        return next((m for m in self.meals if m.id == meal_id), None)
