"""Leaf paths, salted field digests, ``targetHash`` and redaction (docs/FORMAT.md §3).

A credential without ``proof`` has two kinds of *leaves*: the **envelope** — every member except
``credentialSubject``, one leaf at the empty JSON Pointer ``""``, since none of it may be
redacted — and every JSON scalar and every empty object or array inside ``credentialSubject``,
each addressed by its RFC 6901 JSON Pointer. Each leaf has its own 32-byte salt; its digest is

    digest = H(salt ‖ uint32_be(len(path_utf8)) ‖ path_utf8 ‖ JCS(value))

and ``targetHash = H(entries sorted bytewise ascending, concatenated)`` with one *entry*
``uint32_be(len(path_utf8)) ‖ path_utf8 ‖ digest`` per leaf, so the target hash commits to every
leaf's path: the labels of ``proof.redactedDigests`` are proven, not the holder's claim. A holder
redacts a subject leaf by removing its value and salt and keeping its digest in
``proof.redactedDigests``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from json.encoder import encode_basestring
from typing import Any

from verifier._internal.accelerator import module as accelerator
from verifier._internal.canon import check_number, jcs, jcs_of_checked
from verifier.errors import InvalidDocument, RedactionError

__all__ = [
    "SUITE_HASHES",
    "accelerated_target_hash",
    "IntegrityFailure",
    "digests_from_walk",
    "escape_token",
    "envelope_of",
    "flatten",
    "leaf_digest",
    "leaf_entry",
    "leaves_of",
    "parse_pointer",
    "recompute_leaves",
    "recompute_target_hash",
    "reference_target_hash",
    "redacted_ancestry",
    "salt_and_digest",
    "salt_pool",
    "salts_from_seed",
    "seeded_target_hash",
    "seeded_target_hash_of_parts",
    "target_hash_of",
    "walk_document",
    "walk_leaves",
]

HashFn = Callable[[bytes], Any]

#: ``target_hash(h, salts, envelope_jcs, subject) -> bytes | None``: the leaf walk, leaf digests and
#: ``targetHash`` of an unredacted credential in one C pass (verifier/_internal/accelerator.py), or
#: None without the accelerator; its ``None`` leaves the case to this module, the reference.
accelerated_target_hash: Callable[..., bytes | None] | None = (
    accelerator.target_hash if accelerator is not None else None
)


def _sm3(data: bytes) -> Any:
    return hashlib.new("sm3", data)


#: The field hash H of each signature suite.
SUITE_HASHES: dict[str, HashFn] = {"secp256k1": hashlib.sha256, "sm2-sm3": _sm3}

#: Paths a holder may never redact: everything outside ``credentialSubject`` and the subject
#: identifier (``integrity`` needs it to recompute ``subjectHash``).
SUBJECT_ID_PATH = "/credentialSubject/unifiedSocialCreditCode"
#: Subject leaves a holder may never redact, and why (FORMAT.md §3.4).
KEPT_PATHS: dict[str, str] = {
    SUBJECT_ID_PATH: "the verifier needs it to tie the credential to its holder",
    "/credentialSubject/licenceIdentifier": "it is how the licence is known on the national platform "
    "(and the verifier checks that it names the issuer)",
    "/credentialSubject/longTermValidity": "the validity check needs it when there is no validUntil",
    "/credentialSubject/holderCodeType": "it says which field the holder is bound by (subjectHash)",
}
#: A natural person holder's citizen ID number (FORMAT.md §2.4): redactable — subjectHash binds its
#: salted digest, not the number.
CITIZEN_ID_PATH = "/credentialSubject/citizenIdNumber"
#: Where the subject's leaves live.
SUBJECT_PATH = "/credentialSubject"
#: The envelope leaf's path: the empty JSON Pointer (it stands for the document outside the subject).
ENVELOPE_PATH = ""
_ENVELOPE_PREFIX = b"\x00\x00\x00\x00"  # uint32_be(0): the path is empty


def envelope_of(document: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope leaf's value: ``document`` without ``proof`` and ``credentialSubject``."""
    return {k: v for k, v in document.items() if k != "proof" and k != "credentialSubject"}


