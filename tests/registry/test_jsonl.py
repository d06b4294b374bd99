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


# lines as programs write them (no CR, no blank line), and the ones that take the line-by-line path
_LINES = st.sampled_from(
    ['{"a":1}', '{"b":"示例\u2028"}', "x", " {}", "\t{}", "", " ", "\r", "{}\r", "\u0085"]
)


@given(st.lists(_LINES, max_size=20), st.sampled_from(["", "\n", "\n\n", "\r\n"]))
def test_the_split_only_path_gives_what_the_line_by_line_reading_gives(lines, end):
    from registry.services.jsonl import reference_jsonl_records

    text = "\n".join(lines) + end
    for t in (text, text.encode()):
        assert jsonl_records(t) == reference_jsonl_records(t)


def test_a_last_lf_ends_the_last_record_and_an_empty_text_has_none():
    text = '{"a":1}\n{"b":2}\n{"c":3}\n'
    assert jsonl_records(text) == (['{"a":1}', '{"b":2}', '{"c":3}'], [1, 2, 3])
    assert jsonl_records(text.encode()) == ([b'{"a":1}', b'{"b":2}', b'{"c":3}'], [1, 2, 3])
    assert jsonl_records("") == ([], []) and jsonl_records(b"") == ([], [])
