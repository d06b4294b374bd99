"""A JSON Lines upload's records (registry/services/jsonl.py) are the same whether it is split as
text (the bulk route) or as its UTF-8 bytes (``certledger issue`` sends the file's bytes)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from registry.services.jsonl import jsonl_records

# the characters a line break could be confused with, and JSON's own
_PARTS = st.sampled_from(["\n", "\r", "\r\n", " ", "\t", "\u2028", "\u0085", "{}", '{"a":"示例"}', "x", ""])


def test_lines_end_at_lf_only_a_cr_before_it_dropped_and_blank_lines_counted():
    text = '{"a":1}\r\n\n \t\r\n{"b":"\u2028示例"}\r\r\n{"c":3}'
    assert jsonl_records(text) == (['{"a":1}', '{"b":"\u2028示例"}\r', '{"c":3}'], [1, 4, 5])


@given(st.lists(_PARTS, max_size=30).map("".join) | st.text(max_size=200))
def test_the_bytes_give_the_records_of_the_text(text):
    texts, numbers = jsonl_records(text)
    data = text.encode("utf-8", "surrogatepass")
    assert jsonl_records(data) == ([t.encode("utf-8", "surrogatepass") for t in texts], numbers)