def leaves_of(
    document: Mapping[str, Any], skip: frozenset[str] | set[str] = frozenset()
) -> list[tuple[str, Any]]:
    """``(pointer, value)`` of every leaf: the envelope first, then the subject's in document order."""
    out: list[tuple[str, Any]] = [(ENVELOPE_PATH, envelope_of(document))]
    if "credentialSubject" in document:
        flatten(document["credentialSubject"], SUBJECT_PATH, out, skip)
    return out


def field_name(path: str) -> str:
    """How a leaf is named in a failure reason."""
    return f"field {path}" if path else "the credential's envelope (its fields outside credentialSubject)"


class IntegrityFailure(Exception):
    """The disclosed fields, salts and redacted digests do not add up (a failed ``integrity``)."""


def escape_token(key: str) -> str:
    """RFC 6901 §3: ``~`` → ``~0``, ``/`` → ``~1``."""
    if "~" in key or "/" in key:
        return key.replace("~", "~0").replace("/", "~1")
    return key


def parse_pointer(path: str) -> list[str]:
    """Split an RFC 6901 JSON Pointer into unescaped reference tokens ("" → [])."""
    if path == "":
        return []
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidDocument(f"{path!r} is not a JSON Pointer (it must start with '/')")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def flatten(
    value: Any, path: str, out: list[tuple[str, Any]], skip: frozenset[str] | set[str] = frozenset()
) -> None:
    """Append ``(pointer, leaf value)`` for every leaf of ``value`` (rooted at ``path``) to ``out``.

    ``skip`` holds redacted paths and their ancestors: a ``null`` array element at such a path is
    a redaction placeholder and yields no leaf. Refuses floats, out-of-range integers, non-string
    keys and non-JSON types.
    """
    kind = type(value)
    if kind is dict:
        if not value:
            out.append((path, value))
            return
        children = _CHILDREN.get(path) or _children_of(path)
        for key, item in value.items():
            if type(key) is not str:
                raise InvalidDocument(f"object {path or '/'} has a non-text key {key!r}")
            child = (children.get(key) or _child_of(children, path, key))[0]
            t = type(item)
            if t is str or t is bool or item is None:
                out.append((child, item))
            else:
                flatten(item, child, out, skip)
    elif kind is list:
        if not value:
            out.append((path, value))
            return
        for index, item in enumerate(value):
            child = f"{path}/{index}"
            if item is None and child in skip:
                continue
            flatten(item, child, out, skip)
    elif kind is str or kind is bool or value is None:
        out.append((path, value))
    elif kind is int:
        check_number(value, path)
        out.append((path, value))
    elif kind is float:
        check_number(value, path)
    else:
        raise InvalidDocument(f"field {path or '/'} holds a {kind.__name__}, which JSON cannot carry")


def walk_leaves(
    value: Any,
    path: str,
    salt_of: Callable[[str], Any],
    skip: frozenset[str] | set[str],
    salt_hexes: list[Any],
    tails: list[bytes],
) -> None:
    """:func:`flatten` fused with the first half of :func:`recompute_leaves` (verification's hot path).

    For every leaf, in document order, appends its salt as found (``salt_of(path)``, possibly
    ``None``) to ``salt_hexes`` and ``uint32_be(len(path)) ‖ path ‖ JCS(value)`` to ``tails``.
    Refuses what :func:`flatten` refuses, with the same errors.
    """
    kind = type(value)
    if kind is dict:
        if not value:
            salt_hexes.append(salt_of(path))
            tails.append((_PREFIX_CACHE.get(path) or _path_prefix(path)) + b"{}")
            return
        children = _CHILDREN.get(path) or _children_of(path)
        for key, item in value.items():
            if type(key) is not str:
                raise InvalidDocument(f"object {path or '/'} has a non-text key {key!r}")
            child, prefix = children.get(key) or _child_of(children, path, key)
            if type(item) is str:
                salt_hexes.append(salt_of(child))
                try:
                    tails.append(prefix + encode_basestring(item).encode("utf-8"))
                except UnicodeEncodeError:
                    jcs(item, child)  # raises InvalidDocument
            else:
                walk_leaves(item, child, salt_of, skip, salt_hexes, tails)
    elif kind is list:
        if not value:
            salt_hexes.append(salt_of(path))
            tails.append((_PREFIX_CACHE.get(path) or _path_prefix(path)) + b"[]")
            return
        for index, item in enumerate(value):
            child = f"{path}/{index}"
            if item is None and child in skip:
                continue
            walk_leaves(item, child, salt_of, skip, salt_hexes, tails)
    elif kind is str or kind is bool or value is None or kind is int or kind is float:
        encoded = jcs(value, path)  # refuses floats and unsafe integers
        salt_hexes.append(salt_of(path))
        tails.append((_PREFIX_CACHE.get(path) or _path_prefix(path)) + encoded)
    else:
        raise InvalidDocument(f"field {path or '/'} holds a {kind.__name__}, which JSON cannot carry")


