"""A Babel extraction method for Tornado templates (`babel.cfg` names it).

Babel knows Python but not Tornado's template syntax, so this finds each `{{ ... }}` and
`{% ... %}` block, drops the directive word (`raw`, `set`, `if` ...), and hands the Python
expression to Babel's own Python extractor at the block's line.
"""
from __future__ import annotations

import io
import re
from typing import IO, Any, Collection, Iterator, Mapping, Tuple

from babel.messages.extract import extract_python

_BLOCK = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)
_DIRECTIVE = re.compile(r"^\s*(?:raw|set|if|elif|for|while|apply|module|from|import|try|except)\b")


def extract_tornado(fileobj: IO[bytes], keywords: Mapping[str, Any], comment_tags: Collection[str],
                    options: Mapping[str, Any]) -> Iterator[Tuple[int, str, Any, list]]:
    """Babel's extraction-method interface: (line, function, message(s), comments) per call."""
    text = fileobj.read().decode(options.get("encoding", "utf-8"))
    for block in _BLOCK.finditer(text):
        code = _DIRECTIVE.sub("", block.group(1) if block.group(1) is not None else block.group(2), count=1)
        offset = text.count("\n", 0, block.start())
        for lineno, funcname, messages, comments in extract_python(
                io.BytesIO(code.strip().encode("utf-8")), keywords, comment_tags, {}):
            yield lineno + offset, funcname, messages, comments
