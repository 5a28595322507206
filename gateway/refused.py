"""A request that a register (留样, the UV lamps' care) does not take, with the reason said to
the person in both languages and the HTTP status its route answers with."""

from __future__ import annotations


class Refused(Exception):
    """A request the register does not take, said to the person in both languages."""

    def __init__(self, status: int, zh: str, en: str) -> None:
        super().__init__(en)
        self.status = status
        self.zh = zh
        self.en = en