def walk_document(
    document: Mapping[str, Any],
    salt_of: Callable[[str], Any],
    skip: frozenset[str] | set[str],
    salt_hexes: list[Any],
    tails: list[bytes],
    *,
    schema_valid: bool = False,
) -> None:
    """:func:`walk_leaves` over a whole document: the envelope leaf, then the subject's leaves.

    ``schema_valid``: the document passed its JSON Schema, so its envelope holds text, arrays and
    objects only and needs no check for what JSON cannot carry."""
    salt_hexes.append(salt_of(ENVELOPE_PATH))
    envelope = envelope_of(document)
    tails.append(
        _ENVELOPE_PREFIX
        + (jcs_of_checked(envelope) if schema_valid and envelope else jcs(envelope, ENVELOPE_PATH))
    )
    if "credentialSubject" in document:
        walk_leaves(document["credentialSubject"], SUBJECT_PATH, salt_of, skip, salt_hexes, tails)


def digests_from_walk(salt_hexes: list[Any], tails: list[bytes], h: HashFn) -> list[bytes] | None:
    """The leaf entries (:func:`leaf_entry`) from :func:`walk_leaves` output, or ``None`` if a salt is
    missing or malformed (the caller then takes the slow path, :func:`recompute_leaves`, for the
    precise reason)."""
    n = len(tails)
    try:
        joined = "".join(salt_hexes)
    except TypeError:  # a salt missing (None) or not text
        return None
    if len(joined) != 66 * n or joined[0::66] != "0" * n or joined[1::66] != "x" * n or not joined.islower():
        return None
    try:
        blob = bytes.fromhex(joined.replace("0x", ""))
    except ValueError:
        return None
    if len(blob) != 32 * n:
        return None
    # Each tail starts with the entry's uint32_be(len(path)) ‖ path.
    return [
        tail[: 4 + int.from_bytes(tail[:4], "big")] + h(blob[i : i + 32] + tail).digest()
        for i, tail in zip(range(0, 32 * n, 32), tails, strict=True)
    ]


def leaf_digest(h: HashFn, salt: bytes, path: str, value: Any) -> bytes:
    """``H(salt ‖ uint32_be(len(path_utf8)) ‖ path_utf8 ‖ JCS(value))``."""
    p = path.encode("utf-8")
    digest: bytes = h(salt + len(p).to_bytes(4, "big") + p + jcs(value, path)).digest()
    return digest


def leaf_entry(path: str, digest: bytes) -> bytes:
    """A leaf's entry in ``targetHash``: ``uint32_be(len(path_utf8)) ‖ path_utf8 ‖ digest`` (§3.3)."""
    return (_PREFIX_CACHE.get(path) or _path_prefix(path)) + digest


_PREFIX_CACHE: dict[str, bytes] = {}
#: parent path → member name → (member path, its prefix): the documents of a batch share their
#: member names, so a walk looks each up instead of building and hashing the path again.
_CHILDREN: dict[str, dict[str, tuple[str, bytes]]] = {}
_CHILDREN_LIMIT = 4096  # parents, and members per parent


def _children_of(path: str) -> dict[str, tuple[str, bytes]]:
    """The member cache of ``path`` (a miss: a new one, remembered while there is room)."""
    children: dict[str, tuple[str, bytes]] = {}
    if len(_CHILDREN) < _CHILDREN_LIMIT:
        _CHILDREN[path] = children
    return children


def _child_of(children: dict[str, tuple[str, bytes]], path: str, key: str) -> tuple[str, bytes]:
    """(member path, prefix) of member ``key`` of ``path`` (a miss: computed, remembered while there is room)."""
    child = path + "/" + (key if ("~" not in key and "/" not in key) else escape_token(key))
    entry = (child, _path_prefix(child))
    if len(children) < _CHILDREN_LIMIT:
        children[key] = entry
    return entry


