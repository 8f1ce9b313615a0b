"""
Tests for gocast.config.vibe: every rule of VIBE 1.0, its limits, the
canonical emitter, and the official conformance fixtures when they are
present beside the checkout.
"""

import io
import json

from twisted.trial.unittest import SynchronousTestCase

from gocast.config import vibe
from gocast.config.vibe import Limits, VibeError, dumps, load, loads, parse

from .shared import require, shared_path

_FIXTURES = shared_path("GOCAST_VIBE_CONFORMANCE", "vibe-conformance")


def tagged(value):
    """Encode a parsed tree in the fixtures' tagged interchange encoding."""
    if isinstance(value, dict):
        return {k: tagged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [tagged(v) for v in value]
    if isinstance(value, bool):
        return {"type": "boolean", "value": "true" if value else "false"}
    if isinstance(value, int):
        return {"type": "integer", "value": str(value)}
    if isinstance(value, float):
        return {"type": "float", "value": vibe._format_float(value)}
    return {"type": "string", "value": value}


class ConformanceTests(SynchronousTestCase):
    """The official fixtures: 100% must pass."""

    def setUp(self):
        require(_FIXTURES)

    def test_fixtures_found(self):
        """The folder holds all three kinds of fixture."""
        for kind in ("valid", "invalid", "canonical"):
            self.assertTrue(list((_FIXTURES / kind).glob("*.vibe")), kind)

    def test_valid(self):
        for path in sorted((_FIXTURES / "valid").glob("*.vibe")):
            expected = json.loads(path.with_suffix(".json").read_text("utf-8"))
            self.assertEqual(tagged(loads(path.read_bytes())), expected, path.name)

    def test_invalid(self):
        for path in sorted((_FIXTURES / "invalid").glob("*.vibe")):
            code = path.with_suffix(".txt").read_text("utf-8").strip()
            with self.assertRaises(VibeError, msg=path.name) as caught:
                loads(path.read_bytes(), filename=path.name)
            self.assertEqual(caught.exception.code, code, path.name)
            self.assertGreaterEqual(caught.exception.line, 1)
            self.assertGreaterEqual(caught.exception.column, 1)

    def test_canonical(self):
        for path in sorted((_FIXTURES / "canonical").glob("*.vibe")):
            expected = path.with_suffix(".canon").read_text("utf-8")
            tree = loads(path.read_bytes())
            emitted = dumps(tree)
            self.assertEqual(emitted, expected, path.name)
            self.assertEqual(loads(emitted), tree, path.name)
            self.assertEqual(dumps(loads(emitted)), emitted, path.name)


class ScalarTests(SynchronousTestCase):
    def test_type_inference(self):
        tree = loads(
            "i 42\nn -17\nf 3.25\nnf -0.5\nt true\nfa false\ns hello\n"
            "v 2.1.0\nsci 1.5e10\nnan NaN\ncap True\nno no\nmix 12abc\n"
        )
        self.assertEqual(
            tree,
            {
                "i": 42, "n": -17, "f": 3.25, "nf": -0.5, "t": True, "fa": False,
                "s": "hello", "v": "2.1.0", "sci": "1.5e10", "nan": "NaN",
                "cap": "True", "no": "no", "mix": "12abc",
            },
        )
        self.assertIs(type(tree["i"]), int)
        self.assertIs(type(tree["f"]), float)

    def test_quoted_is_always_string(self):
        self.assertEqual(loads('a "42"\nb "true"'), {"a": "42", "b": "true"})

    def test_int64_bounds(self):
        self.assertEqual(
            loads("a 9223372036854775807\nb -9223372036854775808"),
            {"a": 2**63 - 1, "b": -(2**63)},
        )
        for text in ("a 9223372036854775808", "a -9223372036854775809", "a " + "9" * 5000):
            with self.assertRaises(VibeError) as caught:
                loads(text)
            self.assertEqual(caught.exception.code, "invalid-number")

    def test_huge_float(self):
        with self.assertRaises(VibeError) as caught:
            loads("a " + "9" * 400 + ".5")
        self.assertEqual(caught.exception.code, "invalid-number")

    def test_leading_zeros(self):
        self.assertEqual(loads("a 007\nb 00.50"), {"a": 7, "b": 0.5})


class StringTests(SynchronousTestCase):
    def test_escapes(self):
        self.assertEqual(
            loads(r'a "q\"b\\n\n\r\t\u00e9"'), {"a": 'q"b\\n\n\r\té'}
        )

    def test_bad_escapes(self):
        for text in (r'a "\x"', r'a "\u12"', r'a "\udfff"', r'a "\u0000"', r'a "\/"'):
            with self.assertRaises(VibeError) as caught:
                loads(text)
            self.assertEqual(caught.exception.code, "invalid-escape", text)

    def test_tab_allowed_raw(self):
        self.assertEqual(loads('a "x\ty"'), {"a": "x\ty"})

    def test_raw_controls(self):
        for ch in ("\x01", "\x1f", "\x7f", "\r"):
            with self.assertRaises(VibeError) as caught:
                loads('a "x%sy"' % ch)
            self.assertEqual(caught.exception.code, "illegal-character", repr(ch))

    def test_string_must_close_on_line(self):
        for text in ('a "x\ny"', 'a "x\r\ny"', 'a "x', 'a "x\\'):
            with self.assertRaises(VibeError) as caught:
                loads(text)
            self.assertEqual(caught.exception.code, "unterminated-string", repr(text))

    def test_hash_inside_quotes(self):
        self.assertEqual(loads('a "x # y" # comment'), {"a": "x # y"})

    def test_unicode_needs_quotes(self):
        self.assertEqual(loads('a "café"'), {"a": "café"})
        with self.assertRaises(VibeError) as caught:
            loads("a café")
        self.assertEqual(caught.exception.code, "illegal-character")
        self.assertEqual((caught.exception.line, caught.exception.column), (1, 6))
        self.assertEqual(caught.exception.offset, 5)


class StructureTests(SynchronousTestCase):
    def test_inline_statements(self):
        self.assertEqual(
            loads("r { a { host x  port 1 } b { host y port 2 } }"),
            {"r": {"a": {"host": "x", "port": 1}, "b": {"host": "y", "port": 2}}},
        )

    def test_multiline_array_with_comments(self):
        self.assertEqual(
            loads("a [\n  # first\n  1 two\n  \"3\" # tail\n]"), {"a": [1, "two", "3"]}
        )

    def test_brace_on_next_line(self):
        self.assertEqual(loads("a\n{\n b 1\n}"), {"a": {"b": 1}})

    def test_value_on_next_line_refused(self):
        with self.assertRaises(VibeError) as caught:
            loads("name\nvalue")
        self.assertEqual(caught.exception.code, "unexpected-token")
        self.assertEqual(caught.exception.line, 1)

    def test_unquoted_space_hint(self):
        with self.assertRaises(VibeError) as caught:
            loads("name My Station\n")
        self.assertEqual(caught.exception.code, "unexpected-token")
        self.assertEqual(caught.exception.column, 9)
        self.assertIn("quoted", caught.exception.message)

    def test_bad_keys(self):
        for text in ("2x 1", "a.b 1", '"" 1', "{ a 1 }", "a }", "}", "]"):
            with self.assertRaises(VibeError) as caught:
                loads(text)
            self.assertEqual(caught.exception.code, "unexpected-token", text)

    def test_missing_value_at_end(self):
        for text in ("a", "a {\n b\n}", "a [", "x { a }"):
            with self.assertRaises(VibeError):
                loads(text)

    def test_brace_mismatch_in_array(self):
        with self.assertRaises(VibeError) as caught:
            loads("a [1 2 }")
        self.assertEqual(caught.exception.code, "unexpected-token")

    def test_duplicate_last_wins(self):
        self.assertEqual(loads("a { x 1 }\na { y 2 }"), {"a": {"y": 2}})

    def test_crlf_and_lone_cr(self):
        self.assertEqual(loads("a 1\r\nb 2\rc 3"), {"a": 1, "b": 2, "c": 3})
        with self.assertRaises(VibeError) as caught:
            loads("a 1\r\nb 2\rc\r\n{")
        self.assertEqual(caught.exception.line, 3)

    def test_error_location(self):
        with self.assertRaises(VibeError) as caught:
            loads(b"server {\n  name \"\xc3\xa9t\xc3\xa9\" port }\n", filename="g.vibe")
        err = caught.exception
        self.assertEqual((err.line, err.column, err.offset), (2, 14, 24))
        self.assertEqual(
            str(err),
            "g.vibe:2:14: unexpected-token: 'port' has no value\n"
            '      name "été" port }\n'
            "                 ^",
        )

    def test_encoding(self):
        for data in (b"\xef\xbb\xbfa 1", b"a \xff", b"a 1\x00", "\ufeffa 1", "a \ud800"):
            with self.assertRaises(VibeError) as caught:
                loads(data)
            self.assertEqual(caught.exception.code, "encoding-error", repr(data))

    def test_locations(self):
        tree, where = parse("a {\n  b [x\n     y]\n  c 3\n}\n")
        self.assertEqual(tree, {"a": {"b": ["x", "y"], "c": 3}})
        self.assertEqual((where[("a", "c")].key_line, where[("a", "c")].column), (4, 5))
        self.assertEqual((where[("a", "b", 1)].line, where[("a", "b", 1)].column), (3, 6))
        self.assertEqual(where[("a",)].key_column, 1)

    def test_load_file_objects(self):
        self.assertEqual(load(io.BytesIO(b"a 1")), {"a": 1})
        self.assertEqual(load(io.StringIO("a 1")), {"a": 1})


class LimitTests(SynchronousTestCase):
    def assertLimit(self, text):
        with self.assertRaises(VibeError) as caught:
            loads(text)
        self.assertEqual(caught.exception.code, "limit-exceeded")

    def test_depth(self):
        ok = "a {" * Limits.depth + "}" * Limits.depth
        self.assertIsInstance(loads(ok), dict)
        self.assertLimit("a {" * (Limits.depth + 1) + "}" * (Limits.depth + 1))

    def test_very_deep_is_not_recursion_error(self):
        self.assertLimit("a {" * 100000)

    def test_string_length(self):
        self.assertEqual(len(loads('a "%s"' % ("x" * Limits.string_chars))["a"]), Limits.string_chars)
        self.assertLimit('a "%s"' % ("x" * (Limits.string_chars + 1)))
        self.assertLimit("a %s" % ("x" * (Limits.string_chars + 1)))

    def test_key_length(self):
        loads("%s 1" % ("k" * Limits.key_chars))
        self.assertLimit("%s 1" % ("k" * (Limits.key_chars + 1)))

    def test_array_items(self):
        loads("a [%s]" % " ".join(["1"] * Limits.array_items))
        self.assertLimit("a [%s]" % " ".join(["1"] * (Limits.array_items + 1)))

    def test_object_keys(self):
        keys = "\n".join("k%d 1" % i for i in range(Limits.object_keys))
        self.assertEqual(len(loads(keys)), Limits.object_keys)
        self.assertLimit(keys + "\nextra 1")

    def test_document_size(self):
        self.assertLimit(b"#" * (Limits.document_bytes + 1))


class EmitterTests(SynchronousTestCase):
    def test_minimal_quoting(self):
        self.assertEqual(
            dumps({"a": "plain", "b": "12", "c": "true", "d": "", "e": "x y", "f": "é",
                   "g": "1.5e3", "h": "a#b", "i": "tab\there", "j": "\x01"}),
            'a plain\nb "12"\nc "true"\nd ""\ne "x y"\nf "é"\ng 1.5e3\nh "a#b"\n'
            'i "tab\\there"\nj "\\u0001"\n',
        )

    def test_floats(self):
        self.assertEqual(
            dumps({"a": 1e16, "b": 1.5e-7, "c": 2.0, "d": -0.0, "e": 0.1}),
            "a 10000000000000000.0\nb 0.00000015\nc 2.0\nd -0.0\ne 0.1\n",
        )
        for value in (1e16, 1.5e-7, 0.1, 1e300, 5e-324):
            self.assertEqual(loads(dumps({"x": value}))["x"], value)

    def test_round_trip(self):
        tree = {"s": {"k": [1, 2.5, True, "x y", "é"], "e": {}, "l": []}, "weird key": -3}
        self.assertEqual(loads(dumps(tree)), tree)
        self.assertEqual(dumps(loads(dumps(tree))), dumps(tree))

    def test_refuses_what_vibe_cannot_hold(self):
        for tree, error in (
            ({"a": None}, TypeError),
            ({"a": float("nan")}, ValueError),
            ({"a": [[1]]}, ValueError),
            ({"a": [{"b": 1}]}, ValueError),
            ({"": 1}, ValueError),
            ({"a": 2**64}, ValueError),
            ([1], TypeError),
        ):
            self.assertRaises(error, dumps, tree)
