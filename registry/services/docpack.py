"""How a credential row keeps its document: the packed members (``prepare.PACKED_MEMBERS``) as JSON,
deflated (RFC 1951) with a preset dictionary, behind a one-byte version.

A stored e-licence is ~1 KB of JSON whose member names, punctuation and common words (有限公司,
市场监督管理局, ``urn:uuid:``, the national identifier's root code) repeat in every row; alone, deflate
finds little to reuse in 1 KB, but with a dictionary of them it writes a third of the bytes. The
dictionary of a version never changes (the rows written with it are read with it): a better one is
a new version, and :func:`unpack` reads every version there has been.

    version 1: raw deflate (wbits −15), the dictionary ``_V1``
    version 2: one Zstandard frame (RFC 8878) with its content size, no checksum and no dictionary
               id, compressed with the same bytes as a raw-content dictionary (at level 3 until stop
               37, at level −1 until stop 41, at level −3 since: the level is the writer's choice,
               the frames read alike)

An e-licence's national identifier is found through :func:`licence_key`, an 8-byte hash of it: the
identifier itself is only in the document.

Packing is the largest single cost of preparing a record for issuance. Version 1 (deflate level 6,
memLevel 5) wrote the benchmark's business licence (987 bytes of JSON; 651 deflated without the
dictionary) in 306 bytes and 11.5 µs, most of it deflate's set-up (level 1 still takes 9.3 µs);
version 2 (Zstandard level 3) writes 342 bytes in 5.7 µs, and reads them back in 2.6 µs. Stop 34
made version 2 the current one (docs/BENCHMARKS.md); rows written as version 1 are read as before.

Stop 37 writes version 2 at level −1: 367 bytes in 2.8 µs, against 338 bytes in 6.3 µs at level 3
(the benchmark's business licence, measured in one process). More than half of level 3's time is
building a Huffman table for the literals of each small document, which a negative level leaves
uncompressed; the other compression parameters change neither time nor size measurably. Those 29
bytes made a business licence's row too long for 6 rows to a 4 KiB SQLite page (1,022 bytes a
credential); the packed document no longer holds the credential's id (``prepare.PACKED_MEMBERS``),
and the rows are 885 bytes a credential again (docs/BENCHMARKS.md, stop 37).

Stop 41 writes level −3: 333 bytes in 2.11 µs, against 329 bytes in 2.57 µs at level −1 (200 of the
benchmark's business licences without their ids, in one process; −2 gave 330 bytes in 2.27 µs, −4
341 bytes in 2.00 µs).
"""

from __future__ import annotations

import threading
import zlib

import orjson
import zstandard

# The credentials.licence_key of an e-licence's national identifier (FORMAT.md §2.3): the list filters
# by this key's index (a tenth of the bytes of an index on the 88-character identifier); the identifier
# itself is in the document, which the list checks it against (stored_licence_identifier).
from verifier.licence_id import licence_key

__all__ = [
    "licence_key",
    "pack",
    "stored_document",
    "stored_licence_identifier",
    "unpack",
]

#: version 1's dictionary: the members and the words every stored document of the three types has,
#: without the values of any one credential (built by hand; deflate looks back into it)
_V1 = (
    '{"id":"urn:uuid:","issuer":{"id":"did:certledger:","name":"","unifiedSocialCreditCode":""},'
    '"validFrom":"T00:00:00Z","validUntil":"T23:59:59Z","credentialSubject":{'
    '"assetId":"","assetName":"","holderName":"","holderCodeType":"citizenId","citizenIdNumber":"",'
    '"dataProvider":"","dataCategory":"electricity-usage","classificationLevel":"general",'
    '"periodCovered":{"from":"","to":""},"recordCount":,"datasetDigest":"0x","digestAlgorithm":"sha256",'
    '"valuation":{"amount":".00","currency":"CNY","method":"income approach"},"authorisedUses":[{'
    '"relyingParty":{"name":"银行分行","unifiedSocialCreditCode":""},"purpose":"credit-assessment",'
    '"until":""}],"permitNumber":"","permitType":"许可证","permittedActivities":["业务"],"issuingDepartment":"",'
    '"longTermValidity":true,"licenceNumber":"","enterpriseName":"有限公司",'
    '"enterpriseType":"有限责任公司（自然人投资或控股）","legalRepresentative":"",'
    '"registeredCapital":{"amount":".00","currency":"CNY"},"dateOfEstablishment":"","businessScope":"；",'
    '"address":"省市区路号","registrationAuthority":"市场监督管理局","licenceTypeCode":"CERTLEDGERBL001",'
    '"licenceIdentifier":"1.2.156.3005.2.CERTLEDGERBL001.","holderCodeType":"uscc","issueDate":"'
    '"unifiedSocialCreditCode":"91440"}}'
).encode()
_ZSTD_LEVEL = -3  # (literals uncompressed: see the module's docstring)
_CUT_OR_LONG = "a stored document that is cut short or has bytes after its end"


class _Zstd(threading.local):
    """Version 2's compressor and decompressor, one of each per thread (neither may be shared
    between threads), with the dictionary prepared once."""

    def __init__(self) -> None:
        dictionary = zstandard.ZstdCompressionDict(_V1, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        self.compressor = zstandard.ZstdCompressor(
            level=_ZSTD_LEVEL,
            dict_data=dictionary,
            write_checksum=False,
            write_content_size=True,
            write_dict_id=False,
        )
        self.decompressor = zstandard.ZstdDecompressor(dict_data=dictionary)


_zstd = _Zstd()


def pack(document_json: bytes) -> bytes:
    """The column value of a stored document's JSON bytes (the current version)."""
    return b"\x02" + _zstd.compressor.compress(document_json)


def _pack_v1(document_json: bytes) -> bytes:
    """Version 1 of :func:`pack` (rows written before stop 34; the tests write them too)."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15, 5, zlib.Z_DEFAULT_STRATEGY, _V1)
    return b"\x01" + c.compress(document_json) + c.flush()


def unpack(value: bytes) -> bytes:
    """The JSON bytes of a stored document from its column value, of any version (ValueError if it
    is not one)."""
    if not value or value[0] not in (1, 2):
        raise ValueError(f"not a stored document (version byte {value[:1].hex() or 'missing'})")
    if value[0] == 2:
        try:
            out: bytes = _zstd.decompressor.decompress(value[1:], allow_extra_data=False)
        except zstandard.ZstdError:
            raise ValueError(_CUT_OR_LONG) from None
        return out
    d = zlib.decompressobj(-15, _V1)
    out = d.decompress(value[1:]) + d.flush()
    if not d.eof or d.unused_data:
        raise ValueError(_CUT_OR_LONG)
    return out


def stored_document(packed: bytes) -> dict:
    """The members of a packed stored document (``prepare.PACKED_MEMBERS``; ``id`` too in a row
    written before stop 37)."""
    document: dict = orjson.loads(unpack(packed))
    return document


def stored_licence_identifier(packed: bytes) -> str | None:
    """``credentialSubject.licenceIdentifier`` of a packed stored document (None if it has none)."""
    subject = stored_document(packed).get("credentialSubject") or {}
    return subject.get("licenceIdentifier")