def _path_prefix(path: str) -> bytes:
    """``uint32_be(len(path_utf8)) ‖ path_utf8``, cached: a batch repeats the same paths."""
    prefix = _PREFIX_CACHE.get(path)
    if prefix is None:
        p = path.encode("utf-8")
        prefix = len(p).to_bytes(4, "big") + p
        if len(_PREFIX_CACHE) < 100_000:
            _PREFIX_CACHE[path] = prefix
    return prefix


_SALT_LABEL = b"certledger/salts/v1"  # what a seeded salt pool's SHAKE256 reads before the seed


def salt_pool(seed: bytes | None, n: int) -> bytes:
    """``32·n`` salt bytes: fresh randomness, or derived from a 32-byte secret ``seed``.

    A derived pool is ``SHAKE256("certledger/salts/v1" ‖ seed)`` read to ``32·n`` bytes: an issuer
    keeps one secret seed per credential instead of its salts and reproduces them on demand. Seeing
    some salts reveals nothing of the others (SHAKE256 is a pseudo-random function of its input)."""
    if seed is None:
        return os.urandom(32 * n)
    if len(seed) != 32:
        raise ValueError("a salt seed is 32 bytes")
    return hashlib.shake_256(_SALT_LABEL + seed).digest(32 * n)


def salts_from_seed(document: Mapping[str, Any], seed: bytes) -> dict[str, str]:
    """The salts (path → 0x-hex) :func:`salt_and_digest` gave ``document`` from ``seed``.

    The pool is consumed in leaf order (:func:`leaves_of`), so ``document`` must have its members in
    the order it had then — as a stored JSON text parsed back has."""
    leaves = leaves_of(document)
    pool_hex = salt_pool(seed, len(leaves)).hex()
    return {path: "0x" + pool_hex[64 * i : 64 * i + 64] for i, (path, _) in enumerate(leaves)}


def salt_and_digest(
    document: Mapping[str, Any], h: HashFn, seed: bytes | None = None
) -> tuple[dict[str, str], list[bytes]]:
    """Salts (path → 0x-hex; fresh, or from ``seed``: :func:`salt_pool`) and the entries
    (:func:`leaf_entry`: path and digest) of every leaf of ``document`` minus ``proof``."""
    leaves = leaves_of(document)
    pool = salt_pool(seed, len(leaves))
    pool_hex = pool.hex()
    salts = {path: "0x" + pool_hex[64 * i : 64 * i + 64] for i, (path, _) in enumerate(leaves)}
    return salts, _digests(leaves, pool, h)


def seeded_target_hash(
    document: Mapping[str, Any], h: HashFn, seed: bytes, *, schema_valid: bool = False
) -> bytes:
    """``targetHash`` of ``document`` with its salts derived from ``seed`` (the registry's hot path:
    the salts themselves are reproduced later, by :func:`salts_from_seed`). ``schema_valid``: as
    for :func:`walk_document`."""
    leaves = leaves_of(document)
    if schema_valid and leaves[0][1]:
        return _seeded_target_hash(jcs_of_checked(leaves[0][1]), leaves[1:], h, seed)
    return target_hash_of(h, _digests(leaves, salt_pool(seed, len(leaves)), h))


def seeded_target_hash_of_parts(envelope_jcs: bytes, subject: Any, h: HashFn, seed: bytes) -> bytes:
    """:func:`seeded_target_hash` of a document given as the canonical JSON of its envelope leaf
    (:func:`envelope_of`, written by :func:`~verifier._internal.canon.jcs`) and its
    ``credentialSubject`` (the issuer's hot path: documents of one upload share most of their
    envelope, so the issuer writes it from a template)."""
    if accelerated_target_hash is not None and type(seed) is bytes and len(seed) == 32:
        # given the input of salt_pool's SHAKE256, the C walk reads the stream itself in leaf order
        target = accelerated_target_hash(h, _SALT_LABEL + seed, envelope_jcs, subject)
        if target is not None:
            return target
    leaves: list[tuple[str, Any]] = []
    flatten(subject, SUBJECT_PATH, leaves)
    return _seeded_target_hash(envelope_jcs, leaves, h, seed)


