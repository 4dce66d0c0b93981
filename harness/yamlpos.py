"""Safe YAML loading that remembers where each key and item stood.

Configuration errors must name `file:line`, so mappings and sequences are
loaded as dict/list subclasses carrying the line of every key and item.
Only safe loading (SafeLoader's constructors) is used: a guest file can never
construct objects.

Configuration comes from contributors, so the loader is bounded before it
builds anything: a regular file of at most MAX_BYTES (opened non-blocking, so a
FIFO cannot hang it), UTF-8 without NUL, at most MAX_DEPTH levels of nesting
(the constructors recurse), at most MAX_NODES values once aliases are expanded
(a "billion laughs" file is a few lines), no alias inside its own anchor, and no
number longer than MAX_DIGITS. Every refusal is a YamlError naming file:line.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1 << 20  # the largest catalog guest file is about 4 KiB
MAX_DEPTH = 64  # guest files nest five levels deep
MAX_NODES = 100_000  # values after alias expansion; the catalog's largest file has ~300
MAX_DIGITS = 40  # an integer longer than this is a typo (and int() refuses 4300)


class YamlError(Exception):
    """A file that is not valid YAML; carries file and line."""

    def __init__(self, path: Path | str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


class LineDict(dict):
    """A mapping that knows its own line and the line of each key."""

    line: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list):
    """A sequence that knows its own line and the line of each item."""

    line: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader's constructors with libyaml's parser where PyYAML has it (about
    five times faster on the catalog; the pure-Python parser otherwise)."""


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            raise YamlError(loader.name, line, "a mapping key must be a plain value") from None
        if key in result:
            raise YamlError(loader.name, line, f"{key}: duplicate key")
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    if len(node.value) > MAX_DIGITS:
        raise YamlError(loader.name, node.start_mark.line + 1,
                        f"a number of more than {MAX_DIGITS} digits")
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def read_config(path: Path) -> str:
    """The text of a configuration file, refusing what is not a small UTF-8 regular
    file. Opened with O_NONBLOCK and checked with fstat before any read: a FIFO,
    a device (/dev/zero) or a folder is refused without blocking or reading."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise YamlError(path, 0, f"cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise YamlError(path, 0, "not a regular file")
        if info.st_size > MAX_BYTES:
            raise YamlError(path, 0, f"larger than {MAX_BYTES >> 10} KiB")
        chunks, size = [], 0
        while size <= MAX_BYTES and (chunk := os.read(fd, MAX_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise YamlError(path, 0, f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_BYTES:  # a file that grew while it was read (/proc, a log)
        raise YamlError(path, 0, f"larger than {MAX_BYTES >> 10} KiB")
    return decode(data, path)


def decode(data: bytes, name: Path | str) -> str:
    """UTF-8 text without NUL, or a YamlError at the line of the first bad byte."""
    nul = data.find(b"\0")
    if nul >= 0:
        raise YamlError(name, data.count(b"\n", 0, nul) + 1,
                        "a NUL byte (this is not a text file)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(name, data.count(b"\n", 0, exc.start) + 1,
                        f"not UTF-8 (byte 0x{data[exc.start]:02x})") from None


def load_file(path: Path) -> Any:
    """Load one YAML document from `path`, raising YamlError with file:line."""
    return load_text(read_config(path), str(path))


def load_text(text: str, name: str = "<string>") -> Any:
    if "\0" in text:
        raise YamlError(name, text.count("\n", 0, text.index("\0")) + 1,
                        "a NUL byte (this is not a text file)")
    if len(text) > MAX_BYTES:
        raise YamlError(name, 0, f"larger than {MAX_BYTES >> 10} KiB")
    loader = None
    try:
        _check_shape(text, name)  # before anything recurses or expands
        loader = _Loader(text)
        loader.name = name
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise YamlError(name, line, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise YamlError(name, 0, f"invalid YAML: {exc}") from None
    except RecursionError:  # the shape check bounds depth; this is the last line
        raise YamlError(name, 0, f"nested more than {MAX_DEPTH} levels deep") from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_shape(text: str, name: str) -> None:
    """Walk the event stream (libyaml's parser does not recurse) counting nesting depth
    and the values the document has once every alias is expanded."""
    loader = _Loader(text)
    total = 0
    sizes: dict[str, int] = {}  # anchor -> values it expands to
    open_: list[tuple[str | None, int]] = []  # collections being read: (anchor, total before)
    try:
        while (event := loader.get_event()) is not None:
            line = event.start_mark.line + 1
            if isinstance(event, yaml.AliasEvent):
                if any(anchor == event.anchor for anchor, _ in open_):
                    raise YamlError(name, line, f"alias *{event.anchor} is inside its own "
                                    "anchor (a structure that contains itself)")
                total += sizes.get(event.anchor, 1)
            elif isinstance(event, yaml.ScalarEvent):
                total += 1
                if event.anchor is not None:
                    sizes[event.anchor] = 1
            elif isinstance(event, yaml.CollectionStartEvent):
                if len(open_) >= MAX_DEPTH:
                    raise YamlError(name, line, f"nested more than {MAX_DEPTH} levels deep")
                open_.append((event.anchor, total))
                total += 1
            elif isinstance(event, yaml.CollectionEndEvent):
                anchor, before = open_.pop()
                if anchor is not None:
                    sizes[anchor] = total - before
            if total > MAX_NODES:
                raise YamlError(name, line, f"more than {MAX_NODES} values once aliases are "
                                "expanded (an alias bomb?)")
    finally:
        loader.dispose()