def _seeded_target_hash(
    envelope_jcs: bytes, subject_leaves: list[tuple[str, Any]], h: HashFn, seed: bytes
) -> bytes:
    pool = salt_pool(seed, len(subject_leaves) + 1)
    return target_hash_of(
        h,
        [
            _ENVELOPE_PREFIX + h(pool[:32] + _ENVELOPE_PREFIX + envelope_jcs).digest(),
            *_digests(subject_leaves, pool[32:], h),
        ],
    )


def _digests(leaves: list[tuple[str, Any]], pool: bytes, h: HashFn) -> list[bytes]:
    """The entries (:func:`leaf_entry`) of ``leaves`` salted from ``pool`` in order."""
    prefixes = _PREFIX_CACHE
    digests: list[bytes] = []
    append = digests.append
    i = 0
    for path, value in leaves:
        prefix = prefixes.get(path) or _path_prefix(path)
        if type(value) is str:
            try:
                encoded = encode_basestring(value).encode("utf-8")
            except UnicodeEncodeError:
                encoded = jcs(value, path)  # raises InvalidDocument
        else:
            encoded = jcs(value, path)
        append(prefix + h(pool[i : i + 32] + prefix + encoded).digest())
        i += 32
    return digests


def target_hash_of(h: HashFn, entries: Iterable[bytes]) -> bytes:
    """``H(entries sorted bytewise ascending, concatenated)``, each entry a :func:`leaf_entry`."""
    digest: bytes = h(b"".join(sorted(entries))).digest()
    return digest


def reference_target_hash(h: HashFn, leaves: Iterable[tuple[str, bytes]]) -> bytes:
    """§3.3 written out plainly from ``(path, digest)`` pairs (the reference the fast paths are
    tested against): each entry is ``uint32_be(len(path_utf8)) ‖ path_utf8 ‖ digest``; the entries
    are sorted bytewise ascending and hashed as one input."""
    entries = []
    for path, digest in leaves:
        p = path.encode("utf-8")
        entries.append(len(p).to_bytes(4, "big") + p + digest)
    entries.sort()
    out: bytes = h(b"".join(entries)).digest()
    return out


def _hex32(text: Any, what: str) -> bytes:
    # Hex is lower-case (FORMAT.md preamble): "0x…".islower() is false exactly when a digit is upper-case.
    if type(text) is not str or len(text) != 66 or not text.startswith("0x") or not text.islower():
        raise IntegrityFailure(f"{what} is not a 32-byte lower-case 0x-hex value")
    try:
        raw = bytes.fromhex(text[2:])
    except ValueError:
        raw = b""
    if len(raw) != 32:  # (fromhex skips spaces)
        raise IntegrityFailure(f"{what} is not a 32-byte lower-case 0x-hex value")
    return raw


def redacted_ancestry(redacted: Iterable[str]) -> frozenset[str]:
    """Every redacted path together with all its ancestors (not the root)."""
    out: set[str] = set()
    for path in redacted:
        while path and path not in out:
            out.add(path)
            path = path[: path.rfind("/")]
    return frozenset(out)


def recompute_target_hash(
    document: Mapping[str, Any], salts: Mapping[str, Any], redacted: Mapping[str, Any], h: HashFn
) -> bytes:
    """Recompute ``targetHash`` from the disclosed leaves, their salts and the redacted digests.

    Raises :class:`IntegrityFailure` naming the first field that does not add up.
    """
    skip = redacted_ancestry(redacted) if redacted else frozenset()
    return recompute_leaves(leaves_of(document, skip), salts, redacted, h)


def recompute_leaves(
    leaves: list[tuple[str, Any]], salts: Mapping[str, Any], redacted: Mapping[str, Any], h: HashFn
) -> bytes:
    """:func:`recompute_target_hash` over leaves already flattened (with redaction placeholders skipped)."""
    get = salts.get
    salt_hexes: list[Any] = [get(path) for path, _ in leaves]
    n = len(leaves)
    # All salts in one C-level decode: each is "0x" + 64 hex digits (x is no hex digit, so the
    # prefixes must sit at offsets 0 and 1 modulo 66).
    joined = "".join(salt_hexes) if None not in salt_hexes and set(map(type, salt_hexes)) <= {str} else ""
    blob = b""
    if len(joined) == 66 * n and joined[0::66] == "0" * n and joined[1::66] == "x" * n and joined.islower():
        try:
            blob = bytes.fromhex(joined.replace("0x", ""))
        except ValueError:
            blob = b""
    if len(blob) != 32 * n:
        _explain_salts(leaves, salt_hexes, redacted)
    prefixes = _PREFIX_CACHE
    digests: list[bytes] = []
    append = digests.append
    i = 0
    for path, value in leaves:
        prefix = prefixes.get(path) or _path_prefix(path)
        if type(value) is str:
            try:
                append(
                    prefix + h(blob[i : i + 32] + prefix + encode_basestring(value).encode("utf-8")).digest()
                )
            except UnicodeEncodeError:
                jcs(value, path)  # raises InvalidDocument
        else:
            append(prefix + h(blob[i : i + 32] + prefix + jcs(value, path)).digest())
        i += 32
    if n != len(salts):
        present = {path for path, _ in leaves}
        missing = sorted(p for p in salts if p not in present)
        raise IntegrityFailure(
            f"{field_name(missing[0]) if missing else 'a field'} was removed from the document without "
            "being redacted properly (its salt is still there but its value is not)"
        )
    for path, digest_hex in redacted.items():
        if path in salts:
            raise IntegrityFailure(f"field {path} is listed as both disclosed and redacted")
        append(leaf_entry(path, _hex32(digest_hex, f"the redacted digest of {path}")))
    return target_hash_of(h, digests)


def _explain_salts(leaves: list[tuple[str, Any]], salt_hexes: list[Any], redacted: Mapping[str, Any]) -> None:
    """Raise the :class:`IntegrityFailure` that names the first leaf whose salt is missing or malformed."""
    for (path, _), salt_hex in zip(leaves, salt_hexes):
        if salt_hex is None:
            if path in redacted:
                raise IntegrityFailure(
                    f"field {path} was redacted by the holder, but a value has been put back in its place"
                )
            raise IntegrityFailure(
                f"{field_name(path)} is not part of what the issuer signed (it has no salt): it was added later"
            )
        _hex32(salt_hex, f"the salt of {field_name(path)}")
    raise IntegrityFailure("the salts are malformed")


def _container_at(document: Any, tokens: list[str], path: str) -> tuple[Any, Any]:
    """The parent container and the key/index of ``tokens`` in ``document``."""
    node = document
    for token in tokens[:-1]:
        node = _step(node, token, path)
    last = tokens[-1]
    if isinstance(node, dict):
        if last not in node:
            raise RedactionError(f"the credential has no field {path}")
        return node, last
    if isinstance(node, list):
        index = _index(last, node, path)
        if node[index] is None:
            raise RedactionError(f"field {path} is already redacted")
        return node, index
    raise RedactionError(f"the credential has no field {path}")


def _index(token: str, node: list[Any], path: str) -> int:
    if not token.isdigit() or (len(token) > 1 and token[0] == "0") or int(token) >= len(node):
        raise RedactionError(f"the credential has no field {path}")
    return int(token)


def _step(node: Any, token: str, path: str) -> Any:
    if isinstance(node, dict) and token in node:
        return node[token]
    if isinstance(node, list):
        return node[_index(token, node, path)]
    raise RedactionError(f"the credential has no field {path}")


def remove_and_prune(document: dict[str, Any], path: str, placeholders: set[str]) -> None:
    """Remove the value at ``path``: delete an object member, replace an array element by a
    ``null`` placeholder; then remove containers left empty (or holding only placeholders)."""
    tokens = parse_pointer(path)
    while tokens:
        parent, key = _container_at(document, tokens, path)
        if isinstance(parent, dict):
            del parent[key]
            empty = not parent
        else:
            parent[key] = None
            placeholders.add("/" + "/".join(escape_token(t) for t in tokens))
            prefix = "/" + "/".join(escape_token(t) for t in tokens[:-1])
            empty = all(parent[i] is None and f"{prefix}/{i}" in placeholders for i in range(len(parent)))
        tokens = tokens[:-1]
        if not empty or len(tokens) <= 1:  # never remove credentialSubject itself
            break
        path = "/" + "/".join(escape_token(t) for t in tokens)
